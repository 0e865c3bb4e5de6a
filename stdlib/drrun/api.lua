-- drrun.api: what the SaaS modules (drrun.heroku, drrun.netlify,
-- drrun.statuspage, drrun.pagerduty, drrun.slack) share.  Policy only, over
-- drrun.http (the C client) and drrun.retry:
--
--   * the base URL: an explicit option (base_url, ...), else the variable
--     DRRUN_<SERVICE>_URL, else the vendor's documented URL;
--   * the token: a `token =` option (registered for redaction at once), else
--     the conventional secret, read through drrun.core.secret, so only when
--     the runbook declares it; neither raises, saying what to declare;
--   * the headers every request needs (User-Agent drrun/<version>, the
--     service's own, the auth scheme), JSON in and out;
--   * retries: 429 (and 420) and 5xx with capped backoff and jitter,
--     honouring Retry-After (or a rate-limit reset header), never other 4xx.
--     A request that is not idempotent is retried after a 5xx, a timeout or
--     a dropped connection only once `verify` has looked and found that the
--     first attempt did nothing (or without a verify: after a 5xx, as the
--     contracts allow, but never after a timeout or a dropped connection);
--   * failures as nil, "<service>: <the service's message> (HTTP <status>)",
--     token, with token auth, not_found, invalid, conflict, throttled,
--     unavailable or http (or the transport's: timeout, refused, ...);
--   * --dry-run: a request that is not GET/HEAD/OPTIONS is not sent; the
--     step's log gets "<service>: would send: METHOD URL | Header: value ...
--     | body: {json}" with credentials as ***, and the call returns
--     { dry_run = true }.
-- Plus the helpers the modules use: api.template, api.bind, api.poll.
local drrun = require "drrun"
local core = require "drrun.core"
local http = require "drrun.http"
local json = require "drrun.json"
local retry = require "drrun.retry"

local M = {}

M.user_agent = "drrun/" .. core.version

-- Methods that change nothing: sent under --dry-run, always retried.
local SAFE = { GET = true, HEAD = true, OPTIONS = true }
-- Statuses worth another attempt.  429/420 mean "not processed, slow down";
-- the others are the server's or a gateway's trouble.
local THROTTLED = { [420] = true, [429] = true }
local TRANSIENT = { [408] = true, [425] = true, [500] = true, [502] = true, [503] = true,
                    [504] = true }
-- Transport failures.  refused and dns: the request never left, so any
-- request may be sent again.  timeout and closed: it may have arrived.
local NEVER_SENT = { refused = true, dns = true }
local MAYBE_SENT = { timeout = true, closed = true }

-- The default policy for every service: 4 attempts, 1s, 2s, 4s (capped at
-- 30s, halved at random by the jitter); a Retry-After over 5 minutes is not
-- waited for.  Every verb takes `retry =` (a number or a drrun.retry table).
M.default_retry = { attempts = 4, delay = "1s", backoff = 2, max_delay = "30s", max_wait = "5m" }

-- ---- small helpers ------------------------------------------------------

-- json.null (and nil) as nil
function M.value(v)
  if v == json.null then return nil end
  return v
end

-- a shallow copy of a with b's entries on top (either may be nil)
function M.merge(a, b)
  local c = {}
  for k, v in pairs(a or {}) do c[k] = v end
  for k, v in pairs(b or {}) do c[k] = v end
  return c
end

-- Argument checks for the verbs: misuse raises, at the runbook's line
-- (level 3 = the caller of the verb that calls this).
function M.check(cond, msg, ...)
  if not cond then error(msg:format(...), 3) end
  return cond
end

-- opts must be a table with these fields set: the opts
function M.args(opts, verb, required)
  if type(opts) ~= "table" then
    error(("%s expects a table of options, like %s{ %s = ... }"):format(verb, verb,
      required and required[1] or "..."), 3)
  end
  for _, k in ipairs(required or {}) do
    if opts[k] == nil or opts[k] == "" then
      error(("%s: %s is required"):format(verb, k), 3)
    end
  end
  return opts
end

-- a path segment, percent-encoded (RFC 3986 unreserved characters kept)
function M.seg(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- "?a=1&b=x" from a table (keys sorted, nil and false left out), or ""
function M.query(q)
  if not q then return "" end
  local keys = {}
  for k, v in pairs(q) do
    if v ~= nil and v ~= false then keys[#keys + 1] = k end
  end
  if #keys == 0 then return "" end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = M.seg(k) .. "=" .. M.seg(q[k]) end
  return "?" .. table.concat(keys, "&")
end

-- seconds from a duration string or a number
function M.secs(v, default)
  if v == nil then return default end
  if type(v) == "number" then return v end
  local s, err = drrun.duration(v)
  if not s then error(err, 3) end
  return s
end

-- The first `n` hex digits of the SHA-256 of s.
function M.hash(s, n)
  return require("drrun.crypto").sha256_hex(s):sub(1, n or 12)
end

-- ---- templates ------------------------------------------------------------

-- "{name}" or "{a.b}" is replaced by vars.name or vars.a.b (tostring); a
-- name with no value raises, so a message never goes out half filled in.
-- "{{" and "}}" are a literal "{" and "}".  Braces around anything that is
-- not a name (spaces, quotes, ...) are left as they are.
--   api.template("Down since {since}: {cause}.", { since = "05:31", cause = "..." })
function M.template(s, vars)
  if type(s) ~= "string" then error("template: the template must be a string", 2) end
  vars = vars or {}
  local missing
  local out = s:gsub("{{", "\1"):gsub("}}", "\2"):gsub("{([%a_][%w_%.]*)}", function(path)
    local v = vars
    for part in path:gmatch("[^.]+") do
      if type(v) ~= "table" then v = nil break end
      local i = tonumber(part)
      if i and v[i] ~= nil then v = v[i] else v = v[part] end
    end
    if v == nil or v == json.null then
      missing = missing or path
      return nil
    end
    return tostring(v)
  end):gsub("\1", "{"):gsub("\2", "}")
  if missing then error(("template: {%s} has no value"):format(missing), 2) end
  return out
end

-- ---- binding defaults -------------------------------------------------------

-- api.bind(module, defaults): the module's verbs with `defaults` under every
-- call's options (a call's own options win).  Each module offers it as
-- module.with{ token = ..., base_url = ..., retry = ... }.
function M.bind(mod, defaults)
  local b = {}
  for k, f in pairs(mod) do
    if type(f) == "function" and not (mod._plain or {})[k] then
      b[k] = function(o, ...) return f(M.merge(defaults, o), ...) end
    else
      b[k] = f
    end
  end
  return b
end

-- ---- polling --------------------------------------------------------------

-- api.poll(fn, { interval = "3s", timeout = "2h", what = "restore r007" }):
-- calls fn() until it returns a value (or nil, err, token: a failure that
-- stops the wait); fn returning false means "not yet".  On the deadline:
-- nil, "<what> not finished after <timeout>", "timeout".
function M.poll(fn, o)
  local interval, timeout = M.secs(o.interval, 3), M.secs(o.timeout, 7200)
  local deadline = drrun.now() + timeout
  while true do
    local v, err, tok = fn()
    if v then return v end
    if v == nil then return nil, err, tok end
    if drrun.now() + interval > deadline then
      return nil, ("%s not finished after %gs"):format(o.what or "operation", timeout), "timeout"
    end
    drrun.sleep(interval)
  end
end

-- ---- services -------------------------------------------------------------

local Service = {}
Service.__index = Service

-- api.service{ name, secret, token_option = "token", bases = { api = {
--   option = "base_url", env = "DRRUN_X_URL", default = "https://..." } },
--   headers = {...}, auth = function(token) return { Authorization = ... } end,
--   message = function(doc, r) return text end, reset_header = "x-ratelimit-reset",
--   show_url = function(url) return url end }
function M.service(def)
  def.token_option = def.token_option or "token"
  return setmetatable(def, Service)
end

-- The base URL for `which` (default "api"): option, then variable, then default.
function Service:base(opts, which)
  local b = self.bases[which or "api"]
  local v = opts[b.option]
  if v == nil or v == "" then v = os.getenv(b.env) end
  if v == nil or v == "" then v = b.default end
  if type(v) ~= "string" or not v:match("^https?://[^/]") then
    error(("%s: %s must be an http:// or https:// URL, not %s"):format(self.name,
      opts[b.option] and b.option or b.env, tostring(v)), 0)
  end
  return (v:gsub("/+$", ""))
end

-- The credential: the option (registered for redaction), else the declared
-- secret; neither raises.
function Service:token(opts)
  local opt = self.token_option
  local t = opts[opt]
  if t == nil and self.token_alias then t = opts[self.token_alias] end
  if t ~= nil then
    if type(t) ~= "string" or t == "" then
      error(("%s: %s must be a non-empty string"):format(self.name, opt), 0)
    end
    core.redact(t) -- hidden like a declared secret from now on
    return t
  end
  t = core.secret(self.secret)
  if t and t ~= "" then return t end
  local why = os.getenv(self.secret)
    and (" (%s is set in the environment, but the runbook does not declare it)"):format(self.secret)
    or ""
  error(("%s: no credential: declare the secret in runbook { secrets = { %q } } and set it in "
    .. "the environment, or pass %s = ...%s"):format(self.name, self.secret, opt, why), 0)
end

-- What the step's log may show of a URL (the Slack webhook URL is a secret).
function Service:shown(url)
  return self.show_url and self.show_url(url) or url
end

local function secret_header(k)
  k = k:lower()
  return k == "authorization" or k == "proxy-authorization" or k == "cookie"
    or k:find("token", 1, true) or k:find("key", 1, true)
end

-- "would send: POST url | A: b | body: {...}" (headers sorted, secrets ***)
function Service:describe(method, url, headers, body_text)
  local names = {}
  for k in pairs(headers) do names[#names + 1] = k end
  table.sort(names)
  local parts = { ("%s: would send: %s %s"):format(self.name, method, self:shown(url)) }
  for _, k in ipairs(names) do
    parts[#parts + 1] = ("%s: %s"):format(k, secret_header(k) and "***" or headers[k])
  end
  if body_text then parts[#parts + 1] = "body: " .. body_text end
  return table.concat(parts, " | ")
end

-- The token for an HTTP status.
function M.status_token(status)
  if status == 401 or status == 403 then return "auth" end
  if status == 404 or status == 410 then return "not_found" end
  if status == 400 or status == 422 then return "invalid" end
  if status == 409 then return "conflict" end
  if THROTTLED[status] then return "throttled" end
  if status >= 500 then return "unavailable" end
  return "http"
end

local function flat(v)
  if type(v) == "string" then return v end
  if type(v) == "table" then
    local parts = {}
    for _, x in ipairs(v) do parts[#parts + 1] = flat(x) end
    if #parts > 0 then return table.concat(parts, "; ") end
    if type(v.message) == "string" then return v.message end
  end
  return nil
end
M.flat = flat

-- nil, "<service>: <message> (HTTP n)", token, r for a response that is not 2xx.
function Service:failure(r)
  local msg
  local doc = (r.body or ""):match("^%s*[%[{]") and json.decode(r.body)
  if type(doc) == "table" then
    if self.message then msg = self.message(doc, r) end
    msg = msg or flat(doc.message) or flat(doc.error) or flat(doc.errors)
  end
  if not msg or msg == "" then
    msg = (r.body or ""):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
    if #msg > 300 then msg = msg:sub(1, 300) .. "..." end
  end
  if msg == "" then msg = "no message" end
  return nil, ("%s: %s (HTTP %d)"):format(self.name, msg, r.status), M.status_token(r.status), r
end

-- How long the server asks us to wait: Retry-After, else the service's
-- rate-limit reset header (unix seconds, e.g. Netlify's X-RateLimit-Reset).
function Service:asked_wait(r)
  local h = r.headers or {}
  local w = retry.retry_after(h["retry-after"], os.time())
  if w then return w end
  if self.reset_header and THROTTLED[r.status] then
    local reset = tonumber(h[self.reset_header])
    if reset then return math.max(0, reset - os.time()) end
  end
  return nil
end

-- The decoded body of a 2xx response ({} when empty).
function Service:decode(r)
  if self.decode_body then return self.decode_body(r) end
  if not r.body or r.body:match("^%s*$") then return {} end
  local doc, err = json.decode(r.body)
  if doc == nil then
    return nil, ("%s: the answer is not JSON (HTTP %d): %s"):format(self.name, r.status, err), "invalid"
  end
  return doc
end

-- svc:request(opts, { method, path, base, query, json, headers, log_json,
--   read, idempotent, verify, no_auth }) -> doc, response | nil, err, token [, response]
--   opts are the verb's options: token, base_url..., retry, timeout,
--   connect_timeout, tls, user_agent.
--   path is appended to the base URL; url = "..." replaces base and path.
--   idempotent defaults to true for GET/HEAD/OPTIONS/PUT/DELETE, false for
--   POST and PATCH.
--   verify() is called before retrying a non-idempotent request whose first
--   attempt may have done something: a true value is taken as the result (it
--   did), false or nil lets the retry go ahead (it did not).
--   log_json is what a dry run shows as the body (default: json).
--   read = true marks a POST that changes nothing (a lookup): it is
--   retried like a GET.  Under --dry-run it is still not sent (drrun.http
--   sends only GET, HEAD and OPTIONS then), so the caller must cope with
--   { dry_run = true }.
function Service:request(opts, spec)
  local method = (spec.method or "GET"):upper()
  local url = spec.url or (self:base(opts, spec.base) .. spec.path .. M.query(spec.query))
  local headers = { ["User-Agent"] = opts.user_agent or M.user_agent }
  for k, v in pairs(self.headers or {}) do headers[k] = v end
  if self.auth and not spec.no_auth then
    for k, v in pairs(self.auth(self:token(opts))) do headers[k] = v end
  end
  for k, v in pairs(spec.headers or {}) do headers[k] = v end
  local body
  if spec.json ~= nil then
    body = json.encode(spec.json, { sort_keys = true })
    headers["Content-Type"] = "application/json"
  end
  local what = method .. " " .. self:shown(url)

  local read = SAFE[method] or spec.read
  if not SAFE[method] and core.dry_run() then
    -- drrun.http sends no other method under --dry-run, not even a lookup
    -- (spec.read): the caller gets { dry_run = true } and carries on
    local shown = body
    if spec.log_json ~= nil then shown = json.encode(spec.log_json, { sort_keys = true }) end
    core.log(self:describe(method, url, headers, shown))
    return { dry_run = true }, { status = 0, headers = {}, body = "", dry_run = true }
  end

  local idempotent = spec.idempotent
  if idempotent == nil then
    idempotent = read or method == "PUT" or method == "DELETE"
  end
  local p = retry.policy(opts.retry or self.retry or M.default_retry)
  for n = 1, p.attempts do
    local t0 = drrun.now()
    local r, err, tok = http.request {
      method = method, url = url, headers = headers, body = body,
      timeout = opts.timeout or spec.timeout or "30s",
      connect_timeout = opts.connect_timeout, tls = opts.tls,
    }
    local last = n == p.attempts
    local wait, why, ambiguous
    if r then
      if r.status >= 200 and r.status < 300 then
        if not read then
          core.log(("%s: %s: HTTP %d in %.2fs"):format(self.name, what, r.status, drrun.now() - t0))
        end
        local doc, derr, dtok = self:decode(r)
        if doc == nil then return nil, derr, dtok, r end
        return doc, r
      end
      if last or not (THROTTLED[r.status] or TRANSIENT[r.status]) then
        return self:failure(r)
      end
      local ask = self:asked_wait(r)
      if ask and ask > p.max_wait then return self:failure(r) end -- it asks too much
      wait = ask or retry.backoff(p, n)
      why = "HTTP " .. r.status
      ambiguous = TRANSIENT[r.status] and not idempotent
    else
      local msg = self.name .. ": " .. tostring(err)
      if last or not (NEVER_SENT[tok] or MAYBE_SENT[tok]) then return nil, msg, tok end
      if MAYBE_SENT[tok] and not idempotent and not spec.verify then
        -- it may have arrived: sending it again could do it twice
        return nil, msg .. " (not retried: the request may have been processed)", tok
      end
      wait, why = retry.backoff(p, n), err
      ambiguous = MAYBE_SENT[tok] and not idempotent
    end
    if ambiguous and spec.verify then
      local done = spec.verify()
      if done then
        core.log(("%s: %s: %s, but it was done: not sending it again"):format(self.name, what, why))
        return done, { status = 0, headers = {}, body = "", verified = true }
      end
    end
    core.log(("%s: retrying %s in %.1fs (attempt %d of %d): %s"):format(self.name, what, wait,
      n + 1, p.attempts, why))
    drrun.sleep(wait)
  end
end

-- svc:get(opts, path, query [, more spec]): a GET
function Service:get(opts, path, query, more)
  local spec = M.merge(more, { method = "GET", path = path, query = query })
  return self:request(opts, spec)
end

return M
