-- dns-failover.lua: fail the orders service over from its primary to its
-- standby by changing DNS, for real, on this machine.  Knot DNS (a primary
-- taking TSIG-signed updates and a secondary fed by zone transfers, started
-- by tests/knot.sh) serves example.test; two python3 http.server processes
-- on 127.0.0.1 play the primary and the standby, each on its own port, so
-- clients find the service through its SRV record, _http._tcp.www (the
-- target app.example.test, A 127.0.0.1, and the port).  Every health check
-- resolves through drrun.dns against Knot, never /etc/hosts.  The switch is
-- an RFC 2136 update whose rollback puts the old record back, TTL included,
-- and it returns only once both name servers answer it.
--
--   drrun run runbooks/examples/dns-failover.lua --param dir=/tmp/dnsdemo --yes
local dns = require "drrun.dns"
local exec = require "drrun.exec"
local health = require "drrun.health"

runbook {
  name = "dns-failover",
  description = "Fail www.example.test over to the standby by DNS",
  rto = "1m",
  params = {
    dir = { default = "dns-demo", doc = "working directory for Knot and the services" },
    knot = { default = "tests/knot.sh", doc = "the script that starts the Knot pair" },
    fail_verify = { default = false, doc = "make the verification fail (to see the rollback)" },
  },
}

local NAME, ZONE, TARGET = "_http._tcp.www.example.test.", "example.test.", "app.example.test."

local function sq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The service's URL, as Knot answers (through drrun, not the system
-- resolver): the SRV record's port and target, the target's address.
local function resolve(ctx)
  local server = ctx.outputs.start_dns.server
  local r = drrun.must(dns.query { name = NAME, type = "SRV", server = server })
  local srv = r.answers[1]
  if not srv then error(NAME .. " has no SRV record (" .. r.rcode .. ")") end
  local port, target = srv.value:match("^%d+ %d+ (%d+) (%S+)$")
  local a = drrun.must(dns.query { name = target, type = "A", server = server }).answers[1]
  if not a then error(target .. " has no address") end
  return ("http://%s:%s/"):format(a.value, port), srv.value, srv.ttl
end

local function start_service(ctx, name)
  local dir = ctx.params.dir .. "/" .. name
  drrun.sh("mkdir -p " .. sq(dir) .. " && printf '%s\\n' " .. sq("orders " .. name) .. " > " .. sq(dir .. "/index.html"))
  local port = tonumber(drrun.sh([[python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])']]).stdout)
  local r = drrun.sh(("cd %s && nohup python3 -m http.server %d --bind 127.0.0.1 > server.log 2>&1 & echo $!")
    :format(sq(dir), port))
  local pid = assert(tonumber(r.stdout), "no pid from the service start")
  local u = ("http://127.0.0.1:%d/"):format(port)
  local ok, why = health.wait_until(function()
    return health.http { url = u, status = 200, timeout = "1s" }
  end, { timeout = "5s", interval = "50ms" })
  if not ok then error(name .. " did not come up: " .. why) end
  ctx.log("%s is up: pid %d on %s", name, pid, u)
  return { pid = pid, port = port }
end

local function srv(port) return ("0 0 %d %s"):format(port, TARGET) end

local function stop(out) if out and out.pid then exec.run { "kill", tostring(out.pid) } end end

local function key(ctx) return { file = ctx.outputs.start_dns.keyfile } end

step "start_dns" {
  phase = "provision",
  timeout = "20s",
  doc = "Knot: a primary and a secondary for example.test (www A 192.0.2.10)",
  run = function(ctx)
    local dir = ctx.params.dir .. "/knot"
    drrun.sh(sq(ctx.params.knot) .. " start " .. sq(dir))
    local env = drrun.sh("cat " .. sq(dir .. "/env")).stdout
    local out = { dir = dir }
    out.server = env:match("DRRUN_TEST_KNOT=(%S+)")
    out.secondary = env:match("DRRUN_TEST_KNOT2=(%S+)")
    out.keyfile = env:match("DRRUN_TEST_TSIG_KEYFILE=(%S+)")
    return out
  end,
  rollback = function(ctx, out) drrun.sh(sq(ctx.params.knot) .. " stop " .. sq(out.dir)) end,
}

step "start_primary" {
  phase = "provision",
  run = function(ctx) return start_service(ctx, "primary") end,
  rollback = function(ctx, out) stop(out) end,
}

step "start_standby" {
  phase = "provision",
  run = function(ctx) return start_service(ctx, "standby") end,
  rollback = function(ctx, out) stop(out) end,
}

step "point_at_primary" {
  phase = "provision",
  after = { "start_dns", "start_primary", "start_standby" },
  doc = "app A 127.0.0.1 and the SRV record at the primary, TTL 60, on both name servers",
  run = function(ctx)
    local o = ctx.outputs.start_dns
    local common = { provider = "rfc2136", server = o.server, key = key(ctx), zone = ZONE,
      ttl = 60, wait_servers = { o.server, o.secondary }, interval = "100ms" }
    local function with(t) for k, v in pairs(common) do t[k] = v end return t end
    local app = drrun.must(dns.switch(with { name = TARGET, type = "A", to = { "127.0.0.1" } }))
    local svc = drrun.must(dns.switch(with { name = NAME, type = "SRV",
      to = { srv(ctx.outputs.start_primary.port) } }))
    return { app = app, srv = svc }
  end,
  rollback = function(ctx, out)
    drrun.must(dns.restore(out.srv))
    drrun.must(dns.restore(out.app))
  end,
}

step "break_primary" {
  phase = "chaos",
  after = "point_at_primary",
  run = function(ctx)
    exec.run { "kill", "-9", tostring(ctx.outputs.start_primary.pid) }
    ctx.log("killed the primary (pid %d)", ctx.outputs.start_primary.pid)
  end,
}

step "detect_outage" {
  phase = "detect",
  after = "break_primary",
  timeout = "10s",
  doc = "three failed probes in a row of the URL the service resolves to",
  run = function(ctx)
    local u = resolve(ctx)
    for i = 1, 3 do
      local ok, detail = health.http { url = u, status = 200, timeout = "1s" }
      if ok then ctx.abort("the service (" .. u .. ") is healthy: nothing to fail over") end
      ctx.log("probe %d of %s failed: %s", i, u, detail)
      drrun.sleep("100ms")
    end
    return { down = u }
  end,
}

step "switch_dns" {
  phase = "dns",
  after = "detect_outage",
  approve = "Point the orders service at the standby?",
  run = function(ctx)
    local o = ctx.outputs.start_dns
    return drrun.must(dns.switch { provider = "rfc2136", server = o.server, key = key(ctx),
      zone = ZONE, name = NAME, type = "SRV", to = { srv(ctx.outputs.start_standby.port) }, ttl = 60,
      wait_servers = { o.server, o.secondary }, interval = "100ms", wait_timeout = "20s" })
  end,
  rollback = function(ctx, out) drrun.must(dns.restore(out)) end,
}

step "verify" {
  phase = "verify",
  after = "switch_dns",
  retry = { attempts = 3, delay = "200ms" },
  run = function(ctx)
    local u, value, ttl = resolve(ctx)
    if ctx.params.fail_verify == true or ctx.params.fail_verify == "true" then
      error("verification failed on purpose (fail_verify)")
    end
    local ok, detail = health.http { url = u, status = 200, body = "orders standby", timeout = "2s" }
    if not ok then error(detail) end
    ctx.log("the service resolves to %s (SRV %s, ttl %d) and serves the standby: %s", u, value, ttl, detail)
    return { url = u, srv = value, ttl = ttl }
  end,
}

-- at the end, whatever happened (after the rollbacks, when there were any)
step "teardown" {
  phase = "teardown",
  run = function(ctx)
    stop(ctx.outputs.start_standby)
    stop(ctx.outputs.start_primary)
    local d = ctx.outputs.start_dns
    if d then drrun.sh(sq(ctx.params.knot) .. " stop " .. sq(d.dir)) end
  end,
}
