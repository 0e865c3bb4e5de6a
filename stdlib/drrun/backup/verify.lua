-- drrun.backup.verify: the seed's verification checks over one backup,
-- each reported by name with its evidence:
--   exists    the file (or SFTP path, or S3 object) is there
--   size      above min_size, and within a band of the previous backup's
--   sha256    the content's SHA-256 equals the manifest's (or sha256 =)
--   readable  the format's own reader accepts it: pg_restore --list,
--             tar -t, gzip -t (through drrun.exec), or a custom check
--   required  named entries are in it (tar members, pg_dump tables)
-- A remote backup (sftp = session options, or s3 = bucket/key) is fetched
-- into a private temporary directory first and checked there: what is
-- verified is what a restore would read.  Everything runs through exec,
-- ssh and s3, so the step yields and the loop goes on.
local core = require "drrun.core"
local exec = require "drrun.exec"
local json = require "drrun.json"

local M = {}

local FIELDS = { path = true, sftp = true, s3 = true, format = true, check = true, sha256 = true,
                 manifest = true, min_size = true, previous_size = true, band = true, required = true,
                 timeout = true, name = true, work_dir = true }

local function bad(fmt, ...) error({ misuse = "backup.verify: " .. fmt:format(...) }) end

local function run(argv, timeout)
  argv.timeout = timeout
  return exec.run(argv)
end

local function last_line(s)
  s = (s or ""):gsub("%s+$", "")
  return s:match("([^\n]*)$") or ""
end

-- the format from a file name, or nil
local function detect(path)
  local p = path:lower()
  if p:match("%.tar%.gz$") or p:match("%.tgz$") then return "tgz" end
  if p:match("%.tar$") then return "tar" end
  if p:match("%.gz$") then return "gzip" end
  if p:match("%.dump$") or p:match("%.pgdump$") then return "pg_dump" end
  return nil
end

local READERS = {
  pg_dump = function(f) return { "pg_restore", "--list", f } end,
  tar = function(f) return { "tar", "-tf", f } end,
  tgz = function(f) return { "tar", "-tzf", f } end,
  gzip = function(f) return { "gzip", "-t", f } end,
}

-- the entries a listing names: tar members ("./" dropped, directories
-- without their "/"), or pg_dump tables as schema.table (TABLE DATA lines)
local function entries(format, out)
  local set, n = {}, 0
  if format == "pg_dump" then
    for line in out:gmatch("[^\n]+") do
      if not line:match("^;") then n = n + 1 end
      -- "3361; 0 16386 TABLE DATA public customers postgres": the names are
      -- unquoted (and may hold spaces); the owner is the last word
      local schema, tbl = line:match("^%d+; %d+ %d+ TABLE DATA (%S+) (.-) %S+$")
      if schema then set[schema .. "." .. tbl] = true end
    end
  else
    for line in out:gmatch("[^\n]+") do
      n = n + 1
      set[(line:gsub("^%./", ""):gsub("/$", ""))] = true
    end
  end
  return set, n
end

-- stat a local file: size, mtime, type, or nil, why
local function stat(path, timeout)
  local r, err = run({ "stat", "-L", "-c", "%s %Y %F", "--", path }, timeout)
  if not r then return nil, err end
  if r.status ~= 0 then return nil, last_line(r.stderr) end
  local size, mtime, kind = r.stdout:match("^(%d+) (%d+) ([^\n]+)")
  return { size = tonumber(size), mtime = tonumber(mtime), kind = kind }
end

local function sha256_file(path, timeout)
  local r, err = run({ "sha256sum", "--", path }, timeout)
  if not r then return nil, err end
  if r.status ~= 0 then return nil, last_line(r.stderr) end
  return r.stdout:match("^(%x+)")
end

-- the manifest: a table, or a JSON file read with drrun.fs
local function load_manifest(m)
  if m == nil or type(m) == "table" then return m end
  if type(m) ~= "string" then bad("manifest must be a table or a path, not a %s", type(m)) end
  local text, err = require("drrun.fs").read(m, { max = 16 * 1024 * 1024 })
  if not text then return nil, "manifest " .. m .. ": " .. err end
  local ok, v = pcall(json.decode, text)
  if not ok or type(v) ~= "table" then return nil, "manifest " .. m .. ": not a JSON object" end
  return v
end

local function check_opts(o)
  if type(o) ~= "table" then bad("expects a table { path = ..., ... }") end
  for k in pairs(o) do
    if not FIELDS[k] then bad("unknown field '%s'", tostring(k)) end
  end
  if o.s3 then
    if type(o.s3) ~= "table" or type(o.s3.bucket) ~= "string" or type(o.s3.key) ~= "string" then
      bad("s3 must be a table with bucket and key")
    end
  elseif type(o.path) ~= "string" or o.path == "" then
    bad("path is required (a string)")
  end
  if o.sftp ~= nil and type(o.sftp) ~= "table" then bad("sftp must be a table of drrun.ssh connect options") end
  if o.format ~= nil and not READERS[o.format] then
    bad("format '%s': use pg_dump, tar, tgz or gzip (or check = function)", tostring(o.format))
  end
  if o.check ~= nil and type(o.check) ~= "function" then bad("check must be a function") end
  for _, k in ipairs { "min_size", "previous_size", "band" } do
    if o[k] ~= nil and (type(o[k]) ~= "number" or o[k] < 0) then bad("%s must be a number >= 0", k) end
  end
  if o.required ~= nil and type(o.required) ~= "table" then bad("required must be a list of names") end
  if o.sha256 ~= nil and (type(o.sha256) ~= "string" or not o.sha256:match("^%x+$") or #o.sha256 ~= 64) then
    bad("sha256 must be 64 hex digits")
  end
end

local function where(o)
  if o.s3 then return ("s3://%s/%s"):format(o.s3.bucket, o.s3.key) end
  if o.sftp then
    local s = o.sftp
    return ("sftp://%s%s:%s%s"):format(s.user and (s.user .. "@") or "", s.host or "?", s.port or 22,
      o.path:sub(1, 1) == "/" and o.path or "/" .. o.path)
  end
  return o.path
end

-- fetch a remote backup into dir: local path, size, sha256 (as the transfer
-- saw them), or nil, why, missing (true when the other side says it is not there)
local function fetch(o, dir)
  local dst = dir .. "/backup"
  if o.s3 then
    local s3 = require "drrun.aws.s3"
    local g = {}
    for k, v in pairs(o.s3) do g[k] = v end
    g.file = dst
    local r, err, tok = s3.get(g)
    if not r then return nil, err, tok == "not_found", tok end
    return dst, r.size, r.sha256
  end
  local ssh = require "drrun.ssh"
  local s, err, ctok = ssh.connect(o.sftp)
  if not s then return nil, err, false, ctok end
  local r, gerr, tok = s:get(o.path, dst, { timeout = o.timeout })
  if not r then
    -- SSH_FX_NO_SUCH_FILE (2): a finding; anything else: could not verify
    return nil, gerr, tok == "sftp" and tostring(gerr):match("SFTP error 2$") ~= nil, tok
  end
  return dst, r.bytes, r.sha256
end

local function verify(o, state)
  check_opts(o)
  local timeout = o.timeout or "10m"
  local loc = where(o)
  local res = { ok = true, where = loc, name = o.name or loc, checks = {}, failed = {} }
  local function add(name, ok, evidence)
    res.checks[#res.checks + 1] = { name = name, ok = ok, evidence = evidence }
    if not ok then res.ok = false; res.failed[#res.failed + 1] = name end
    core.log(("verify %s: %s %s (%s)"):format(res.name, name, ok and "ok" or "FAILED", evidence))
  end

  local manifest, merr = load_manifest(o.manifest)
  local want_sha = o.sha256 or (manifest and manifest.sha256)
  local format = o.format or (not o.check and detect(o.s3 and o.s3.key or o.path)) or nil
  local required = o.required
  if required == nil and manifest and format == "pg_dump" and type(manifest.tables) == "table" then
    required = {}
    for _, t in ipairs(manifest.tables) do required[#required + 1] = t.name end
  end
  if required and #required > 0 and not (format == "pg_dump" or format == "tar" or format == "tgz") then
    bad("required needs a listing: format pg_dump, tar or tgz")
  end

  if core.dry_run() then
    core.log(("would verify %s"):format(loc))
    res.dry_run = true
    return res
  end

  -- exists (and, for a remote backup, the fetch)
  local file, size, sha = o.path, nil, nil
  local tmp
  if o.s3 or o.sftp then
    local argv = { "mktemp", "-d", "-t", "drrun-verify.XXXXXX" }
    if o.work_dir then argv = { "mktemp", "-d", "-p", o.work_dir, "drrun-verify.XXXXXX" } end
    local r = run(argv, "30s")
    if not r or r.status ~= 0 then return nil, "io: cannot make a temporary directory", "io" end
    tmp = r.stdout:gsub("%s+$", "")
    state.tmp = tmp
    local f, why, missing, tok = fetch(o, tmp)
    if not f then
      if not missing then return nil, why, tok or "io" end
      add("exists", false, tostring(why))
    else
      file, size, sha = f, tonumber(why), missing -- fetch: path, bytes, sha256
      add("exists", true, ("fetched %d bytes from %s"):format(size, loc))
    end
  else
    local st, why = stat(file, timeout)
    if not st then
      add("exists", false, tostring(why))
    elseif st.kind ~= "regular file" and st.kind ~= "regular empty file" then
      add("exists", false, ("%s is a %s, not a regular file"):format(file, st.kind))
      st = nil
    else
      size = st.size
      add("exists", true, ("%d bytes, modified %s"):format(st.size, os.date("!%Y-%m-%dT%H:%M:%SZ", st.mtime)))
    end
  end
  local present = res.ok

  local function skip(name) add(name, false, "not checked: the backup is not there") end

  -- size
  if o.min_size or o.previous_size then
    if not present then
      skip("size")
    else
      local ok, ev = true, { ("%d bytes"):format(size) }
      if o.min_size then
        if size < o.min_size then ok = false end
        ev[#ev + 1] = ("minimum %.0f"):format(o.min_size)
      end
      if o.previous_size then
        local band = o.band or 0.5
        local lo, hi = o.previous_size * (1 - band), o.previous_size * (1 + band)
        if size < lo or size > hi then ok = false end
        ev[#ev + 1] = ("previous %.0f, band ±%g%%: %.0f..%.0f"):format(o.previous_size, band * 100,
          math.max(lo, 0), hi)
      end
      add("size", ok, table.concat(ev, "; "))
    end
  end

  -- sha256
  if want_sha or merr then
    if not present then
      skip("sha256")
    elseif merr then
      add("sha256", false, merr)
    else
      local got, why = sha, nil
      if not got then got, why = sha256_file(file, timeout) end
      if not got then
        add("sha256", false, "cannot hash: " .. tostring(why))
      else
        want_sha, sha = want_sha:lower(), got
        add("sha256", got == want_sha, got == want_sha and ("%s matches %s"):format(got,
          o.sha256 and "sha256 =" or "the manifest") or ("%s, but %s says %s"):format(got,
          o.sha256 and "sha256 =" or "the manifest", want_sha))
      end
    end
  end

  -- readable (and the listing required uses)
  local listing
  if o.check then
    if not present then
      skip("readable")
    else
      local okc, ok, ev = pcall(o.check, file)
      if not okc then add("readable", false, "the check raised: " .. tostring(ok))
      else add("readable", ok and true or false, tostring(ev or (ok and "the check passed" or "the check failed"))) end
    end
  elseif format then
    if not present then
      skip("readable")
    else
      local argv = READERS[format](file)
      local r, err = run(argv, timeout)
      local cmd = table.concat(argv, " ", 1, #argv - 1)
      if not r then
        add("readable", false, ("%s: %s"):format(cmd, err))
      elseif r.status ~= 0 then
        add("readable", false, ("%s exited %s: %s"):format(cmd, tostring(r.status or ("signal " .. tostring(r.signal))),
          last_line(r.stderr)))
      else
        local set, n = entries(format, r.stdout)
        listing = set
        if format == "gzip" then
          add("readable", true, "gzip -t: intact")
        elseif format == "pg_dump" then
          local tables = 0
          for _ in pairs(set) do tables = tables + 1 end
          -- --list reads only the table of contents: a dump cut short after
          -- it passes.  Reading every entry to /dev/null catches that.
          local full, ferr = run({ "pg_restore", "-f", "/dev/null", file }, timeout)
          local head = ("pg_restore --list: %d entries, %d with table data"):format(n, tables)
          if not full then
            add("readable", false, ("%s; pg_restore -f /dev/null: %s"):format(head, ferr))
          elseif full.status ~= 0 then
            add("readable", false, ("%s, but pg_restore -f /dev/null exited %s: %s"):format(head,
              tostring(full.status or ("signal " .. tostring(full.signal))), last_line(full.stderr)))
          else
            add("readable", true, head .. "; pg_restore -f /dev/null read all of it")
          end
        else
          add("readable", true, ("%s: %d members"):format(cmd, n))
        end
      end
    end
  end

  -- required
  if required and #required > 0 then
    if not present then
      skip("required")
    elseif not listing then
      add("required", false, "not checked: the backup could not be listed")
    else
      local missing = {}
      for _, name in ipairs(required) do
        local key = tostring(name):gsub("^%./", ""):gsub("/$", "")
        -- pg_dump: billing."Invoice Lines" is listed as billing.Invoice Lines
        if format == "pg_dump" then key = key:gsub('"', "") end
        if not listing[key] then missing[#missing + 1] = tostring(name) end
      end
      if #missing == 0 then
        add("required", true, ("all %d present: %s"):format(#required, table.concat(required, ", ")))
      else
        add("required", false, ("missing %d of %d: %s"):format(#missing, #required, table.concat(missing, ", ")))
      end
    end
  end

  res.size, res.sha256 = size, sha
  return res
end

-- M.verify{ ... } -> { ok, name, where, checks = { { name, ok, evidence } },
-- failed = { names }, size } | nil, err, token (a remote side unreachable)
function M.verify(o)
  local state = {}
  local ok, res, err, tok = pcall(verify, o, state)
  -- the fetched copy goes whatever happened (a cancelled step can leave it)
  if state.tmp then run({ "rm", "-rf", "--", state.tmp }, "1m") end
  if ok then return res, err, tok end
  if type(res) == "table" and res.misuse then error(res.misuse, 2) end
  error(res, 0)
end

return M
