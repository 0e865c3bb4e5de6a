-- drrun.aws.ec2: instances and EBS snapshots, over drrun.aws (the ec2
-- protocol).  EC2's XML names (instanceId, instanceState, tagSet) are given
-- the names of EC2's API reference and the AWS CLI (InstanceId, State, Tags),
-- so what a runbook reads matches AWS's documentation.  Every call takes
-- drrun.aws's options (region, profile, credentials, endpoint_url, ...).
local aws = require "drrun.aws"
local dcore = require "drrun.core"

local M = {}

-- ---- names ---------------------------------------------------------------------

local RENAME = {
  instanceState = "State", currentState = "CurrentState", previousState = "PreviousState",
  ipAddress = "PublicIpAddress", blockDeviceMapping = "BlockDeviceMappings",
  status = "State", ebs = "Ebs",
}
local NUMBERS = { Code = true, VolumeSize = true, Size = true, AmiLaunchIndex = true }

local function api_name(k, parent)
  if RENAME[k] then
    -- a volume's or attachment's status is Status in the API; a snapshot's is State
    if k == "status" and parent ~= "snapshot" then return "Status" end
    return RENAME[k]
  end
  local base = k:match("^(.-)Set$")
  if base and base ~= "" then
    base = base:gsub("^%l", string.upper)
    return base:sub(-1) == "s" and base or base .. "s"
  end
  return (k:gsub("^%l", string.upper))
end

-- EC2's XML as the API reference names it.  kind: "snapshot" for snapshots.
local function api(v, kind)
  if type(v) ~= "table" then return v end
  local out = {}
  if #v > 0 then
    for i, x in ipairs(v) do out[i] = api(x, kind) end
    return out
  end
  for k, x in pairs(v) do
    local name = api_name(k, kind)
    if type(x) == "string" and NUMBERS[name] then x = tonumber(x) or x end
    if x == "" and (k:match("Set$") or k == "blockDeviceMapping") then x = {} end
    out[name] = api(x, kind)
  end
  return out
end
M.api = api

-- { Key = k, Value = v } lists as a plain table
function M.tags(list)
  local t = {}
  for _, kv in ipairs(list or {}) do t[kv.Key] = kv.Value end
  return t
end

-- ---- helpers -------------------------------------------------------------------

local function ids_of(opts, verb)
  local ids = opts.ids
  if type(ids) == "string" then ids = { ids } end
  if type(ids) ~= "table" or #ids == 0 then
    error(("ec2.%s: ids must be a list of instance ids"):format(verb), 3)
  end
  for _, id in ipairs(ids) do
    if type(id) ~= "string" or not id:match("^i%-%x+$") then
      error(("ec2.%s: %q is not an instance id (i-...)"):format(verb, tostring(id)), 3)
    end
  end
  return ids
end

local function filters(f)
  if not f then return nil end
  local out, keys = {}, {}
  for k in pairs(f) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = f[k]
    out[#out + 1] = { Name = k, Value = type(v) == "table" and v or { tostring(v) } }
  end
  return out
end

-- TagSpecification.N for a resource type from { key = value }
local function tag_specs(kind, tags)
  if not tags or next(tags) == nil then return nil end
  local list, keys = {}, {}
  for k in pairs(tags) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do list[#list + 1] = { Key = k, Value = tostring(tags[k]) } end
  return { { ResourceType = kind, Tag = list } }
end

local function call(op, params, opts)
  return aws.call("ec2", op, params, aws.pick(opts))
end

-- ---- instances -----------------------------------------------------------------

-- ec2.describe_instances{ ids = {...} | filters = { ["tag:role"] = "web" } }
--   -> a list of instances (every page)
function M.describe_instances(opts)
  aws.args(opts, "ec2.describe_instances")
  local out, token = {}, nil
  repeat
    local params = { Filter = filters(opts.filters), NextToken = token }
    if opts.ids then params.InstanceId = ids_of(opts, "describe_instances")
    else params.MaxResults = 1000 end
    local r, err, tok, code = call("DescribeInstances", params, opts)
    if not r then return nil, err, tok, code end
    if r.dry_run then return {} end
    for _, res in ipairs(aws.list(r.data.reservationSet)) do
      for _, i in ipairs(aws.list(res.instancesSet)) do out[#out + 1] = api(i) end
    end
    token = r.data.nextToken
    if token == "" then token = nil end
  until not token
  return out
end

local function change_state(op, key, opts, extra)
  local params = { InstanceId = ids_of(opts, op) }
  for k, v in pairs(extra or {}) do params[k] = v end
  local r, err, tok, code = call(op, params, opts)
  if not r then return nil, err, tok, code end
  if r.dry_run then return { dry_run = true } end
  return api(aws.list(r.data.instancesSet))
end

-- ec2.start{ ids } / ec2.stop{ ids, force, hibernate } / ec2.terminate{ ids }
--   -> a list of { InstanceId, CurrentState, PreviousState }.  Safe to repeat.
function M.start(opts)
  return change_state("StartInstances", "StartingInstances", aws.args(opts, "ec2.start", { "ids" }))
end
function M.stop(opts)
  aws.args(opts, "ec2.stop", { "ids" })
  return change_state("StopInstances", "StoppingInstances", opts,
    { Force = opts.force or nil, Hibernate = opts.hibernate or nil })
end
function M.terminate(opts)
  return change_state("TerminateInstances", "TerminatingInstances", aws.args(opts, "ec2.terminate", { "ids" }))
end
-- ec2.reboot{ ids } -> true
function M.reboot(opts)
  aws.args(opts, "ec2.reboot", { "ids" })
  local r, err, tok, code = call("RebootInstances", { InstanceId = ids_of(opts, "reboot") }, opts)
  if not r then return nil, err, tok, code end
  return true
end

-- The acceptors of botocore's waiters (ec2 waiters-2.json): the state every
-- instance must reach, and the states in which waiting is pointless.
local WAITERS = {
  running = { failure = { ["shutting-down"] = true, terminated = true, stopping = true } },
  stopped = { failure = { pending = true, terminated = true } },
  terminated = { failure = { pending = true, stopping = true } },
}

-- ec2.wait{ ids, state = "running" | "stopped" | "terminated",
--           timeout = "10m", interval = "15s" } -> the instances
function M.wait(opts)
  aws.args(opts, "ec2.wait", { "ids" })
  local state = opts.state or "running"
  local w = WAITERS[state]
  if not w then error(("ec2.wait: state must be running, stopped or terminated, not %q"):format(state), 2) end
  local ids = ids_of(opts, "wait")
  local timeout, interval = aws.secs(opts.timeout, 600), aws.secs(opts.interval, 15)
  if dcore.dry_run() then
    dcore.log(("would wait for %s to be %s"):format(table.concat(ids, ", "), state))
    local out = {}
    for i, id in ipairs(ids) do
      out[i] = { InstanceId = id, State = { Name = state }, PrivateIpAddress = "192.0.2.0", dry_run = true }
    end
    return out
  end
  return aws.poll(function()
    local list, err, tok, code = M.describe_instances(setmetatable({ filters = false }, { __index = opts }))
    if not list then return false, err, tok, code end
    local behind = {}
    for _, i in ipairs(list) do
      local s = i.State and i.State.Name
      if w.failure[s] then
        return false, ("aws: ec2: %s is %s, so it will not be %s"):format(i.InstanceId, s, state), "failed"
      end
      if s ~= state then behind[#behind + 1] = i.InstanceId .. " " .. tostring(s) end
    end
    if #behind == 0 and #list == #ids then return list end
    return nil, ("not every instance is %s (%s)"):format(state, table.concat(behind, ", "))
  end, timeout, interval, "ec2")
end

-- ec2.run{ launch_template = "name" | { id = "lt-..." , version }, count = 1,
--          az, subnet, instance_type, image, tags, client_token }
--   -> the new instances.  The client token (default: derived from the run,
--   the step and the arguments) makes a retried or resumed call return the
--   same instances instead of launching more.
function M.run(opts)
  aws.args(opts, "ec2.run")
  local params = { MinCount = opts.count or 1, MaxCount = opts.count or 1 }
  local lt = opts.launch_template
  if type(lt) == "string" then
    params["LaunchTemplate.LaunchTemplateName"] = lt
  elseif type(lt) == "table" then
    params["LaunchTemplate.LaunchTemplateId"] = lt.id
    params["LaunchTemplate.LaunchTemplateName"] = lt.name
    params["LaunchTemplate.Version"] = lt.version
  elseif not opts.image then
    error("ec2.run: launch_template or image is required", 2)
  end
  params.ImageId = opts.image
  params.InstanceType = opts.instance_type
  params["Placement.AvailabilityZone"] = opts.az
  params.SubnetId = opts.subnet
  params.TagSpecification = tag_specs("instance", opts.tags)
  local token = opts.client_token
  if not token then
    local seed = aws.form(aws.flatten(params)) -- sorted: the same arguments, the same text
    token = "drrun-" .. require("drrun.crypto").sha256_hex(seed .. "|" ..
      (dcore.run_id() or "")):sub(1, 40)
  end
  params.ClientToken = token
  local r, err, tok, code = aws.call("ec2", "RunInstances", params, aws.pick(opts))
  if not r then return nil, err, tok, code end
  if r.dry_run then
    -- placeholders shaped like the instances, so the steps after run too
    local out = {}
    for i = 1, params.MaxCount do
      out[i] = { InstanceId = ("i-%017x"):format(i), State = { Name = "pending" }, dry_run = true }
    end
    return out
  end
  return api(aws.list(r.data.instancesSet))
end

-- ec2.tag{ ids = { "i-...", "snap-..." }, tags = { k = v } } -> true
function M.tag(opts)
  aws.args(opts, "ec2.tag", { "ids", "tags" })
  local list = {}
  for k, v in pairs(opts.tags) do list[#list + 1] = { Key = k, Value = tostring(v) } end
  table.sort(list, function(a, b) return a.Key < b.Key end)
  local r, err, tok, code = call("CreateTags", { ResourceId = opts.ids, Tag = list }, opts)
  if not r then return nil, err, tok, code end
  return true
end

-- ---- snapshots -----------------------------------------------------------------

local function snapshot(s) return api(s, "snapshot") end

-- ec2.volumes{ instance = "i-..." | filters = {...} } -> volumes
function M.volumes(opts)
  aws.args(opts, "ec2.volumes")
  local f = opts.filters or {}
  if opts.instance then f["attachment.instance-id"] = opts.instance end
  local r, err, tok, code = call("DescribeVolumes", { Filter = filters(f) }, opts)
  if not r then return nil, err, tok, code end
  if r.dry_run then return {} end
  return api(aws.list(r.data.volumeSet))
end

-- ec2.create_snapshot{ volume, description, tags } -> the snapshot (pending)
function M.create_snapshot(opts)
  aws.args(opts, "ec2.create_snapshot", { "volume" })
  local r, err, tok, code = aws.call("ec2", "CreateSnapshot", { VolumeId = opts.volume,
    Description = opts.description, TagSpecification = tag_specs("snapshot", opts.tags) },
    aws.pick(opts))
  if not r then return nil, err, tok, code end
  if r.dry_run then return { dry_run = true, SnapshotId = "snap-dry-run", State = "pending" } end
  return snapshot(r.data)
end

-- ec2.snapshots{ ids | filters } -> snapshots (this account's)
function M.snapshots(opts)
  aws.args(opts, "ec2.snapshots")
  local r, err, tok, code = call("DescribeSnapshots", { SnapshotId = opts.ids,
    Filter = filters(opts.filters), Owner = { "self" } }, opts)
  if not r then return nil, err, tok, code end
  if r.dry_run then return {} end
  return snapshot(aws.list(r.data.snapshotSet))
end

-- ec2.wait_snapshot{ id, timeout = "30m", interval = "15s" } -> the snapshot
-- (botocore's SnapshotCompleted: completed succeeds, error fails)
function M.wait_snapshot(opts)
  aws.args(opts, "ec2.wait_snapshot", { "id" })
  local timeout, interval = aws.secs(opts.timeout, 1800), aws.secs(opts.interval, 15)
  if dcore.dry_run() then
    dcore.log(("would wait for snapshot %s to complete"):format(opts.id))
    return { SnapshotId = opts.id, State = "completed", dry_run = true }
  end
  return aws.poll(function()
    local list, err, tok, code = M.snapshots(setmetatable({ ids = { opts.id } }, { __index = opts }))
    if not list then return false, err, tok, code end
    local s = list[1]
    if s and s.State == "completed" then return s end
    if s and s.State == "error" then
      return false, ("aws: ec2: snapshot %s failed"):format(opts.id), "failed"
    end
    return nil, ("snapshot %s is still %s"):format(opts.id, s and s.State or "missing")
  end, timeout, interval, "ec2")
end

-- ec2.snapshot_instance{ id = "i-...", tags, description, wait = true }
--   -> one snapshot per attached volume
function M.snapshot_instance(opts)
  aws.args(opts, "ec2.snapshot_instance", { "id" })
  local vols, err, tok, code = M.volumes(setmetatable({ instance = opts.id, filters = false },
    { __index = opts }))
  if not vols then return nil, err, tok, code end
  local out = {}
  for _, v in ipairs(vols) do
    local s, e2, t2, c2 = M.create_snapshot(setmetatable({ volume = v.VolumeId,
      description = opts.description or ("drrun: " .. opts.id .. " " .. v.VolumeId) },
      { __index = opts }))
    if not s then return nil, e2, t2, c2 end
    out[#out + 1] = s
  end
  if opts.wait ~= false then
    for i, s in ipairs(out) do
      if not s.dry_run then
        local done, e3, t3, c3 = M.wait_snapshot(setmetatable({ id = s.SnapshotId }, { __index = opts }))
        if not done then return nil, e3, t3, c3 end
        out[i] = done
      end
    end
  end
  return out
end

-- ec2.copy_snapshot{ id, source_region, region (the destination), description,
--                    tags } -> the new snapshot's id
function M.copy_snapshot(opts)
  aws.args(opts, "ec2.copy_snapshot", { "id", "source_region" })
  local r, err, tok, code = aws.call("ec2", "CopySnapshot", { SourceSnapshotId = opts.id,
    SourceRegion = opts.source_region, Description = opts.description,
    TagSpecification = tag_specs("snapshot", opts.tags) }, aws.pick(opts))
  if not r then return nil, err, tok, code end
  if r.dry_run then return "snap-dry-run" end
  return r.data.snapshotId
end

return M
