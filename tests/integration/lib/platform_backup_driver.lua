-- platform_backup_driver.lua: the driver of case 280.  The harness runs
-- drrun with a minimal environment and no servers, so this runbook
--   1. starts a real PostgreSQL (tests/pg.sh) under the run dir,
--   2. makes the production and staging databases of runbooks/platform-backup.lua,
--   3. runs that runbook in drruns of its own, one per session below, each
--      with its output in SESSION.out and its exit status in SESSION.status
--      (state dir $DRRUN_STATE_DIR/inner), with PGHOST/PGPORT/PGUSER set,
--   4. records facts about the databases afterwards in facts.txt,
--   5. stops PostgreSQL (also the rollback of step 1).
-- The case file then checks those files.  DRRUN_REPO (a case `env`
-- directive) is the repository's root.
local exec = require "drrun.exec"

runbook { name = "platform-backup-e2e" }

local REPO = os.getenv("DRRUN_REPO")
local PG = (os.getenv("HOME") or ".") .. "/pg"
local E = {}

local function sh(script, ...)
  local argv = { "bash", "-c", script, "sh", ... }
  argv.timeout = "2m"
  argv.env = { PGHOST = E.host, PGPORT = E.port, PGUSER = E.user }
  local r = drrun.must(exec.run(argv))
  if r.status ~= 0 then error(("%s failed (%s): %s"):format(script, tostring(r.status), r.stderr), 0) end
  return r.stdout
end

step "start_postgres" {
  timeout = "2m",
  run = function()
    assert(REPO, "DRRUN_REPO is not set (a case env directive)")
    drrun.must(exec.run { REPO .. "/tests/pg.sh", "start", PG, timeout = "90s" })
    local env = sh('cat "$1/env"', PG)
    E.host, E.port, E.user = env:match("PGHOST=(%S+)"), env:match("PGPORT=(%d+)"), env:match("PGUSER=(%S+)")
    assert(E.port, "no PGPORT in " .. PG .. "/env")
  end,
  rollback = function() exec.run { REPO .. "/tests/pg.sh", "stop", PG, timeout = "60s" } end,
}

step "seed" {
  after = "start_postgres",
  run = function()
    sh([[createdb platform && createdb platform_staging && psql -Xq -v ON_ERROR_STOP=1 -d platform -c "
      create table users(id serial primary key, email text);
      insert into users(email) select 'u' || g || '@example.com' from generate_series(1, 500) g;
      create table events(id bigserial primary key, user_id int, kind text);
      insert into events(user_id, kind) select 1 + g % 500, 'login' from generate_series(1, 3000) g;" &&
      psql -Xq -d platform_staging -c "create table leftovers(x int); insert into leftovers values (1)"]])
  end,
}

-- run the runbook: SESSION.out, SESSION.status
local function inner(session, args)
  local argv = { "bash", "-c", [[
    exe=$(readlink "/proc/$PPID/exe")   # the drrun running this case
    out=$1; shift
    "$exe" "$@" >"$out.out" 2>&1
    echo $? >"$out.status"]], "inner", session,
    "run", "--no-color", "--state-dir", os.getenv("DRRUN_STATE_DIR") .. "/inner",
    REPO .. "/runbooks/platform-backup.lua", "--param", "dir=backups" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv.env = { PGHOST = E.host, PGPORT = E.port, PGUSER = E.user }
  argv.timeout = "3m"
  drrun.must(exec.run(argv))
  return (sh('cat "$1.status"', session):gsub("%s+", ""))
end

step "sessions" {
  after = "seed",
  timeout = "10m",
  run = function(ctx)
    inner("create", {})
    -- the name of the consistent backup, for the restores
    local name = sh([[sed -n 's/.*dumped platform to backups\/\(.*\)\.dump: .*/\1/p' create.out]]):gsub("%s+", "")
    assert(name ~= "", "no backup name in create.out")
    sh('printf %s "$1" > consistent.name', name)
    sh([[psql -XtAq -d platform -c "insert into users(email) values ('after@example.com')"]])
    drrun.sleep(1.1) -- the next backup's name (to the second) must differ
    inner("create-live", { "--param", "live=true" })
    inner("list", { "--param", "action=list" })
    inner("restore-staging", { "--yes", "--param", "action=restore", "--param", "name=" .. name,
      "--param", "target=staging" })
    inner("restore-source", { "--yes", "--param", "action=restore", "--param", "name=" .. name,
      "--param", "target=production" })
    inner("restore-no-terminal", { "--param", "action=restore", "--param", "name=" .. name,
      "--param", "target=dr" })
    inner("restore-missing", { "--yes", "--param", "action=restore", "--param", "name=platform-19990101T000000Z",
      "--param", "target=staging" })
    inner("bad-action", { "--param", "action=delete" })
    -- facts for the case file
    sh([[{
      echo "staging users: $(psql -XtAq -d platform_staging -c 'select count(*) from users')"
      echo "staging events: $(psql -XtAq -d platform_staging -c 'select count(*) from events')"
      echo "staging leftovers: $(psql -XtAq -d platform_staging -c "select count(*) from pg_tables where tablename = 'leftovers'")"
      echo "production read only: $(psql -XtAq -d platform -c 'show default_transaction_read_only')"
      echo "production users: $(psql -XtAq -d platform -c 'select count(*) from users')"
      echo "dr exists: $(psql -XtAq -d postgres -c "select count(*) from pg_database where datname = 'platform_dr'")"
      ls backups | sort | tr '\n' ' '; echo
    } > facts.txt]])
    ctx.log("%s", sh("cat facts.txt"))
  end,
}

step "stop_postgres" {
  after = "sessions",
  run = function() drrun.must(exec.run { REPO .. "/tests/pg.sh", "stop", PG, timeout = "60s" }) end,
}
