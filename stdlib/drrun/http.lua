-- drrun.http: HTTP(S) for runbooks.  The requests run on the event loop in
-- C (drrun.http.core, libcurl multi); this module adds JSON bodies, the
-- retry policy and the method shorthands.
--
--   local http = require "drrun.http"
--   local r, err = http.get("https://status.example.com/api", { timeout = "5s" })
--   http.post(url, { json = { text = "failover done" }, retry = 3 })
local core = require "drrun.http.core"
local retry = require "drrun.retry"

local M = { curl_version = core.curl_version, core = core }

-- http.file_sha256(path [, offset, length [, { small = n }]]) -> { sha256 = hex,
-- bytes, size [, body] }: the SHA-256 of a file (or a range of it), read in the
-- thread pool; with small, a range of at most n bytes comes back as body too
M.file_sha256 = core.file_sha256

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

local function has_header(h, name)
  for k in pairs(h) do
    if type(k) == "string" and k:lower() == name then return true end
  end
  return false
end

-- http.request{ method, url, headers, body, json, timeout, connect_timeout,
--   retry, tls = { verify, ca, cert, key }, follow, max_body }
function M.request(opts)
  assert(type(opts) == "table", "http.request expects a table of options")
  local o = copy(opts)
  o.headers = copy(opts.headers)
  if o.json ~= nil then
    o.body = require("drrun.json").encode(o.json)
    o.json = nil
    if not has_header(o.headers, "content-type") then
      o.headers["Content-Type"] = "application/json"
    end
  end
  local policy = o.retry
  o.retry = nil
  local function once()
    local r, err, tok = core.request(o)
    if r then
      r.json = function() return require("drrun.json").decode(r.body) end
    end
    return r, err, tok
  end
  if policy then
    return retry.http(once, policy, (o.method or "GET"):upper() .. " " .. o.url)
  end
  return once()
end

for _, m in ipairs { "get", "head", "post", "put", "patch", "delete" } do
  M[m] = function(url, opts)
    local o = copy(opts)
    o.method, o.url = m:upper(), url
    return M.request(o)
  end
end

return M
