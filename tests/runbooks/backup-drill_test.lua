-- Cases of runbooks/backup-drill.lua: the daily backup (dump, verify,
-- encrypt, off-site to a local directory, retention) and the restore drill
-- with its teardown.  drrun.backup, PagerDuty, psql, the shell and the file
-- layer are fakes over a small model: the backups off-site, the manifests.
local t = require "drrun.test"
local core = require "drrun.core"
local json = require "drrun.json"

t.runbook "../../runbooks/backup-drill.lua"

local PARAMS = { active_key = "k2", offsite_dir = "/srv/offsite" }
local SECRETS = { PAGERDUTY_ROUTING_KEY = "R0123456789abcdef0123456789abcdef" }

local function log(fmt, ...) core.log(("fake: " .. fmt):format(...)) end

-- o.verify_fails, o.offsite_files (ls of the off-site dir), o.sha_mismatch,
-- o.backup_age: seconds between the newest off-site backup and the drill
local function world(o)
  o = o or {}
  local pages = 0
  local backup = {
    postgres = function(q)
      drrun.sleep("9m")
      return { name = "orders-20261202T010000Z", path = q.dir .. "/orders-20261202T010000Z.dump",
               manifest_path = q.dir .. "/orders-20261202T010000Z.json", size = 50000,
               live = q.live or false, recovery_point = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - 3600) }
    end,
    verify = function(q)
      if o.verify_fails then
        return { ok = false, failed = { "size" },
                 checks = { { name = "size", ok = false, evidence = "10 bytes, want >= 1024" } } }
      end
      return { ok = true, failed = {}, checks = { {}, {}, {}, {} }, where = q.path }
    end,
    encrypt = function(q) drrun.sleep("1m") return { encrypted_sha256 = "e5e5", key_id = q.keys.active } end,
    decrypt = function(q)
      return { sha256 = o.sha_mismatch and "0000" or "d1d1", key_id = "k1" }
    end,
    retention = function(q) return { keep = q.backups, delete = {} } end,
    apply = function(plan, q) return { kept = #plan.keep, deleted = 0 } end,
    postgres_restore = function(q) drrun.sleep("25m") log("restored into %s", q.db)
      return { db = q.db, duration_s = 1500 } end,
    postgres_check = function(q)
      return { ok = true, tables = { { name = "orders", got = 5 }, { name = "items", got = 12 } } }
    end,
  }
  local function sh(argv)
    local cmd = argv[3]
    if cmd:match("^ls %-1 '/srv/offsite'") then
      return { stdout = o.offsite_files or "orders-20261201T010000Z.dump.enc\norders-20261201T010000Z.json\n" }
    end
    if cmd:match("^ls %-1") then return { stdout = "" } end -- no earlier manifests locally
    if cmd:match("^if %[ %-s") then return { stdout = "none\n" } end -- stop_app: no app
    return {}
  end
  local exec = t.exec {
    ["/bin/sh"] = sh, mkdir = {}, dropdb = function(argv) log("dropdb %s", argv[#argv]) return {} end,
    psql = function(argv)
      if argv[8]:match("^select count%(%*%) from pg_database") then return { stdout = "0\n" } end
      return {}
    end,
  }
  local fs = { read = function(path)
    return json.encode { kind = "pg_dump", name = "orders-20261201T010000Z", sha256 = "d1d1",
                         recovery_point = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - (o.backup_age or 1800)) }
  end }
  local pagerduty = { trigger = function(q)
    pages = pages + 1
    log("page: %s", q.summary)
    return { dedup_key = "dk" .. pages }
  end }
  return { ["drrun.backup"] = backup, ["drrun.exec"] = exec, ["drrun.fs"] = fs,
           ["drrun.pagerduty"] = pagerduty }
end

local DAILY = { "backup", "verify_backup", "encrypt", "offsite", "retention" }
local DRILL = { "fetch_latest", "restore", "integrity", "app_check" }
local TEARDOWN = { "stop_app", "drop_scratch", "clean_work" }

t.case "the daily backup: dumped, verified, encrypted, off-site, rotated" {
  params = PARAMS, secrets = SECRETS, fake = world(),
  expect = {
    result = "completed", exit = 0, completed = DAILY,
    outputs = { backup = { name = "orders-20261202T010000Z", size = 50000 },
                encrypt = { key_id = "k2" }, offsite = { sha256 = "e5e5" } },
    elapsed = { min = "10m", max = "11m" },
  },
  check = function(j)
    for _, s in ipairs(j:skipped()) do
      assert(s ~= "backup", "the daily backup was skipped")
    end
    assert(#j:skipped() == #DRILL + #TEARDOWN, "the drill's steps are skipped by a daily run")
  end,
}

t.case "a dump that fails verification pages, then fails the run" {
  params = PARAMS, secrets = SECRETS, fake = world { verify_fails = true },
  expect = {
    result = "rolled-back", exit = 1, failed = "verify_backup",
    errors = { verify_backup = "verification failed: size %(10 bytes, want >= 1024%)" },
    logs = { verify_backup = { "fake: page: backup verification failed for orders", "paged: dk1" } },
    not_run = { "encrypt", "offsite", "retention" },
  },
}

t.case "the drill restores the newest off-site backup and tears everything down" {
  params = PARAMS, secrets = SECRETS, fake = world(), drill = true,
  expect = {
    result = "completed", exit = 0,
    outputs = { fetch_latest = { name = "orders-20261201T010000Z", key_id = "k1" },
                restore = { db = "restore_drill", backup = "orders-20261201T010000Z" },
                integrity = { tables = 2, counts = "orders=5 items=12" },
                app_check = { skipped = true },
                drop_scratch = { removed = { "database restore_drill" } } },
    logs = { drop_scratch = "fake: dropdb restore_drill" },
    elapsed = { min = "25m", max = "26m" },
  },
  check = function(j)
    local done = {}
    for _, s in ipairs(j:completed()) do done[s] = true end
    for _, s in ipairs(DRILL) do assert(done[s], s .. " did not complete") end
    for _, s in ipairs(TEARDOWN) do assert(done[s], "teardown " .. s .. " did not complete") end
    for _, s in ipairs(DAILY) do assert(not done[s], "a drill made a backup: " .. s) end
  end,
}

t.case "a drill from a backup older than the tier's RPO completes, but exits 4" {
  params = PARAMS, secrets = SECRETS, fake = world { backup_age = 26 * 3600 }, drill = true,
  expect = { result = "completed", exit = 4 },
}

t.case "the critical tier's 15m RPO is missed by a 30-minute-old backup" {
  params = PARAMS, secrets = SECRETS, fake = world(), drill = true, env = "critical",
  expect = { result = "completed", exit = 4 },
}

t.case "a drill with nothing off-site fails, and the teardown still runs" {
  params = PARAMS, secrets = SECRETS, fake = world { offsite_files = "" }, drill = true,
  expect = {
    exit = 1, failed = "fetch_latest", errors = { fetch_latest = "no backup off%-site in /srv/offsite" },
  },
  check = function(j)
    local done = {}
    for _, s in ipairs(j:completed()) do done[s] = true end
    for _, s in ipairs(TEARDOWN) do assert(done[s], "teardown " .. s .. " did not run") end
  end,
}

t.case "a decrypted backup that is not the manifest's is refused" {
  params = PARAMS, secrets = SECRETS, fake = world { sha_mismatch = true }, drill = true,
  expect = { exit = 1, failed = "fetch_latest",
             errors = { fetch_latest = "has sha256 0000, the manifest says d1d1" },
             not_run = { "restore", "integrity", "app_check" } },
}
