-- aws-region-failover.lua: the disaster-recovery plan of a web service on
-- EC2 (instances from a launch template) with its PostgreSQL on RDS and its
-- name in Route 53, for an outage of its availability zone or its region.
--
--   drrun run runbooks/aws-region-failover.lua \
--     --param target_region=us-west-2 --param target_az=us-west-2a \
--     --param zone=Z0EXAMPLE1 --param record=www.example.com \
--     --param health_url=http://dr-lb.example.com/healthz --param page=PAGE_ID
--
-- Two modes (--param mode=...):
--   pre-update   before a risky change: tagged EBS snapshots of every web
--                instance and a manual RDS snapshot, each waited for.
--   failover     (the default) on an outage:
--     detect         the web instances in the primary region; if they all
--                    run and the health check passes, stop (abort): nothing
--                    to recover.  --param force=true skips the check.
--     page_oncall    PagerDuty, deduplicated per run.
--     open_incident  the status page says what happened.
--     restore_db     the database in the target region: a point-in-time
--                    restore (latest restorable time, or --param
--                    restore_time) from the primary's automated backups
--                    replicated there (or from the primary itself when the
--                    target is the same region, another AZ) or, with --param
--                    db_strategy=replica, the promotion of the cross-region
--                    read replica.  Asks first.
--     rebuild_app    new instances from the launch template in the target
--                    AZ, tagged with the run, waited for until running.
--     verify         health checks until they pass.
--     switch_dns     Route 53 points the record at the new instances (asks
--                    first).  The old record set is kept in the output.
--     announce       Slack, and the status page: monitoring.
-- Every step that changes something has its rollback: the restored database
-- is deleted, the new instances are terminated, the DNS record set is put
-- back exactly, the incident says the recovery was rolled back.  A promoted
-- replica cannot be demoted: its rollback says so in the log.
--
-- Credentials: the AWS CLI's chain (AWS_PROFILE, ~/.aws, an instance role,
-- or --param profile=...), and the declared secrets.  Safe under --dry-run:
-- every Describe/List is made, every change is described.
local ec2 = require "drrun.aws.ec2"
local rds = require "drrun.aws.rds"
local route53 = require "drrun.aws.route53"
local health = require "drrun.health"
local pagerduty = require "drrun.pagerduty"
local statuspage = require "drrun.statuspage"
local slack = require "drrun.slack"

runbook {
  name = "aws-region-failover",
  description = "Fail a web service on EC2, RDS and Route 53 over to another AZ or region",
  rto = "45m",
  rpo = "15m",
  params = {
    mode = { default = "failover", doc = "failover, or pre-update (snapshots before a change)" },
    region = { default = "us-east-1", doc = "the primary region" },
    target_region = { default = "us-west-2", doc = "where to recover" },
    target_az = { default = "", doc = "the AZ for the new instances (default: the region's a)" },
    profile = { default = "", doc = "an AWS CLI profile for every call (default: the chain)" },
    role = { default = "web", doc = "the tag:role of the web instances" },
    launch_template = { default = "web", doc = "the launch template of the web instances" },
    count = { default = 2, doc = "how many web instances to launch" },
    db = { default = "db1", doc = "the primary RDS instance" },
    db_strategy = { default = "pitr", doc = "pitr (restore in the target) or replica (promote it)" },
    replica = { default = "db1-replica", doc = "the read replica in the target region" },
    target_db = { default = "db1-dr", doc = "the name of the restored instance (pitr)" },
    restore_time = { default = "", doc = "restore to this time (RFC 3339) instead of the latest" },
    zone = { required = true, doc = "the Route 53 hosted zone id" },
    record = { required = true, doc = "the name to switch" },
    ttl = { default = 60, doc = "the TTL of the switched record" },
    health_url = { required = true, doc = "the health check of the recovered service" },
    page = { default = "", doc = "the Statuspage page id (empty: no status page)" },
    force = { default = false, doc = "fail over even if the primary looks healthy" },
    poll = { default = "15s", doc = "how often to ask AWS about waits" },
  },
  secrets = { "PAGERDUTY_ROUTING_KEY", "SLACK_WEBHOOK_URL", "STATUSPAGE_API_KEY" },
}

local function aws_opts(ctx, region, extra)
  local o = { region = region, interval = ctx.params.poll }
  if ctx.params.profile ~= "" then o.profile = ctx.params.profile end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end
local function primary(ctx, extra) return aws_opts(ctx, ctx.params.region, extra) end
local function target(ctx, extra) return aws_opts(ctx, ctx.params.target_region, extra) end

local function failover(ctx) return ctx.params.mode == "failover" end
local function pre_update(ctx) return ctx.params.mode == "pre-update" end

-- ---- before an update ------------------------------------------------------------

step "snapshot_instances" {
  phase = "provision",
  when = pre_update,
  timeout = "1h",
  doc = "tagged EBS snapshots of every volume of every web instance",
  run = function(ctx)
    local list = drrun.must(ec2.describe_instances(primary(ctx, {
      filters = { ["tag:role"] = ctx.params.role, ["instance-state-name"] = "running" } })))
    local snaps = {}
    for _, i in ipairs(list) do
      for _, s in ipairs(drrun.must(ec2.snapshot_instance(primary(ctx, { id = i.InstanceId,
          tags = { ["drrun-run"] = ctx.run_id, ["drrun-purpose"] = "pre-update" } })))) do
        snaps[#snaps + 1] = s.SnapshotId
      end
    end
    ctx.log("%d snapshots of %d instances", #snaps, #list)
    return { snapshots = snaps }
  end,
}

step "snapshot_db" {
  phase = "provision",
  when = pre_update,
  timeout = "2h",
  doc = "a manual RDS snapshot, tagged and waited for",
  run = function(ctx)
    local id = ("%s-pre-%s"):format(ctx.params.db, os.date("!%Y%m%d%H%M%S"))
    local s = drrun.must(rds.create_snapshot(primary(ctx, { instance = ctx.params.db, id = id,
      tags = { ["drrun-run"] = ctx.run_id }, wait = true })))
    return { snapshot = s.DBSnapshotIdentifier }
  end,
}

-- ---- the failover --------------------------------------------------------------------

step "detect" {
  phase = "detect",
  when = failover,
  timeout = "2m",
  doc = "stop when the primary still serves: nothing to recover",
  run = function(ctx)
    local list, err = ec2.describe_instances(primary(ctx, {
      filters = { ["tag:role"] = ctx.params.role } }))
    local running = 0
    for _, i in ipairs(list or {}) do
      if i.State.Name == "running" then running = running + 1 end
    end
    if not list then ctx.log("the primary region does not answer: %s", err) end
    ctx.log("primary %s: %d of %d web instances running", ctx.params.region, running,
      list and #list or 0)
    if list and running > 0 and running == #list and not ctx.params.force then
      ctx.abort(("all %d web instances in %s are running: nothing to fail over (force=true to go on)")
        :format(running, ctx.params.region))
    end
    return { running = running }
  end,
}

step "page_oncall" {
  when = failover,
  phase = "communicate",
  after = "detect",
  timeout = "1m",
  run = function(ctx)
    local ev = drrun.must(pagerduty.trigger { ctx = ctx, severity = "critical",
      summary = ("Failing %s over from %s to %s"):format(ctx.params.record, ctx.params.region,
        ctx.params.target_region), source = "drrun " .. ctx.run_id })
    return { dedup_key = ev.dedup_key }
  end,
}

step "open_incident" {
  phase = "communicate",
  after = "detect",
  when = function(ctx) return failover(ctx) and ctx.params.page ~= "" end,
  timeout = "2m",
  run = function(ctx)
    local inc = drrun.must(statuspage.incident { page = ctx.params.page, ctx = ctx,
      name = "Service disruption", status = "identified", impact_override = "major",
      body = "We are moving the service to our recovery region. We will post an update within 30 minutes." })
    return { id = inc.id }
  end,
  rollback = function(ctx, out)
    drrun.must(statuspage.update { page = ctx.params.page, incident = out.id, status = "identified",
      body = "The automated recovery did not complete; engineers are working on it." })
  end,
}

step "restore_db" {
  when = failover,
  phase = "restore",
  after = "page_oncall",
  timeout = "1h",
  once = true,
  approve = "Restore the database in the recovery region (a point-in-time restore, or the promotion of the read replica, which cannot be undone)?",
  run = function(ctx)
    local p = ctx.params
    if p.db_strategy == "replica" then
      drrun.must(rds.promote_replica(target(ctx, { id = p.replica })))
      local db = drrun.must(rds.wait_available(target(ctx, { id = p.replica, timeout = "50m" })))
      return { strategy = "replica", id = p.replica, address = db.Endpoint.Address }
    elseif p.db_strategy ~= "pitr" then
      error("db_strategy must be pitr or replica, not " .. p.db_strategy, 0)
    end
    -- ctx: the restore reports the point it restored to, for the RPO
    local opts = target(ctx, { source = p.db, source_region = p.region, target = p.target_db,
      tags = { ["drrun-run"] = ctx.run_id }, ctx = ctx })
    if p.restore_time ~= "" then opts.restore_time = p.restore_time else opts.latest = true end
    local _, point = drrun.must(rds.restore_to_point_in_time(opts))
    local db = drrun.must(rds.wait_available(target(ctx, { id = p.target_db, timeout = "50m" })))
    ctx.log("restored %s to %s (recovery point %s)", p.db, p.target_db,
      point and os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(point)) or "unknown")
    return { strategy = "pitr", id = p.target_db, address = db.Endpoint.Address,
             recovery_point = point }
  end,
  rollback = function(ctx, out)
    if out.strategy == "replica" then
      ctx.log("%s was promoted; a promotion cannot be undone: demote by hand if needed", out.id)
      return
    end
    drrun.must(rds.delete(target(ctx, { id = out.id, skip_final_snapshot = true })))
  end,
}

step "rebuild_app" {
  when = failover,
  phase = "provision",
  after = "page_oncall",
  timeout = "30m",
  doc = "web instances from the launch template in the target AZ, running",
  run = function(ctx)
    local p = ctx.params
    local az = p.target_az ~= "" and p.target_az or p.target_region .. "a"
    local made = drrun.must(ec2.run(target(ctx, { launch_template = p.launch_template,
      count = math.tointeger(p.count) or 2, az = az,
      tags = { role = p.role, ["drrun-run"] = ctx.run_id } })))
    local ids = {}
    for i, inst in ipairs(made) do ids[i] = inst.InstanceId end
    local up = drrun.must(ec2.wait(target(ctx, { ids = ids, state = "running", timeout = "20m" })))
    local ips = {}
    for i, inst in ipairs(up) do ips[i] = inst.PublicIpAddress or inst.PrivateIpAddress end
    return { ids = ids, addresses = ips, az = az }
  end,
  rollback = function(ctx, out)
    drrun.must(ec2.terminate(target(ctx, { ids = out.ids })))
  end,
}

step "verify" {
  when = failover,
  phase = "verify",
  after = { "restore_db", "rebuild_app" },
  retry = { attempts = 6, delay = "5s", backoff = 2, max_delay = "30s" },
  timeout = "1m",
  run = function(ctx)
    local ok, detail = health.http { url = ctx.params.health_url, status = 200, timeout = "10s" }
    if ctx.dry_run then return { detail = detail } end
    if not ok then error(detail, 0) end
    return { detail = detail }
  end,
}

step "switch_dns" {
  when = failover,
  phase = "dns",
  after = "verify",
  timeout = "15m",
  approve = "Point the service's DNS record at the recovered instances?",
  run = function(ctx)
    local addrs = ctx.outputs.rebuild_app.addresses
    if #addrs == 0 then error("no address to point the record at", 0) end
    return drrun.must(route53.switch(aws_opts(ctx, nil, { zone = ctx.params.zone,
      name = ctx.params.record, type = "A", values = addrs, ttl = math.tointeger(ctx.params.ttl) or 60,
      comment = "drrun " .. ctx.run_id })))
  end,
  rollback = function(ctx, out)
    drrun.must(route53.restore(out, aws_opts(ctx, nil)))
  end,
}

step "announce" {
  when = failover,
  phase = "communicate",
  after = "switch_dns",
  timeout = "2m",
  run = function(ctx)
    local db = ctx.outputs.restore_db
    local ok, err = slack.post { text = (":white_check_mark: %s now runs in %s (run %s), database %s")
      :format(ctx.params.record, ctx.params.target_region, ctx.run_id, db.id) }
    if not ok then ctx.log("could not tell Slack: %s", err) end
    local inc = ctx.outputs.open_incident
    if inc and inc.id then
      drrun.must(statuspage.update { page = ctx.params.page, incident = inc.id,
        status = "monitoring", body = "The service runs from our recovery region. We are monitoring." })
    end
  end,
}
