-- drrun.health: the checks detect and verify steps are made of.  Each
-- returns ok (boolean) and a one-line detail for the log or the report.
--
--   local health = require "drrun.health"
--   local ok, why = health.http{ url = u, status = 200, body = "ok",
--                                json = { ["db.status"] = "up" }, attempts = 3 }
local drrun = require "drrun"
local http = require "drrun.http"
local core = require "drrun.http.core"

local M = {}

local function secs(v, default)
  if v == nil then return default end
  if type(v) == "number" then return v end
  return assert(drrun.duration(v), "invalid duration: " .. tostring(v))
end

-- "a.b.1.c": fields by name; integer segments index arrays (1-based, as in Lua)
local function dig(doc, path)
  local v = doc
  for seg in tostring(path):gmatch("[^.]+") do
    if type(v) ~= "table" then return nil end
    local i = tonumber(seg)
    if i and v[i] ~= nil then v = v[i] else v = v[seg] end
  end
  return v
end

local function status_ok(want, got)
  if want == nil then return got >= 200 and got < 300 end
  if type(want) == "number" then return got == want end
  if type(want) == "function" then return want(got) end
  for _, s in ipairs(want) do if s == got then return true end end
  return false
end

-- what status_ok wants, for the detail: "2xx", "200", "200 or 204"
local function status_text(want)
  if want == nil then return "2xx" end
  if type(want) == "table" then return table.concat(want, " or ") end
  if type(want) == "function" then return "a status the check accepts" end
  return tostring(want)
end

local function body_matches(pattern, body)
  local ok, re = pcall(require, "drrun.re")
  if ok then
    local s, err = re.find(body, pattern) -- start, end, caps | nil | nil, err, code
    if s == nil and err then error("health.http: bad body pattern: " .. err, 3) end
    return s ~= nil
  end
  return body:find(pattern) ~= nil
end

-- One probe: ok, detail.
local function probe(o)
  local t0 = drrun.now()
  local r, err = http.request { method = o.method or "GET", url = o.url, headers = o.headers,
    body = o.request_body, timeout = o.timeout or "5s", tls = o.tls, follow = o.follow }
  local ms = math.floor((drrun.now() - t0) * 1000 + 0.5)
  if not r then return false, ("%s: %s"):format(o.url, err) end
  if not status_ok(o.status, r.status) then
    return false, ("%s: HTTP %d, want %s"):format(o.url, r.status, status_text(o.status))
  end
  if o.body and not body_matches(o.body, r.body) then
    return false, ("%s: HTTP %d but the body does not match %q"):format(o.url, r.status, o.body)
  end
  if o.json then
    local doc, jerr = r.json()
    if doc == nil then return false, ("%s: body is not JSON: %s"):format(o.url, jerr) end
    for path, want in pairs(o.json) do
      local got = dig(doc, path)
      if got ~= want then
        return false, ("%s: %s is %s, want %s"):format(o.url, path, tostring(got), tostring(want))
      end
    end
  end
  return true, ("%s: HTTP %d in %dms"):format(o.url, r.status, ms)
end

-- health.http{ url, method, headers, status = 200 | {200, 204} | fn,
--   body = "regex", json = { ["path.to.field"] = value }, timeout = "5s",
--   attempts = 1, interval = "1s", tls, follow }
function M.http(o)
  assert(type(o) == "table" and o.url, "health.http needs { url = ... }")
  local attempts, interval = o.attempts or 1, secs(o.interval, 1)
  assert(math.type(attempts) == "integer" and attempts >= 1,
    "health.http: attempts must be a whole number, at least 1")
  local ok, detail
  for n = 1, attempts do
    ok, detail = probe(o)
    if ok or n == attempts then break end
    drrun.sleep(interval)
  end
  return ok, detail
end

-- health.tcp{ host, port, timeout = "5s" }: can a TCP connection be opened?
function M.tcp(o)
  assert(type(o) == "table" and o.host and o.port, "health.tcp needs { host, port }")
  local t0 = drrun.now()
  local ok, err = core.connect(o.host, o.port, o.timeout or "5s")
  if not ok then return false, ("%s:%d: %s"):format(o.host, o.port, err) end
  return true, ("%s:%d: connected in %dms"):format(o.host, o.port,
    math.floor((drrun.now() - t0) * 1000 + 0.5))
end

-- health.wait_until(fn, { timeout = "1m", interval = "1s" }): call fn until
-- it returns a true value; ok, detail (fn's second value, or why not).
function M.wait_until(fn, o)
  o = o or {}
  local timeout, interval = secs(o.timeout, 60), secs(o.interval, 1)
  local deadline = drrun.now() + timeout
  local last
  while true do
    local v, d = fn()
    if v then return true, d end
    last = d
    if drrun.now() + interval > deadline then
      return false, ("not ready after %s%s"):format(
        type(o.timeout) == "string" and o.timeout or (timeout .. "s"),
        last and (": " .. tostring(last)) or "")
    end
    drrun.sleep(interval)
  end
end

return M
