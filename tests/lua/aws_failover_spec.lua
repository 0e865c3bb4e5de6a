-- aws_failover_spec.lua: the seed plan runbooks/aws-region-failover.lua end
-- to end, in a child drrun against the fakes (AWS, PagerDuty, Statuspage,
-- Slack): a failover that completes, one whose DNS switch fails and is rolled
-- back, a dry run, a healthy primary that stops the run, and the pre-update
-- snapshots.  The fakes' state is what is checked, not the run's own account.
local exec = require "drrun.exec"

runbook { name = "aws-failover-spec" }

local T, F = require "lib.spec", require "lib.saas"
local eq, has = T.eq, T.has
local reset, state = F.reset, F.state

local S = {}
local RUNBOOK = "../../runbooks/aws-region-failover.lua"

local function child(params, args)
	local drrun = T.run { "bash", "-c", "readlink /proc/$PPID/exe" }:gsub("%s+$", "")
	local argv = { drrun, "run", "--no-color", "--yes", "--state-dir", S.tmp .. "/state" }
	for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
	local p = { zone = "Z0EXAMPLE1", record = "www.example.com", poll = "100ms",
		health_url = os.getenv("DRRUN_TEST_HTTP") .. "/healthz", page = "kctbh9vrtdwd" }
	for k, v in pairs(params or {}) do p[k] = v end
	local keys = {}
	for k in pairs(p) do keys[#keys + 1] = k end
	table.sort(keys)
	for _, k in ipairs(keys) do
		argv[#argv + 1] = "--param"
		argv[#argv + 1] = k .. "=" .. tostring(p[k])
	end
	argv[#argv + 1] = RUNBOOK
	argv.env = { HOME = S.tmp, AWS_EC2_METADATA_DISABLED = "true", AWS_PROFILE = "",
		AWS_ENDPOINT_URL = os.getenv("DRRUN_TEST_AWS_URL"),
		AWS_ACCESS_KEY_ID = os.getenv("DRRUN_TEST_AWS_KEY"),
		AWS_SECRET_ACCESS_KEY = os.getenv("DRRUN_TEST_AWS_SECRET"),
		PAGERDUTY_ROUTING_KEY = os.getenv("DRRUN_TEST_PAGERDUTY_KEY"),
		SLACK_WEBHOOK_URL = os.getenv("DRRUN_TEST_SLACK_WEBHOOK"),
		STATUSPAGE_API_KEY = os.getenv("DRRUN_TEST_STATUSPAGE_KEY") }
	argv.timeout = "90s"
	local r = assert(exec.run(argv))
	return r.status, r.stdout .. r.stderr
end

local function reset_all()
	for _, f in ipairs { "aws", "pagerduty", "statuspage", "slack" } do reset(f) end
end

local function region(name) return state("aws").regions[name] end

local function www()
	local z = state("aws").zones.Z0EXAMPLE1.records["www.example.com.|A|"]
	return z.values[1], z.ttl
end

local function incident()
	for _, i in ipairs(state("statuspage").incidents) do
		if i.name == "Service disruption" then return i end
	end
	error("no incident was opened", 2)
end

local function writes()
	local out = {}
	for _, c in ipairs(state("aws").calls) do
		local a = c.action
		if not (a:match("^Describe") or a:match("^GET") or a:match("^List") or a:match("^Get")) then
			out[#out + 1] = c.service .. " " .. a
		end
	end
	return out
end

step "setup" {
	run = function()
		for _, v in ipairs { "DRRUN_TEST_AWS_URL", "DRRUN_TEST_PAGERDUTY_KEY", "DRRUN_TEST_SLACK_WEBHOOK" } do
			if not os.getenv(v) then error(v .. " is not set: run the specs with tests/run.sh", 0) end
		end
		S.tmp = T.run { "mktemp", "-d" }:gsub("%s+$", "")
	end,
}

step "healthy-primary-stops" {
	after = "setup",
	doc = "every web instance of the primary runs: the run stops at detect and changes nothing",
	run = function()
		reset_all()
		local st, out = child {}
		eq(st, 3, "exit 3 (aborted): " .. out)
		has(out, "nothing to fail over", "says why")
		eq(#writes(), 0, "nothing changed in AWS")
	end,
}

step "failover-completes" {
	after = "healthy-primary-stops",
	doc = "restore in the target region, new instances, health check, DNS switched, people told",
	run = function()
		reset_all()
		local st, out = child { force = true }
		eq(st, 0, "exit 0: " .. out)
		local west = region("us-west-2")
		eq(west.dbs["db1-dr"].status, "available", "the database restored in us-west-2")
		local mine = {}
		for _, i in pairs(west.instances) do
			if i.tags["drrun-run"] then mine[#mine + 1] = i end
		end
		eq(#mine, 2, "two new instances")
		eq(mine[1].state, "running", "running")
		eq(mine[1].az, "us-west-2a", "in the target AZ")
		local addr, ttl = www()
		local ok = addr == mine[1].ip or addr == mine[2].ip
		eq(ok, true, "www points at a new instance (" .. tostring(addr) .. ")")
		eq(ttl, 60, "with the new TTL")
		eq(#state("pagerduty").events, 1, "on-call paged once")
		eq(incident().status, "monitoring", "the status page says monitoring")
		eq(#state("slack").messages, 1, "the team told")
		has(state("slack").messages[1].text, "us-west-2", "where it runs now")
	end,
}

step "switch-fails-rolls-back" {
	after = "failover-completes",
	doc = "the DNS switch fails: new instances terminated, restored database deleted, record untouched",
	run = function()
		reset_all()
		local st, out = child { force = true, zone = "ZNOPE0000" }
		eq(st, 1, "exit 1 (failed, rolled back): " .. out)
		has(out, "NoSuchHostedZone", "why")
		local west = region("us-west-2")
		local db = west.dbs["db1-dr"]
		eq(db == nil or db.status == "deleting", true, "the restored database is being deleted")
		for _, i in pairs(west.instances) do
			if i.tags["drrun-run"] then
				eq(i.state == "shutting-down" or i.state == "terminated", true, "instance " .. i.id .. " terminated")
			end
		end
		eq((www()), "192.0.2.10", "www untouched")
		local updates = incident().incident_updates
		local said = false
		for _, u in ipairs(updates) do
			if (u.body or ""):find("did not complete", 1, true) then said = true end
		end
		eq(said, true, "the incident says the recovery did not complete")
	end,
}

step "dry-run-reads-only" {
	after = "switch-fails-rolls-back",
	doc = "--dry-run: the Describe calls are made, every change is described, nothing changes",
	run = function()
		reset_all()
		local st, out = child({ force = true }, { "--dry-run" })
		eq(st, 0, "exit 0: " .. out)
		eq(#writes(), 0, "no write reached AWS: " .. table.concat(writes(), ", "))
		has(out, "would call rds RestoreDBInstanceToPointInTime", "the restore described")
		has(out, "would call ec2 RunInstances", "the launch described")
		eq(#state("pagerduty").events, 0, "nobody paged")
	end,
}

step "pre-update-snapshots" {
	after = "dry-run-reads-only",
	doc = "mode=pre-update: tagged EBS snapshots of every web instance and an RDS snapshot",
	run = function()
		reset_all()
		local st, out = child { mode = "pre-update" }
		eq(st, 0, "exit 0: " .. out)
		local east = region("us-east-1")
		local n = 0
		for _, s in pairs(east.snapshots) do
			if s.tags["drrun-purpose"] == "pre-update" then
				n = n + 1
				eq(s.state, "completed", "waited for")
			end
		end
		eq(n, 2, "one snapshot per web instance volume")
		local manual = 0
		for _, s in pairs(east.dbsnapshots) do
			if s.type == "manual" then manual = manual + 1 end
		end
		eq(manual, 1, "one manual RDS snapshot")
		eq(#state("pagerduty").events, 0, "no page for a snapshot")
		reset_all()
	end,
}
