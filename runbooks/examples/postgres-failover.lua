-- postgres-failover.lua: fail a PostgreSQL primary over to its streaming
-- replica, for real.  It checks the primary is down (or, for a planned
-- switchover, fences it although it is up), checks the replica is a
-- standby close enough to the primary for the RPO, fences the old primary
-- (pg_ctl stop) so it cannot take writes any more, promotes the replica with
-- a wait, waits until it takes writes, repoints the clients (a libpq service
-- file: clients connect with `service=app`) and verifies a write through the
-- new route.  If a step fails before the promotion, the old primary is
-- started again and the service file is put back; after the promotion the
-- old primary stays fenced (two primaries would be worse than one).
--
--   runbooks/examples/postgres-demo.sh     starts a primary and a replica on
--                                          free loopback ports and runs it
--   drrun run runbooks/examples/postgres-failover.lua \
--     --param primary='host=db1 user=postgres' --param replica='host=db2 user=postgres' \
--     --param primary_data=/var/lib/postgresql/15/main --param service_file=/etc/pg_service.conf
--
-- Passwords come from libpq's own places (PGPASSWORD, ~/.pgpass), never
-- from a param: params are journalled.
local pg = require "drrun.postgres"
local exec = require "drrun.exec"
local fs = require "drrun.fs"

runbook {
  name = "postgres-failover",
  description = "Promote the streaming replica when the primary is lost, and repoint the clients",
  rto = "2m",
  rpo = "1m",
  params = {
    primary = { default = "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
      doc = "connection string of the primary (no password)" },
    replica = { default = "host=127.0.0.1 port=5433 user=postgres dbname=postgres",
      doc = "connection string of the streaming replica (no password)" },
    primary_data = { default = "", doc = "the primary's data directory, to fence it with pg_ctl" },
    pg_bin = { default = "/usr/lib/postgresql/15/bin", doc = "where pg_ctl is" },
    os_user = { default = "", doc = "run pg_ctl as this user (setpriv), when drrun runs as root" },
    service_file = { default = "pg_service.conf", doc = "the libpq service file the clients read" },
    service = { default = "app", doc = "the service name the clients use" },
    max_lag_bytes = { default = 16 * 1024 * 1024, doc = "refuse a replica further behind than this" },
    switchover = { default = false, doc = "planned switchover: go on although the primary is up" },
  },
}

-- the host and port of a key=value connection string, for the service file
local function host_port(ci)
  return ci:match("host=([^%s]+)") or "localhost", tonumber(ci:match("port=(%d+)") or "5432")
end

-- pg_ctl ARGS... on the primary's data directory, as the server's user
local function pg_ctl(ctx, ...)
  local argv = {}
  if ctx.params.os_user ~= "" then
    local u = ctx.params.os_user
    argv = { "setpriv", "--reuid=" .. u, "--regid=" .. u, "--init-groups" }
  end
  argv[#argv + 1] = ctx.params.pg_bin .. "/pg_ctl"
  argv[#argv + 1] = "-D"
  argv[#argv + 1] = ctx.params.primary_data
  for _, a in ipairs({ ... }) do argv[#argv + 1] = a end
  argv.timeout = "90s"
  local r = drrun.must(exec.run(argv))
  if r.status ~= 0 then
    error(("pg_ctl %s failed (exit %d): %s"):format(table.concat({ ... }, " "), r.status,
      (r.stderr .. r.stdout):gsub("%s+$", "")))
  end
  return r
end

local function service_text(ctx, host, port)
  local _, _, db = ctx.params.replica:find("dbname=([^%s]+)")
  return ("# written by drrun postgres-failover, run %s\n[%s]\nhost=%s\nport=%d\n%s"):format(
    ctx.run_id, ctx.params.service, host, port, db and ("dbname=" .. db .. "\n") or "")
end

step "detect" {
  phase = "detect",
  timeout = "30s",
  doc = "the primary does not answer (three probes), and the replica is a standby",
  run = function(ctx)
    local up, why
    for i = 1, 3 do
      up, why = pg.ready(ctx.params.primary, { timeout = "5s" })
      if up then break end
      ctx.log("probe %d: primary down: %s", i, why)
      if i < 3 then drrun.sleep("500ms") end
    end
    if up and not ctx.params.switchover then
      ctx.abort("the primary is up and answers: nothing to fail over (switchover=true to move it anyway)")
    end
    local standby, err = pg.in_recovery(ctx.params.replica)
    if standby == nil then error(err) end
    if not standby and not ctx.dry_run then
      error("the replica is not in recovery: it is a primary already")
    end
    ctx.log(up and "primary up: planned switchover" or "primary down: failing over")
    return { primary_up = up or false }
  end,
}

step "check_replica" {
  phase = "detect",
  after = "detect",
  timeout = "30s",
  doc = "the replica is streaming-close to the primary (RPO)",
  run = function(ctx)
    local primary = ctx.outputs.detect.primary_up and ctx.params.primary or nil
    local lag = drrun.must(pg.lag(ctx.params.replica, { primary = primary }))
    ctx.log("replica replayed %s, %d bytes behind%s, %.1fs", tostring(lag.replayed), lag.bytes,
      primary and " the primary" or " what it received", lag.seconds or -1)
    if lag.bytes > ctx.params.max_lag_bytes then
      error(("the replica is %d bytes behind, over max_lag_bytes %d"):format(lag.bytes,
        ctx.params.max_lag_bytes))
    end
    return { bytes = lag.bytes, seconds = lag.seconds, replayed = lag.replayed }
  end,
}

step "fence" {
  phase = "fence",
  after = "check_replica",
  approve = "Fence the old primary and promote the replica?",
  timeout = "2m",
  doc = "stop the old primary, so that it can take no more writes",
  run = function(ctx)
    local up = pg.ready(ctx.params.primary, { timeout = "5s" })
    if not up then
      ctx.log("the old primary is down already")
      return { stopped = false }
    end
    if ctx.params.primary_data == "" then
      error("the old primary is up and primary_data is not set: fence it by hand first")
    end
    pg_ctl(ctx, "-m", "fast", "-w", "stop")
    local still = pg.ready(ctx.params.primary, { timeout = "5s" })
    if still and not ctx.dry_run then error("the old primary still answers after pg_ctl stop") end
    ctx.log("old primary stopped")
    return { stopped = true }
  end,
  -- undone only while the replica is still a standby: never two primaries
  rollback = function(ctx, out)
    if not out or not out.stopped then return end
    local standby = pg.in_recovery(ctx.params.replica)
    if standby == false then
      ctx.log("the replica was promoted: the old primary stays down")
      return
    end
    pg_ctl(ctx, "-l", ctx.params.primary_data .. "/restart.log", "-w", "start")
    drrun.must(pg.ready(ctx.params.primary, { timeout = "10s" }))
    ctx.log("old primary started again")
  end,
}

step "promote" {
  phase = "restore",
  after = "fence",
  timeout = "2m",
  doc = "pg_promote on the replica, waiting for the end of recovery",
  run = function(ctx)
    local p = drrun.must(pg.promote(ctx.params.replica, { wait = "60s" }))
    ctx.log("replica %s in %.2fs at %s", p.already and "was promoted already" or "promoted",
      p.seconds, tostring(p.lsn))
    return { lsn = p.lsn, seconds = p.seconds, already = p.already }
  end,
}

step "wait_writable" {
  phase = "restore",
  after = "promote",
  timeout = "90s",
  run = function(ctx)
    local w = drrun.must(pg.wait_writable(ctx.params.replica, { timeout = "60s", interval = "250ms" }))
    ctx.log("new primary takes writes after %.2fs, at %s", w.seconds, tostring(w.lsn))
    return { lsn = w.lsn }
  end,
}

step "repoint" {
  phase = "dns",
  after = "wait_writable",
  timeout = "30s",
  doc = "point the clients' service at the new primary",
  run = function(ctx)
    local old = fs.read(ctx.params.service_file)
    local host, port = host_port(ctx.params.replica)
    drrun.must(fs.write(ctx.params.service_file, service_text(ctx, host, port), { mode = "0644" }))
    ctx.log("service %s now points at %s:%d", ctx.params.service, host, port)
    return { previous = old, host = host, port = port }
  end,
  rollback = function(ctx, out)
    if out.previous then
      drrun.must(fs.write(ctx.params.service_file, out.previous, { mode = "0644" }))
    else
      drrun.must(fs.remove(ctx.params.service_file))
    end
    ctx.log("service file put back")
  end,
}

step "verify" {
  phase = "verify",
  after = "repoint",
  timeout = "60s",
  doc = "a client going through the service reaches a writable primary on the new host",
  run = function(ctx)
    if ctx.dry_run then return ctx.log("dry run: nothing was changed, so nothing to verify") end
    local via = { service = ctx.params.service, user = ctx.params.replica:match("user=([^%s]+)"),
      env = { PGSERVICEFILE = ctx.params.service_file } }
    local rows = drrun.must(pg.query(via,
      "SELECT pg_is_in_recovery() AS recovery, inet_server_port() AS port"))
    local want = ctx.outputs.repoint.port
    if rows[1].recovery ~= "f" or tonumber(rows[1].port) ~= want then
      error(("the service reaches port %s (in recovery: %s), want %d, out of recovery"):format(
        tostring(rows[1].port), tostring(rows[1].recovery), want))
    end
    drrun.must(pg.wait_writable(via, { timeout = "10s" }))
    ctx.log("verified: service %s writes on port %d", ctx.params.service, want)
    return { port = want }
  end,
}
