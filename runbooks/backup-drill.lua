-- backup-drill.lua: a backup system with GFS retention, verification,
-- encryption with rotating keys and an off-site copy, and the restore drill
-- that proves it, over drrun.backup and PostgreSQL.
--
--   drrun run backup-drill.lua [--env TIER]     the daily backup: dump, verify,
--                                               encrypt, off-site, retention
--   drrun drill backup-drill.lua --env TIER     the drill: fetch the latest off-site
--                                               backup, decrypt it, restore it into a
--                                               scratch database, check its row
--                                               counts against the manifest and an
--                                               application on it, and tear
--                                               everything down
--
-- A drill makes no new backup (the daily steps say drill = "skip"): it
-- restores what was off-site when it started, as a real recovery would, so
-- its RPO is the age of that backup.
--
-- Tiers (--env) set the objectives the drill is measured against: critical
-- (RTO 1h, RPO 15m), production (RTO 4h, RPO 1h, the default), non_critical
-- (RTO 24h, RPO 24h).  A failed backup, verification, encryption or off-site
-- copy, and in a drill a failed integrity or application check, pages
-- (PagerDuty, the declared secret PAGERDUTY_ROUTING_KEY) before the step
-- fails.
--
-- The database connection is libpq's (PGHOST, PGPORT, PGUSER, PGPASSWORD in
-- drrun's environment).  Master keys are DIR/<id>.key files (64 hex digits,
-- mode 0600) under --param key_dir; --param active_key encrypts, every key
-- there decrypts.  The off-site copy goes over SFTP (--param offsite_host
-- and the offsite_* params) or, with no host, to the directory offsite_dir.
-- The application checked in the drill is --param app_cmd, started with
-- PGDATABASE set to the scratch database and PORT to app_port; it must answer
-- GET /healthz with 200.
local backup = require "drrun.backup"
local exec = require "drrun.exec"
local http = require "drrun.http"
local json = require "drrun.json"
local pagerduty = require "drrun.pagerduty"
local ssh = require "drrun.ssh"

runbook {
  name = "backup-drill",
  description = "daily PostgreSQL backup (verified, encrypted, off-site, rotated) and its restore drill",
  rto = "4h", rpo = "1h",
  secrets = { "PAGERDUTY_ROUTING_KEY" },
  params = {
    db = { default = "orders", doc = "the database to back up" },
    dir = { default = "backups", doc = "the local backup directory" },
    live = { default = false, doc = "a live dump (writes are not paused; flagged in the manifest)" },
    min_size = { default = 1024, doc = "bytes a dump must have at least" },
    band = { default = 0.5, doc = "a dump's size must be within this fraction of the previous one's" },
    key_dir = { default = "keys", doc = "the master keys, <id>.key, mode 0600" },
    active_key = { required = true, doc = "the key id new backups are encrypted with" },
    offsite_dir = { required = true, doc = "the off-site directory (on offsite_host, or local)" },
    offsite_host = { default = "", doc = "SFTP host of the off-site copy (empty: offsite_dir is local)" },
    offsite_port = { default = 22 },
    offsite_user = { default = "" },
    offsite_key = { default = "", doc = "private key file for SFTP" },
    offsite_known_hosts = { default = "~/.ssh/known_hosts" },
    scratch_db = { default = "restore_drill", doc = "drill: the database restored into (dropped at teardown)" },
    app_cmd = { default = "", doc = "drill: the application to start on the scratch database (empty: no app check)" },
    app_port = { default = 18080, doc = "drill: its port on 127.0.0.1" },
    work_dir = { default = "drill-work", doc = "drill: fetched and decrypted files (removed at teardown)" },
  },
  env = {
    default = { tier = "production", rto = "4h", rpo = "1h" },
    critical = { tier = "critical", rto = "1h", rpo = "15m" },
    production = { tier = "production", rto = "4h", rpo = "1h" },
    non_critical = { tier = "non_critical", rto = "24h", rpo = "24h" },
  },
}

local function sq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function psql(db, sql)
  local r = drrun.must(exec.run { "psql", "-XtAq", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql, timeout = "1m" })
  if r.status ~= 0 then error("psql: " .. r.stderr, 0) end
  return r.stdout
end

local function keys(ctx) return { active = ctx.params.active_key, dir = ctx.params.key_dir } end


-- run fn(ctx); if it raises, page, then fail the step with the same error
local function paged(what, fn)
  return function(ctx)
    local ok, res = pcall(fn, ctx)
    if ok then return res end
    local msg = tostring(res)
    local sent, err = pagerduty.trigger { summary = ("backup %s failed for %s: %s"):format(what, ctx.params.db, msg),
      severity = "critical", source = "drrun backup-drill", ctx = ctx,
      custom_details = { step = ctx.step, db = ctx.params.db, tier = ctx.env.tier } }
    ctx.log(sent and "paged: %s" or "could not page: %s", sent and sent.dedup_key or tostring(err))
    error(msg, 0)
  end
end

-- the off-site side: put, get, list and remove files (SFTP or a local dir)
local function offsite(ctx)
  local p = ctx.params
  local o = { dir = p.offsite_dir }
  if p.offsite_host ~= "" then
    local conn = { host = p.offsite_host, port = p.offsite_port, user = p.offsite_user ~= "" and p.offsite_user or nil,
                   key = p.offsite_key ~= "" and p.offsite_key or nil, known_hosts = p.offsite_known_hosts,
                   agent = p.offsite_key == "", timeout = "30s" }
    o.sftp = conn
    local s = drrun.must(ssh.connect(conn))
    local function run(cmd)
      local r = drrun.must(s:exec(cmd, { timeout = "5m" }))
      if r.status ~= 0 then error(("off-site: %s: %s"):format(cmd, r.stderr), 0) end
      return r.stdout
    end
    run("mkdir -p " .. sq(o.dir))
    function o.put(src, name) return drrun.must(s:put(src, o.dir .. "/" .. name, { mode = 384 })) end
    function o.get(name, dst) return drrun.must(s:get(o.dir .. "/" .. name, dst)) end
    function o.list() return run("ls -1 " .. sq(o.dir)) end
    function o.remove(name) run("rm -f -- " .. sq(o.dir .. "/" .. name)); return true end
  else
    drrun.must(exec.run { "mkdir", "-p", o.dir })
    local function cp(a, b) drrun.sh(("umask 077; cp -- %s %s.part && sync %s.part && mv -f %s.part %s"):format(
      sq(a), sq(b), sq(b), sq(b), sq(b))) end
    function o.put(src, name) cp(src, o.dir .. "/" .. name) end
    function o.get(name, dst) cp(o.dir .. "/" .. name, dst) end
    function o.list() return drrun.sh("ls -1 " .. sq(o.dir)).stdout end
    function o.remove(name) drrun.sh("rm -f -- " .. sq(o.dir .. "/" .. name)); return true end
  end
  return o
end

-- the manifests in the local backup directory, oldest first
local function manifests(dir)
  local r = drrun.sh("ls -1 " .. sq(dir))
  local out = {}
  for f in r.stdout:gmatch("[^\n]+") do
    if f:match("%.json$") then
      local m = json.decode(drrun.must(require("drrun.fs").read(dir .. "/" .. f)))
      if m.kind == "pg_dump" then out[#out + 1] = m end
    end
  end
  table.sort(out, function(a, b) return a.started < b.started end)
  return out
end

-- ---- the daily backup ---------------------------------------------------------

step "backup" {
  phase = "backup", timeout = "2h", drill = "skip",
  run = paged("dump", function(ctx)
    local db, dir = ctx.params.db, ctx.params.dir
    drrun.must(exec.run { "mkdir", "-p", dir })
    local prev = manifests(dir)
    local m = drrun.must(backup.postgres {
      db = db, dir = dir, live = ctx.params.live or nil,
      maintenance = not ctx.params.live and {
        on = function()
          psql(db, "alter database " .. db .. " set default_transaction_read_only = on")
          psql(db, "select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = '" .. db ..
            "' and pid <> pg_backend_pid()")
        end,
        off = function() psql("postgres", "alter database " .. db .. " set default_transaction_read_only = off") end,
      } or nil,
    })
    return { name = m.name, file = m.path, manifest = m.manifest_path, size = m.size, live = m.live,
             recovery_point = m.recovery_point, previous_size = prev[#prev] and prev[#prev].size or nil }
  end),
}

step "verify_backup" {
  phase = "backup", after = "backup", drill = "skip",
  run = paged("verification", function(ctx)
    local b = ctx.outputs.backup
    local r = backup.verify { path = b.file, manifest = b.manifest, min_size = ctx.params.min_size,
                              previous_size = b.previous_size, band = ctx.params.band }
    if not r.ok then
      local why = {}
      for _, c in ipairs(r.checks) do if not c.ok then why[#why + 1] = c.name .. " (" .. c.evidence .. ")" end end
      error("verification failed: " .. table.concat(why, "; "), 0)
    end
    return { checks = #r.checks }
  end),
}

step "encrypt" {
  phase = "backup", after = "verify_backup", drill = "skip",
  run = paged("encryption", function(ctx)
    local b = ctx.outputs.backup
    local r = drrun.must(backup.encrypt { src = b.file, dst = b.file .. ".enc", keys = keys(ctx), aad = b.name })
    return { file = b.file .. ".enc", sha256 = r.encrypted_sha256, key_id = r.key_id }
  end),
}

step "offsite" {
  phase = "backup", after = "encrypt", timeout = "2h", drill = "skip",
  run = paged("off-site copy", function(ctx)
    local b, e = ctx.outputs.backup, ctx.outputs.encrypt
    local o = offsite(ctx)
    o.put(e.file, b.name .. ".dump.enc")
    o.put(b.manifest, b.name .. ".json")
    -- the copy is checked where it now lives
    local v = drrun.must(backup.verify { path = o.dir .. "/" .. b.name .. ".dump.enc", sftp = o.sftp,
                                         sha256 = e.sha256, min_size = ctx.params.min_size })
    if not v.ok then error("the off-site copy failed verification: " .. table.concat(v.failed, ", "), 0) end
    return { where = v.where, sha256 = e.sha256 }
  end),
}

step "retention" {
  phase = "backup", after = "offsite", drill = "skip",
  run = function(ctx)
    local dir = ctx.params.dir
    local list = {}
    for _, m in ipairs(manifests(dir)) do list[#list + 1] = { name = m.name, time = m.recovery_point } end
    local plan = backup.retention { backups = list } -- hourly 24, daily 7, weekly 4, monthly 12
    local o = offsite(ctx)
    local res = backup.apply(plan, { delete = function(b)
      for _, suffix in ipairs { ".dump", ".dump.enc", ".json" } do
        drrun.sh("rm -f -- " .. sq(dir .. "/" .. b.name .. suffix))
      end
      o.remove(b.name .. ".dump.enc")
      o.remove(b.name .. ".json")
      return true
    end })
    return { kept = res.kept, deleted = res.deleted }
  end,
}

-- ---- the drill ------------------------------------------------------------------

local function drilling(ctx) return ctx.drill end

step "fetch_latest" {
  phase = "restore", when = drilling,
  doc = "the newest off-site backup, decrypted: what a real recovery would start from",
  run = function(ctx)
    local o, w = offsite(ctx), ctx.params.work_dir
    drrun.sh("mkdir -p " .. sq(w))
    local newest
    for f in o.list():gmatch("[^\n]+") do
      local n = f:match("^(.+)%.dump%.enc$")
      if n and (not newest or n > newest) then newest = n end
    end
    if not newest then error("no backup off-site in " .. o.dir, 0) end
    o.get(newest .. ".dump.enc", w .. "/latest.dump.enc")
    o.get(newest .. ".json", w .. "/latest.json")
    local d = drrun.must(backup.decrypt { src = w .. "/latest.dump.enc", dst = w .. "/latest.dump", keys = keys(ctx),
                                          aad = newest })
    local m = json.decode(drrun.must(require("drrun.fs").read(w .. "/latest.json")))
    if d.sha256 ~= m.sha256 then error(("decrypted %s has sha256 %s, the manifest says %s"):format(newest, d.sha256, m.sha256), 0) end
    if ctx.recovery_point then ctx.recovery_point(m.recovery_point_epoch or m.recovery_point) end
    return { name = newest, file = w .. "/latest.dump", manifest = w .. "/latest.json", key_id = d.key_id,
             recovery_point = m.recovery_point }
  end,
}

step "restore" {
  phase = "restore", after = "fetch_latest", when = drilling, timeout = "2h",
  run = function(ctx)
    local f = ctx.outputs.fetch_latest
    local r = drrun.must(backup.postgres_restore { file = f.file, db = ctx.params.scratch_db, drop_first = true })
    -- tagged, so whoever finds it knows which drill made it
    local tags = {}
    for k, v in pairs(ctx.tags or {}) do tags[#tags + 1] = k .. "=" .. tostring(v) end
    table.sort(tags)
    if #tags > 0 then
      psql("postgres", ("comment on database %s is '%s'"):format(ctx.params.scratch_db,
        (table.concat(tags, " "):gsub("'", "''"))))
    end
    return { db = r.db, duration_s = r.duration_s, backup = f.name }
  end,
}

step "integrity" {
  phase = "verify", after = "restore", when = drilling,
  doc = "every table's row count equals the manifest's",
  run = paged("restore integrity check", function(ctx)
    local c = drrun.must(backup.postgres_check { db = ctx.params.scratch_db, manifest = ctx.outputs.fetch_latest.manifest })
    if not c.ok then error("row counts differ from the manifest: " .. table.concat(c.mismatched, ", "), 0) end
    local t = {}
    for _, e in ipairs(c.tables) do t[#t + 1] = e.name .. "=" .. e.got end
    return { tables = #c.tables, counts = table.concat(t, " ") }
  end),
}

step "app_check" {
  phase = "verify", after = "integrity", when = drilling, timeout = "2m",
  doc = "the application works on the restored data",
  run = paged("application check", function(ctx)
    if ctx.params.app_cmd == "" then ctx.log("no app_cmd: the application check is skipped"); return { skipped = true } end
    local w, port = ctx.params.work_dir, ctx.params.app_port
    -- started in the background; its PID goes to a file teardown reads
    drrun.sh(("PGDATABASE=%s PORT=%d setsid sh -c %s </dev/null >%s 2>&1 & echo $! > %s"):format(
      sq(ctx.params.scratch_db), port, sq("exec " .. ctx.params.app_cmd), sq(w .. "/app.log"), sq(w .. "/app.pid")))
    local url = ("http://127.0.0.1:%d/healthz"):format(port)
    local last
    for _ = 1, 100 do
      local r, err = http.get(url, { timeout = "2s" })
      if r and r.status == 200 then
        ctx.log("application: %s", (r.body:gsub("%s+$", "")))
        return { url = url, status = 200, body = (r.body:gsub("%s+$", "")) }
      end
      last = r and ("HTTP " .. r.status .. ": " .. r.body) or err
      drrun.sleep("200ms")
    end
    error("the application on the restored database is not healthy: " .. tostring(last), 0)
  end),
}

-- ---- teardown: whatever the drill made, whatever happened -----------------------

step "stop_app" {
  phase = "teardown", when = drilling,
  run = function(ctx)
    local pidfile = ctx.params.work_dir .. "/app.pid"
    local r = drrun.sh(("if [ -s %s ]; then p=$(cat %s); kill -TERM -- -$p 2>/dev/null || kill -TERM $p 2>/dev/null; " ..
      "for i in $(seq 50); do kill -0 $p 2>/dev/null || break; sleep 0.1; done; " ..
      "if kill -0 $p 2>/dev/null; then echo left $p; else rm -f %s; echo stopped $p; fi; else echo none; fi"):format(
      sq(pidfile), sq(pidfile), sq(pidfile)))
    local what, pid = r.stdout:match("^(%a+) ?(%d*)")
    if what == "stopped" then return { removed = { "app pid " .. pid } } end
    if what == "left" then return { removed = {}, left = { "app pid " .. pid } } end
    return { removed = {} }
  end,
}

step "drop_scratch" {
  phase = "teardown", after = "stop_app", when = drilling,
  run = function(ctx)
    drrun.must(exec.run { "dropdb", "--if-exists", ctx.params.scratch_db, timeout = "5m" })
    local left = psql("postgres", "select count(*) from pg_database where datname = '" .. ctx.params.scratch_db .. "'")
    if left:match("%d+") ~= "0" then error("the scratch database " .. ctx.params.scratch_db .. " is still there", 0) end
    return { removed = { "database " .. ctx.params.scratch_db } }
  end,
}

step "clean_work" {
  phase = "teardown", after = "drop_scratch", when = drilling,
  run = function(ctx)
    drrun.sh("rm -rf -- " .. sq(ctx.params.work_dir))
    return { removed = { "directory " .. ctx.params.work_dir } }
  end,
}
