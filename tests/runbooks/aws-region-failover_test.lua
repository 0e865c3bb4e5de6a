-- Cases of runbooks/aws-region-failover.lua.  EC2, RDS, Route 53,
-- PagerDuty, Statuspage, Slack and the health check are fakes over a small
-- model of the account: the primary's instances, the restored database, the
-- instances launched in the target region, the record set.  The waits take
-- the time AWS takes (a point-in-time restore available after 20 minutes,
-- instances running after 2), in virtual time.
local t = require "drrun.test"
local core = require "drrun.core"

t.runbook "../../runbooks/aws-region-failover.lua"

local PARAMS = { zone = "Z0EXAMPLE1", record = "www.example.com",
                 health_url = "http://dr-lb.example.com/healthz", page = "pg1", poll = "15s" }
local SECRETS = { PAGERDUTY_ROUTING_KEY = "R0123456789abcdef0123456789abcdef",
                  SLACK_WEBHOOK_URL = "https://hooks.slack.example/T0/B0/0123456789abcdef",
                  STATUSPAGE_API_KEY = "sp-0123456789abcdef" }

local function merge(a, b)
  local o = {}
  for k, v in pairs(a) do o[k] = v end
  for k, v in pairs(b or {}) do o[k] = v end
  return o
end

-- o.primary: states of the primary's instances (default: both stopped, the
-- outage); o.healthy_after: failed health checks before one passes (nil:
-- every check passes; false: none does); o.ec2_wait: replaces ec2.wait.
local function account(o)
  o = o or {}
  local a = { launched = {}, deleted = {}, terminated = {}, record = { "192.0.2.10" },
              checks = 0 }
  local function log(fmt, ...) core.log(("fake: " .. fmt):format(...)) end
  local ec2 = {
    describe_instances = function(q)
      local out = {}
      for i, st in ipairs(o.primary or { "stopped", "stopped" }) do
        out[i] = { InstanceId = "i-p" .. i, State = { Name = st } }
      end
      return out
    end,
    run = function(q)
      local made = {}
      for i = 1, q.count do
        made[i] = { InstanceId = ("i-n%d"):format(i), Placement = { AvailabilityZone = q.az } }
        a.launched[#a.launched + 1] = made[i].InstanceId
      end
      log("launched %d in %s (%s)", q.count, q.az, q.region)
      return made
    end,
    wait = o.ec2_wait or function(q)
      drrun.sleep("2m")
      local up = {}
      for i, id in ipairs(q.ids) do up[i] = { InstanceId = id, PublicIpAddress = "198.51.100." .. i } end
      return up
    end,
    terminate = function(q) for _, id in ipairs(q.ids) do a.terminated[#a.terminated + 1] = id end
      log("terminated %s", table.concat(q.ids, ","))
      return true
    end,
    snapshot_instance = function(q) return { { SnapshotId = "snap-" .. q.id } } end,
  }
  local rds = {
    restore_to_point_in_time = function(q)
      log("restore %s -> %s in %s", q.source, q.target, q.region)
      return { DBInstanceIdentifier = q.target }, 1764633600
    end,
    promote_replica = function(q) log("promoted %s", q.id) return { DBInstanceIdentifier = q.id } end,
    wait_available = function(q)
      for _ = 1, 80 do drrun.sleep(q.interval) end -- 20 minutes, polled every 15s
      return { DBInstanceIdentifier = q.id, Endpoint = { Address = q.id .. ".rds.example" } }
    end,
    delete = function(q) a.deleted[#a.deleted + 1] = q.id log("deleted %s", q.id) return true end,
    create_snapshot = function(q)
      drrun.sleep("6m")
      return { DBSnapshotIdentifier = q.id }
    end,
  }
  local route53 = {
    switch = function(q)
      local old = a.record
      a.record = q.values
      log("record %s -> %s", q.name, table.concat(q.values, ","))
      return { zone = q.zone, name = q.name, type = q.type, old = old, new = q.values }
    end,
    restore = function(out) a.record = out.old log("record back to %s", table.concat(out.old, ",")) return true end,
  }
  local health = {
    http = function(q)
      a.checks = a.checks + 1
      if o.healthy_after == false or a.checks <= (o.healthy_after or 0) then
        return false, q.url .. ": HTTP 502, want 200"
      end
      return true, q.url .. ": HTTP 200 in 40ms"
    end,
  }
  local fake = {
    ["drrun.aws.ec2"] = ec2, ["drrun.aws.rds"] = rds, ["drrun.aws.route53"] = route53,
    ["drrun.health"] = health,
    ["drrun.pagerduty"] = { trigger = function(q) log("page: %s", q.summary) return { dedup_key = "dk1" } end },
    ["drrun.statuspage"] = {
      incident = function(q) return { id = "inc7" } end,
      update = function(q) log("incident %s: %s", q.incident, q.body) return { id = q.incident } end,
    },
    ["drrun.slack"] = { post = o.slack_post or function(q) log("slack: %s", q.text) return true end },
  }
  return fake
end

local FAILOVER = { "detect", "page_oncall", "open_incident", "restore_db", "rebuild_app", "verify",
                   "switch_dns", "announce" }

t.case "the region is down: database restored, instances rebuilt, DNS switched" {
  params = PARAMS, secrets = SECRETS, fake = account(),
  answers = { restore_db = "yes", switch_dns = "yes" },
  expect = {
    result = "completed", exit = 0,
    skipped = { "snapshot_instances", "snapshot_db" },
    outputs = {
      detect = { running = 0 }, page_oncall = { dedup_key = "dk1" },
      restore_db = { strategy = "pitr", id = "db1-dr", address = "db1-dr.rds.example",
                     recovery_point = 1764633600 },
      rebuild_app = { ids = { "i-n1", "i-n2" }, addresses = { "198.51.100.1", "198.51.100.2" },
                      az = "us-west-2a" },
      switch_dns = { name = "www.example.com", old = { "192.0.2.10" } },
    },
    approvals = { restore_db = "approved", switch_dns = "approved" },
    logs = { announce = { "fake: slack: :white_check_mark: www%.example%.com now runs in us%-west%-2",
                          "fake: incident inc7: The service runs from our recovery region" } },
    -- the restore's 20 minutes are the critical path
    elapsed = { min = "20m", max = "21m" },
  },
  check = function(j)
    local done = {}
    for _, s in ipairs(j:completed()) do done[s] = true end
    for _, s in ipairs(FAILOVER) do assert(done[s], s .. " did not complete") end
    assert(j:records("run_start")[1].rto == 45 * 60, "the RTO is the runbook's 45m")
  end,
}

t.case "every primary instance runs: nothing to fail over" {
  params = PARAMS, secrets = SECRETS, fake = account { primary = { "running", "running" } },
  expect = { result = "aborted", exit = 3, completed = {}, reason = "nothing to fail over" },
}

t.case "force=true fails over even a healthy-looking primary" {
  params = merge(PARAMS, { force = "true" }), secrets = SECRETS,
  fake = account { primary = { "running", "running" } },
  answers = { restore_db = "yes", switch_dns = "yes" },
  expect = { result = "completed", exit = 0, outputs = { detect = { running = 2 } } },
}

t.case "the recovered service never passes its health check: all of it is undone" {
  params = PARAMS, secrets = SECRETS, fake = account { healthy_after = false },
  answers = { restore_db = "yes", switch_dns = "yes" },
  expect = {
    result = "rolled-back", exit = 1, failed = "verify", attempts = { verify = 6 },
    logs = { rebuild_app = "fake: terminated i%-n1,i%-n2", restore_db = "fake: deleted db1%-dr",
             open_incident = "fake: incident inc7: The automated recovery did not complete" },
  },
  check = function(j)
    local rb = {}
    for _, s in ipairs(j:rolled_back()) do rb[s] = true end
    for _, s in ipairs { "restore_db", "rebuild_app", "open_incident" } do
      assert(rb[s], s .. " was not rolled back")
    end
    assert(#j:approvals() == 1, "switch_dns is never asked")
  end,
}

t.case "the replica strategy: a promotion cannot be undone, its rollback says so" {
  params = merge(PARAMS, { db_strategy = "replica" }), secrets = SECRETS,
  fake = account { ec2_wait = function(q)
    drrun.sleep("20m")
    return nil, "timeout: instances not running after 20m", "timeout"
  end },
  answers = { restore_db = "yes" },
  expect = {
    result = "rolled-back", exit = 1, failed = "rebuild_app",
    errors = { rebuild_app = "instances not running after 20m" },
    outputs = { restore_db = { strategy = "replica", id = "db1-replica" } },
    logs = { restore_db = { "fake: promoted db1%-replica",
                            "a promotion cannot be undone" } },
  },
}

t.case "mode=pre-update: snapshots only, every failover step skipped" {
  params = merge(PARAMS, { mode = "pre-update" }), secrets = SECRETS, fake = account(),
  expect = {
    result = "completed", exit = 0, completed = { "snapshot_instances", "snapshot_db" },
    skipped = FAILOVER,
    outputs = { snapshot_instances = { snapshots = { "snap-i-p1", "snap-i-p2" } } },
  },
}
