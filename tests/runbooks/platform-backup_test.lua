-- Cases of runbooks/platform-backup.lua: create, list and restore.  The
-- backup module, psql, find and the file layer are fakes; the fake
-- backup.postgres calls the runbook's own maintenance on/off, so the SQL that
-- pauses writes is checked too.
local t = require "drrun.test"
local core = require "drrun.core"
local json = require "drrun.json"

t.runbook "../../runbooks/platform-backup.lua"

-- times relative to now: a run measures its RPO against the real clock, so a
-- fixed date would make the case fail once that date is a day old
local function ago(secs) return os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - secs) end

local function log(fmt, ...) core.log(("fake: " .. fmt):format(...)) end

local MANIFEST = json.encode { kind = "pg_dump", name = "platform-20261201T050000Z",
                               started = ago(6 * 3600), size = 2000, live = false }

-- o.verify_ok (default true), o.dump_fails, o.row_mismatch
local function world(o)
  o = o or {}
  local backup = {
    postgres = function(q)
      if q.maintenance then q.maintenance.on() end
      drrun.sleep("12m") -- the dump
      if q.maintenance then q.maintenance.off() end
      if o.dump_fails then return nil, "pg_dump: exit 1: connection lost", "failed" end
      return { name = "platform-20261202T050000Z", path = q.dir .. "/platform-20261202T050000Z.dump",
               manifest_path = q.dir .. "/platform-20261202T050000Z.json", size = 2048,
               sha256 = "ab12", live = q.live or false, recovery_point = ago(60),
               tables = { {}, {}, {} } }
    end,
    verify = function(q)
      if o.verify_ok == false then
        return { ok = false, failed = { "sha256" }, checks = { { name = "sha256", ok = false } } }
      end
      return { ok = true, failed = {}, checks = { {}, {}, {} } }
    end,
    postgres_restore = function(q)
      drrun.sleep("20m")
      if o.row_mismatch then
        return { ok = false, mismatched = { "orders (3 != 5)" }, tables = {} }
      end
      log("restored %s into %s", q.file, q.db)
      return { ok = true, db = q.db, tables = { {}, {} }, recovery_point = ago(6 * 3600),
               duration_s = 1200 }
    end,
  }
  local exec = t.exec {
    mkdir = {},
    psql = function(argv) log("psql -d %s: %s", argv[6], argv[8]) return {} end,
    find = { stdout = "platform-20261201T050000Z.json\t300\nplatform-20261202T050000Z.dump.drrun-part\t1000\n" },
  }
  local fs = { read = function(path) return MANIFEST end }
  return { ["drrun.backup"] = backup, ["drrun.exec"] = exec, ["drrun.fs"] = fs }
end

t.case "create: writes are paused for the dump, then verified" {
  fake = world(),
  expect = {
    result = "completed", exit = 0, completed = { "check", "create", "verify" },
    skipped = { "list", "verify_backup", "restore" },
    outputs = { create = { name = "platform-20261202T050000Z", tables = 3, live = false },
                verify = { ok = true, checks = 3 } },
    logs = { create = { "fake: psql %-d platform: alter database platform set default_transaction_read_only = on",
                        "pg_terminate_backend",
                        "fake: psql %-d postgres: alter database platform set default_transaction_read_only = off" } },
    elapsed = { min = "12m", max = "13m" },
  },
}

t.case "create live: nothing is paused" {
  params = { live = true }, fake = world(),
  expect = { result = "completed", exit = 0, outputs = { create = { live = true } } },
  check = function(j)
    for _, l in ipairs(j:logs("create")) do assert(not l:find("psql"), "a live backup ran " .. l) end
  end,
}

t.case "a failed dump still lets writes in again, and fails the run" {
  fake = world { dump_fails = true },
  expect = { result = "rolled-back", exit = 1, failed = "create",
             errors = { create = "connection lost" },
             logs = { create = "default_transaction_read_only = off" } },
}

t.case "list: complete backups and the one being written, with its progress" {
  params = { action = "list" }, fake = world(),
  expect = {
    result = "completed", exit = 0, completed = { "check", "list" },
    outputs = { list = { count = 2, backups = {
      { name = "platform-20261201T050000Z", complete = 100 },
      { name = "platform-20261202T050000Z", complete = 50, created = "(running)" } } } },
  },
}

t.case "restore into the source itself is refused" {
  params = { action = "restore", name = "platform-20261201T050000Z", target = "production" },
  fake = world(),
  expect = { result = "rolled-back", exit = 1, failed = "check",
             errors = { check = "refusing to restore into the source environment 'production'" } },
}

t.case "restore into staging, approved: row counts checked" {
  params = { action = "restore", name = "platform-20261201T050000Z", target = "staging" },
  fake = world(), answers = { restore = "yes" },
  expect = {
    result = "completed", exit = 0, completed = { "check", "verify_backup", "restore" },
    outputs = { restore = { db = "platform_staging", target = "staging", tables = 2 } },
    approvals = { restore = "approved" },
  },
}

t.case "restore declined: nothing replaced" {
  params = { action = "restore", name = "platform-20261201T050000Z", target = "dr" },
  fake = world(), answers = { restore = "no" },
  expect = { result = "aborted", exit = 3, completed = { "check", "verify_backup" },
             approvals = { restore = "declined" } },
}

t.case "a backup that fails verification is never restored" {
  params = { action = "restore", name = "platform-20261201T050000Z", target = "staging" },
  fake = world { verify_ok = false }, answers = { restore = "yes" },
  expect = { result = "rolled-back", exit = 1, failed = "verify_backup",
             errors = { verify_backup = "nothing was restored" }, not_run = { "restore" } },
}

t.case "restored rows that differ from the manifest fail the restore" {
  params = { action = "restore", name = "platform-20261201T050000Z", target = "staging" },
  fake = world { row_mismatch = true }, answers = { restore = "yes" },
  expect = { result = "rolled-back", exit = 1, failed = "restore",
             errors = { restore = "row counts differ from the manifest: orders" } },
}

t.case "an unknown action stops at the check" {
  params = { action = "delete" }, fake = world(),
  expect = { result = "rolled-back", exit = 1, failed = "check",
             errors = { check = "use create, list or restore" } },
}
