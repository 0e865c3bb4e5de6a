-- Cases of runbooks/examples/local-failover.lua.  The runbook drives the
-- machine through /bin/sh and kill; the fake below is a small model of it:
-- the two services (up or not), the files the runbook writes (the "DNS"
-- file, the replication stamp, the status), and the health checks answer
-- from that model.  So the cases check the runbook's logic (detect, the RPO
-- check, the switch and its rollback) without starting a process.
local t = require "drrun.test"

t.runbook "../../runbooks/examples/local-failover.lua"

local PRIMARY, STANDBY = "http://127.0.0.1:18081/", "http://127.0.0.1:18082/"

-- o.replica_age: seconds since the standby last replicated; o.primary_survives:
-- the kill does not take the primary down; o.standby_dead_after_switch.
local function machine(o)
  o = o or {}
  local m = { files = {}, up = {}, pids = {}, next_pid = 4000, commands = {} }
  local function sh(argv)
    local cmd = argv[3]
    m.commands[#m.commands + 1] = cmd
    local port = cmd:match("http%.server (%d+)")
    if port then
      m.next_pid = m.next_pid + 1
      local url = ("http://127.0.0.1:%s/"):format(port)
      m.up[url] = true
      m.pids[m.next_pid] = url
      return { stdout = m.next_pid .. "\n" }
    end
    local dir = cmd:match("^date %+%%s > '(.-)/replicated_at'$")
    if dir then
      m.files[dir .. "/replicated_at"] = tostring(os.time() - (o.replica_age or 3))
      return {}
    end
    local target, f = cmd:match("^printf '%%s\\n' '(.-)' > '(.-)'%.tmp && mv")
    if target then m.files[f] = target return {} end
    local path = cmd:match("^cat '(.-)'$")
    if path then
      if not m.files[path] then return { status = 1, stderr = "cat: " .. path .. ": No such file" } end
      return { stdout = m.files[path] .. "\n" }
    end
    local status = cmd:match("^printf '%%s\\n' '(.-)' > '.-/status%.txt'$")
    if status then m.files.status = status return {} end
    -- mkdir, the pid files, touch PROMOTED, rm -f, the page log: no answer needed
    return {}
  end
  local function kill(argv)
    local url = m.pids[tonumber(argv[#argv])]
    if url and not (o.primary_survives and url == PRIMARY) then m.up[url] = false end
    return {}
  end
  local health = {
    http = function(a)
      if o.standby_dead_after_switch and a.url == STANDBY and m.files[ "demo/dns" ] == STANDBY then
        return false, a.url .. ": refused: connection refused"
      end
      if m.up[a.url] then return true, a.url .. ": HTTP 200 in 1ms" end
      return false, a.url .. ": refused: connection refused"
    end,
  }
  return {
    ["drrun.exec"] = t.exec { ["/bin/sh"] = sh, kill = kill },
    ["drrun.health"] = health,
  }
end

local ALL = { "start_primary", "start_standby", "route_to_primary", "break_primary",
              "detect_outage", "page_oncall", "promote_standby", "switch_traffic",
              "verify_service", "post_status" }

t.case "the standby takes over" {
  fake = machine(), answers = { switch_traffic = "yes" },
  expect = {
    result = "completed", exit = 0,
    started = ALL,
    outputs = {
      detect_outage = { down = PRIMARY, probes = 3 },
      switch_traffic = { from = PRIMARY, to = STANDBY },
      verify_service = { url = STANDBY },
    },
    logs = { switch_traffic = "dns now points at http://127.0.0.1:18082/",
             post_status = "Resolved: orders failed over to the standby" },
    approvals = { switch_traffic = "approved" },
  },
  check = function(j)
    local lag = j:output("promote_standby").lag
    assert(lag >= 3 and lag < 10, "replica lag " .. tostring(lag))
  end,
}

t.case "the primary is still healthy: nothing to fail over" {
  fake = machine { primary_survives = true },
  expect = {
    result = "aborted", exit = 3, reason = "nothing to fail over",
    rolled_back = {}, not_run = { "page_oncall", "promote_standby", "switch_traffic",
                                  "verify_service", "post_status" },
  },
}

t.case "a replica older than the RPO is not promoted; the services are stopped" {
  fake = machine { replica_age = 600 }, answers = { switch_traffic = "yes" },
  expect = {
    result = "rolled-back", exit = 1, failed = "promote_standby",
    errors = { promote_standby = "beyond the 300s RPO" },
    rolled_back = { "start_standby", "start_primary" },
  },
}

t.case "the standby fails its checks: traffic goes back, every retry used" {
  fake = machine { standby_dead_after_switch = true }, answers = { switch_traffic = "yes" },
  expect = {
    result = "rolled-back", exit = 1, failed = "verify_service",
    attempts = { verify_service = 5 },
    rolled_back = { "switch_traffic", "promote_standby", "start_standby", "start_primary" },
    logs = { switch_traffic = { "dns now points at http://127.0.0.1:18082/",
                                "dns now points at http://127.0.0.1:18081/" } },
  },
}

t.case "nobody approves the switch: the run stops before it, resumable" {
  fake = machine(),
  expect = {
    result = "aborted", exit = 3, approvals = { switch_traffic = "needed" },
    not_run = { "switch_traffic", "verify_service", "post_status" },
  },
}
