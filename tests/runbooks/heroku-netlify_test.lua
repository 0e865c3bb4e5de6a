-- Cases of runbooks/heroku-netlify.lua: the recovery of a Heroku app and its
-- Netlify site.  Heroku, Netlify, Statuspage, Slack and the health checks
-- are fakes that keep a little model of the world: the maintenance flag, the
-- releases, the database backups, the live deploy.  The fakes take the time
-- the real services take (a 25-minute restore polled every 3s, a 4-minute
-- capture), so the happy path is over 30 minutes of virtual time.
local t = require "drrun.test"
local core = require "drrun.core"

t.runbook "../../runbooks/heroku-netlify.lua"

local PARAMS = {
  app = "shop", site = "www.shop.example", page = "pg1", components = "c1,c2",
  app_url = "https://shop.example/healthz", site_url = "https://www.shop.example/",
}
local SECRETS = {
  HEROKU_API_KEY = "hk-0123456789abcdef", NETLIFY_AUTH_TOKEN = "nf-0123456789abcdef",
  STATUSPAGE_API_KEY = "sp-0123456789abcdef",
  SLACK_WEBHOOK_URL = "https://hooks.slack.example/T0/B0/0123456789abcdef",
}

local PLATFORM_UP = [[{"status":[{"system":"Apps","status":"green"},{"system":"Data","status":"green"},{"system":"Tools","status":"green"}]}]]
local PLATFORM_DOWN = [[{"status":[{"system":"Apps","status":"red"},{"system":"Data","status":"green"}]}]]

-- The fakes of one case.  `o` changes the world: platform (JSON), restore
-- (a function standing in for pg_restore), app_down_for (how many health
-- checks of the app fail first), and any module field to replace.
local function world(o)
  o = o or {}
  local w = { maintenance = false, release = 42, live_deploy = "d3", incident = nil,
              app_checks = 0 }
  local function log(fmt, ...) core.log(("fake: " .. fmt):format(...)) end
  local heroku = {
    maintenance = function(a) w.maintenance = a.on log("maintenance %s", tostring(a.on)) return true end,
    pg_backup = function(a) return { name = a.backup == "latest" and "b005" or a.backup } end,
    pg_capture = function(a)
      drrun.sleep("4m")
      log("captured b006 of %s", a.database)
      return { name = "b006", succeeded = true }
    end,
    pg_restore = o.restore or function(a)
      for _ = 1, 500 do drrun.sleep(a.interval) end -- 25 minutes of polling
      log("restored %s from %s", a.database, a.backup)
      return { name = "r001", succeeded = true }
    end,
    rollback_to_last_good = function(a)
      local from = w.release
      w.release = from + 1
      return { version = w.release }, { from = { version = from, id = "rel-" .. from },
                                        to = { version = 40 } }
    end,
    rollback = function(a) log("rollback to %s", a.release) return { version = w.release + 1 } end,
    restart = function() drrun.sleep("30s") return true end,
  }
  local netlify = {
    rollback = function(a)
      drrun.sleep("20s")
      local prev = w.live_deploy
      w.live_deploy = "d2"
      return { id = "d2", title = "good" }, prev
    end,
    unlock = function() return true end,
    restore = function(a) w.live_deploy = a.deploy return { id = a.deploy } end,
  }
  local statuspage = {
    incident = function(a)
      w.incident = "inc1"
      log("incident: %s", a.name)
      return { id = "inc1", shortlink = "https://stspg.io/inc1" }
    end,
    update = function(a) log("incident %s: %s", a.incident, a.status) return { id = a.incident } end,
    resolve = function(a) log("incident %s resolved", a.incident) return { id = a.incident } end,
  }
  local slack = { post = o.slack_post or function(a) log("slack: %s", a.text) return true end }
  local http = {
    get = function(url) return { status = 200, body = o.platform or PLATFORM_UP } end,
  }
  local health = {
    http = function(a)
      if a.url == PARAMS.app_url then
        w.app_checks = w.app_checks + 1
        if w.app_checks <= (o.app_down_for or 0) then
          return false, a.url .. ": HTTP 503, want 200"
        end
      end
      return true, a.url .. ": HTTP 200 in 12ms"
    end,
  }
  local fake = { ["drrun.heroku"] = heroku, ["drrun.netlify"] = netlify,
                 ["drrun.statuspage"] = statuspage, ["drrun.slack"] = slack,
                 ["drrun.http"] = http, ["drrun.health"] = health }
  for mod, fields in pairs(o.fake or {}) do
    for k, v in pairs(fields) do fake[mod][k] = v end
  end
  return fake
end

local ALL = { "check_platform", "open_incident", "maintenance_on", "restore_site", "verify_site",
              "restore_database", "rollback_app", "maintenance_off", "verify_app",
              "resolve_incident", "notify_team" }

t.case "a clean recovery: release, database and site back, over 30 minutes of waits" {
  params = PARAMS, secrets = SECRETS, fake = world(),
  answers = { restore_database = "yes" },
  expect = {
    result = "completed", exit = 0, completed = ALL, rolled_back = {},
    approvals = { restore_database = "approved" },
    outputs = {
      check_platform = { status = "up" },
      open_incident = { id = "inc1" },
      restore_database = { restored = "r001", backup = "b005", safety = "b006" },
      rollback_app = { release = 43, from = 42, to = 40 },
      restore_site = { deploy = "d2", previous = "d3" },
    },
    logs = { restore_database = { "fake: captured b006", "safety backup: b006" },
             notify_team = "Recovery of %*shop%* done" },
    elapsed = { min = "29m30s", max = "31m" },
  },
  check = function(j)
    -- the secrets never reach the journal
    local f = assert(io.open(j:dir() .. "/output.txt"))
    f:close()
    for _, r in ipairs(j:records()) do
      local line = require("drrun.json").encode(r)
      for name, v in pairs(SECRETS) do
        assert(not line:find(v, 1, true), name .. " is in a journal record: " .. r.type)
      end
    end
    -- 29 minutes of waits; libuv's timers are in whole milliseconds, read from
    -- the loop's cached clock, so each wait may end up to 1 ms early
    assert(j:duration("restore_database") > 29 * 60 - 0.1, "the restore's virtual time is measured")
  end,
}

t.case "Heroku's Apps are red: the run stops before it changes anything" {
  params = PARAMS, secrets = SECRETS, fake = world { platform = PLATFORM_DOWN },
  expect = {
    result = "aborted", exit = 3, completed = {}, rolled_back = {}, started = { "check_platform" },
    reason = "outage of Apps",
  },
}

t.case "the restore fails: what was done is rolled back, newest first" {
  params = PARAMS, secrets = SECRETS, answers = { restore_database = "yes" },
  fake = world { restore = function(a)
    drrun.sleep("6m")
    return nil, "heroku: restore of b005 failed: the backup is corrupt", "invalid"
  end },
  expect = {
    result = "rolled-back", exit = 1, failed = "restore_database",
    completed = { "check_platform", "open_incident", "maintenance_on", "restore_site", "verify_site" },
    rolled_back = { "restore_site", "maintenance_on", "open_incident" },
    errors = { restore_database = "the backup is corrupt; the backup taken just before is b006" },
    logs = { open_incident = { "fake: incident inc1: identified", "fake: slack: :x: Recovery of" },
             maintenance_on = "fake: maintenance false" },
  },
}

t.case "a restore slower than the step's 2h timeout times out and is rolled back" {
  params = PARAMS, secrets = SECRETS, answers = { restore_database = "yes" },
  fake = world { restore = function() drrun.sleep("3h") return { name = "late" } end },
  expect = {
    result = "rolled-back", exit = 1, failed = "restore_database",
    errors = { restore_database = "timeout" },
    rolled_back = { "restore_site", "maintenance_on", "open_incident" },
    elapsed = { min = "2h", max = "2h5m" },
  },
}

t.case "the app comes back slowly: verify_app retries with backoff until it answers" {
  params = PARAMS, secrets = SECRETS, answers = { restore_database = "yes" },
  fake = world { app_down_for = 4 },
  expect = {
    result = "completed", exit = 0, attempts = { verify_app = 5, verify_site = 1 },
    completed = ALL,
  },
  check = function(j)
    -- delays 2s, 3s, 4.5s, 6.75s: the retry records say so
    local waits = {}
    for _, r in ipairs(j:records("step_attempt")) do
      if r.step == "verify_app" then waits[#waits + 1] = r.retry_in end
    end
    assert(#waits == 4, "4 retries, not " .. #waits)
    for i, want in ipairs { 2, 3, 4.5, 6.75 } do
      assert(math.abs(waits[i] - want) < 1e-6, ("retry %d after %s s, not %s"):format(i, waits[i], want))
    end
  end,
}

t.case "the operator says no to the restore: the run stops, nothing rolled back" {
  params = PARAMS, secrets = SECRETS, fake = world(),
  answers = { restore_database = "no" },
  expect = {
    -- restore_site was running: it finishes, but nothing new starts
    result = "aborted", exit = 3, approvals = { restore_database = "declined" },
    completed = { "check_platform", "open_incident", "maintenance_on", "restore_site" },
    rolled_back = {}, reason = "approval declined for step 'restore_database'",
  },
}

t.case "open_incident's first attempt times out: it has no retry, so the run rolls back" {
  params = PARAMS, secrets = SECRETS, fake = world(),
  faults = { { step = "open_incident", attempt = 1, error = "timeout" } },
  expect = {
    result = "rolled-back", exit = 1, failed = "open_incident", completed = { "check_platform" },
    errors = { open_incident = "^timeout: fault injected" },
  },
}

t.case "a rollback fails too: exit 2, and the incident still says so" {
  params = PARAMS, secrets = SECRETS, answers = { restore_database = "yes" },
  fake = world { restore = function() return nil, "heroku: restore failed", "invalid" end },
  faults = { { step = "maintenance_on", rollback = true, error = "heroku: HTTP 503 from the API" } },
  expect = {
    exit = 2, failed = "restore_database",
    rolled_back = { "restore_site", "open_incident" },
    logs = { open_incident = "fake: slack: :x: Recovery" },
  },
}

t.case "Slack is unreachable during the rollback: it is logged, the rollback goes on" {
  params = PARAMS, secrets = SECRETS, answers = { restore_database = "yes" },
  fake = world {
    restore = function() return nil, "heroku: restore failed", "invalid" end,
    slack_post = t.fail("refused: connect to hooks.slack.example:443"),
  },
  expect = {
    result = "rolled-back", exit = 1,
    rolled_back = { "restore_site", "maintenance_on", "open_incident" },
    logs = { open_incident = "could not tell Slack: refused" },
  },
}
