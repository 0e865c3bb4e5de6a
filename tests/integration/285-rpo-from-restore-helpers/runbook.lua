-- The restore helpers report the recovery point themselves (ctx = ctx):
-- a Heroku Postgres restore of b004, an RDS restore from the newest
-- automated snapshot, then an RDS point-in-time restore to two hours ago,
-- against the fakes of tests/fakes (started here by tests/servers.sh under
-- the run dir, stopped at the end or by the rollback).  No step calls
-- ctx.recovery_point by hand; the last restore's point is the RPO's.
-- DRRUN_REPO (a case env directive) is the repository's root.
local exec = require "drrun.exec"
local heroku = require "drrun.heroku"
local aws = require "drrun.aws"
local rds = require "drrun.aws.rds"

runbook { name = "rpo-from-restore-helpers", rto = "10m", rpo = "3h", secrets = { "HEROKU_API_KEY" } }

local REPO = os.getenv("DRRUN_REPO")
local SERVERS = (os.getenv("HOME") or ".") .. "/servers"
local E = {} -- the servers' env

local function sh(...)
  local r = drrun.must(exec.run { ... })
  if r.status ~= 0 then error(("%s failed (%s): %s"):format((...), tostring(r.status), r.stderr), 0) end
  return r
end

local function AWS(o)
  o.endpoint_url, o.region = E.DRRUN_TEST_AWS_URL, "us-east-1"
  o.credentials = { access_key = E.DRRUN_TEST_AWS_KEY, secret_key = E.DRRUN_TEST_AWS_SECRET }
  return o
end

step "start_servers" {
  timeout = "1m",
  run = function()
    assert(REPO, "DRRUN_REPO is not set (a case env directive)")
    sh(REPO .. "/tests/servers.sh", "start", SERVERS)
    local r = sh("bash", "-c", '. "$1/env" && env', "env", SERVERS)
    for k, v in r.stdout:gmatch("(DRRUN_[%w_]+)=([^\n]*)") do E[k] = v end
    assert(E.DRRUN_HEROKU_URL and E.DRRUN_TEST_AWS_URL, "no fake URLs in " .. SERVERS .. "/env")
  end,
  rollback = function() sh(REPO .. "/tests/servers.sh", "stop", SERVERS) end,
}

step "restore_pg" {
  phase = "restore", after = "start_servers", timeout = "1m",
  run = function(ctx)
    local t = drrun.must(heroku.pg_restore { app = "myapp", backup = "b004", confirm = "myapp",
      base_url = E.DRRUN_HEROKU_URL, data_base_url = E.DRRUN_HEROKU_DATA_URL,
      interval = "100ms", ctx = ctx })
    return { restored = t.name, backup = t.backup, recovery_point = t.recovery_point }
  end,
}

step "restore_snapshot" {
  phase = "restore", after = "restore_pg", timeout = "1m",
  run = function(ctx)
    local snap = drrun.must(rds.latest_snapshot(AWS { instance = "db1", type = "automated" }))
    local db, point = drrun.must(rds.restore_from_snapshot(AWS { snapshot = snap.DBSnapshotIdentifier,
      target = "db1-snap", ctx = ctx }))
    return { target = db.DBInstanceIdentifier, snapshot_time = snap.SnapshotCreateTime, recovery_point = point }
  end,
}

step "restore_db" {
  phase = "restore", after = "restore_snapshot", timeout = "1m",
  run = function(ctx)
    local at = aws.format_time(os.time() - 7200)
    local db, point = drrun.must(rds.restore_to_point_in_time(AWS { source = "db1", target = "db1-dr",
      restore_time = at, ctx = ctx }))
    return { target = db.DBInstanceIdentifier, restore_time = at, recovery_point = point }
  end,
}

step "verify" {
  phase = "verify", after = "restore_db", timeout = "1m",
  run = function()
    local db = drrun.must(rds.wait_available(AWS { id = "db1-dr", interval = "100ms", timeout = "30s" }))
    return { endpoint = db.Endpoint.Address }
  end,
}

step "stop_servers" {
  after = "verify",
  run = function() sh(REPO .. "/tests/servers.sh", "stop", SERVERS) end,
}
