-- drrun.aws.route53: read and change record sets, wait for INSYNC, and the
-- DNS switch whose rollback puts the old records back exactly.  Over
-- drrun.aws (rest-xml, signed for us-east-1).  Record sets use Route 53's
-- names: { Name, Type, TTL, ResourceRecords = { { Value = ... } },
-- AliasTarget = { HostedZoneId, DNSName, EvaluateTargetHealth },
-- SetIdentifier, Weight, Failover, HealthCheckId }.
local aws = require "drrun.aws"

local M = {}

local NS = "https://route53.amazonaws.com/doc/2013-04-01/"

-- "Z123", "/hostedzone/Z123" -> "Z123"
local function zone_id(z)
  local id = tostring(z):match("([^/]+)$")
  if not id or not id:match("^[A-Z0-9]+$") then
    error(("aws: route53: %q is not a hosted zone id"):format(tostring(z)), 3)
  end
  return id
end

local function fqdn(name)
  name = tostring(name):lower()
  if name:sub(-1) ~= "." then name = name .. "." end
  return name
end

local function opts_of(opts, extra)
  local o = aws.pick(opts)
  o.service = "route53"
  for k, v in pairs(extra) do o[k] = v end
  return o
end

local NUMBERS = { TTL = true, Weight = true }

local function rrset(v)
  local out = {}
  for k, x in pairs(v) do
    if NUMBERS[k] then x = tonumber(x) or x end
    if k == "ResourceRecords" then x = aws.list(x) end
    if k == "AliasTarget" and type(x) == "table" then
      x = { HostedZoneId = x.HostedZoneId, DNSName = x.DNSName,
            EvaluateTargetHealth = x.EvaluateTargetHealth == "true" }
    end
    out[k] = x
  end
  return out
end

-- ---- reading -------------------------------------------------------------------

-- route53.records{ zone, name, type } -> the record sets, every page; with
-- name (and type), only those with exactly that name (and type)
function M.records(opts)
  aws.args(opts, "route53.records", { "zone" })
  local zid = zone_id(opts.zone)
  local name, rtype = opts.name and fqdn(opts.name), opts.type
  local out = {}
  local q = { name = name, type = name and rtype or nil, maxitems = "300" }
  while true do
    local r, err, tok, code = aws.request(opts_of(opts, { method = "GET",
      path = "/2013-04-01/hostedzone/" .. zid .. "/rrset", query = q }))
    if not r then return nil, err, tok, code end
    local more = false
    for _, rr in ipairs(aws.list(r.data.ResourceRecordSets)) do
      local s = rrset(rr)
      if name and fqdn(s.Name) ~= name then break end
      if not rtype or s.Type == rtype then out[#out + 1] = s end
    end
    if r.data.IsTruncated == "true" and (not name or fqdn(r.data.NextRecordName) == name) then
      q = { name = r.data.NextRecordName, type = r.data.NextRecordType, maxitems = "300" }
      more = true
    end
    if not more then return out end
  end
end

-- ---- changing ------------------------------------------------------------------

local function x(name, v) return ("<%s>%s</%s>"):format(name, aws.xml_escape(v), name) end

local function rrset_xml(rr)
  local b = { "<ResourceRecordSet>", x("Name", fqdn(rr.Name or rr.name)), x("Type", rr.Type or rr.type) }
  local set_id, weight = rr.SetIdentifier or rr.set_id, rr.Weight or rr.weight
  if set_id then b[#b + 1] = x("SetIdentifier", set_id) end
  if weight then b[#b + 1] = x("Weight", weight) end
  if rr.Failover or rr.failover then b[#b + 1] = x("Failover", rr.Failover or rr.failover) end
  local alias = rr.AliasTarget or rr.alias
  if alias then
    b[#b + 1] = "<AliasTarget>" .. x("HostedZoneId", alias.HostedZoneId or alias.zone) ..
      x("DNSName", alias.DNSName or alias.name) ..
      x("EvaluateTargetHealth", (alias.EvaluateTargetHealth or alias.evaluate_health) and "true" or "false") ..
      "</AliasTarget>"
  else
    local ttl = rr.TTL or rr.ttl
    local values = rr.ResourceRecords or rr.values
    if not ttl or not values or #values == 0 then
      error("aws: route53: a record set needs ttl and values, or alias", 4)
    end
    b[#b + 1] = x("TTL", math.tointeger(ttl) or ttl)
    b[#b + 1] = "<ResourceRecords>"
    for _, v in ipairs(values) do
      b[#b + 1] = "<ResourceRecord>" .. x("Value", type(v) == "table" and v.Value or v) .. "</ResourceRecord>"
    end
    b[#b + 1] = "</ResourceRecords>"
  end
  if rr.HealthCheckId or rr.health_check then b[#b + 1] = x("HealthCheckId", rr.HealthCheckId or rr.health_check) end
  b[#b + 1] = "</ResourceRecordSet>"
  return table.concat(b)
end

local ACTIONS = { CREATE = true, DELETE = true, UPSERT = true }

-- route53.change{ zone, changes = { { action = "UPSERT", name, type, ttl,
--   values = { ... } | alias = { zone, name, evaluate_health }, set_id,
--   weight, failover, health_check }, ... }, comment, wait = true,
--   timeout = "10m", interval = "5s" } -> { Id, Status, SubmittedAt }
-- One atomic batch: every change applies, or none.
function M.change(opts)
  aws.args(opts, "route53.change", { "zone", "changes" })
  local zid = zone_id(opts.zone)
  if #opts.changes == 0 then error("route53.change: changes is empty", 2) end
  local b = { '<?xml version="1.0" encoding="UTF-8"?>\n<ChangeResourceRecordSetsRequest xmlns="',
              NS, '"><ChangeBatch>' }
  if opts.comment then b[#b + 1] = x("Comment", opts.comment) end
  b[#b + 1] = "<Changes>"
  for i, c in ipairs(opts.changes) do
    local action = (c.action or c.Action or ""):upper()
    if not ACTIONS[action] then
      error(("route53.change: changes[%d].action must be CREATE, DELETE or UPSERT"):format(i), 2)
    end
    b[#b + 1] = "<Change>" .. x("Action", action) .. rrset_xml(c.ResourceRecordSet or c) .. "</Change>"
  end
  b[#b + 1] = "</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"
  local r, err, tok, code = aws.request(opts_of(opts, { method = "POST",
    path = "/2013-04-01/hostedzone/" .. zid .. "/rrset/", body = table.concat(b),
    headers = { ["Content-Type"] = "application/xml" }, operation = "ChangeResourceRecordSets",
    describe = { zone = zid, changes = opts.changes, comment = opts.comment },
    -- UPSERT-only batches may be sent again; a CREATE or DELETE may not
    idempotent = (function()
      for _, c in ipairs(opts.changes) do
        if (c.action or c.Action):upper() ~= "UPSERT" then return false end
      end
      return true
    end)() }))
  if not r then
    if code == "InvalidChangeBatch" then tok = "conflict" end
    return nil, err, tok, code
  end
  if r.dry_run then return { dry_run = true, Status = "INSYNC" } end
  local info = r.data.ChangeInfo
  if opts.wait ~= false then
    return M.wait(setmetatable({ id = info.Id }, { __index = opts }))
  end
  return info
end

-- route53.wait{ id, timeout = "10m", interval = "5s" } -> the change, INSYNC
function M.wait(opts)
  aws.args(opts, "route53.wait", { "id" })
  local id = tostring(opts.id):match("([^/]+)$")
  local timeout, interval = aws.secs(opts.timeout, 600), aws.secs(opts.interval, 5)
  return aws.poll(function()
    local r, err, tok, code = aws.request(opts_of(opts, { method = "GET",
      path = "/2013-04-01/change/" .. id }))
    if not r then return false, err, tok, code end
    local info = r.data.ChangeInfo
    if info.Status == "INSYNC" then return info end
    return nil, ("change %s is still %s"):format(id, info.Status)
  end, timeout, interval, "route53")
end

-- ---- the switch and its rollback ---------------------------------------------------

local function same_rrset(a, b)
  if not a or not b then return a == b end
  return rrset_xml(a) == rrset_xml(b)
end

-- route53.switch{ zone, name, type = "A", values = { ... } | alias = {...},
--   ttl = 60, set_id, wait = true } -> out = { zone, name, type, previous,
--   new, change }.  The current record set is read first and replaced in one
-- batch (DELETE of exactly what was read, then CREATE), so a record changed
-- by someone else in between fails the switch (conflict) instead of being
-- overwritten.  route53.restore(out) is its rollback.
function M.switch(opts)
  aws.args(opts, "route53.switch", { "zone", "name" })
  local rtype = opts.type or "A"
  local name = fqdn(opts.name)
  if not opts.values and not opts.alias then error("route53.switch: values or alias is required", 2) end
  local cur, err, tok, code = M.records(setmetatable({ name = name, type = rtype }, { __index = opts }))
  if not cur then return nil, err, tok, code end
  local previous
  for _, rr in ipairs(cur) do
    if (rr.SetIdentifier or nil) == (opts.set_id or nil) then previous = rr end
  end
  local new = { Name = name, Type = rtype, SetIdentifier = opts.set_id,
                Weight = previous and previous.Weight, Failover = previous and previous.Failover,
                HealthCheckId = previous and previous.HealthCheckId }
  if opts.alias then
    new.AliasTarget = { HostedZoneId = opts.alias.zone or opts.alias.HostedZoneId,
                        DNSName = opts.alias.name or opts.alias.DNSName,
                        EvaluateTargetHealth = opts.alias.evaluate_health or opts.alias.EvaluateTargetHealth or false }
  else
    new.TTL = opts.ttl or (previous and previous.TTL) or 300
    new.ResourceRecords = {}
    for i, v in ipairs(opts.values) do new.ResourceRecords[i] = { Value = tostring(v) } end
  end
  -- where to find the zone again for restore(): never the credentials, which
  -- must not reach the journal
  local out = { zone = zone_id(opts.zone), name = name, type = rtype, previous = previous, new = new,
                call = { profile = opts.profile, endpoint_url = opts.endpoint_url } }
  if same_rrset(previous, new) then
    out.unchanged = true
    return out
  end
  local changes = {}
  if previous then changes[#changes + 1] = { action = "DELETE", ResourceRecordSet = previous } end
  changes[#changes + 1] = { action = "CREATE", ResourceRecordSet = new }
  local info
  info, err, tok, code = M.change(setmetatable({ changes = changes,
    comment = opts.comment or ("drrun: switch " .. name .. " " .. rtype) }, { __index = opts }))
  if not info then return nil, err, tok, code end
  out.change = info.Id
  out.dry_run = info.dry_run
  return out
end

-- route53.restore(out [, opts]) -> true.  Puts back exactly the record set
-- switch() replaced (or removes the one it created), in one batch that fails
-- (conflict) if the record is no longer the one switch() wrote.
function M.restore(out, opts)
  if type(out) ~= "table" or not out.zone or not out.new then
    error("route53.restore: expects the output of route53.switch", 2)
  end
  local o = { zone = out.zone }
  for k, v in pairs(out.call or {}) do o[k] = v end
  for k, v in pairs(opts or {}) do o[k] = v end
  opts = o
  if out.unchanged then return true end
  local changes = { { action = "DELETE", ResourceRecordSet = out.new } }
  if out.previous then changes[2] = { action = "CREATE", ResourceRecordSet = out.previous } end
  local info, err, tok, code = M.change(setmetatable({ changes = changes,
    comment = "drrun: restore " .. out.name .. " " .. out.type }, { __index = opts }))
  if not info then return nil, err, tok, code end
  return true
end

return M
