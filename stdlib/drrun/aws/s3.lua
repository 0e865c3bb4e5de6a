-- drrun.aws.s3: S3 objects and listings over drrun.aws (rest-xml, path-style
-- addressing: endpoint/bucket/key, the key encoded once).  Returned fields
-- are AWS's own (Key, LastModified, Size, ETag).  Every call takes region =,
-- profile =, credentials =, endpoint_url = (else drrun.aws's chain).
--
-- Bodies are held in memory for now (files up to max_body, 1 GiB by
-- default); streaming and multipart uploads are not there yet.
local aws = require "drrun.aws"
local crypto = require "drrun.crypto"
local exec = require "drrun.exec"

local M = {}

local DEFAULT_MAX = 1024 * 1024 * 1024

local function need(opts, fn, ...)
  if type(opts) ~= "table" then error(("s3.%s expects a table of options"):format(fn), 3) end
  for _, k in ipairs { ... } do
    if type(opts[k]) ~= "string" or opts[k] == "" then
      error(("s3.%s: '%s' is required (a string)"):format(fn, k), 3)
    end
  end
end

local function object_path(bucket, key)
  if key then return "/" .. bucket .. "/" .. aws.encode_path(key) end
  return "/" .. bucket
end

local function base(opts, extra)
  local o = aws.pick(opts)
  o.service = "s3"
  for k, v in pairs(extra) do o[k] = v end
  return o
end

local function unquote(etag) return etag and (etag:gsub('^"(.*)"$', "%1")) end

local function sse_headers(opts, h)
  if opts.sse then
    if opts.sse ~= "AES256" and opts.sse ~= "aws:kms" then
      error(("aws: s3: sse = %q: use \"AES256\" or \"aws:kms\""):format(tostring(opts.sse)), 3)
    end
    h["x-amz-server-side-encryption"] = opts.sse
    if opts.kms_key then h["x-amz-server-side-encryption-aws-kms-key-id"] = opts.kms_key end
  elseif opts.kms_key then
    error("aws: s3: kms_key needs sse = \"aws:kms\"", 3)
  end
  return h
end

-- Write s to path atomically, without blocking the loop: a temporary file
-- beside it (mktemp), fsync'd (sync FILE) and renamed; removed on failure.
local function write_file(path, s)
  local r, err = exec.run { "sh", "-c",
    'umask 077; t=$(mktemp "$1.XXXXXX") || exit 1; ' ..
    'if cat >"$t" && sync "$t" && mv -f "$t" "$1"; then exit 0; fi; rm -f "$t"; exit 1',
    "s3-write", path, stdin = s, timeout = "10m" }
  if not r then return nil, "aws: s3: cannot write " .. path .. ": " .. err, "io" end
  if r.status ~= 0 then
    return nil, ("aws: s3: cannot write %s: %s"):format(path, (r.stderr:gsub("%s+$", ""))), "io"
  end
  return true
end

-- s3.put{ bucket, key, body = s | file = path, sse, kms_key, content_type }
--   -> { etag, size, sha256 }
function M.put(opts)
  need(opts, "put", "bucket", "key")
  local body = opts.body
  if opts.file then
    local err, tok
    body, err, tok = require("drrun.fs").read(opts.file, { max = opts.max_body or DEFAULT_MAX })
    if not body then return nil, "aws: s3: " .. err, tok end
  end
  if type(body) ~= "string" then error("s3.put: body = string or file = path is required", 2) end
  local digest = crypto.sha256(body)
  local hex = crypto.hex(digest)
  local h = sse_headers(opts, { ["x-amz-checksum-sha256"] = crypto.base64(digest) })
  if opts.content_type then h["Content-Type"] = opts.content_type end
  local r, err, tok, code = aws.request(base(opts, { method = "PUT",
    path = object_path(opts.bucket, opts.key), headers = h, body = body, payload_hash = hex,
    raw = true, operation = "PutObject",
    describe = { Bucket = opts.bucket, Key = opts.key, Size = #body, ChecksumSHA256 = hex } }))
  if not r then return nil, err, tok, code end
  return { etag = unquote(r.headers.etag), size = #body, sha256 = hex, dry_run = r.dry_run }
end

-- s3.get{ bucket, key [, file = path, sha256 = hex] } -> { etag, size,
-- sha256 [, body] }.  The SHA-256 of what came is checked against the
-- server's x-amz-checksum-sha256 when it sends one, else against sha256 =;
-- a mismatch fails ("invalid") and writes no file.  With file =, the body
-- goes to the file (atomically) and is not returned.  Under --dry-run the
-- GET is made and checked but no file is written (dry_run = true).
function M.get(opts)
  need(opts, "get", "bucket", "key")
  local r, err, tok, code = aws.request(base(opts, { method = "GET",
    path = object_path(opts.bucket, opts.key), raw = true, operation = "GetObject",
    max_body = opts.max_body or DEFAULT_MAX }))
  if not r then return nil, err, tok, code end
  local digest = crypto.sha256(r.body)
  local hex = crypto.hex(digest)
  local want, from = r.headers["x-amz-checksum-sha256"], "the server's x-amz-checksum-sha256"
  local got = crypto.base64(digest)
  if not want and opts.sha256 then
    want, from, got = opts.sha256:lower(), "sha256 =", hex
  end
  if want and want ~= got then
    return nil, ("aws: s3: %s/%s: the SHA-256 of what was read (%s) is not %s (%s)"):format(
      opts.bucket, opts.key, hex, from, want), "invalid", "ChecksumMismatch"
  end
  local out = { etag = unquote(r.headers.etag), size = #r.body, sha256 = hex }
  if opts.file then
    if require("drrun.core").dry_run() then
      out.dry_run = true
    else
      local ok, e, t = write_file(opts.file, r.body)
      if not ok then return nil, e, t end
    end
  else
    out.body = r.body
  end
  return out
end

-- s3.head{ bucket, key } -> { etag, size, last_modified, content_type, sse, metadata }
function M.head(opts)
  need(opts, "head", "bucket", "key")
  local r, err, tok, code = aws.request(base(opts, { method = "HEAD",
    path = object_path(opts.bucket, opts.key), raw = true, operation = "HeadObject" }))
  if not r then return nil, err, tok, code end
  local meta = {}
  for k, v in pairs(r.headers) do
    local m = k:match("^x%-amz%-meta%-(.+)$")
    if m then meta[m] = v end
  end
  return { etag = unquote(r.headers.etag), size = tonumber(r.headers["content-length"]),
           last_modified = r.headers["last-modified"], content_type = r.headers["content-type"],
           sse = r.headers["x-amz-server-side-encryption"], metadata = meta }
end

-- s3.list{ bucket, prefix [, max_keys] } -> the Contents entries of every
-- page of ListObjectsV2 (Key, LastModified, Size as a number, ETag, StorageClass)
function M.list(opts)
  need(opts, "list", "bucket")
  local out, token = {}, nil
  repeat
    local q = { ["list-type"] = "2", prefix = opts.prefix, ["continuation-token"] = token,
                ["max-keys"] = opts.max_keys }
    local r, err, tok, code = aws.request(base(opts, { method = "GET",
      path = object_path(opts.bucket), query = q, operation = "ListObjectsV2" }))
    if not r then return nil, err, tok, code end
    local d = r.data
    if type(d) ~= "table" then
      return nil, "aws: s3: ListObjectsV2 answered without a ListBucketResult", "invalid"
    end
    for _, c in ipairs(aws.list(d.Contents)) do
      c.Size = tonumber(c.Size)
      out[#out + 1] = c
    end
    token = d.IsTruncated == "true" and d.NextContinuationToken or nil
  until not token
  return out
end

-- s3.latest{ bucket, prefix } -> the newest object's Contents entry, or
-- nil, err, "not_found" when nothing is under the prefix
function M.latest(opts)
  local all, err, tok, code = M.list(opts)
  if not all then return nil, err, tok, code end
  local best, bt
  for _, c in ipairs(all) do
    local t = aws.parse_time(c.LastModified) or 0
    if not best or t > bt or (t == bt and c.Key > best.Key) then best, bt = c, t end
  end
  if not best then
    return nil, ("aws: s3: no object under s3://%s/%s"):format(opts.bucket, opts.prefix or ""), "not_found"
  end
  return best
end

-- s3.delete{ bucket, key } -> true
function M.delete(opts)
  need(opts, "delete", "bucket", "key")
  local r, err, tok, code = aws.request(base(opts, { method = "DELETE",
    path = object_path(opts.bucket, opts.key), raw = true, operation = "DeleteObject",
    describe = { Bucket = opts.bucket, Key = opts.key } }))
  if not r then return nil, err, tok, code end
  return true
end

-- s3.copy{ bucket, key, source_bucket, source_key, sse, kms_key } -> { etag, last_modified }
function M.copy(opts)
  need(opts, "copy", "bucket", "key", "source_key")
  local sb = opts.source_bucket or opts.bucket
  local h = sse_headers(opts, { ["x-amz-copy-source"] = object_path(sb, opts.source_key) })
  local r, err, tok, code = aws.request(base(opts, { method = "PUT",
    path = object_path(opts.bucket, opts.key), headers = h, operation = "CopyObject",
    describe = { Bucket = opts.bucket, Key = opts.key, CopySource = sb .. "/" .. opts.source_key } }))
  if not r then return nil, err, tok, code end
  if r.dry_run then return { dry_run = true } end
  -- CopyObject can fail after its 200: the error is then the body
  if r.root == "Error" then
    local d = r.data or {}
    return nil, ("aws: %s: %s"):format(d.Code or "InternalError", d.Message or ""),
           aws.token_for(d.Code, 500), d.Code
  end
  local d = r.data or {}
  return { etag = unquote(d.ETag), last_modified = d.LastModified }
end

-- s3.presign{ bucket, key, method = "GET", expires = 3600 } -> url
function M.presign(opts)
  need(opts, "presign", "bucket", "key")
  local expires = math.tointeger(opts.expires or 3600)
  if not expires or expires < 1 or expires > 604800 then
    error("s3.presign: expires must be whole seconds from 1 to 604800", 2)
  end
  local svc = aws.services.s3
  local region = aws.region(opts, svc)
  local url = aws.endpoint(opts, "s3")
  local creds, err, tok = aws.credentials(opts)
  if not creds then return nil, err, tok end
  local authority = url:match("^https?://([^/]+)")
  local path = (url:match("^https?://[^/]+(/.*)$") or "") .. object_path(opts.bucket, opts.key)
  local s = aws.core.sign { method = (opts.method or "GET"):upper(), path = path,
    headers = { Host = authority }, payload_hash = "UNSIGNED-PAYLOAD", region = region,
    service = "s3", access_key = creds.access_key, secret_key = creds.secret_key,
    token = creds.token, presign = expires, sign_body = true }
  return url:match("^(https?://[^/]+)") .. path .. "?" .. s.query
end

return M
