-- drrun.retry: the retry policy every HTTP-based module uses.  Mechanism is
-- in C (the request); this is policy: which failures are worth another try,
-- how long to wait (capped exponential backoff with jitter), and honouring
-- the server's Retry-After on 429 and 503.
local drrun = require "drrun"
local core = require "drrun.core"

local M = {}

-- Statuses worth retrying: throttled or a server/gateway hiccup.
M.statuses = { [408] = true, [425] = true, [429] = true, [500] = true, [502] = true,
               [503] = true, [504] = true }
-- Failures to reach the other side worth retrying.
M.tokens = { timeout = true, refused = true, closed = true, dns = true }

local function secs(v, default)
  if v == nil then return default end
  if type(v) == "number" then return v end
  return assert(drrun.duration(v), "invalid duration: " .. tostring(v))
end

-- policy: a number of attempts, or { attempts = 3, delay = "500ms",
-- backoff = 2, max_delay = "30s", max_wait = "5m", jitter = true }
function M.policy(p)
  if type(p) == "number" then p = { attempts = p } end
  p = p or {}
  local attempts = math.tointeger(p.attempts or 3)
  if not attempts or attempts < 1 then
    error("retry: attempts must be a whole number >= 1, not " .. tostring(p.attempts), 2)
  end
  return {
    attempts = attempts,
    delay = secs(p.delay, 0.5),
    backoff = p.backoff or 2,
    max_delay = secs(p.max_delay, 30),
    max_wait = secs(p.max_wait, 300),
    jitter = p.jitter ~= false,
    statuses = p.statuses,
  }
end

-- The wait before attempt n+1 after n failures: delay * backoff^(n-1),
-- capped, then "equal jitter" (between half and all of it).
function M.backoff(p, n)
  local d = p.delay * p.backoff ^ (n - 1)
  if d > p.max_delay then d = p.max_delay end
  if p.jitter then d = d / 2 + math.random() * d / 2 end
  return d
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
                 Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- days since 1970-01-01 of a civil date (proleptic Gregorian)
local function days(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- Parse an HTTP-date in any of its three forms (RFC 9110 5.6.7): epoch
-- seconds, or nil.  A two-digit year (rfc850-date) is the one within 50
-- years of `now`.
local function http_date(v, now)
  local d, mon, y, h, mi, s = v:match("^%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) GMT$")
  if not d then -- rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT
    d, mon, y, h, mi, s = v:match("^%a+, (%d%d)%-(%a+)%-(%d%d) (%d%d):(%d%d):(%d%d) GMT$")
    if y then
      local cy = os.date("!*t", math.floor(now)).year
      y = cy - cy % 100 + tonumber(y)
      if y > cy + 50 then y = y - 100 elseif y <= cy - 50 then y = y + 100 end
    end
  end
  if not d then -- asctime-date: Sun Nov  6 08:49:37 1994
    mon, d, h, mi, s, y = v:match("^%a+ (%a+) +(%d%d?) (%d%d):(%d%d):(%d%d) (%d%d%d%d)$")
  end
  if not d or not MONTHS[mon] then return nil end
  return days(tonumber(y), MONTHS[mon], tonumber(d)) * 86400 + h * 3600 + mi * 60 + s
end

-- Retry-After: delay-seconds or an HTTP-date.  Seconds to wait from `now`
-- (epoch seconds), or nil when absent or unreadable.
function M.retry_after(v, now)
  if v == nil then return nil end
  local n = tonumber(v)
  if n then return n >= 0 and n or nil end
  now = now or os.time()
  local t = http_date(tostring(v), now)
  if not t then return nil end
  local wait = t - now
  return wait > 0 and wait or 0
end

-- Call fn() (returning a response, or nil, err, token) until it gives a
-- response whose status is not retryable, a failure that is not retryable,
-- or attempts run out.  what names the request in the step's log.
function M.http(fn, policy, what)
  local p = M.policy(policy)
  local statuses = p.statuses or M.statuses
  for n = 1, p.attempts do
    local r, err, tok = fn()
    local wait, why
    if r then
      if not statuses[r.status] or n == p.attempts then return r end
      local ra = M.retry_after(r.headers and r.headers["retry-after"])
      if ra and ra > p.max_wait then return r end  -- the server asks too much
      wait = ra or M.backoff(p, n)
      why = "HTTP " .. r.status
    else
      if not M.tokens[tok] or n == p.attempts then return nil, err, tok end
      wait, why = M.backoff(p, n), err
    end
    core.log(string.format("retrying %s in %.1fs (attempt %d of %d): %s", what or "request",
      wait, n + 1, p.attempts, why))
    drrun.sleep(wait)
  end
end

-- Generic: call fn() until it returns a non-nil first value; retry only the
-- failure tokens in `retry_on` (default: all).
function M.call(fn, policy, retry_on)
  local p = M.policy(policy)
  for n = 1, p.attempts do
    local v, err, tok = fn()
    if v ~= nil or n == p.attempts or (retry_on and not retry_on[tok]) then return v, err, tok end
    drrun.sleep(M.backoff(p, n))
  end
end

return M
