-- backup_drill_driver.lua: the driver of the backup-drill cases (281: the
-- daily backup; 282: the drill).  The harness runs drrun with a minimal
-- environment and no servers, so this runbook
--   1. starts tests/servers.sh (the PagerDuty fake, OpenSSH for the off-site
--      copy) and tests/pg.sh (PostgreSQL) under the run dir,
--   2. makes the orders database and two master keys (openssl, 0600),
--   3. runs runbooks/backup-drill.lua in drruns of its own, one per session
--      of --param sessions (a comma list of: daily, rotated, failing, drill;
--      tamper is no run: it edits the off-site manifest's row count),
--      each with its output in SESSION.out and its exit status in
--      SESSION.status (state dir $DRRUN_STATE_DIR/inner),
--   4. saves what the PagerDuty fake received (pagerduty.json) and facts
--      about the databases and the off-site directory (facts.txt),
--   5. stops the servers (also the rollback of step 1).
-- The case files check those.  DRRUN_REPO (a case `env` directive) is the
-- repository's root.
local exec = require "drrun.exec"
local http = require "drrun.http"

runbook {
  name = "backup-drill-e2e",
  params = { sessions = { default = "daily", doc = "comma list: daily, rotated, failing, tamper, drill" } },
}

local REPO = os.getenv("DRRUN_REPO")
local HOME = os.getenv("HOME") or "."
local SERVERS, PG = HOME .. "/servers", HOME .. "/pg"
local E = {}

local function sh(script, ...)
  local argv = { "bash", "-c", script, "sh", ... }
  argv.timeout = "2m"
  argv.env = { PGHOST = E.PGHOST, PGPORT = E.PGPORT, PGUSER = E.PGUSER }
  local r = drrun.must(exec.run(argv))
  if r.status ~= 0 then error(("%s failed (%s): %s"):format(script, tostring(r.status), r.stderr), 0) end
  return r.stdout
end

local function control(method, what)
  local r = drrun.must(http.request { method = method, url = E.control .. "/" .. what })
  if r.status ~= 200 then error(("%s %s: HTTP %d"):format(method, what, r.status), 0) end
  return r.body
end

step "start_servers" {
  timeout = "3m",
  run = function()
    assert(REPO, "DRRUN_REPO is not set (a case env directive)")
    drrun.must(exec.run { REPO .. "/tests/servers.sh", "start", SERVERS, timeout = "150s" })
    drrun.must(exec.run { REPO .. "/tests/pg.sh", "start", PG, timeout = "90s" })
    local env = sh('. "$1/env" && . "$2/env" && env', SERVERS, PG)
    for k, v in env:gmatch("([%w_]+)=([^\n]*)") do E[k] = v end
    E.control = E.DRRUN_TEST_FAKES_CONTROL:match("pagerduty=(%S+)")
    assert(E.PGPORT and E.control and E.DRRUN_TEST_SSH_PORTS, "servers' env incomplete")
  end,
  rollback = function()
    exec.run { REPO .. "/tests/pg.sh", "stop", PG, timeout = "60s" }
    exec.run { REPO .. "/tests/servers.sh", "stop", SERVERS, timeout = "60s" }
  end,
}

step "seed" {
  after = "start_servers",
  run = function()
    sh([[createdb orders && psql -Xq -v ON_ERROR_STOP=1 -d orders -c "
      create table customers(id serial primary key, name text);
      insert into customers(name) select 'c' || g from generate_series(1, 300) g;
      create table orders(id serial primary key, customer int references customers, total numeric);
      insert into orders(customer, total) select 1 + g % 300, g * 0.5 from generate_series(1, 2000) g;" &&
      mkdir -p keys && (umask 077; openssl rand -hex 32 > keys/k1.key; openssl rand -hex 32 > keys/k2.key)]])
    control("POST", "reset")
  end,
}

local function inner(session, verb, args)
  local port = E.DRRUN_TEST_SSH_PORTS:match("%d+")
  local argv = { "bash", "-c", [[
    exe=$(readlink "/proc/$PPID/exe")   # the drrun running this case
    out=$1; shift
    "$exe" "$@" >"$out.out" 2>&1
    echo $? >"$out.status"]], "inner", session,
    verb, "--no-color", "--state-dir", os.getenv("DRRUN_STATE_DIR") .. "/inner",
    REPO .. "/runbooks/backup-drill.lua",
    "--param", "offsite_dir=" .. E.DRRUN_TEST_SSH_DIR .. "/offsite",
    "--param", "offsite_host=127.0.0.1", "--param", "offsite_port=" .. port,
    "--param", "offsite_user=" .. E.DRRUN_TEST_SSH_USER, "--param", "offsite_key=" .. E.DRRUN_TEST_SSH_KEY,
    "--param", "offsite_known_hosts=" .. E.DRRUN_TEST_SSH_KNOWN_HOSTS }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv.env = { PGHOST = E.PGHOST, PGPORT = E.PGPORT, PGUSER = E.PGUSER,
               PAGERDUTY_ROUTING_KEY = E.DRRUN_TEST_PAGERDUTY_KEY, DRRUN_PAGERDUTY_URL = E.DRRUN_PAGERDUTY_URL }
  argv.timeout = "4m"
  drrun.must(exec.run(argv))
  return (sh('cat "$1.status"', session):gsub("%s+", ""))
end

step "sessions" {
  after = "seed",
  timeout = "15m",
  run = function(ctx)
    local done = {}
    for s in ctx.params.sessions:gmatch("[^,]+") do
      if s == "daily" then
        inner("daily", "run", { "--param", "active_key=k1" })
      elseif s == "rotated" then
        drrun.sleep(1.1) -- backup names are to the second
        inner("rotated", "run", { "--param", "active_key=k2" })
      elseif s == "failing" then
        inner("failing", "run", { "--param", "active_key=k2", "--param", "min_size=100000000" })
      elseif s == "tamper" then
        -- the off-site manifest now claims one order more than the dump holds
        sh([[for f in "$1"/*.json; do sed -i 's/"rows": 2000/"rows": 2001/' "$f"; done]], E.DRRUN_TEST_SSH_DIR .. "/offsite")
      elseif s == "drill" then
        drrun.sleep(1.1)
        inner("drill", "drill", { "--env", "critical", "--param", "active_key=k2",
          "--param", "app_cmd=python3 " .. REPO .. "/tests/integration/lib/orders_app.py",
          "--param", "app_port=" .. tostring(tonumber(sh([[python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])']]))) })
        -- the drill's evidence: drrun report, from the journal alone
        local id = sh([[sed -n 's/^[0-9T:.Z-]* run \([^ ]*\)$/\1/p' drill.out | head -n 1]]):gsub("%s+", "")
        local me = drrun.must(exec.run { "bash", "-c", 'readlink "/proc/$PPID/exe"' }).stdout:gsub("%s+$", "")
        local r = drrun.must(exec.run { me, "report", "--state-dir", os.getenv("DRRUN_STATE_DIR") .. "/inner",
          "--format", "json", "-o", "report.json", id, timeout = "60s" })
        sh('printf "%s\n" "$1" > report.status', tostring(r.status))
      else
        error("unknown session " .. s, 0)
      end
      done[#done + 1] = s
    end
    local body = control("GET", "requests")
    drrun.must(exec.run { "sh", "-c", 'cat > pagerduty.json', stdin = body })
    sh([[{
      echo "offsite: $(ls "$1" 2>/dev/null | sort | tr '\n' ' ')"
      for f in "$1"/*.dump.enc; do [ -e "$f" ] && echo "key of $(basename "$f"): $(head -c 12 "$f" | tail -c 2)"; done
      echo "local: $(ls backups 2>/dev/null | sort | tr '\n' ' ')"
      echo "scratch exists: $(psql -XtAq -d postgres -c "select count(*) from pg_database where datname = 'restore_drill'")"
      echo "orders read only: $(psql -XtAq -d orders -c 'show default_transaction_read_only')"
      echo "work dir: $(ls -d drill-work 2>/dev/null || echo gone)"
    } > facts.txt]], E.DRRUN_TEST_SSH_DIR .. "/offsite")
    ctx.log("%s", sh("cat facts.txt"))
    return { sessions = done }
  end,
}

step "stop_servers" {
  after = "sessions",
  run = function()
    drrun.must(exec.run { REPO .. "/tests/pg.sh", "stop", PG, timeout = "60s" })
    drrun.must(exec.run { REPO .. "/tests/servers.sh", "stop", SERVERS, timeout = "60s" })
  end,
}
