-- local-failover.lua: fail a web service over from its primary to a standby,
-- for real, on this machine.  Two python3 http.server processes play the
-- primary and the standby; a file plays DNS (it holds the URL that clients
-- use).  The runbook starts both, breaks the primary, detects the outage,
-- promotes the standby after checking its replica is fresh enough for the
-- RPO, moves traffic, verifies through the "DNS" name and posts a status.
--
--   drrun runbooks/examples/local-failover.lua --param dir=/tmp/demo
local exec = require "drrun.exec"
local health = require "drrun.health"

runbook {
  name = "local-failover",
  description = "Fail the orders service over from its primary to its standby",
  rto = "30s",
  rpo = "5m",
  params = {
    dir = { default = "demo", doc = "working directory for the services' files" },
    primary_port = { default = 18081, doc = "port of the primary" },
    standby_port = { default = 18082, doc = "port of the standby" },
  },
}

-- single-quote a string for /bin/sh
local function sq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function url(port) return ("http://127.0.0.1:%d/"):format(port) end

-- Start `python3 -m http.server` in the background serving dir/name.
local function start_service(ctx, name, port, content)
  local dir = ctx.params.dir .. "/" .. name
  drrun.sh("mkdir -p " .. sq(dir) .. " && printf '%s\\n' " .. sq(content) .. " > " .. sq(dir .. "/index.html"))
  local r = drrun.sh(("cd %s && nohup python3 -m http.server %d --bind 127.0.0.1 > server.log 2>&1 & echo $!")
    :format(sq(dir), port))
  if ctx.dry_run then   -- nothing was started: say what would be there
    return { pid = 0, url = url(port), dir = dir }
  end
  local pid = assert(tonumber(r.stdout), "no pid from the service start")
  drrun.sh(("echo %d > %s"):format(pid, sq(dir .. "/pid")))
  -- ready when it answers
  local ok, why = health.wait_until(function()
    return health.http { url = url(port), status = 200, timeout = "1s" }
  end, { timeout = "5s", interval = "50ms" })
  if not ok then error(name .. " did not come up: " .. why) end
  ctx.log("%s is up: pid %d on %s", name, pid, url(port))
  return { pid = pid, url = url(port), dir = dir }
end

local function stop(out) if out and out.pid and out.pid > 0 then exec.run{ "kill", tostring(out.pid) } end end

-- Point the "DNS name" at a URL: write a temp file and rename it into place.
local function route(ctx, target)
  local f = ctx.params.dir .. "/dns"
  drrun.sh(("printf '%%s\\n' %s > %s.tmp && mv %s.tmp %s"):format(sq(target), sq(f), sq(f), sq(f)))
  ctx.log("dns now points at %s", target)
end

local function resolve(ctx)
  local r = drrun.sh("cat " .. sq(ctx.params.dir .. "/dns"))
  if ctx.dry_run then return ctx.outputs.start_primary.url end
  return (r.stdout:gsub("%s+$", ""))
end

step "start_primary" {
  phase = "provision",
  doc = "the primary serves orders v42",
  timeout = "10s",
  run = function(ctx) return start_service(ctx, "primary", ctx.params.primary_port, "orders v42") end,
  rollback = function(ctx, out) stop(out) end,
}

step "start_standby" {
  phase = "provision",
  doc = "the standby holds a replica of the primary's data",
  timeout = "10s",
  run = function(ctx)
    local out = start_service(ctx, "standby", ctx.params.standby_port, "orders v42")
    drrun.sh("date +%s > " .. sq(out.dir .. "/replicated_at"))   -- last replication
    return out
  end,
  rollback = function(ctx, out) stop(out) end,
}

step "route_to_primary" {
  phase = "provision",
  after = { "start_primary", "start_standby" },
  run = function(ctx) route(ctx, ctx.outputs.start_primary.url) end,
}

step "break_primary" {
  phase = "chaos",
  after = "route_to_primary",
  doc = "the outage: the primary dies",
  run = function(ctx)
    if ctx.dry_run then return ctx.log("would kill the primary") end
    exec.run{ "kill", "-9", tostring(ctx.outputs.start_primary.pid) }
    ctx.log("killed the primary (pid %d)", ctx.outputs.start_primary.pid)
  end,
}

step "detect_outage" {
  phase = "detect",
  after = "break_primary",
  timeout = "10s",
  doc = "three failed probes in a row through the DNS name mean down",
  run = function(ctx)
    local target = resolve(ctx)
    local failures = 0
    for _ = 1, 3 do
      local ok, detail = health.http { url = target, status = 200, timeout = "1s" }
      if ok then ctx.abort("the primary is healthy (" .. detail .. "): nothing to fail over") end
      failures = failures + 1
      ctx.log("probe %d failed: %s", failures, detail)
      drrun.sleep("200ms")
    end
    return { down = target, probes = failures }
  end,
}

step "page_oncall" {
  phase = "page",
  after = "detect_outage",
  run = function(ctx)
    local line = ("%s PAGE: orders primary down (%s), failing over"):format(os.date("!%Y-%m-%dT%H:%M:%SZ"),
      ctx.outputs.detect_outage.down)
    drrun.sh(("printf '%%s\\n' %s >> %s"):format(sq(line), sq(ctx.params.dir .. "/pages.log")))
    ctx.log("paged on-call")
  end,
}

step "promote_standby" {
  phase = "restore",
  after = "detect_outage",
  run = function(ctx)
    local dir = ctx.outputs.start_standby.dir
    local at = tonumber(drrun.sh("cat " .. sq(dir .. "/replicated_at")).stdout) or os.time()
    local lag = os.time() - at
    local rpo = drrun.duration("5m")
    if lag > rpo then error(("replica is %ds old, beyond the %ds RPO"):format(lag, rpo)) end
    drrun.sh("touch " .. sq(dir .. "/PROMOTED"))
    ctx.log("standby promoted; replica lag %ds (RPO %ds)", lag, rpo)
    return { lag = lag }
  end,
  rollback = function(ctx)
    drrun.sh("rm -f " .. sq(ctx.outputs.start_standby.dir .. "/PROMOTED"))
  end,
}

step "switch_traffic" {
  phase = "dns",
  after = "promote_standby",
  approve = "Point the orders DNS name at the standby?",
  run = function(ctx)
    local old = resolve(ctx)
    route(ctx, ctx.outputs.start_standby.url)
    return { from = old, to = ctx.outputs.start_standby.url }
  end,
  rollback = function(ctx, out) route(ctx, out.from) end,
}

step "verify_service" {
  phase = "verify",
  after = "switch_traffic",
  retry = { attempts = 5, delay = "200ms", backoff = 2, max_delay = "2s" },
  timeout = "5s",
  run = function(ctx)
    local target = resolve(ctx)
    if ctx.dry_run then return ctx.log("would verify %s", target) end
    local ok, detail = health.http { url = target, status = 200, body = "orders v42", timeout = "2s" }
    if not ok then error(detail) end
    ctx.log("verified %s", detail)
    return { url = target }
  end,
}

step "post_status" {
  phase = "communicate",
  after = { "verify_service", "page_oncall" },
  run = function(ctx)
    local verified = ctx.outputs.verify_service
    local msg = ("Resolved: orders failed over to the standby (%s) after a primary outage.")
      :format(verified and verified.url or ctx.outputs.start_standby.url)
    drrun.sh(("printf '%%s\\n' %s > %s"):format(sq(msg), sq(ctx.params.dir .. "/status.txt")))
    ctx.log("%s", msg)
  end,
}
