-- drrun.aws: signed AWS API calls.  Mechanism in C (drrun.aws.core: SigV4
-- and XML; drrun.http: the request on the loop); this is policy:
--
--   * credentials, in the AWS CLI's order: `credentials =` or `profile =` on
--     the call; AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN;
--     the profile (AWS_PROFILE or "default") of ~/.aws/credentials and
--     ~/.aws/config (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE), with
--     role_arn + source_profile (or credential_source) through STS
--     AssumeRole; the EC2 instance role through IMDSv2.  Secret keys and
--     session tokens are registered with the redactor as they are read;
--   * region: `region =`, AWS_REGION, AWS_DEFAULT_REGION, the profile's;
--   * endpoints: `endpoint_url =`, AWS_ENDPOINT_URL_<SERVICE>,
--     AWS_ENDPOINT_URL, the profile's endpoint_url, else AWS's own;
--   * the protocols: query (RDS, STS), ec2, rest-xml (S3, Route 53);
--   * errors as nil, "aws: <Code>: <Message> (request <id>)", token, code;
--   * retries in the SDKs' "standard" mode: exponential backoff with full
--     jitter, a retry quota, throttling always retried, other transient
--     failures only for calls that are idempotent or whose verify() shows
--     the first attempt did nothing;
--   * --dry-run: reads are made; writes are journalled as
--     "would call <service> <Operation> {...}" and not sent.
local drrun = require "drrun"
local dcore = require "drrun.core"
local core = require "drrun.aws.core"
local http = require "drrun.http"
local json = require "drrun.json"

local M = { core = core }

local EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

-- service -> how to talk to it.  env: the suffix of AWS_ENDPOINT_URL_<...>
M.services = {
  ec2 = { protocol = "ec2", version = "2016-11-15", env = "EC2", host = "ec2.%s.amazonaws.com" },
  rds = { protocol = "query", version = "2014-10-31", env = "RDS", host = "rds.%s.amazonaws.com" },
  sts = { protocol = "query", version = "2011-06-15", env = "STS", host = "sts.%s.amazonaws.com" },
  s3 = { protocol = "rest-xml", env = "S3", host = "s3.%s.amazonaws.com" },
  route53 = { protocol = "rest-xml", env = "ROUTE_53", host = "route53.amazonaws.com",
              global_region = "us-east-1" },
}

-- error code -> token (the issue's table); anything else by status
local CODE_TOKENS = {
  SignatureDoesNotMatch = "auth", InvalidClientTokenId = "auth", ExpiredToken = "auth",
  ExpiredTokenException = "auth", AccessDenied = "auth", AccessDeniedException = "auth",
  InvalidAccessKeyId = "auth", UnrecognizedClientException = "auth", AuthFailure = "auth",
  RequestTimeTooSkewed = "auth", MissingAuthenticationToken = "auth",
  Throttling = "throttled", ThrottlingException = "throttled", RequestLimitExceeded = "throttled",
  SlowDown = "throttled", TooManyRequestsException = "throttled", RequestThrottled = "throttled",
  RequestThrottledException = "throttled", PriorRequestNotComplete = "throttled",
  BandwidthLimitExceeded = "throttled",
}
-- transient: worth another try when the call is idempotent
local TRANSIENT_CODES = { RequestTimeout = true, RequestTimeoutException = true,
                          InternalError = true, InternalFailure = true, ServiceUnavailable = true }

function M.token_for(code, status)
  if code then
    if CODE_TOKENS[code] then return CODE_TOKENS[code] end
    if code:find("NotFound", 1, true) or code:find("^NoSuch") then return "not_found" end
    if code:find("AlreadyExists", 1, true) then return "conflict" end
  end
  if status == 429 then return "throttled" end
  if status and status >= 500 then return "unavailable" end
  if status == 404 then return "not_found" end
  if status == 403 or status == 401 then return "auth" end
  return "invalid"
end

-- ---- small helpers --------------------------------------------------------

local function fail(msg, ...)
  error("aws: " .. msg:format(...), 3)
end

local function env(name)
  local v = os.getenv(name)
  if v == "" then return nil end
  return v
end

-- RFC 3986 encoding (unreserved kept), as SigV4 and AWS's form bodies want
local function enc(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end
M.encode = enc

-- A key path encoded per segment ('/' kept): S3 keys.
function M.encode_path(s)
  return (tostring(s):gsub("[^%w%-%._~/]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- Flatten a parameter table into "A.B.1.C" = value pairs: arrays are
-- numbered from 1, tables nest with ".", booleans are "true"/"false".
-- The caller spells the member names (Tags.Tag, Filters.Filter).
function M.flatten(params)
  local out = {}
  local function walk(prefix, v)
    local t = type(v)
    if t == "table" then
      if #v > 0 or next(v) == nil then
        for i, x in ipairs(v) do walk(prefix .. "." .. i, x) end
      else
        for k, x in pairs(v) do walk(prefix == "" and k or prefix .. "." .. k, x) end
      end
    elseif t == "boolean" then
      out[prefix] = v and "true" or "false"
    elseif v ~= nil then
      out[prefix] = tostring(v)
    end
  end
  for k, v in pairs(params or {}) do walk(k, v) end
  return out
end

-- "k=v&..." sorted, from a flat table
local function form(flat)
  local keys = {}
  for k in pairs(flat) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = enc(k) .. "=" .. enc(flat[k]) end
  return table.concat(keys, "&")
end
M.form = form

-- An XML list as a Lua array: "" (an empty element), nil and a single
-- table all become arrays.
function M.list(v)
  if v == nil or v == "" then return {} end
  if type(v) == "table" and (#v > 0 or next(v) == nil) then return v end
  return { v }
end

-- Text escaped for an XML body.
function M.xml_escape(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
                                           ['"'] = "&quot;", ["'"] = "&apos;" }))
end

-- seconds since the epoch of an ISO 8601 / RFC 3339 UTC time, or nil
function M.parse_time(s)
  if type(s) == "number" then return s end
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, frac, tz = s:match(
    "^(%d%d%d%d)-(%d%d)-(%d%d)[T ](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  local yy = mo <= 2 and y - 1 or y
  local era = (yy >= 0 and yy or yy - 399) // 400
  local yoe = yy - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
  local days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
  local t = days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
  if frac ~= "" and frac ~= "." then t = t + tonumber("0" .. frac) end
  if tz == "Z" or tz == "" or tz == "+00:00" then return t end
  local sign, th, tm = tz:match("^([+-])(%d%d):?(%d%d)$")
  if not sign then return nil end
  local off = tonumber(th) * 3600 + tonumber(tm) * 60
  return sign == "+" and t - off or t + off
end

function M.format_time(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

-- ---- shared config files ----------------------------------------------------

local files = {} -- path -> parsed (per run: the module lives as long as the run)

-- Parse an AWS INI file: { [section] = { key = value, [sub] = { k = v } } }.
-- Malformed lines raise naming the file and line.
local function parse_ini(text, path, is_config)
  local out, cur, nested = {}, nil, nil
  local n = 0
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do
    n = n + 1
    local indented = line:match("^%s+%S") ~= nil
    local s = line:gsub("^%s+", ""):gsub("%s+$", "")
    if s == "" or s:match("^[#;]") then
      -- blank or comment
    elseif s:match("^%[") then
      local name = s:match("^%[%s*(.-)%s*%]$")
      if not name or name == "" then
        error(("aws: %s:%d: malformed section header %q"):format(path, n, s), 0)
      end
      if is_config and name ~= "default" then
        local p = name:match("^profile%s+(.+)$")
        name = p or ("\0" .. name) -- [sso-session x] and the like: not profiles
      end
      cur = out[name] or {}
      out[name] = cur
      nested = nil
    else
      local k, v = s:match("^([^=]-)%s*=%s*(.*)$")
      if not k or k == "" then
        error(("aws: %s:%d: expected 'key = value', not %q"):format(path, n, s), 0)
      end
      if not cur then
        error(("aws: %s:%d: '%s' is outside any [section]"):format(path, n, k), 0)
      end
      if indented and nested then
        nested[k] = v
      elseif v == "" then
        nested = {}
        cur[k] = nested
      else
        cur[k], nested = v, nil
      end
    end
  end
  return out
end

local function home_file(var, rel)
  local p = env(var)
  if p then return p:gsub("^~", env("HOME") or "~") end
  local home = env("HOME")
  if not home then return nil end
  return home .. "/.aws/" .. rel
end

local function load_file(path, is_config)
  if not path then return {} end
  if files[path] then return files[path] end
  local text, err, tok = require("drrun.fs").read(path, { max = 1024 * 1024 })
  local parsed
  if text then
    parsed = parse_ini(text, path, is_config)
  elseif tok == "not_found" then
    parsed = {}
  else
    error("aws: " .. err, 0)
  end
  files[path] = parsed
  return parsed
end

-- The merged settings of a profile (config first, credentials on top), or nil.
function M.profile(name)
  local config = load_file(home_file("AWS_CONFIG_FILE", "config"), true)
  local creds = load_file(home_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"), false)
  if not config[name] and not creds[name] then return nil end
  local p = {}
  for k, v in pairs(config[name] or {}) do p[k] = v end
  for k, v in pairs(creds[name] or {}) do p[k] = v end
  return p
end

-- ---- credentials -------------------------------------------------------------

local cache = {} -- key -> credentials (with expires)

local function remember(c)
  dcore.redact(c.secret_key)
  if c.token then dcore.redact(c.token) end
  return c
end

local function fresh(c)
  return c and (not c.expires or c.expires - 300 > dcore.now())
end

local function imds()
  if (env("AWS_EC2_METADATA_DISABLED") or ""):lower() == "true" then
    return nil, "the instance metadata service is disabled (AWS_EC2_METADATA_DISABLED)"
  end
  local base = (env("AWS_EC2_METADATA_SERVICE_ENDPOINT") or "http://169.254.169.254"):gsub("/$", "")
  local r, err = http.request { method = "PUT", url = base .. "/latest/api/token", safe = true,
    headers = { ["X-aws-ec2-metadata-token-ttl-seconds"] = "21600" }, timeout = "1s",
    connect_timeout = "1s" }
  if not r or r.status ~= 200 then
    return nil, "no instance metadata service: " .. (err or ("HTTP " .. r.status))
  end
  local tok = r.body
  dcore.redact(tok)
  local h = { ["X-aws-ec2-metadata-token"] = tok }
  local path = "/latest/meta-data/iam/security-credentials/"
  r, err = http.request { url = base .. path, headers = h, timeout = "1s", connect_timeout = "1s" }
  if not r or r.status ~= 200 then
    return nil, "the instance has no role: " .. (err or ("HTTP " .. r.status))
  end
  local role = r.body:match("^%s*(%S+)")
  r, err = http.request { url = base .. path .. role, headers = h, timeout = "1s",
                          connect_timeout = "1s" }
  if not r or r.status ~= 200 then
    return nil, "cannot read the role's credentials: " .. (err or ("HTTP " .. r.status))
  end
  local doc = json.decode(r.body)
  if type(doc) ~= "table" or not doc.AccessKeyId or not doc.SecretAccessKey then
    return nil, "the instance metadata service gave no credentials"
  end
  return remember { access_key = doc.AccessKeyId, secret_key = doc.SecretAccessKey,
                    token = doc.Token, expires = M.parse_time(doc.Expiration),
                    source = "instance role " .. role }
end

local resolve -- forward

-- AssumeRole with `source` credentials; cached until shortly before expiry.
local function assume_role(p, name, source, opts)
  local session = p.role_session_name or ("drrun-" .. os.time())
  local params = { Action = "AssumeRole", Version = M.services.sts.version,
                   RoleArn = p.role_arn, RoleSessionName = session,
                   ExternalId = p.external_id, DurationSeconds = p.duration_seconds }
  local r, err, tok = M.request { service = "sts", region = opts.region or p.region or "us-east-1",
    method = "POST", body = form(params), credentials = source, safe = true,
    endpoint_url = opts.endpoint_url and opts.service == "sts" and opts.endpoint_url or nil,
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" },
    retry = opts.retry }
  if not r then return nil, ("cannot assume %s for profile %s: %s"):format(p.role_arn, name, err), tok end
  local c = r.result and r.result.Credentials
  if type(c) ~= "table" then
    return nil, ("STS AssumeRole for %s gave no credentials"):format(p.role_arn), "invalid"
  end
  return remember { access_key = c.AccessKeyId, secret_key = c.SecretAccessKey,
                    token = c.SessionToken, expires = M.parse_time(c.Expiration),
                    source = "role " .. p.role_arn }
end

local function from_profile(name, opts, depth)
  if depth > 5 then return nil, "aws: profile " .. name .. ": source_profile chain too long", "invalid" end
  local p = M.profile(name)
  if not p then return nil, ("aws: no profile %q in the AWS config or credentials files"):format(name), "invalid" end
  if p.role_arn then
    local key = "role:" .. name
    if fresh(cache[key]) then return cache[key] end
    local src, err, tok
    if p.source_profile then
      src, err, tok = from_profile(p.source_profile, opts, depth + 1)
    elseif p.credential_source == "Environment" then
      src, err, tok = resolve({ region = opts.region }, "env")
    elseif p.credential_source == "Ec2InstanceMetadata" then
      src, err = imds()
      tok = "auth"
    else
      return nil, ("aws: profile %s has role_arn but neither source_profile nor credential_source"):format(name), "invalid"
    end
    if not src then return nil, err, tok end
    local c
    c, err, tok = assume_role(p, name, src, opts)
    if not c then return nil, "aws: " .. err, tok end
    cache[key] = c
    return c
  end
  if p.aws_access_key_id and p.aws_secret_access_key then
    return remember { access_key = p.aws_access_key_id, secret_key = p.aws_secret_access_key,
                      token = p.aws_session_token, source = "profile " .. name }
  end
  return nil, ("aws: profile %s has no aws_access_key_id/aws_secret_access_key or role_arn"):format(name), "invalid"
end

-- The credentials for a call: { access_key, secret_key, token, source }, or
-- nil, err, token.  only = "env" limits the search to the environment.
resolve = function(opts, only)
  if opts.credentials then
    local c = opts.credentials
    if not c.access_key or not c.secret_key then
      error("aws: credentials = { access_key =, secret_key = [, token =] } needs both keys", 4)
    end
    return remember { access_key = c.access_key, secret_key = c.secret_key, token = c.token,
                      source = "credentials =" }
  end
  if opts.profile then return from_profile(opts.profile, opts, 0) end
  local ak, sk = env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")
  if ak and sk then
    return remember { access_key = ak, secret_key = sk, token = env("AWS_SESSION_TOKEN"),
                      source = "environment" }
  end
  if only == "env" then
    return nil, "aws: credential_source = Environment, but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set", "auth"
  end
  local pname = env("AWS_PROFILE")
  if pname or M.profile("default") then return from_profile(pname or "default", opts, 0) end
  if fresh(cache.imds) then return cache.imds end
  local c, why = imds()
  if c then
    cache.imds = c
    return c
  end
  return nil, "aws: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, name a profile (AWS_PROFILE or profile =), or run on an instance with a role (" .. why .. ")", "auth"
end
M.credentials = function(opts) return resolve(opts or {}) end

-- ---- region and endpoint -------------------------------------------------------

function M.region(opts, svc)
  local r = opts.region or env("AWS_REGION") or env("AWS_DEFAULT_REGION")
  if not r then
    local p = M.profile(opts.profile or env("AWS_PROFILE") or "default")
    r = p and p.region
  end
  if not r and svc and svc.global_region then r = svc.global_region end
  if not r then
    fail("no region: pass region =, or set AWS_REGION (or the profile's region)")
  end
  if not r:match("^[a-z][a-z]%-[a-z%-]+%-%d+$") then
    fail("unknown region %q (regions look like us-east-1)", r)
  end
  return r
end

local function endpoint(opts, svc, region)
  local e = opts.endpoint_url or opts.endpoint or env("AWS_ENDPOINT_URL_" .. svc.env)
            or env("AWS_ENDPOINT_URL")
  if not e then
    local p = M.profile(opts.profile or env("AWS_PROFILE") or "default")
    e = p and p.endpoint_url
  end
  if not e then return "https://" .. svc.host:format(region) end
  if not e:match("^https?://[^/]+") then
    fail("endpoint %q is not an http(s) URL", e)
  end
  return (e:gsub("/+$", ""))
end

-- The TLS options of a call: tls = as given, else the CA bundle the AWS CLI
-- would use (AWS_CA_BUNDLE, or the profile's ca_bundle) for a private CA
-- such as an S3-compatible store's, else curl's defaults.
local function tls_for(opts)
  if opts.tls ~= nil then return opts.tls end
  local ca = env("AWS_CA_BUNDLE")
  if not ca then
    local p = M.profile(opts.profile or env("AWS_PROFILE") or "default")
    ca = p and p.ca_bundle
  end
  if ca then return { ca = (ca:gsub("^~", env("HOME") or "~")) } end
  return nil
end

-- The endpoint of a call ("https://host[/base]", no trailing slash): for
-- modules that build URLs themselves (S3's presigned URLs).
function M.endpoint(opts, service)
  local svc = M.services[service]
  return endpoint(opts, svc, M.region(opts, svc))
end

-- ---- the request ---------------------------------------------------------------

local function find_error(data, root)
  if type(data) ~= "table" then return nil end
  -- query: ErrorResponse/Error; ec2: Response/Errors/Error; s3: Error
  local e = data.Error or (data.Errors and M.list(data.Errors)[1])
  if type(e) == "table" and e.Error then e = e.Error end
  if root == "Error" then e = data end
  if type(e) == "table" and e.Code then
    return e.Code, e.Message, data.RequestId or data.RequestID or e.RequestId
  end
  if root == "InvalidChangeBatch" then
    local msgs = {}
    for _, m in ipairs(M.list(data.Messages)) do msgs[#msgs + 1] = m end
    return "InvalidChangeBatch", table.concat(msgs, "; "), data.RequestId
  end
  return nil
end

-- The retry quota of the standard mode: every retry spends tokens, every
-- success refunds one; an empty bucket means no more retries this run.
local quota = { tokens = 500 }
local RETRY_COST, TIMEOUT_COST = 5, 10

local function is_throttle(tok) return tok == "throttled" end

-- Send one signed request; returns the response table or nil, err, tok,
-- code.  No retries.
local function send(opts, svc, region, creds)
  local url = endpoint(opts, svc, region)
  local authority = url:match("^https?://([^/]+)")
  local base_path = url:match("^https?://[^/]+(/.*)$") or ""
  local path = base_path .. (opts.path or "/")
  local query = opts.query
  if type(query) == "table" then query = form(query) end
  local body = opts.body or ""
  local headers = {}
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  headers.Host = authority
  local payload = opts.payload_hash
  if not payload and opts.body_file then
    -- streamed from a file: UNSIGNED-PAYLOAD when asked for and the
    -- connection is TLS (S3 only), else the file's SHA-256, computed in the
    -- thread pool before the request is signed
    if opts.unsigned_payload and opts.service == "s3" and url:match("^https://") then
      payload = "UNSIGNED-PAYLOAD"
    else
      local h, err, tok = http.file_sha256(opts.body_file, opts.body_offset, opts.body_length)
      if not h then return nil, "aws: " .. err, tok end
      payload = h.sha256
    end
  end
  if not payload then
    payload = body == "" and EMPTY_SHA256 or require("drrun.crypto").sha256_hex(body)
  end
  local s = core.sign { method = opts.method or "GET", path = path, query = query,
    headers = headers, payload_hash = payload, region = region,
    service = opts.signing_name or opts.service, access_key = creds.access_key,
    secret_key = creds.secret_key, token = creds.token, sign_body = opts.service == "s3" }
  headers.Host = nil -- curl sends it from the URL
  headers.Authorization = s.authorization
  for k, v in pairs(s.headers) do headers[k] = v end
  headers["User-Agent"] = "drrun/" .. dcore.version
  local full = url:match("^(https?://[^/]+)") .. path .. (query and query ~= "" and "?" .. query or "")
  local r, err, tok = http.request { method = opts.method or "GET", url = full, headers = headers,
    body = body ~= "" and body or nil, timeout = opts.timeout or "60s",
    connect_timeout = opts.connect_timeout, safe = opts.safe, tls = tls_for(opts),
    max_body = opts.max_body, body_file = opts.body_file, body_offset = opts.body_offset,
    body_length = opts.body_length, output = opts.output, sha256 = opts.sha256,
    sha256_header = opts.sha256_header }
  if not r then return nil, "aws: " .. err, tok end
  local data, root
  local parse = r.status >= 300 or not opts.raw
  if parse and r.body ~= "" and (r.headers["content-type"] or ""):find("json", 1, true) == nil
     and r.body:find("^%s*<") then
    data, root = core.xml(r.body)
    if not data and r.status < 300 then
      return nil, "aws: " .. opts.service .. " answered " .. root, "invalid"
    end
  elseif parse and r.body ~= "" and r.status < 300 and svc.protocol ~= "rest-xml" then
    return nil, ("aws: %s answered HTTP %d with a body that is not XML: %q"):format(
      opts.service, r.status, r.body:sub(1, 60)), "invalid"
  end
  if r.status >= 300 then
    local code, msg, rid = find_error(data, root)
    rid = rid or r.headers["x-amzn-requestid"] or r.headers["x-amz-request-id"]
    if not code then
      -- a HEAD has no body; anything else that is not AWS's error shape
      -- is reported as it came, cut short
      local tok2 = M.token_for(nil, r.status)
      local what = r.body == "" and "" or (", not an AWS error: %q"):format(
        r.body:sub(1, 80):gsub("[%c]", " "))
      return nil, ("aws: %s answered HTTP %d%s%s"):format(opts.service, r.status, what,
        rid and (" (request " .. rid .. ")") or ""), tok2, nil, r.status
    end
    local tok2 = M.token_for(code, r.status)
    return nil, ("aws: %s: %s%s"):format(code, msg or "", rid and (" (request " .. rid .. ")") or ""),
           tok2, code, r.status
  end
  r.data, r.root = data, root
  if data and svc.protocol == "query" and type(data) == "table" then
    local op = root and root:match("^(.*)Response$")
    r.result = op and data[op .. "Result"] or data
  end
  r.request_id = r.headers["x-amzn-requestid"] or r.headers["x-amz-request-id"]
    or (type(data) == "table" and (data.requestId or (data.ResponseMetadata
        and data.ResponseMetadata.RequestId)))
  return r
end

-- Send one signed request without waiting for its answer (nor yielding):
-- for a step's last word as it is cancelled (a __close handler), such as
-- aborting a multipart upload.  Needs credentials already at hand (from an
-- earlier call, the environment or credentials =).  true, or nil, err.
function M.send_detached(opts)
  local svc = M.services[opts.service or ""]
  local region = svc.global_region or M.region(opts, svc)
  local creds, err = resolve(opts)
  if not creds then return nil, err end
  local url = endpoint(opts, svc, region)
  local authority = url:match("^https?://([^/]+)")
  local path = (url:match("^https?://[^/]+(/.*)$") or "") .. (opts.path or "/")
  local query = type(opts.query) == "table" and form(opts.query) or opts.query
  local headers = { Host = authority }
  local s = core.sign { method = opts.method, path = path, query = query, headers = headers,
    payload_hash = EMPTY_SHA256, region = region, service = opts.service,
    access_key = creds.access_key, secret_key = creds.secret_key, token = creds.token,
    sign_body = opts.service == "s3" }
  headers.Host = nil
  headers.Authorization = s.authorization
  for k, v in pairs(s.headers) do headers[k] = v end
  return http.core.request { method = opts.method, url = url:match("^(https?://[^/]+)") .. path ..
    (query and query ~= "" and "?" .. query or ""), headers = headers, timeout = "30s",
    detached = true, tls = tls_for(opts) }
end

-- Placeholder of a write under --dry-run.
local function dry(opts)
  local what = opts.operation or ((opts.method or "GET") .. " " .. (opts.path or "/"))
  local shown = opts.describe
  if shown == nil and opts.params then shown = opts.params end
  local detail = ""
  if shown ~= nil then
    local ok, j = pcall(json.encode, shown, { sort_keys = true })
    detail = " " .. (ok and j or tostring(shown))
  end
  dcore.log(("would call %s %s%s"):format(opts.service, what, detail))
  return { dry_run = true, status = 0, headers = {}, body = "", data = {}, result = {} }
end

-- aws.request{ service, region, method, path, query, headers, body,
--   endpoint_url, profile, credentials, timeout, retry, safe,
--   idempotent, verify, operation, params }
--   -> { status, headers, body, data (the XML as tables), root, result,
--        request_id } | nil, err, token, code
function M.request(opts)
  if type(opts) ~= "table" then error("aws.request expects a table of options", 2) end
  local svc = M.services[opts.service or ""]
  if not svc then
    error(("aws: unknown service %q (known: ec2, rds, s3, route53, sts)"):format(
      tostring(opts.service)), 2)
  end
  local region = M.region(opts, svc)
  local sign_region = svc.global_region or region
  local method = (opts.method or "GET"):upper()
  local safe = opts.safe
  if safe == nil then safe = method == "GET" or method == "HEAD" end
  if dcore.dry_run() and not safe then return dry(opts) end
  local creds, err, tok = resolve(opts)
  if not creds then return nil, err, tok end
  local idempotent = opts.idempotent
  if idempotent == nil then idempotent = safe or method == "PUT" or method == "DELETE" end
  local o = setmetatable({ method = method, safe = safe }, { __index = opts })
  local attempts = tonumber(opts.retry or env("AWS_MAX_ATTEMPTS") or 3)
  local n = 0
  while true do
    n = n + 1
    local r, e, t, code, status = send(o, svc, sign_region, creds)
    if r then
      quota.tokens = math.min(500, quota.tokens + 1)
      return r
    end
    local retryable = is_throttle(t) or t == "refused" or t == "dns"
    if not retryable and (t == "unavailable" or t == "timeout" or t == "closed"
                          or TRANSIENT_CODES[code or ""]) then
      retryable = idempotent
      if not retryable and opts.verify then
        -- false: the attempt did nothing, send it again; a table: it took
        -- effect, and that is the call's result; nil: nobody knows
        local v = opts.verify()
        if type(v) == "table" then return v end
        retryable = v == false
      end
    end
    local cost = t == "timeout" and TIMEOUT_COST or RETRY_COST
    if not retryable or n >= attempts or quota.tokens < cost then
      return nil, e, t, code, status
    end
    quota.tokens = quota.tokens - cost
    -- full jitter: anywhere from 0 to 2^n seconds, capped at 20
    local wait = math.random() * math.min(20, 2 ^ (n - 1))
    dcore.log(("aws: %s %s failed (%s), retry %d of %d in %.1fs"):format(
      opts.service, opts.operation or method, code or t, n, attempts - 1, wait))
    drrun.sleep(wait)
  end
end

-- A query- or ec2-protocol call: Action=op&Version=...&<flattened params>.
-- Describe*/List*/Get* are reads: sent under --dry-run, retried freely.
function M.call(service, op, params, opts)
  opts = opts or {}
  local svc = M.services[service]
  if not svc or svc.protocol == "rest-xml" then
    error(("aws.call: %s is not a query or ec2 protocol service"):format(tostring(service)), 2)
  end
  local flat = M.flatten(params)
  flat.Action, flat.Version = op, svc.version
  local read = op:match("^Describe") or op:match("^List") or op:match("^Get")
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.service, o.method, o.body = service, "POST", form(flat)
  o.headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" }
  o.operation, o.params = op, params
  if o.safe == nil then o.safe = read ~= nil end
  if o.idempotent == nil then o.idempotent = read ~= nil or (params and params.ClientToken ~= nil) end
  return M.request(o)
end

-- ---- what the service modules share ------------------------------------------

-- opts must be a table with these fields set (misuse raises at the
-- runbook's line: level 3 is the caller of the verb that calls this)
function M.args(opts, who, required)
  if type(opts) ~= "table" then error(("%s expects a table of options"):format(who), 3) end
  for _, k in ipairs(required or {}) do
    if opts[k] == nil or opts[k] == "" then error(("%s: %s is required"):format(who, k), 3) end
  end
  return opts
end

-- seconds from a duration string or a number, or default
function M.secs(v, default)
  if v == nil then return default end
  if type(v) == "number" then return v end
  local s, err = drrun.duration(v)
  if not s then error(err, 3) end
  return s
end

-- Ask probe() every `interval` seconds until it gives an answer, for at most
-- `timeout` seconds.  probe returns the result (done); or nil and where
-- things stand (not yet, said in the timeout's message); or false, err,
-- token, code (stop: a failure, or a state there is no coming back from).
-- The waiters of the AWS modules are this, with botocore's acceptors.
function M.poll(probe, timeout, interval, who)
  local deadline = dcore.now() + timeout
  while true do
    local r, a, b, c = probe()
    if r then return r end
    if r == false then return nil, a, b, c end
    if dcore.now() + interval > deadline then
      return nil, ("aws: %s: timeout: %s after %ds"):format(who, tostring(a), math.floor(timeout)),
        "timeout"
    end
    drrun.sleep(interval)
  end
end

-- Options every verb passes on to aws.request.
M.passthrough = { "region", "profile", "credentials", "endpoint_url", "endpoint", "timeout",
                  "retry", "tls" }
function M.pick(opts)
  local o = {}
  for _, k in ipairs(M.passthrough) do o[k] = opts[k] end
  return o
end

return M
