-- drrun.backup.time: the calendar arithmetic of drrun.backup, in pure Lua:
-- RFC 3339 parsing, civil dates <-> days since the epoch (proleptic
-- Gregorian, Howard Hinnant's algorithms), ISO 8601 weeks, local time
-- through os.date (the zone of drrun's process: TZ, else /etc/localtime),
-- and durations with days and weeks ("90d", "2w", "1d12h").
local core = require "drrun.core"

local M = {}

-- days since 1970-01-01 of the civil date y-m-d
function M.days(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- the civil date y, m, d of a day number
function M.civil(z)
  z = z + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  return m <= 2 and y + 1 or y, m, d
end

-- the ISO 8601 week of a day number: iso year, week (1..53).  Weeks start on
-- Monday; week 1 is the one holding the year's first Thursday.
function M.iso_week(z)
  local wd = (z + 3) % 7 -- 0 = Monday (1970-01-01 was a Thursday)
  local thursday = z - wd + 3
  local y = M.civil(thursday)
  return y, (thursday - M.days(y, 1, 1)) // 7 + 1
end

-- Epoch seconds from a number (epoch seconds) or an RFC 3339 string
-- ("2026-12-01T05:00:00Z", "2026-12-01 05:00:00.25+01:00"); nil if neither.
function M.parse(v)
  if math.type(v) then
    if v ~= v or v == math.huge or v == -math.huge then return nil end
    return v
  end
  if type(v) ~= "string" then return nil end
  local y, mo, d, h, mi, s, rest = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil end
  y, mo, d, h, mi, s = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(s)
  local frac = 0
  local f, tail = rest:match("^(%.%d+)(.*)$")
  if f then frac, rest = tonumber("0" .. f), tail end
  local off
  if rest == "Z" or rest == "z" then
    off = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):(%d%d)$")
    if not sign then return nil end
    oh, om = tonumber(oh), tonumber(om)
    if oh > 23 or om > 59 then return nil end
    off = (oh * 60 + om) * 60 * (sign == "-" and -1 or 1)
  end
  if mo < 1 or mo > 12 or d < 1 or h > 23 or mi > 59 or s > 60 then return nil end
  local z = M.days(y, mo, d)
  local y2, m2, d2 = M.civil(z)
  if y2 ~= y or m2 ~= mo or d2 ~= d then return nil end -- 2026-02-30
  if s == 60 then s = 59 end                                  -- a leap second
  local t = z * 86400 + h * 3600 + mi * 60 + s - off
  return frac > 0 and t + frac or t
end

-- RFC 3339 in UTC, to the second
function M.format(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

-- A duration in seconds: a number, or groups of <digits><unit> with units
-- w, d, h, m, s, ms ("90d", "2w3d", "1d12h", "36h", "1h30m").
function M.duration(v)
  if math.type(v) then
    if v ~= v or v < 0 or v == math.huge then return nil end
    return v
  end
  if type(v) ~= "string" or v == "" then return nil end
  local mult = { w = 604800, d = 86400, h = 3600, m = 60, s = 1, ms = 0.001 }
  local order = { w = 1, d = 2, h = 3, m = 4, s = 5, ms = 6 }
  local total, pos, last = 0, 1, 0
  while pos <= #v do
    local n, unit, nxt = v:match("^(%d+)(%a+)()", pos)
    if not n or #n > 9 or not mult[unit] or order[unit] <= last then return nil end
    total, pos, last = total + tonumber(n) * mult[unit], nxt, order[unit]
  end
  return total
end

-- A duration as text: "95d3h", "36h", "15m", "12s"
function M.show(secs)
  secs = math.floor(secs + 0.5)
  if secs < 60 then return secs .. "s" end
  local d, h, m = secs // 86400, secs % 86400 // 3600, secs % 3600 // 60
  local out = ""
  if d > 0 then out = d .. "d" end
  if h > 0 then out = out .. h .. "h" end
  if m > 0 and d == 0 then out = out .. m .. "m" end
  return out
end

-- The wall-clock fields of t in zone tz: "UTC", "local" (drrun's process
-- zone, DST included) or a fixed offset in seconds.  Returns y, m, d, hour,
-- day number of the local date, and the UTC offset in seconds at t.
function M.fields(t, tz)
  t = math.floor(t)
  if tz == "local" then
    local f = os.date("*t", t)
    local z = os.date("%z", t)
    local sign, oh, om = z:match("^([+-])(%d%d)(%d%d)$")
    local off = sign and (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1) or 0
    return f.year, f.month, f.day, f.hour, M.days(f.year, f.month, f.day), off
  end
  local off = tz == "UTC" and 0 or tz
  local s = t + off
  local z = s // 86400
  local y, m, d = M.civil(z)
  return y, m, d, s % 86400 // 3600, z, off
end

-- "+01:00", "Z" for 0
function M.offset_text(off)
  if off == 0 then return "Z" end
  local a = math.abs(off)
  return ("%s%02d:%02d"):format(off < 0 and "-" or "+", a // 3600, a % 3600 // 60)
end

-- A tz option: "UTC" (default), "local", or "+HH:MM" / "-HH:MM" -> the
-- value M.fields takes, or nil, why
function M.zone(v)
  if v == nil or v == "UTC" or v == "utc" or v == "Z" then return "UTC" end
  if v == "local" then return "local" end
  if type(v) == "string" then
    local sign, oh, om = v:match("^([+-])(%d%d):(%d%d)$")
    if sign and tonumber(oh) <= 23 and tonumber(om) <= 59 then
      local off = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
      return off == 0 and "UTC" or off
    end
  end
  return nil, 'use "UTC", "local" or a fixed offset such as "+02:00"'
end

M.now = core.now

return M
