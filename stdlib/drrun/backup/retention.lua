-- drrun.backup.retention: which backups to keep and which to delete, with
-- the reason for each (a pure planner: no I/O, the same answer for the same
-- input), and the apply that deletes exactly what a plan says.
--
-- Rules, in order of precedence (docs/modules/drrun.backup.md):
--   keep_all            keep everything
--   keep_last = N       the N newest are kept, whatever their age
--   older_than = D      a backup older than D is deleted, even if a GFS rule
--                       would keep it; without GFS rules, younger ones are kept
--   hourly/daily/weekly/monthly/yearly = N
--                       the newest backup of each of the N most recent
--                       periods that hold a backup (grandfather-father-son)
-- Anything no rule keeps is deleted, except that a plan never deletes every
-- backup: the newest then stays.  Buckets are computed in policy.tz: "UTC"
-- (the default), "local" (drrun's TZ), or a fixed offset "+05:30".
local core = require "drrun.core"
local exec = require "drrun.exec"
local T = require "drrun.backup.time"

local M = {}

M.defaults = { hourly = 24, daily = 7, weekly = 4, monthly = 12 }

local GFS = { "hourly", "daily", "weekly", "monthly", "yearly" }
local RULES = { hourly = true, daily = true, weekly = true, monthly = true, yearly = true,
                keep_last = true, older_than = true, keep_all = true }
local FIELDS = { tz = true }
for k in pairs(RULES) do FIELDS[k] = true end

-- misuse: raised as a table inside, re-raised at the caller's line by M.plan
local function bad(fmt, ...) error({ misuse = "backup.retention: " .. fmt:format(...) }) end

-- the bucket of time t for a GFS rule, in zone tz
local function bucket(rule, t, tz)
  local y, m, d, h, z, off = T.fields(t, tz)
  if rule == "hourly" then
    -- the offset is part of the hour: the hour repeated when DST ends is two
    return ("%04d-%02d-%02dT%02d%s"):format(y, m, d, h, T.offset_text(off))
  elseif rule == "daily" then
    return ("%04d-%02d-%02d"):format(y, m, d)
  elseif rule == "weekly" then
    local wy, w = T.iso_week(z)
    return ("%04d-W%02d"):format(wy, w)
  elseif rule == "monthly" then
    return ("%04d-%02d"):format(y, m)
  end
  return ("%04d"):format(y)
end

-- the policy, checked: rules, whether defaults apply, tz
local function check_policy(p)
  if p == nil then p = {} end
  if type(p) ~= "table" then bad("policy must be a table, not a %s", type(p)) end
  local out, any = {}, false
  for k, v in pairs(p) do
    if type(k) ~= "string" or not FIELDS[k] then bad("policy.%s: unknown field", tostring(k)) end
    if RULES[k] then any = true end
    out[k] = v
  end
  if not any then
    for k, v in pairs(M.defaults) do out[k] = v end
    out.defaults = true
  end
  for _, k in ipairs { "hourly", "daily", "weekly", "monthly", "yearly", "keep_last" } do
    local v = out[k]
    if v ~= nil and (math.type(v) ~= "integer" or v < 0) then
      bad("policy.%s must be a whole number >= 0, not %s", k, tostring(v))
    end
  end
  if out.keep_all ~= nil and type(out.keep_all) ~= "boolean" then
    bad("policy.keep_all must be a boolean, not %s", tostring(out.keep_all))
  end
  if out.older_than ~= nil then
    local s = T.duration(out.older_than)
    if not s or s <= 0 then
      bad("policy.older_than: invalid duration '%s' (like \"90d\", \"2w\", \"36h\")",
        tostring(out.older_than))
    end
    out.older_than_s = s
  end
  local tz, why = T.zone(out.tz)
  if not tz then bad("policy.tz: '%s': %s", tostring(out.tz), why) end
  out.zone = tz
  return out
end

-- backups, checked and sorted newest first: { backup, name, time }
local function check_backups(list)
  if type(list) ~= "table" then bad("backups must be a list, not a %s", type(list)) end
  local items, n = {}, #list
  for k in pairs(list) do
    if math.type(k) ~= "integer" or k < 1 or k > n then bad("backups must be a list (key %s)", tostring(k)) end
  end
  for i = 1, n do
    local b = list[i]
    if type(b) ~= "table" then bad("backups[%d] must be a table, not a %s", i, type(b)) end
    local t = T.parse(b.time)
    if not t then bad("backups[%d].time: not a time (%s): epoch seconds or RFC 3339", i, tostring(b.time)) end
    local name = b.name or b.path or b.key or b.id
    if type(name) ~= "string" then
      bad("backups[%d] needs a name (name, path, key or id: a string)", i)
    end
    items[i] = { backup = b, name = name, time = t, at = T.format(t), reasons = {}, index = i }
  end
  table.sort(items, function(a, b)
    if a.time ~= b.time then return a.time > b.time end
    return a.name > b.name
  end)
  return items
end

local function plan(o)
  if type(o) ~= "table" then bad("expects a table { backups = ..., policy = ... }") end
  for k in pairs(o) do
    if k ~= "backups" and k ~= "policy" and k ~= "now" then bad("unknown field '%s'", tostring(k)) end
  end
  local p = check_policy(o.policy)
  local items = check_backups(o.backups)
  local now = o.now == nil and core.now() or T.parse(o.now)
  if not now then bad("now: not a time (%s)", tostring(o.now)) end

  local function keep(it, why) it.reasons[#it.reasons + 1] = why; it.keep = true end

  if p.keep_all then
    for _, it in ipairs(items) do keep(it, "keep_all") end
  else
    if p.keep_last then
      for i = 1, math.min(p.keep_last, #items) do
        keep(items[i], ("keep_last %d of %d"):format(i, p.keep_last))
        items[i].floor = true
      end
    end
    for _, rule in ipairs(GFS) do
      local want = p[rule]
      if want and want > 0 then
        local seen, count = nil, 0
        for _, it in ipairs(items) do
          local b = bucket(rule, it.time, p.zone)
          if b ~= seen then
            seen, count = b, count + 1
            if count > want then break end
            keep(it, ("%s %s (%d of %d)"):format(rule, b, count, want))
          end
        end
      end
    end
    if p.older_than_s then
      local only = true
      for _, rule in ipairs(GFS) do
        if (p[rule] or 0) > 0 then only = false end
      end
      local limit = T.show(p.older_than_s)
      for _, it in ipairs(items) do
        local age = now - it.time
        if age > p.older_than_s and not it.floor then
          it.keep, it.expired = false, ("older than %s (age %s)"):format(limit, T.show(age))
        elseif only and age <= p.older_than_s then
          keep(it, ("within %s (age %s)"):format(limit, T.show(math.max(age, 0))))
        end
      end
    end
    local any = false
    for _, it in ipairs(items) do any = any or it.keep end
    if not any and items[1] then
      items[1].keep, items[1].expired = true, nil
      items[1].reasons = { "the newest backup (a plan never deletes every backup)" }
    end
  end

  local plan = { keep = {}, delete = {}, items = {}, now = T.format(now),
                 policy = { tz = p.zone == "local" and "local" or T.offset_text(p.zone == "UTC" and 0 or p.zone),
                            defaults = p.defaults or nil } }
  for k in pairs(RULES) do plan.policy[k] = p[k] end
  for _, it in ipairs(items) do
    local e = { name = it.name, time = it.at, backup = it.backup }
    if it.keep then
      e.action, e.reasons = "keep", it.reasons
      plan.keep[#plan.keep + 1] = e
    else
      e.action = "delete"
      e.reasons = { it.expired or "not kept by any rule" }
      plan.delete[#plan.delete + 1] = e
    end
    e.reason = table.concat(e.reasons, "; ")
    plan.items[#plan.items + 1] = e
  end
  return plan
end

-- M.plan{ backups, policy, now } -> plan (plain data, fit for a step's output)
function M.plan(o)
  local ok, res = pcall(plan, o)
  if ok then return res end
  if type(res) == "table" and res.misuse then error(res.misuse, 2) end
  error(res, 0)
end

-- The plan as lines of text, newest first: "keep   NAME  TIME  reasons"
function M.lines(plan)
  local out, w = {}, 0
  for _, e in ipairs(plan.items) do w = math.max(w, #e.name) end
  for _, e in ipairs(plan.items) do
    out[#out + 1] = ("%-6s %-" .. w .. "s  %s  %s"):format(e.action, e.name, e.time, e.reason)
  end
  return out
end

-- Delete a local file (the default deleter, for backups with a path)
local function rm(b)
  if type(b.path) ~= "string" or b.path == "" then
    return nil, "invalid: this backup has no path; give apply a delete function", "invalid"
  end
  local r, err, tok = exec.run { "rm", "-f", "--", b.path, timeout = "1m" }
  if not r then return nil, err, tok end
  if r.status ~= 0 then return nil, "io: rm " .. b.path .. ": " .. r.stderr:gsub("%s+$", ""), "io" end
  return true
end

-- M.apply(plan, { delete = function(backup, entry) -> true | nil, err }, log = fn })
-- Deletes each entry of plan.delete (and nothing else), after checking the
-- plan is whole: no entry both kept and deleted.  Every line of the plan is
-- logged first; under --dry-run nothing is deleted and each deletion is
-- logged as "would delete".  Returns { deleted = {names}, failed = {{name,
-- error}}, kept = n, dry_run = bool }; a failed deletion does not stop the
-- others.
function M.apply(plan, opts)
  if type(plan) ~= "table" or type(plan.delete) ~= "table" or type(plan.keep) ~= "table" then
    error("backup.apply: expects a plan from backup.retention", 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("backup.apply: options must be a table", 2) end
  local del = opts.delete or rm
  if type(del) ~= "function" then error("backup.apply: delete must be a function", 2) end
  local log = opts.log or core.log
  local kept = {}
  for _, e in ipairs(plan.keep) do kept[e.name] = true end
  for _, e in ipairs(plan.delete) do
    if kept[e.name] then
      error(("backup.apply: the plan both keeps and deletes '%s'"):format(e.name), 2)
    end
  end
  local dry = core.dry_run()
  local res = { deleted = {}, failed = {}, kept = #plan.keep, dry_run = dry }
  if plan.items then for _, l in ipairs(M.lines(plan)) do log(l) end end
  log(("retention: keep %d, %s %d"):format(#plan.keep, dry and "would delete" or "delete", #plan.delete))
  for _, e in ipairs(plan.delete) do
    if dry then
      log(("would delete %s (%s)"):format(e.name, e.reason or "plan"))
    else
      local ok, err = del(e.backup or e, e)
      if ok then
        res.deleted[#res.deleted + 1] = e.name
        log(("deleted %s (%s)"):format(e.name, e.reason or "plan"))
      else
        res.failed[#res.failed + 1] = { name = e.name, error = tostring(err) }
        log(("could not delete %s: %s"):format(e.name, tostring(err)))
      end
    end
  end
  return res
end

return M
