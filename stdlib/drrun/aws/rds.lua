-- drrun.aws.rds: find, snapshot, restore, promote, wait for and delete RDS
-- instances, over drrun.aws (the query protocol).  Field names are RDS's own
-- (DBInstanceIdentifier, DBInstanceStatus, Endpoint.Address, ...).  The
-- restore functions return the instance and the recovery point they
-- restored to (epoch seconds), the figure a drill's RPO is measured from;
-- given ctx = ctx (the step's), they report it with ctx.recovery_point too.
-- Every call takes drrun.aws's options (region, profile, credentials, ...).
local aws = require "drrun.aws"
local dcore = require "drrun.core"

local M = {}

local NUMBERS = { Port = true, AllocatedStorage = true, PercentProgress = true,
                  BackupRetentionPeriod = true }
local BOOLEANS = { MultiAZ = true, PubliclyAccessible = true, DeletionProtection = true,
                   StorageEncrypted = true, IAMDatabaseAuthenticationEnabled = true }

-- strings to numbers and booleans where RDS's API has them
local function typed(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    if type(x) == "string" and NUMBERS[k] then x = tonumber(x) or x
    elseif BOOLEANS[k] and (x == "true" or x == "false") then x = x == "true" end
    out[k] = typed(x)
  end
  return out
end

local function tags(t)
  if not t or next(t) == nil then return nil end
  local list, keys = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do list[#list + 1] = { Key = k, Value = tostring(t[k]) } end
  return list
end

local function call(op, params, opts, extra)
  local o = aws.pick(opts)
  for k, v in pairs(extra or {}) do o[k] = v end
  return aws.call("rds", op, params, o)
end

-- ---- reading -------------------------------------------------------------------

-- rds.describe_instances{ id | filters = { ["db-instance-id"] = {...} } }
--   -> every instance (all pages)
function M.describe_instances(opts)
  aws.args(opts, "rds.describe_instances")
  local out, marker = {}, nil
  repeat
    local f
    if opts.filters then
      f = {}
      for k, v in pairs(opts.filters) do
        f[#f + 1] = { Name = k, ["Values.Value"] = type(v) == "table" and v or { v } }
      end
    end
    local r, err, tok, code = call("DescribeDBInstances", { DBInstanceIdentifier = opts.id,
      ["Filters.Filter"] = f, Marker = marker, MaxRecords = not opts.id and 100 or nil }, opts)
    if not r then return nil, err, tok, code end
    for _, db in ipairs(aws.list(r.result.DBInstances)) do out[#out + 1] = typed(db) end
    marker = r.result.Marker
    if marker == "" then marker = nil end
  until not marker
  return out
end

-- rds.instance{ id } -> the instance | nil, err, "not_found"
function M.instance(opts)
  aws.args(opts, "rds.instance", { "id" })
  local list, err, tok, code = M.describe_instances(opts)
  if not list then return nil, err, tok, code end
  return list[1]
end

-- rds.snapshots{ instance, type = "automated" | "manual" | ..., id }
--   -> snapshots, oldest first
function M.snapshots(opts)
  aws.args(opts, "rds.snapshots")
  local r, err, tok, code = call("DescribeDBSnapshots", { DBInstanceIdentifier = opts.instance,
    SnapshotType = opts.type, DBSnapshotIdentifier = opts.id }, opts)
  if not r then return nil, err, tok, code end
  local list = {}
  for _, s in ipairs(aws.list(r.result.DBSnapshots)) do list[#list + 1] = typed(s) end
  table.sort(list, function(a, b)
    return (aws.parse_time(a.SnapshotCreateTime) or 0) < (aws.parse_time(b.SnapshotCreateTime) or 0)
  end)
  return list
end

-- rds.latest_snapshot{ instance, type } -> the newest available snapshot |
-- nil, err, "not_found"
function M.latest_snapshot(opts)
  aws.args(opts, "rds.latest_snapshot", { "instance" })
  local list, err, tok, code = M.snapshots(opts)
  if not list then return nil, err, tok, code end
  for i = #list, 1, -1 do
    if list[i].Status == "available" then return list[i] end
  end
  return nil, ("aws: rds: no available %ssnapshot of %s"):format(opts.type and (opts.type .. " ") or "",
    opts.instance), "not_found"
end

-- ---- waiting -------------------------------------------------------------------

-- botocore's DBInstanceAvailable acceptors
local FAILED = { deleted = true, deleting = true, failed = true,
                 ["incompatible-restore"] = true, ["incompatible-parameters"] = true }

-- rds.wait_available{ id, timeout = "40m", interval = "30s" } -> the instance
function M.wait_available(opts)
  aws.args(opts, "rds.wait_available", { "id" })
  local timeout, interval = aws.secs(opts.timeout, 2400), aws.secs(opts.interval, 30)
  if dcore.dry_run() then
    dcore.log(("would wait for %s to be available"):format(opts.id))
    return { DBInstanceIdentifier = opts.id, DBInstanceStatus = "available", dry_run = true,
             Endpoint = { Address = opts.id .. ".dry-run.invalid", Port = 5432 } }
  end
  return aws.poll(function()
    local db, err, tok, code = M.instance(opts)
    if not db then return false, err, tok, code end
    local st = db.DBInstanceStatus
    if st == "available" then return db end
    if FAILED[st] then
      return false, ("aws: rds: %s is %s, so it will not become available"):format(opts.id, st), "failed"
    end
    return nil, ("%s is still %s"):format(opts.id, st)
  end, timeout, interval, "rds")
end

-- rds.wait_snapshot{ id, timeout = "1h", interval = "30s" } -> the snapshot
function M.wait_snapshot(opts)
  aws.args(opts, "rds.wait_snapshot", { "id" })
  local timeout, interval = aws.secs(opts.timeout, 3600), aws.secs(opts.interval, 30)
  if dcore.dry_run() then
    dcore.log(("would wait for snapshot %s to be available"):format(opts.id))
    return { DBSnapshotIdentifier = opts.id, Status = "available", dry_run = true }
  end
  return aws.poll(function()
    local list, err, tok, code = M.snapshots({ id = opts.id, region = opts.region,
      profile = opts.profile, credentials = opts.credentials, endpoint_url = opts.endpoint_url })
    if not list then return false, err, tok, code end
    local s = list[1]
    if s and s.Status == "available" then return s end
    if s and (s.Status == "failed" or s.Status == "deleted") then
      return false, ("aws: rds: snapshot %s is %s"):format(opts.id, s.Status), "failed"
    end
    return nil, ("snapshot %s is still %s"):format(opts.id, s and s.Status or "missing")
  end, timeout, interval, "rds")
end

-- ---- changing ------------------------------------------------------------------

-- rds.create_snapshot{ instance, id, tags, wait = false } -> the snapshot
function M.create_snapshot(opts)
  aws.args(opts, "rds.create_snapshot", { "instance", "id" })
  local r, err, tok, code = call("CreateDBSnapshot", { DBInstanceIdentifier = opts.instance,
    DBSnapshotIdentifier = opts.id, ["Tags.Tag"] = tags(opts.tags) }, opts, {
    verify = function()
      local s = M.snapshots({ id = opts.id, region = opts.region, profile = opts.profile,
        credentials = opts.credentials, endpoint_url = opts.endpoint_url })
      if s and s[1] then return { result = { DBSnapshot = s[1] } } end
      return s and false or nil
    end })
  if not r then return nil, err, tok, code end
  if r.dry_run then return { dry_run = true, DBSnapshotIdentifier = opts.id, Status = "creating" } end
  local snap = typed(r.result.DBSnapshot)
  if opts.wait then return M.wait_snapshot(setmetatable({ id = opts.id }, { __index = opts })) end
  return snap
end

-- The options every restore shares, as RDS's parameters.
local function restore_params(opts, p)
  p.DBInstanceClass = opts.class
  p.DBSubnetGroupName = opts.subnet_group
  p.MultiAZ = opts.multi_az
  p.AvailabilityZone = opts.az
  p.PubliclyAccessible = opts.public
  p.DBParameterGroupName = opts.parameter_group
  p.DeletionProtection = opts.deletion_protection
  p.Port = opts.port
  p.StorageType = opts.storage_type
  p["VpcSecurityGroupIds.VpcSecurityGroupId"] = opts.security_groups
  p["Tags.Tag"] = tags(opts.tags)
  return p
end

-- ctx = the step's ctx, or nothing
local function check_ctx(opts, who)
  local c = opts.ctx
  if c ~= nil and not (type(c) == "table" and type(c.recovery_point) == "function") then
    error(("%s: ctx must be the step's ctx (run = function(ctx) ... ctx = ctx)"):format(who), 3)
  end
end

-- A restore started (not under --dry-run) reaches point: reported to the
-- step's ctx when the call was given one, as a runbook would by hand.
local function report(opts, point)
  if not opts.ctx then return end
  if point then opts.ctx.recovery_point(point)
  else dcore.log("rds: the recovery point is not known: none reported") end
end

-- A restore is not idempotent: after a failure that may hide a success, it
-- looks for the target, and a second attempt that finds it there already
-- (DBInstanceAlreadyExists) adopts it only when this call made it.
local function restore(op, params, opts, target, point)
  local sent = false
  local function look()
    local db = M.instance({ id = target, region = opts.region, profile = opts.profile,
      credentials = opts.credentials, endpoint_url = opts.endpoint_url })
    if db then return { result = { DBInstance = db } } end
    return false
  end
  local r, err, tok, code = call(op, params, opts, { verify = function() sent = true return look() end })
  if not r and code == "DBInstanceAlreadyExists" and sent then
    r = look() or nil
  end
  if not r then return nil, err, tok, code end
  if r.dry_run then
    return { dry_run = true, DBInstanceIdentifier = target, DBInstanceStatus = "creating" }, point
  end
  report(opts, point)
  return typed(r.result.DBInstance), point
end

-- rds.automated_backup{ instance } -> the automated backups of an instance
-- kept in this region (replicated from another, for cross-region recovery) |
-- nil, err, "not_found"
function M.automated_backup(opts)
  aws.args(opts, "rds.automated_backup", { "instance" })
  local r, err, tok, code = call("DescribeDBInstanceAutomatedBackups",
    { DBInstanceIdentifier = opts.instance }, opts)
  if not r then return nil, err, tok, code end
  local list = aws.list(r.result.DBInstanceAutomatedBackups)
  if #list == 0 then
    return nil, ("aws: rds: no automated backups of %s in %s"):format(opts.instance,
      aws.region(opts)), "not_found"
  end
  return typed(list[1])
end

-- rds.restore_from_snapshot{ snapshot, target, class, subnet_group,
--   security_groups, multi_az, az, tags, ctx, ... } -> instance,
-- recovery_point (the snapshot's creation time)
function M.restore_from_snapshot(opts)
  aws.args(opts, "rds.restore_from_snapshot", { "snapshot", "target" })
  check_ctx(opts, "rds.restore_from_snapshot")
  local snaps, err, tok, code = M.snapshots({ id = opts.snapshot, region = opts.region,
    profile = opts.profile, credentials = opts.credentials, endpoint_url = opts.endpoint_url })
  if not snaps then return nil, err, tok, code end
  local point = snaps[1] and aws.parse_time(snaps[1].SnapshotCreateTime)
  return restore("RestoreDBInstanceFromDBSnapshot", restore_params(opts, {
    DBInstanceIdentifier = opts.target, DBSnapshotIdentifier = opts.snapshot }), opts,
    opts.target, point)
end

-- rds.restore_to_point_in_time{ source, target, restore_time = "...Z" (or
--   epoch seconds) | latest = true, source_region, ctx, ... } -> instance,
-- recovery_point (the restore time, or the latest restorable time when
-- latest).  With source_region other than the call's region, the restore
-- uses the source's automated backups replicated to this region.
function M.restore_to_point_in_time(opts)
  aws.args(opts, "rds.restore_to_point_in_time", { "source", "target" })
  check_ctx(opts, "rds.restore_to_point_in_time")
  local latest = opts.latest or opts.use_latest_restorable_time
  if (opts.restore_time ~= nil) == (latest == true) then
    error("rds.restore_to_point_in_time: give exactly one of restore_time and latest = true", 2)
  end
  local p = { TargetDBInstanceIdentifier = opts.target }
  local point
  local cross = opts.source_region and opts.source_region ~= aws.region(opts)
  if cross then
    -- another region's instance: from its automated backups replicated
    -- here, so the restore does not need the source region to answer
    local b, err, tok, code = M.automated_backup({ instance = opts.source, region = opts.region,
      profile = opts.profile, credentials = opts.credentials, endpoint_url = opts.endpoint_url })
    if not b then return nil, err, tok, code end
    p.SourceDBInstanceAutomatedBackupsArn = b.DBInstanceAutomatedBackupsArn
    if latest then point = aws.parse_time(b.RestoreWindow and b.RestoreWindow.LatestTime) end
  else
    p.SourceDBInstanceIdentifier = opts.source
  end
  if latest then
    p.UseLatestRestorableTime = true
    if not cross then
      local src, err, tok, code = M.instance({ id = opts.source, region = opts.region,
        profile = opts.profile, credentials = opts.credentials, endpoint_url = opts.endpoint_url })
      if not src then return nil, err, tok, code end
      point = aws.parse_time(src.LatestRestorableTime)
    end
  else
    point = aws.parse_time(opts.restore_time)
    if not point then
      error(("rds.restore_to_point_in_time: restore_time %q is not a time (2026-11-30T22:00:00Z)")
        :format(tostring(opts.restore_time)), 2)
    end
    p.RestoreTime = aws.format_time(point)
  end
  return restore("RestoreDBInstanceToPointInTime", restore_params(opts, p), opts, opts.target, point)
end

-- rds.copy_snapshot{ source (an id, or an ARN for another region), target,
--   source_region, region, kms_key, tags } -> the new snapshot
function M.copy_snapshot(opts)
  aws.args(opts, "rds.copy_snapshot", { "source", "target" })
  local r, err, tok, code = call("CopyDBSnapshot", { SourceDBSnapshotIdentifier = opts.source,
    TargetDBSnapshotIdentifier = opts.target, SourceRegion = opts.source_region,
    KmsKeyId = opts.kms_key, ["Tags.Tag"] = tags(opts.tags) }, opts)
  if not r then return nil, err, tok, code end
  if r.dry_run then return { dry_run = true, DBSnapshotIdentifier = opts.target } end
  return typed(r.result.DBSnapshot)
end

-- rds.promote_replica{ id, retention } -> the instance (modifying, then
-- available: wait_available)
function M.promote_replica(opts)
  aws.args(opts, "rds.promote_replica", { "id" })
  local r, err, tok, code = call("PromoteReadReplica", { DBInstanceIdentifier = opts.id,
    BackupRetentionPeriod = opts.retention }, opts)
  if not r then return nil, err, tok, code end
  if r.dry_run then return { dry_run = true, DBInstanceIdentifier = opts.id } end
  return typed(r.result.DBInstance)
end

-- rds.delete{ id, skip_final_snapshot = true | final_snapshot = "name" }
--   -> the instance (deleting).  The rollback of a restore.
function M.delete(opts)
  aws.args(opts, "rds.delete", { "id" })
  if not opts.skip_final_snapshot and not opts.final_snapshot then
    error("rds.delete: say skip_final_snapshot = true or name a final_snapshot", 2)
  end
  local r, err, tok, code = call("DeleteDBInstance", { DBInstanceIdentifier = opts.id,
    SkipFinalSnapshot = opts.skip_final_snapshot and true or nil,
    FinalDBSnapshotIdentifier = opts.final_snapshot }, opts, { idempotent = true })
  if not r then return nil, err, tok, code end
  if r.dry_run then return { dry_run = true, DBInstanceIdentifier = opts.id } end
  return typed(r.result.DBInstance)
end

return M
