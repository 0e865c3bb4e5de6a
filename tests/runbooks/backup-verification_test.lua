-- Cases of runbooks/backup-verification.lua: the newest backup in S3 is
-- restored, the production tag deployed and smoke-tested, and the scale-down
-- always runs.  S3, the backup module, HTTP and the programs are fakes (the
-- end-to-end run against real servers is integration cases 350-353).
local t = require "drrun.test"
local json = require "drrun.json"

t.runbook "../../runbooks/backup-verification.lua"

-- times relative to now: a run measures its RPO against the real clock, so a
-- fixed date would make the case fail once that date is a day old
local function ago(secs) return os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - secs) end

local MANIFEST = { format = "drrun-backup/1", size = 16339, sha256 = ("ab"):rep(32),
                   recovery_point = ago(3 * 3600),
                   tables = { { name = "public.orders", rows = 2000 } } }

-- o.sha_bad, o.rows_bad, o.tag_in_app
local function world(o)
  o = o or {}
  local s3 = {
    list = function(q)
      return { { Key = "orders/orders-20261130T050000Z.dump", Size = 15000, LastModified = "2026-11-30T05:00:01.000Z" },
               { Key = "orders/orders-20261130T050000Z.json", Size = 300, LastModified = "2026-11-30T05:00:01.000Z" },
               { Key = "orders/orders-20261201T050000Z.dump", Size = 16339, LastModified = "2026-12-01T05:00:01.000Z" },
               { Key = "orders/orders-20261201T050000Z.json", Size = 300, LastModified = "2026-12-01T05:00:02.000Z" } }
    end,
    get = function(q)
      if not q.file then
        assert(q.key == "orders/orders-20261201T050000Z.json", "manifest key " .. q.key)
        return { body = json.encode(MANIFEST) }
      end
      assert(q.key == "orders/orders-20261201T050000Z.dump", "backup key " .. q.key)
      if o.sha_bad then
        return nil, "aws: s3: b/k: the SHA-256 of what was read (cd) is not sha256 = (ab)", "invalid", "ChecksumMismatch"
      end
      drrun.sleep("3m") -- the download
      return { size = 16339, sha256 = q.sha256 }
    end,
  }
  local backup = {
    postgres_restore = function(q)
      drrun.sleep("10m")
      if o.rows_bad then
        return { ok = false, db = q.db, mismatched = { "public.orders (1999 != 2000)" }, tables = {} }
      end
      return { ok = true, db = q.db, tables = { { name = "public.orders", got = 2000, want = 2000 } } }
    end,
  }
  local http = {
    get = function(url)
      if url:find("/version", 1, true) then return { status = 200, body = '{"tag": "v2.4.1"}' } end
      return { status = 200, body = ("ok tag=%s orders=2000\n"):format(o.tag_in_app or "v2.4.1") }
    end,
  }
  local exec = t.exec {
    mkdir = {}, dropdb = {}, rm = {},
    pg_restore = { stdout = ";\n1; 2615 orders\n2; 1259 customers\n" },
    sh = function(argv) return { stdout = argv[3]:find("kill", 1, true) and "stopped 4242\n" or "" } end,
    ["/bin/sh"] = function(argv) return { stdout = argv[3]:find("kill", 1, true) and "stopped 4242\n" or "" } end,
  }
  return { ["drrun.aws.s3"] = s3, ["drrun.backup"] = backup, ["drrun.http"] = http, ["drrun.exec"] = exec }
end

local P = { bucket = "dr-backups", prefix = "orders/", app_cmd = "/srv/app/run",
            tag_url = "http://prod.example/version" }

t.case "the newest backup restores, the production tag runs on it, then all is scaled down" {
  params = P, fake = world(),
  expect = {
    result = "completed", exit = 0,
    completed = { "find_latest", "production_tag", "fetch", "restore", "deploy", "smoke_test",
                  "stop_app", "drop_db", "clean_work" },
    outputs = { find_latest = { key = "orders/orders-20261201T050000Z.dump" },
                production_tag = { tag = "v2.4.1" },
                smoke_test = { tag = "v2.4.1", rows = "public.orders=2000" } },
    logs = { fetch = "readable ok %(pg_restore %-%-list: 2 entries%)" },
  },
}

t.case "restored rows that differ from the manifest fail the smoke test; the scale-down still runs" {
  params = P, fake = world { rows_bad = true },
  expect = { result = "rolled-back", exit = 1, failed = "smoke_test",
             errors = { smoke_test = "row counts differ from the manifest: public.orders" },
             completed = { "find_latest", "production_tag", "fetch", "restore", "deploy",
                           "stop_app", "drop_db", "clean_work" } },
}

t.case "a backup whose SHA-256 is not the manifest's is never restored" {
  params = P, fake = world { sha_bad = true },
  expect = { result = "rolled-back", exit = 1, failed = "fetch", errors = { fetch = "is not sha256 =" },
             not_run = { "restore", "deploy", "smoke_test" }, completed = { "find_latest", "production_tag", "stop_app", "drop_db", "clean_work" } },
}

t.case "an application that runs another tag fails the smoke test" {
  params = P, fake = world { tag_in_app = "v2.3.0" },
  expect = { result = "rolled-back", exit = 1, failed = "smoke_test",
             errors = { smoke_test = "runs tag v2.3.0, not v2.4.1" } },
}
