-- Cases of runbooks/examples/dns-failover.lua.  The runbook drives Knot and
-- two HTTP services through /bin/sh and kill, and DNS through drrun.dns;
-- the fakes below are a small model of that: the services (up or not, on
-- their ports), the zone's records (which dns.switch changes and
-- dns.restore puts back), and the health checks answer from the model.
-- The real thing runs in tests/integration/370-dns-failover and 371.
local t = require "drrun.test"

t.runbook "../../runbooks/examples/dns-failover.lua"


local PRIMARY, STANDBY = "http://127.0.0.1:41001/", "http://127.0.0.1:41002/"

-- o.primary_survives: the kill does not take the primary down
local function machine(o)
  o = o or {}
  local m = { up = {}, pids = {}, next_pid = 5000, next_port = 41000, zone = {} }
  local function sh(argv)
    local cmd = argv[3]
    if cmd:match("^'.-' start '.-'$") or cmd:match("^'.-' stop '.-'$") then return {} end
    if cmd:match("^cat '.-/env'$") then
      return { stdout = "export DRRUN_TEST_KNOT=127.0.0.1:5301\nexport DRRUN_TEST_KNOT2=127.0.0.1:5302\n"
        .. "export DRRUN_TEST_TSIG_KEYFILE=demo/knot/drrun-key.conf\n" }
    end
    if cmd:match("^python3 %-c 'import socket") then
      m.next_port = m.next_port + 1
      return { stdout = m.next_port .. "\n" }
    end
    local port = cmd:match("http%.server (%d+)")
    if port then
      m.next_pid = m.next_pid + 1
      local url = ("http://127.0.0.1:%s/"):format(port)
      m.up[url] = true
      m.pids[m.next_pid] = url
      return { stdout = m.next_pid .. "\n" }
    end
    return {} -- mkdir and the index.html
  end
  local function kill(argv)
    local url = m.pids[tonumber(argv[#argv])]
    if url and not (o.primary_survives and url == PRIMARY) then m.up[url] = false end
    return {}
  end
  local health = {
    http = function(a)
      if m.up[a.url] then return true, a.url .. ": HTTP 200 in 1ms" end
      return false, a.url .. ": refused: connection refused"
    end,
    wait_until = function(fn) return fn() end,
  }
  local dns = {
    query = function(q)
      local rr = m.zone[q.name .. "|" .. q.type]
      if not rr then return { rcode = "NXDOMAIN", answers = {} } end
      return { rcode = "NOERROR", answers = { { name = q.name, type = q.type, ttl = rr.ttl, value = rr.values[1] } } }
    end,
    switch = function(s)
      assert(s.provider == "rfc2136" and s.key.file == "demo/knot/drrun-key.conf", "signed with the key file")
      assert(#s.wait_servers == 2, "waits for both name servers")
      local k = s.name .. "|" .. (s.type or "A")
      local out = { provider = "rfc2136", name = s.name, type = s.type or "A", previous = m.zone[k],
                    new = { values = s.to, ttl = s.ttl } }
      m.zone[k] = out.new
      return out
    end,
    restore = function(out)
      m.zone[out.name .. "|" .. out.type] = out.previous
      return true
    end,
  }
  return {
    ["drrun.exec"] = t.exec { ["/bin/sh"] = sh, kill = kill },
    ["drrun.health"] = health,
    ["drrun.dns"] = dns,
  }
end

local ALL = { "start_dns", "start_primary", "start_standby", "point_at_primary", "break_primary",
              "detect_outage", "switch_dns", "verify", "teardown" }

local fake = machine()
t.case "the standby takes over through its SRV record" {
  fake = fake, answers = { switch_dns = "yes" },
  expect = {
    result = "completed", exit = 0,
    started = ALL,
    outputs = {
      detect_outage = { down = PRIMARY },
      verify = { url = STANDBY, srv = "0 0 41002 app.example.test.", ttl = 60 },
    },
    approvals = { switch_dns = "approved" },
  },
}

local fake2 = machine()
t.case "the verification fails: every record goes back, in reverse order" {
  fake = fake2, params = { fail_verify = true }, answers = { switch_dns = "yes" },
  expect = {
    result = "rolled-back", exit = 1, failed = "verify",
    errors = { verify = "verification failed on purpose" },
  },
  check = function(j)
    local rb = j:rolled_back()
    local at = {}
    for i, s in ipairs(rb) do at[s] = i end
    assert(at.switch_dns and at.point_at_primary and at.start_dns and at.switch_dns < at.point_at_primary
      and at.point_at_primary < at.start_dns,
      "switch_dns, then point_at_primary, then start_dns are undone: " .. table.concat(rb, ", "))
  end,
}

t.case "the primary is still healthy: nothing to fail over" {
  fake = (machine { primary_survives = true }),
  expect = {
    result = "aborted", exit = 3, reason = "nothing to fail over",
    not_run = { "switch_dns", "verify" },
  },
}

t.case "nobody approves the switch: the run stops before it" {
  fake = (machine()),
  expect = {
    result = "aborted", exit = 3, approvals = { switch_dns = "needed" },
    not_run = { "switch_dns", "teardown", "verify" },
  },
}
