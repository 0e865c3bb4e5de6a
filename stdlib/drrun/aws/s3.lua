-- drrun.aws.s3: S3 objects and listings over drrun.aws (rest-xml, path-style
-- addressing: endpoint/bucket/key, the key encoded once).  Returned fields
-- are AWS's own (Key, LastModified, Size, ETag).  Every call takes region =,
-- profile =, credentials =, endpoint_url = (else drrun.aws's chain).
--
-- Files stream (drrun.http's body_file = and output =: never held in
-- memory), but for a PUT of at most SMALL_FILE bytes, read whole with its
-- hash; a file over multipart_threshold goes up in parts, in parallel.
local drrun = require "drrun"
local aws = require "drrun.aws"
local crypto = require "drrun.crypto"
local dcore = require "drrun.core"
local http = require "drrun.http"

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

-- ---- addressing ------------------------------------------------------------
-- "path": endpoint/bucket/key.  "virtual": bucket.endpoint/key (AWS's own
-- style, and the only one for buckets made since 2020 in some regions).
-- "auto" (the default, as botocore's): virtual on AWS's own endpoint when
-- the bucket name can be a host name, path on any other endpoint (MinIO,
-- Wasabi, Backblaze B2, DigitalOcean Spaces, s3rver).  From addressing_style =,
-- else the profile's `s3 = addressing_style = ...` (~/.aws/config).
local STYLES = { auto = true, virtual = true, path = true }

-- A bucket name that can be the first label of a host name: 3 to 63
-- lowercase letters, digits and hyphens (dots only over plain http: the
-- wildcard certificate of TLS covers one label).
local function dns_bucket(b, tls)
  if #b < 3 or #b > 63 or not b:match("^[a-z0-9][a-z0-9.%-]*[a-z0-9]$") then return false end
  if b:find("..", 1, true) or b:match("^%d+%.%d+%.%d+%.%d+$") then return false end
  return not (tls and b:find(".", 1, true))
end

local function style(opts)
  local s = opts.addressing_style
  if s == nil then
    local p = aws.profile(opts.profile or os.getenv("AWS_PROFILE") or "default")
    s = p and type(p.s3) == "table" and p.s3.addressing_style or "auto"
  end
  if not STYLES[s] then
    error(("aws: s3: addressing_style = %q: use \"auto\", \"virtual\" or \"path\""):format(tostring(s)), 4)
  end
  return s
end

-- The endpoint and path of bucket (and key): { url, path }.
function M.address(opts, bucket, key)
  local url = aws.endpoint(opts, "s3")
  local s = style(opts)
  local tls = url:match("^https://") ~= nil
  if s == "auto" then
    local own = url == ("https://s3.%s.amazonaws.com"):format(aws.region(opts, aws.services.s3))
    s = own and dns_bucket(bucket, tls) and "virtual" or "path"
  end
  if s == "virtual" then
    if not dns_bucket(bucket, tls) then
      error(("aws: s3: bucket %q cannot be a host name: use addressing_style = \"path\""):format(bucket), 4)
    end
    return { url = (url:gsub("^(https?://)", "%1" .. bucket .. ".", 1)),
             path = key and "/" .. aws.encode_path(key) or "/" }
  end
  return { url = url, path = object_path(bucket, key) }
end

local function base(opts, extra)
  local o = aws.pick(opts)
  o.service = "s3"
  for k, v in pairs(extra) do o[k] = v end
  if o.at then
    local a = M.address(opts, o.at[1], o.at[2])
    o.endpoint_url, o.path, o.at = a.url, a.path, nil
  end
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

local function from_hex(h) return (h:gsub("%x%x", function(c) return string.char(tonumber(c, 16)) end)) end

M.PART_SIZE = 64 * 1024 * 1024 -- multipart: the default part size
M.MIN_PART = 5 * 1024 * 1024    -- S3's smallest part (but the last)
M.MAX_PARTS = 10000
M.SMALL_FILE = 256 * 1024       -- a file this small is read whole, not streamed

-- AbortMultipartUpload: the parts uploaded so far are dropped (S3 keeps,
-- and bills, an upload that is neither completed nor aborted).
local function abort_upload(opts, id)
  return aws.request(base(opts, { method = "DELETE", at = { opts.bucket, opts.key },
    query = { uploadId = id }, raw = true, operation = "AbortMultipartUpload",
    describe = { Bucket = opts.bucket, Key = opts.key, UploadId = id } }))
end

-- Should the step be cancelled (its timeout, a failed sibling, Ctrl-C)
-- while parts are in flight, its coroutine is closed without a chance to
-- wait: the abort is then sent without waiting for the answer.
local function abort_on_close(opts, id)
  return setmetatable({}, { __close = function(self)
    if self.done or self.aborted then return end
    pcall(aws.send_detached, base(opts, { method = "DELETE",
      at = { opts.bucket, opts.key }, query = { uploadId = id } }))
  end })
end

-- A multipart upload of size bytes of file: parts of part_size bytes, at
-- most `parallel` in flight, each signed with its own SHA-256; the whole
-- file's SHA-256 is computed alongside.  Any failure aborts the upload.
local function put_multipart(opts, h, size, part_size, parallel)
  local nparts = (size + part_size - 1) // part_size
  local r, err, tok, code = aws.request(base(opts, { method = "POST",
    at = { opts.bucket, opts.key }, query = "uploads=", headers = h,
    operation = "CreateMultipartUpload",
    describe = { Bucket = opts.bucket, Key = opts.key, Size = size, Parts = nparts } }))
  if not r then return nil, err, tok, code end
  if r.dry_run then return { dry_run = true, size = size, parts = nparts } end
  local id = type(r.data) == "table" and r.data.UploadId
  if type(id) ~= "string" or id == "" then
    return nil, "aws: s3: CreateMultipartUpload answered without an UploadId", "invalid"
  end
  local guard <close> = abort_on_close(opts, id)
  local items = { { whole = true } }
  for i = 1, nparts do
    local off = (i - 1) * part_size
    items[#items + 1] = { n = i, offset = off, length = math.min(part_size, size - off) }
  end
  local failed -- the first failure: { err, token, code }
  local function check(v, e, t, c)
    if v then return v end
    failed = failed or { e, t, c }
    error(e, 0) -- parallel stops the other parts
  end
  local ok, res = pcall(drrun.parallel, items, function(it)
    if it.whole then
      local w, e, t = http.file_sha256(opts.file)
      return check(w, w or "aws: s3: " .. e, t)
    end
    local hh, e, t = http.file_sha256(opts.file, it.offset, it.length)
    check(hh, hh or "aws: s3: " .. e, t)
    local pr = check(aws.request(base(opts, { method = "PUT",
      at = { opts.bucket, opts.key },
      query = { partNumber = tostring(it.n), uploadId = id }, body_file = opts.file,
      body_offset = it.offset, body_length = it.length, payload_hash = hh.sha256,
      raw = true, operation = "UploadPart", timeout = opts.timeout or "30m" })))
    if pr.sent_sha256 ~= hh.sha256 then
      check(nil, ("aws: s3: part %d of %s changed while it was sent"):format(it.n, opts.file), "io")
    end
    return { etag = pr.headers.etag }
  end, { limit = parallel + 1 })
  local function give_up(e, t, c)
    guard.aborted = true
    local a, aerr = abort_upload(opts, id)
    if not a then e = e .. " (and AbortMultipartUpload failed: " .. aerr .. ")" end
    return nil, e, t, c
  end
  if not ok then
    failed = failed or { "aws: s3: " .. tostring(res), "io" }
    return give_up(failed[1], failed[2], failed[3])
  end
  local xml = { '<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' }
  for i = 1, nparts do
    local etag = res[i + 1].etag
    if not etag then return give_up("aws: s3: UploadPart answered without an ETag", "invalid") end
    xml[#xml + 1] = ("<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>"):format(
      i, aws.xml_escape(etag))
  end
  xml[#xml + 1] = "</CompleteMultipartUpload>"
  r, err, tok, code = aws.request(base(opts, { method = "POST",
    at = { opts.bucket, opts.key }, query = { uploadId = id },
    body = table.concat(xml), headers = { ["Content-Type"] = "application/xml" },
    operation = "CompleteMultipartUpload", idempotent = true }))
  if r and r.root == "Error" then -- a 200 whose body is an error
    local d = r.data or {}
    r, err, tok, code = nil, ("aws: %s: %s"):format(d.Code or "InternalError", d.Message or ""),
      aws.token_for(d.Code, 500), d.Code
  end
  if not r then return give_up(err, tok, code) end
  guard.done = true
  local d = type(r.data) == "table" and r.data or {}
  return { etag = unquote(d.ETag), size = size, sha256 = res[1].sha256, parts = nparts,
           upload_id = id }
end

-- A file of at most SMALL_FILE bytes, read with its hash (st): one PUT of
-- those bytes, so what was hashed is what is sent.
local function put_small(opts, h, st)
  local hex = st.sha256
  h["x-amz-checksum-sha256"] = crypto.base64(from_hex(hex))
  local r, err, tok, code = aws.request(base(opts, { method = "PUT",
    at = { opts.bucket, opts.key }, headers = h, body = st.body, payload_hash = hex,
    raw = true, operation = "PutObject", timeout = opts.timeout or "30m",
    describe = { Bucket = opts.bucket, Key = opts.key, Size = st.bytes, ChecksumSHA256 = hex,
                 File = opts.file } }))
  if not r then return nil, err, tok, code end
  if r.dry_run then return { dry_run = true, size = st.bytes, sha256 = hex } end
  return { etag = unquote(r.headers.etag), size = st.bytes, sha256 = hex }
end

-- s3.put{ bucket, key, body = s | file = path, sse, kms_key, content_type,
--   part_size, multipart_threshold, parallel, unsigned_payload }
--   -> { etag, size, sha256 [, parts] }
function M.put(opts)
  need(opts, "put", "bucket", "key")
  local h = sse_headers(opts, {})
  if opts.content_type then h["Content-Type"] = opts.content_type end
  if opts.file then
    if type(opts.file) ~= "string" or opts.file == "" then error("s3.put: file must be a path", 2) end
    if opts.body ~= nil then error("s3.put: body and file exclude each other", 2) end
    local part = math.tointeger(opts.part_size or M.PART_SIZE)
    if not part or part < M.MIN_PART then
      error(("s3.put: part_size must be whole bytes, at least %d (5 MiB)"):format(M.MIN_PART), 2)
    end
    local threshold = math.tointeger(opts.multipart_threshold or part)
    if not threshold or threshold < 0 then error("s3.put: multipart_threshold must be whole bytes", 2) end
    local parallel = math.tointeger(opts.parallel or 4)
    if not parallel or parallel < 1 or parallel > 64 then error("s3.put: parallel must be 1 to 64", 2) end
    -- a small file is read whole in the same job of the thread pool as its
    -- size and hash, and sent from memory; any other is only looked at
    local signed = not (opts.unsigned_payload and aws.endpoint(opts, "s3"):match("^https://"))
    local st, err, tok
    if signed then
      st, err, tok = http.file_sha256(opts.file, 0, nil, { small = math.min(M.SMALL_FILE, threshold) })
    else
      st, err, tok = http.file_sha256(opts.file, 0, 0)
    end
    if not st then return nil, "aws: s3: " .. err, tok end
    if st.body and st.bytes > 0 then return put_small(opts, h, st) end
    local size = st.size
    if size > threshold then
      if (size + part - 1) // part > M.MAX_PARTS then
        error(("s3.put: %s needs more than %d parts of %d bytes: raise part_size"):format(
          opts.file, M.MAX_PARTS, part), 2)
      end
      return put_multipart(opts, h, size, part, parallel)
    end
    -- one PUT, streamed from the file: signed with its SHA-256 (hashed in
    -- the thread pool first), or UNSIGNED-PAYLOAD over TLS when asked
    local hex
    if signed then
      local hh
      hh, err, tok = http.file_sha256(opts.file)
      if not hh then return nil, "aws: s3: " .. err, tok end
      hex, size = hh.sha256, hh.bytes
      h["x-amz-checksum-sha256"] = crypto.base64(from_hex(hex))
    end
    local r, code
    r, err, tok, code = aws.request(base(opts, { method = "PUT",
      at = { opts.bucket, opts.key }, headers = h, body_file = opts.file,
      body_length = size, payload_hash = hex, unsigned_payload = opts.unsigned_payload,
      raw = true, operation = "PutObject", timeout = opts.timeout or "30m",
      describe = { Bucket = opts.bucket, Key = opts.key, Size = size, ChecksumSHA256 = hex,
                   File = opts.file } }))
    if not r then return nil, err, tok, code end
    if r.dry_run then return { dry_run = true, size = size, sha256 = hex } end
    if hex and r.sent_sha256 ~= hex then
      return nil, ("aws: s3: %s changed while it was sent"):format(opts.file), "io"
    end
    return { etag = unquote(r.headers.etag), size = r.sent_bytes, sha256 = r.sent_sha256 }
  end
  local body = opts.body
  if type(body) ~= "string" then error("s3.put: body = string or file = path is required", 2) end
  local digest = crypto.sha256(body)
  local hex = crypto.hex(digest)
  h["x-amz-checksum-sha256"] = crypto.base64(digest)
  local r, err, tok, code = aws.request(base(opts, { method = "PUT",
    at = { opts.bucket, opts.key }, headers = h, body = body, payload_hash = hex,
    raw = true, operation = "PutObject",
    describe = { Bucket = opts.bucket, Key = opts.key, Size = #body, ChecksumSHA256 = hex } }))
  if not r then return nil, err, tok, code end
  return { etag = unquote(r.headers.etag), size = #body, sha256 = hex, dry_run = r.dry_run }
end

local function mismatch(opts, hex, from, want)
  return nil, ("aws: s3: %s/%s: the SHA-256 of what was read (%s) is not %s (%s)"):format(
    opts.bucket, opts.key, hex, from, want), "invalid", "ChecksumMismatch"
end

-- s3.get{ bucket, key [, file = path, sha256 = hex] } -> { etag, size,
-- sha256 [, body] }.  The SHA-256 of what came is checked against the
-- server's x-amz-checksum-sha256 when it sends one, else against sha256 =;
-- a mismatch fails ("invalid") and writes no file.  With file =, the body
-- streams to a temporary file beside it (written, hashed, fsync'd in the
-- thread pool), renamed over file once checked; it is not returned.  Under
-- --dry-run the GET is made and checked but no file is written.
function M.get(opts)
  need(opts, "get", "bucket", "key")
  if opts.sha256 ~= nil and (type(opts.sha256) ~= "string" or not opts.sha256:match("^%x+$")
                             or #opts.sha256 ~= 64) then
    error("s3.get: sha256 must be 64 hex digits", 2)
  end
  if opts.file then
    local r, err, tok, code = aws.request(base(opts, { method = "GET",
      at = { opts.bucket, opts.key }, raw = true, operation = "GetObject",
      output = opts.file, sha256 = opts.sha256, sha256_header = "x-amz-checksum-sha256",
      timeout = opts.timeout or "30m" }))
    if not r then
      local got, want = (err or ""):match("the SHA%-256 of what was read %((%x+)%) is not the one expected %((%x+)%)")
      if got then return mismatch(opts, got, "sha256 =", want) end
      got, want = (err or ""):match("the SHA%-256 of what was read %((%x+)%) is not the server's [%w-]+ %(([^)]*)%)")
      if got then return mismatch(opts, got, "the server's x-amz-checksum-sha256", want) end
      return nil, err, tok, code
    end
    return { etag = unquote(r.headers.etag), size = r.bytes, sha256 = r.sha256,
             dry_run = r.dry_run }
  end
  local r, err, tok, code = aws.request(base(opts, { method = "GET",
    at = { opts.bucket, opts.key }, raw = true, operation = "GetObject",
    max_body = opts.max_body or DEFAULT_MAX }))
  if not r then return nil, err, tok, code end
  local digest = crypto.sha256(r.body)
  local hex = crypto.hex(digest)
  local want, from = r.headers["x-amz-checksum-sha256"], "the server's x-amz-checksum-sha256"
  local got = crypto.base64(digest)
  if not want and opts.sha256 then
    want, from, got = opts.sha256:lower(), "sha256 =", hex
  end
  if want and want ~= got then return mismatch(opts, hex, from, want) end
  return { etag = unquote(r.headers.etag), size = #r.body, sha256 = hex, body = r.body }
end

-- s3.head{ bucket, key } -> { etag, size, last_modified, content_type, sse, metadata }
function M.head(opts)
  need(opts, "head", "bucket", "key")
  local r, err, tok, code = aws.request(base(opts, { method = "HEAD",
    at = { opts.bucket, opts.key }, raw = true, operation = "HeadObject" }))
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
      at = { opts.bucket }, query = q, operation = "ListObjectsV2" }))
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

-- s3.latest{ bucket, prefix, ctx } -> the newest object's Contents entry, or
-- nil, err, "not_found" when nothing is under the prefix.  With ctx = the
-- step's ctx (a step that restores the latest backup), its LastModified is
-- reported with ctx.recovery_point (not under --dry-run).
function M.latest(opts)
  local c = type(opts) == "table" and opts.ctx
  if c and not (type(c) == "table" and type(c.recovery_point) == "function") then
    error("s3.latest: ctx must be the step's ctx (run = function(ctx) ... ctx = ctx)", 2)
  end
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
  if c and bt > 0 and not dcore.dry_run() then c.recovery_point(bt) end
  return best
end

-- s3.delete{ bucket, key } -> true
function M.delete(opts)
  need(opts, "delete", "bucket", "key")
  local r, err, tok, code = aws.request(base(opts, { method = "DELETE",
    at = { opts.bucket, opts.key }, raw = true, operation = "DeleteObject",
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
    at = { opts.bucket, opts.key }, headers = h, operation = "CopyObject",
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
  local a = M.address(opts, opts.bucket, opts.key)
  local url = a.url
  local creds, err, tok = aws.credentials(opts)
  if not creds then return nil, err, tok end
  local authority = url:match("^https?://([^/]+)")
  local path = (url:match("^https?://[^/]+(/.*)$") or "") .. a.path
  local s = aws.core.sign { method = (opts.method or "GET"):upper(), path = path,
    headers = { Host = authority }, payload_hash = "UNSIGNED-PAYLOAD", region = region,
    service = "s3", access_key = creds.access_key, secret_key = creds.secret_key,
    token = creds.token, presign = expires, sign_body = true }
  return url:match("^(https?://[^/]+)") .. path .. "?" .. s.query
end

return M
