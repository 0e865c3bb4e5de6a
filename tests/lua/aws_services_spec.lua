-- aws_services_spec.lua: drrun.aws.ec2, drrun.aws.rds and drrun.aws.route53
-- against the aws fake of tests/fakes (seeded instances, db1 with automated
-- snapshots, zone Z0EXAMPLE1; transitions every 300 ms).  The fake checks
-- every signature with botocore's signer, so each call here is also a
-- signing test of another protocol.  tests/run.sh starts the fake.
local ec2 = require "drrun.aws.ec2"
local rds = require "drrun.aws.rds"
local route53 = require "drrun.aws.route53"
local aws = require "drrun.aws"

runbook { name = "aws-services-spec" }

local T, F = require "lib.spec", require "lib.saas"
local eq, has, raises = T.eq, T.has, T.raises
local fails = T.service_fails("aws") -- the modules' messages start "aws: " (or rds:, ec2: ...)
local config, reset, state = F.config, F.reset, F.state

local O = { endpoint_url = os.getenv("DRRUN_TEST_AWS_URL"), region = "us-east-1",
	credentials = { access_key = os.getenv("DRRUN_TEST_AWS_KEY"),
		secret_key = os.getenv("DRRUN_TEST_AWS_SECRET") } }
local FAST = { interval = "100ms", timeout = "10s" }

local function with(...)
	local o = {}
	for _, t in ipairs { O, ... } do
		for k, v in pairs(t) do o[k] = v end
	end
	return o
end

local function calls(action)
	local n = 0
	for _, c in ipairs(state("aws").calls) do
		if c.action == action then n = n + 1 end
	end
	return n
end

step "fakes" {
	run = function()
		if not O.endpoint_url then error("DRRUN_TEST_AWS_URL is not set: run the specs with tests/run.sh", 0) end
		reset("aws")
	end,
}

step "ec2-instances" {
	after = "fakes",
	doc = "describe with filters, stop and wait with botocore's waiter semantics, start again",
	run = function()
		local web = assert(ec2.describe_instances(with { filters = { ["tag:role"] = "web",
			["instance-state-name"] = "running" } }))
		eq(#web, 2, "two running web instances")
		eq(web[1].State.Name, "running", "State.Name")
		eq(web[1].State.Code, 16, "State.Code is a number")
		eq(ec2.tags(web[1].Tags).role, "web", "Tags as Key/Value")
		has(web[1].Placement.AvailabilityZone, "us-east-1", "Placement")
		local id = web[1].InstanceId
		local st = assert(ec2.stop(with { ids = { id } }))
		eq(st[1].CurrentState.Name, "stopping", "stopping")
		eq(st[1].PreviousState.Name, "running", "previous state")
		local done = assert(ec2.wait(with(FAST, { ids = { id }, state = "stopped" })))
		eq(done[1].State.Name, "stopped", "waited until stopped")
		-- waiting for running while it is stopped: the waiter's failure state
		assert(ec2.start(with { ids = { id } }))
		assert(ec2.wait(with(FAST, { ids = { id }, state = "running" })))
		assert(ec2.terminate(with { ids = { web[2].InstanceId } }))
		local v, err, tok = ec2.wait(with(FAST, { ids = { web[2].InstanceId }, state = "running" }))
		has(fails("failed", v, err, tok), "so it will not be running", "waiter failure state")
		v, err, tok = ec2.describe_instances(with { ids = { "i-00000000000dead0" } })
		fails("not_found", v, err, tok)
		has(raises(ec2.stop, with { ids = { "web-1" } }), "is not an instance id", "bad id")
		local tmo, e2, t2 = ec2.wait(with { ids = { id }, state = "stopped", interval = "50ms",
			timeout = "120ms" })
		has(fails("timeout", tmo, e2, t2), "not every instance is stopped", "timeout names the laggard")
	end,
}

step "ec2-run-idempotent" {
	after = "ec2-instances",
	doc = "run from a launch template: a retried call returns the same instances (ClientToken)",
	run = function()
		local a = assert(ec2.run(with { launch_template = "web", count = 2, az = "us-east-1b",
			tags = { ["drrun-run"] = "spec" } }))
		local b = assert(ec2.run(with { launch_template = "web", count = 2, az = "us-east-1b",
			tags = { ["drrun-run"] = "spec" } }))
		eq(#a, 2, "two instances")
		eq(a[1].InstanceId, b[1].InstanceId, "the same instances on a repeat")
		eq(a[1].State.Name, "pending", "pending")
		local ids = { a[1].InstanceId, a[2].InstanceId }
		assert(ec2.wait(with(FAST, { ids = ids, state = "running" })))
		local v, err, tok = ec2.run(with { launch_template = "nope" })
		fails("not_found", v, err, tok)
	end,
}

step "ec2-snapshots" {
	after = "ec2-run-idempotent",
	doc = "snapshot every volume of an instance, wait for completed, copy to another region",
	run = function()
		local i = assert(ec2.describe_instances(with { filters = { ["tag:role"] = "worker" } }))[1]
		local snaps = assert(ec2.snapshot_instance(with(FAST, { id = i.InstanceId,
			tags = { drrun = "pre-update" } })))
		eq(#snaps, 1, "one volume")
		eq(snaps[1].State, "completed", "waited for completed")
		eq(ec2.tags(snaps[1].Tags).drrun, "pre-update", "tagged")
		local copy = assert(ec2.copy_snapshot(with { id = snaps[1].SnapshotId,
			source_region = "us-east-1", region = "us-west-2" }))
		has(copy, "snap-", "copied")
		local done = assert(ec2.wait_snapshot(with(FAST, { id = copy, region = "us-west-2" })))
		eq(done.State, "completed", "the copy completes")
	end,
}

step "rds-restore" {
	after = "fakes",
	doc = "latest snapshot, point-in-time restore with its recovery point, wait, delete",
	run = function(ctx)
		-- the step's ctx, recording what the restores report to it
		local reported = {}
		local rctx = setmetatable({ recovery_point = function(t)
			reported[#reported + 1] = t
			ctx.recovery_point(t)
		end }, { __index = ctx })
		local snap = assert(rds.latest_snapshot(with { instance = "db1", type = "automated" }))
		has(snap.DBSnapshotIdentifier, "rds:db1-", "the newest automated snapshot")
		local src = assert(rds.instance(with { id = "db1" }))
		local db, point = rds.restore_to_point_in_time(with { source = "db1", target = "db1-dr",
			latest = true, ctx = rctx })
		assert(db, point)
		eq(db.DBInstanceStatus, "creating", "creating")
		eq(type(point), "number", "a recovery point")
		assert(math.abs(point - aws.parse_time(src.LatestRestorableTime)) <= 1,
			"latest: the source's LatestRestorableTime " .. src.LatestRestorableTime)
		eq(#reported, 1, "reported to ctx")
		eq(reported[1], point, "the point returned is the point reported")
		local ready = assert(rds.wait_available(with(FAST, { id = "db1-dr" })))
		has(ready.Endpoint.Address, "db1-dr.", "Endpoint.Address")
		eq(ready.Endpoint.Port, 5432, "Port is a number")
		-- the same restore again is a conflict, not a second instance
		local v, err, tok, code = rds.restore_to_point_in_time(with { source = "db1",
			target = "db1-dr", latest = true, ctx = rctx })
		fails("conflict", v, err, tok)
		eq(#reported, 1, "a restore that failed reports nothing")
		eq(code, "DBInstanceAlreadyExists", "code")
		local t = aws.format_time(os.time() - 3600)
		local db2, p2 = assert(rds.restore_to_point_in_time(with { source = "db1",
			target = "db1-pitr", restore_time = t, ctx = rctx }))
		eq(p2, aws.parse_time(t), "the recovery point is the restore time")
		eq(reported[2], p2, "the restore time reported")
		local db3, p3 = assert(rds.restore_from_snapshot(with { snapshot = snap.DBSnapshotIdentifier,
			target = "db1-snap", class = "db.t3.micro", tags = { drrun = "drill" }, ctx = rctx }))
		eq(p3, aws.parse_time(snap.SnapshotCreateTime), "the snapshot's time")
		eq(reported[3], p3, "the snapshot's time reported")
		eq(#reported, 3, "one report per restore")
		has(raises(rds.restore_from_snapshot, with { snapshot = "s", target = "x", ctx = "ctx" }),
			"rds.restore_from_snapshot: ctx must be the step's ctx", "ctx that is not one")
		eq(db3.DBInstanceIdentifier, "db1-snap", "restored")
		has(raises(rds.restore_to_point_in_time, with { source = "db1", target = "x" }),
			"exactly one of restore_time and latest", "misuse")
		has(raises(rds.delete, with { id = "db1-dr" }), "skip_final_snapshot", "delete needs a choice")
		local gone = assert(rds.delete(with { id = "db1-dr", skip_final_snapshot = true }))
		eq(gone.DBInstanceStatus, "deleting", "deleting")
		v, err, tok = rds.wait_available(with(FAST, { id = "db1-pitr" }))
		assert(v, err)
		eq(db2.DBInstanceIdentifier, "db1-pitr", "restored to a point in time")
	end,
}

step "rds-snapshot-and-replica" {
	after = "rds-restore",
	doc = "a manual snapshot before a change, a cross-region copy, promoting the replica",
	run = function()
		local s = assert(rds.create_snapshot(with(FAST, { instance = "db1", id = "pre-change",
			tags = { drrun = "pre" }, wait = true })))
		eq(s.Status, "available", "waited")
		local c = assert(rds.copy_snapshot(with { source =
			"arn:aws:rds:us-east-1:123456789012:snapshot:pre-change", target = "pre-change-west",
			source_region = "us-east-1", region = "us-west-2" }))
		eq(c.DBSnapshotIdentifier, "pre-change-west", "copied")
		local p = assert(rds.promote_replica(with { id = "db1-replica", region = "us-west-2" }))
		eq(p.DBInstanceIdentifier, "db1-replica", "promoted")
		assert(rds.wait_available(with(FAST, { id = "db1-replica", region = "us-west-2" })))
		local v, err, tok = rds.promote_replica(with { id = "db1" })
		fails("invalid", v, err, tok)
	end,
}

step "rds-throttled" {
	after = "rds-snapshot-and-replica",
	doc = "a throttled describe is retried; a throttled restore too (it was not processed)",
	run = function()
		config("aws", { throttle = { service = "rds", action = "DescribeDBInstances", count = 1 } })
		assert(rds.instance(with { id = "db1" }))
		config("aws", { throttle = { service = "rds", action = "RestoreDBInstanceToPointInTime",
			count = 1 } })
		local before = calls("RestoreDBInstanceToPointInTime")
		assert(rds.restore_to_point_in_time(with { source = "db1", target = "db1-retried",
			latest = true }))
		eq(calls("RestoreDBInstanceToPointInTime") - before, 1, "one restore accepted")
		config("aws", { throttle = nil })
	end,
}

step "route53-switch-and-restore" {
	after = "fakes",
	doc = "switch www to a new address, wait for INSYNC, and restore the old set exactly",
	run = function()
		local before = assert(route53.records(with { zone = "/hostedzone/Z0EXAMPLE1",
			name = "www.example.com", type = "A" }))
		eq(#before, 1, "one www A set")
		eq(before[1].TTL, 300, "TTL is a number")
		local out = assert(route53.switch(with(FAST, { zone = "Z0EXAMPLE1", name = "www.example.com",
			type = "A", values = { "192.0.2.44" }, ttl = 60 })))
		eq(out.previous.ResourceRecords[1].Value, "192.0.2.10", "the old set is in the output")
		eq(out.previous.TTL, 300, "with its TTL")
		local now = assert(route53.records(with { zone = "Z0EXAMPLE1", name = "www.example.com", type = "A" }))
		eq(now[1].ResourceRecords[1].Value, "192.0.2.44", "switched")
		eq(now[1].TTL, 60, "new TTL")
		assert(route53.restore(out, O))
		local back = assert(route53.records(with { zone = "Z0EXAMPLE1", name = "www.example.com", type = "A" }))
		eq(back[1].ResourceRecords[1].Value, "192.0.2.10", "restored")
		eq(back[1].TTL, 300, "TTL restored")
		-- a restore after someone else changed the record: conflict, nothing overwritten
		assert(route53.switch(with(FAST, { zone = "Z0EXAMPLE1", name = "www.example.com",
			values = { "192.0.2.50" } })))
		assert(route53.change(with(FAST, { zone = "Z0EXAMPLE1", changes = { { action = "UPSERT",
			name = "www.example.com", type = "A", ttl = 30, values = { "198.51.100.7" } } } })))
		local v, err, tok, code = route53.restore(out, O)
		fails("conflict", v, err, tok)
		eq(code, "InvalidChangeBatch", "code")
		local still = assert(route53.records(with { zone = "Z0EXAMPLE1", name = "www.example.com", type = "A" }))
		eq(still[1].ResourceRecords[1].Value, "198.51.100.7", "the other change stands")
		-- a new name: switch creates it, restore removes it
		local n = assert(route53.switch(with(FAST, { zone = "Z0EXAMPLE1", name = "dr.example.com",
			values = { "192.0.2.99" }, ttl = 60 })))
		eq(n.previous, nil, "nothing before")
		assert(route53.restore(n, O))
		eq(#assert(route53.records(with { zone = "Z0EXAMPLE1", name = "dr.example.com" })), 0, "removed")
		local x, e2, t2 = route53.records(with { zone = "ZNOPE" })
		fails("not_found", x, e2, t2)
		has(raises(route53.records, with { zone = "not a zone" }), "is not a hosted zone id", "bad zone")
	end,
}
