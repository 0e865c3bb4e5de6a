-- platform-backup.lua: a platform's backup command (create, list, restore)
-- over drrun.backup and a PostgreSQL database.
--
--   drrun run platform-backup.lua                              create a consistent backup
--   drrun run platform-backup.lua --param live=true            create a live one (writes go on)
--   drrun run platform-backup.lua --param action=list          created, % complete, name
--   drrun run platform-backup.lua --param action=restore \
--         --param name=platform-20261201T050000Z --param target=staging
--
-- Environments are the ENVIRONMENTS table below: each names its database.
-- The connection (host, port, user, password) comes from libpq's own
-- variables, PGHOST, PGPORT, PGUSER, PGPASSWORD, in drrun's environment.
-- The source of backups is --param source (production by default); a restore
-- into the source itself is refused unless --param allow_source=true, and a
-- restore asks before it replaces the target database (--yes approves).
--
-- A consistent backup pauses writes: the source database is made read-only
-- for new sessions and its other sessions are ended (their open
-- transactions abort), then pg_dump -Fc runs, then writes are allowed again
-- (also when the dump fails). A live backup pauses nothing and its manifest
-- says so. Every backup is verified (sha256 against its manifest, a full read
-- by pg_restore, every table present) before the run ends; a restore
-- verifies the backup first and checks every table's row count afterwards.
--
-- Daily at 05:00 UTC (contrib/systemd/drrun-platform-backup.timer, or cron):
--   CRON_TZ=UTC
--   0 5 * * * drrun run --yes --no-color /etc/drrun/runbooks/platform-backup.lua --param dir=/srv/backups
local backup = require "drrun.backup"
local exec = require "drrun.exec"

local ENVIRONMENTS = {
  production = { db = "platform" },
  staging = { db = "platform_staging" },
  dr = { db = "platform_dr" },
}

runbook {
  name = "platform-backup",
  description = "create, list and restore the platform's PostgreSQL backups",
  rpo = "24h",
  params = {
    action = { default = "create", doc = "create | list | restore" },
    live = { default = false, doc = "create: a live backup (writes are not paused; flagged in the manifest)" },
    name = { default = "", doc = "restore: the backup (a name from list)" },
    source = { default = "production", doc = "the environment backups are taken from" },
    target = { default = "", doc = "restore: the environment to restore into" },
    allow_source = { default = false, doc = "restore: allow the target to be the source itself" },
    dir = { default = "backups", doc = "the backup directory" },
  },
}

local function env_db(name, what)
  local e = ENVIRONMENTS[name]
  if not e then
    local names = {}
    for k in pairs(ENVIRONMENTS) do names[#names + 1] = k end
    table.sort(names)
    error(("%s: unknown environment '%s' (known: %s)"):format(what, name, table.concat(names, ", ")), 0)
  end
  return e.db
end

local function psql(db, sql)
  local r = drrun.must(exec.run { "psql", "-XtAq", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql, timeout = "1m" })
  if r.status ~= 0 then error("psql: " .. r.stderr, 0) end
  return r.stdout
end

local function is(action) return function(ctx) return ctx.params.action == action end end

step "check" {
  phase = "detect",
  doc = "the action and environments make sense",
  run = function(ctx)
    local p = ctx.params
    if p.action ~= "create" and p.action ~= "list" and p.action ~= "restore" then
      error(("--param action=%s: use create, list or restore"):format(p.action), 0)
    end
    local out = { source = p.source, db = env_db(p.source, "--param source") }
    if p.action == "restore" then
      if p.name == "" then error("restore needs --param name=BACKUP (see --param action=list)", 0) end
      if p.target == "" then error("restore needs --param target=ENVIRONMENT", 0) end
      out.target_db = env_db(p.target, "--param target")
      if p.target == p.source and not p.allow_source then
        error(("refusing to restore into the source environment '%s' itself: choose another target, " ..
          "or --param allow_source=true"):format(p.source), 0)
      end
    end
    drrun.must(exec.run { "mkdir", "-p", p.dir })
    return out
  end,
}

step "create" {
  phase = "backup", after = "check", when = is("create"), timeout = "2h",
  run = function(ctx)
    local db = ctx.outputs.check.db
    local m = drrun.must(backup.postgres {
      db = db, dir = ctx.params.dir, live = ctx.params.live or nil,
      maintenance = not ctx.params.live and {
        on = function()
          psql(db, "alter database " .. db .. " set default_transaction_read_only = on")
          psql(db, "select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = '" .. db ..
            "' and pid <> pg_backend_pid()")
        end,
        off = function()
          psql("postgres", "alter database " .. db .. " set default_transaction_read_only = off")
        end,
      } or nil,
    })
    return { name = m.name, file = m.path, manifest = m.manifest_path, size = m.size, sha256 = m.sha256,
             live = m.live, recovery_point = m.recovery_point, tables = #m.tables }
  end,
}

step "verify" {
  phase = "verify", after = "create", when = is("create"),
  run = function(ctx)
    local c = ctx.outputs.create
    local r = backup.verify { path = c.file, manifest = c.manifest, min_size = 1 }
    if not r.ok then error("the new backup failed verification: " .. table.concat(r.failed, ", "), 0) end
    return { ok = true, checks = #r.checks }
  end,
}

-- the backups in dir: manifests (complete) and dumps still being written
local function backups(dir)
  local r = drrun.must(exec.run { "find", dir, "-maxdepth", "1", "-type", "f",
    "(", "-name", "*.json", "-o", "-name", "*.dump.drrun-part", ")", "-printf", "%f\t%s\n" })
  local done, parts = {}, {}
  for f, size in r.stdout:gmatch("([^\t\n]+)\t(%d+)") do
    if f:match("%.json$") then done[#done + 1] = f else parts[#parts + 1] = { f, tonumber(size) } end
  end
  local list, last_size = {}, nil
  for _, f in ipairs(done) do
    local m = require("drrun.json").decode(drrun.must(require("drrun.fs").read(dir .. "/" .. f)))
    if m.kind == "pg_dump" then
      list[#list + 1] = { name = m.name, created = m.started, complete = 100, live = m.live, size = m.size }
    end
  end
  table.sort(list, function(a, b) return a.created < b.created end)
  if #list > 0 then last_size = list[#list].size end
  for _, p in ipairs(parts) do
    -- a dump in progress: its size so far against the last complete one's
    local pct = last_size and last_size > 0 and math.min(99, math.floor(p[2] * 100 / last_size)) or 0
    list[#list + 1] = { name = p[1]:gsub("%.dump%.drrun%-part$", ""), created = "(running)", complete = pct }
  end
  return list
end

step "list" {
  phase = "other", after = "check", when = is("list"),
  run = function(ctx)
    local list = backups(ctx.params.dir)
    ctx.log("%-22s %10s  %s", "created", "% complete", "name")
    for _, b in ipairs(list) do
      ctx.log("%-22s %9d%%  %s%s", b.created, b.complete, b.name, b.live and "  (live)" or "")
    end
    if #list == 0 then ctx.log("no backups in %s", ctx.params.dir) end
    return { backups = list, count = #list }
  end,
}

step "verify_backup" {
  phase = "verify", after = "check", when = is("restore"),
  doc = "the named backup is whole before anything is replaced",
  run = function(ctx)
    local base = ctx.params.dir .. "/" .. ctx.params.name
    local r = backup.verify { path = base .. ".dump", manifest = base .. ".json" }
    if not r.ok then
      error(("backup %s failed verification (%s): nothing was restored"):format(ctx.params.name,
        table.concat(r.failed, ", ")), 0)
    end
    return { file = base .. ".dump", manifest = base .. ".json" }
  end,
}

step "restore" {
  phase = "restore", after = "verify_backup", when = is("restore"), timeout = "2h",
  approve = "Replace the target environment's database with the backup?",
  run = function(ctx)
    local v, db = ctx.outputs.verify_backup, ctx.outputs.check.target_db
    local r = drrun.must(backup.postgres_restore { file = v.file, db = db, drop_first = true, manifest = v.manifest })
    if not r.ok then
      error(("restored into %s, but the row counts differ from the manifest: %s"):format(db,
        table.concat(r.mismatched, ", ")), 0)
    end
    if ctx.recovery_point then ctx.recovery_point(r.recovery_point) end
    return { db = db, target = ctx.params.target, tables = #r.tables, recovery_point = r.recovery_point,
             duration_s = r.duration_s }
  end,
}
