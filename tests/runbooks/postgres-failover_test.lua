-- Cases of runbooks/examples/postgres-failover.lua.  drrun.postgres, the
-- file layer and pg_ctl are fakes over a model of the pair: whether the old
-- primary answers, whether the replica is still in recovery, how far behind
-- it is, and the clients' service file.  (The example itself runs against a
-- real primary and replica in the integration tests; these cases cover the
-- branches a healthy pair cannot show: a lagging replica, a failed promotion,
-- a verification that reaches the wrong server.)
local t = require "drrun.test"
local core = require "drrun.core"

t.runbook "../../runbooks/examples/postgres-failover.lua"

local PRIMARY = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
local OLD_SERVICE = "[app]\nhost=127.0.0.1\nport=5432\n"

-- o.primary_up, o.lag_bytes, o.promote_fails, o.verify_port
local function pair(o)
  o = o or {}
  local w = { primary_up = o.primary_up or false, recovery = true,
              files = { ["pg_service.conf"] = OLD_SERVICE } }
  local function log(fmt, ...) core.log(("fake: " .. fmt):format(...)) end
  local pg = {
    ready = function(conn)
      if conn == PRIMARY then
        if w.primary_up then return true end
        return false, "refused: 127.0.0.1:5432: connection refused", "refused"
      end
      return true
    end,
    in_recovery = function(conn) return w.recovery end,
    lag = function(replica, q)
      return { bytes = o.lag_bytes or 4096, seconds = 0.2, replayed = "0/3000060" }
    end,
    promote = function(conn, q)
      if o.promote_fails then return nil, "timeout: still in recovery after 60s", "timeout" end
      drrun.sleep("1500ms")
      w.recovery = false
      log("promoted")
      return { lsn = "0/3000148", seconds = 1.5, already = false }
    end,
    wait_writable = function(conn, q) return { lsn = "0/3000190", seconds = 0.25 } end,
    query = function(via, sql)
      return { { recovery = "f", port = tostring(o.verify_port or 5433) } }
    end,
  }
  local fs = {
    read = function(path) return w.files[path] end,
    write = function(path, text, q) w.files[path] = text log("wrote %s", path) return true end,
    remove = function(path) w.files[path] = nil return true end,
  }
  local pg_ctl = function(argv)
    local verb = argv[#argv]
    if verb == "stop" then w.primary_up = false end
    if verb == "start" then w.primary_up = true end
    log("pg_ctl %s", verb)
    return { status = 0 }
  end
  return { ["drrun.postgres"] = pg, ["drrun.fs"] = fs, ["drrun.exec"] = t.exec { pg_ctl = pg_ctl } }
end

local ALL = { "detect", "check_replica", "fence", "promote", "wait_writable", "repoint", "verify" }

t.case "the primary is lost: the replica is promoted and the clients repointed" {
  fake = pair(), answers = { fence = "yes" },
  expect = {
    result = "completed", exit = 0, completed = ALL,
    outputs = { detect = { primary_up = false }, fence = { stopped = false },
                promote = { lsn = "0/3000148", already = false },
                repoint = { previous = OLD_SERVICE, host = "127.0.0.1", port = 5433 },
                verify = { port = 5433 } },
    logs = { detect = "probe 3: primary down", repoint = "service app now points at 127.0.0.1:5433" },
  },
}

t.case "the primary answers: nothing to fail over" {
  fake = pair { primary_up = true },
  expect = { result = "aborted", exit = 3, completed = {}, reason = "nothing to fail over" },
}

t.case "a planned switchover fences the running primary with pg_ctl" {
  params = { switchover = true, primary_data = "/srv/pg/main" }, fake = pair { primary_up = true },
  answers = { fence = "yes" },
  expect = { result = "completed", exit = 0, outputs = { fence = { stopped = true } },
             logs = { fence = { "fake: pg_ctl stop", "old primary stopped" } } },
}

t.case "a replica too far behind for the RPO is not promoted" {
  fake = pair { lag_bytes = 64 * 1024 * 1024 }, answers = { fence = "yes" },
  expect = { result = "rolled-back", exit = 1, failed = "check_replica",
             errors = { check_replica = "over max_lag_bytes" }, not_run = { "fence", "promote",
             "wait_writable", "repoint", "verify" } },
}

t.case "the promotion fails: the fenced primary is started again" {
  params = { switchover = true, primary_data = "/srv/pg/main" },
  fake = pair { primary_up = true, promote_fails = true }, answers = { fence = "yes" },
  expect = { result = "rolled-back", exit = 1, failed = "promote", rolled_back = { "fence" },
             logs = { fence = { "fake: pg_ctl start", "old primary started again" } } },
}

t.case "the service reaches the wrong server: the file goes back, the old primary stays down" {
  params = { switchover = true, primary_data = "/srv/pg/main" },
  fake = pair { primary_up = true, verify_port = 5432 }, answers = { fence = "yes" },
  expect = { result = "rolled-back", exit = 1, failed = "verify", rolled_back = { "repoint", "fence" },
             errors = { verify = "reaches port 5432" },
             logs = { repoint = "service file put back",
                      fence = "the replica was promoted: the old primary stays down" } },
}
