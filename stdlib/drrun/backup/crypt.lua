-- drrun.backup.crypt: backup.encrypt / backup.decrypt, envelope encryption
-- over drrun.crypto's streaming AES-256-GCM file format.  Each backup gets a
-- random data key; the data key is sealed (crypto.encrypt) under a master
-- key, and the master key's id is written in the file's header, so a
-- keyring of several master keys decrypts old backups while one active key
-- encrypts new ones: keys rotate without re-encrypting anything.
--
-- File layout (docs/modules/drrun.backup.crypt.md), integers big-endian:
--   "DRRUNBAK" | 0x01 | id length L (1 byte) | key id (L bytes) |
--   sealed length W (2 bytes) | sealed data key (W bytes: crypto.encrypt
--   blob, aad = "DRRUNBAK" 0x01 id) | a drrun.crypto encrypted file (DRRUNENC
--   v1) of the backup under the data key, with aad = everything before it
--   followed by the caller's aad.
-- Key files hold 64 hex digits (or 32 raw bytes) and must not be readable
-- by group or others (0600 or 0400), or the call refuses.  Every key read
-- or made is registered with the redactor.
local core = require "drrun.core"
local crypto = require "drrun.crypto"
local exec = require "drrun.exec"
local fs = require "drrun.fs"

local M = {}

local MAGIC = "DRRUNBAK\1"
local MAX_HEADER = 9 + 1 + 255 + 2 + 1024

local function bad(fmt, ...) error({ misuse = fmt:format(...) }) end
local function fail(tok, fmt, ...) return nil, tok .. ": " .. fmt:format(...), tok end

local function sh(script, args, stdin, timeout)
  local argv = { "bash", "-c", "set -o pipefail; " .. script, "drrun-backup" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv.stdin, argv.timeout = stdin, timeout or "1h"
  local r, err, tok = exec.run(argv)
  if not r then return nil, err, tok end
  if r.status ~= 0 then
    return nil, "io: " .. (r.stderr:gsub("%s+$", "")):sub(-500), "io"
  end
  return r
end

-- the keyring: { active = id, keys = { [id] = path } } or { active, dir }
local function check_keys(k, fn)
  if type(k) ~= "table" then bad("%s: keys must be a keyring table { active = id, keys = { [id] = path } }", fn) end
  for f in pairs(k) do
    if f ~= "active" and f ~= "keys" and f ~= "dir" then bad("%s: keys.%s: unknown field", fn, tostring(f)) end
  end
  if k.keys ~= nil and type(k.keys) ~= "table" then bad("%s: keys.keys must be a table { [id] = path }", fn) end
  if k.dir ~= nil and type(k.dir) ~= "string" then bad("%s: keys.dir must be a directory path", fn) end
  if not k.keys and not k.dir then bad("%s: keys needs keys = { [id] = path } or dir = path", fn) end
  for id, p in pairs(k.keys or {}) do
    if type(id) ~= "string" or not id:match("^[%w._-]+$") or #id > 255 then
      bad("%s: key id %s: use 1-255 letters, digits, '.', '_' or '-'", fn, tostring(id))
    end
    if type(p) ~= "string" or p == "" then bad("%s: keys.keys[%q] must be a path", fn, id) end
  end
end

local function key_path(k, id)
  if k.keys and k.keys[id] then return k.keys[id] end
  if k.dir and id:match("^[%w._-]+$") then return k.dir .. "/" .. id .. ".key" end
  return nil
end

local function key_ids(k)
  local ids = {}
  for id in pairs(k.keys or {}) do ids[#ids + 1] = id end
  table.sort(ids)
  if k.dir then ids[#ids + 1] = k.dir .. "/*.key" end
  return table.concat(ids, ", ")
end

-- read the master key id from its file, refusing a file group or others may read
local function read_key(id, path)
  local r, err, tok = exec.run { "stat", "-L", "-c", "%a %F", "--", path, timeout = "30s" }
  if not r then return nil, err, tok end
  if r.status ~= 0 then
    return fail("not_found", "key '%s': %s", id, (r.stderr:gsub("%s+$", "")))
  end
  local mode, kind = r.stdout:match("^(%d+) ([^\n]+)")
  if kind ~= "regular file" then return fail("auth", "key '%s': %s is a %s, not a file", id, path, tostring(kind)) end
  if tonumber(mode, 8) & 0x3f ~= 0 then
    return fail("auth", "key file %s has mode %04o: group or others may read it; it must be 0600 (chmod 600 %s)",
      path, tonumber(mode, 8), path)
  end
  local text, rerr, rtok = fs.read(path, { max = 4096 })
  if not text then return nil, rerr, rtok end
  local hex = text:gsub("%s+$", "")
  local key
  if #hex == 64 and hex:match("^%x+$") then
    core.redact(hex:lower()); core.redact(hex:upper()); core.redact(hex)
    key = crypto.unhex(hex)
  elseif #text == 32 then
    key = text
  else
    return fail("format", "key file %s holds neither 64 hex digits nor 32 bytes", path)
  end
  core.redact(key); core.redact(crypto.hex(key))
  return key
end

-- the header of an encrypted backup: id, sealed key, header bytes
local function parse_header(h)
  if h:sub(1, 8) ~= "DRRUNBAK" then return nil end
  if h:byte(9) ~= 1 then return nil, ("unsupported version %d"):format(h:byte(9) or -1) end
  local l = h:byte(10)
  if not l or l == 0 or #h < 10 + l + 2 then return nil, "truncated header" end
  local id = h:sub(11, 10 + l)
  local w = string.unpack(">I2", h, 11 + l)
  local sealed = h:sub(13 + l, 12 + l + w)
  if #sealed ~= w or w < 29 then return nil, "truncated header" end
  return { id = id, sealed = sealed, header = h:sub(1, 12 + l + w) }
end

-- the first MAX_HEADER bytes of a file
local function head(path)
  local r, err, tok = exec.run { "head", "-c", tostring(MAX_HEADER), "--", path, timeout = "1m" }
  if not r then return nil, err, tok end
  if r.status ~= 0 then
    local e = r.stderr:gsub("%s+$", "")
    return nil, (e:find("No such file", 1, true) and "not_found: " or "io: ") .. e,
      e:find("No such file", 1, true) and "not_found" or "io"
  end
  return r.stdout
end

local function check_io(o, fn)
  if type(o) ~= "table" then bad("%s expects a table { src = ..., dst = ..., keys = ... }", fn) end
  for k in pairs(o) do
    if k ~= "src" and k ~= "dst" and k ~= "keys" and k ~= "aad" and k ~= "timeout" then
      bad("%s: unknown field '%s'", fn, tostring(k))
    end
  end
  if type(o.src) ~= "string" or o.src == "" then bad("%s: src is required (a path)", fn) end
  if type(o.dst) ~= "string" or o.dst == "" then bad("%s: dst is required (a path)", fn) end
  if o.src == o.dst then bad("%s: src and dst are the same file", fn) end
  if o.aad ~= nil and type(o.aad) ~= "string" then bad("%s: aad must be a string", fn) end
  check_keys(o.keys, fn)
end

local function encrypt(o)
  check_io(o, "backup.encrypt")
  local id = o.keys.active
  if type(id) ~= "string" or not key_path(o.keys, id) then
    bad("backup.encrypt: keys.active must name a key of the keyring (it has: %s)", key_ids(o.keys))
  end
  if core.dry_run() then
    core.log(("would encrypt %s to %s under key '%s'"):format(o.src, o.dst, id))
    return { dry_run = true, bytes = 0, sha256 = "", key_id = id }
  end
  local master, err, tok = read_key(id, key_path(o.keys, id))
  if not master then return nil, err, tok end
  local dk = crypto.key()
  core.redact(dk); core.redact(crypto.hex(dk))
  local sealed = crypto.encrypt(master, dk, { aad = MAGIC .. id })
  local header = MAGIC .. string.char(#id) .. id .. string.pack(">I2", #sealed) .. sealed
  -- one pass in the thread pool: the header, then the encrypted body, into
  -- a temporary file beside dst (0600), hashed as written, synced, renamed
  local r, eerr, etok = crypto.encrypt_file(dk, o.src, o.dst,
    { aad = header .. (o.aad or ""), prefix = header, hash_output = true })
  if not r then return nil, eerr, etok end
  local out = { bytes = r.bytes, sha256 = r.sha256, key_id = id, encrypted_sha256 = r.output_sha256 }
  core.log(("encrypted %s to %s (%d bytes) under key '%s'"):format(o.src, o.dst, r.bytes, id))
  return out
end

local function decrypt(o)
  check_io(o, "backup.decrypt")
  if core.dry_run() then
    core.log(("would decrypt %s to %s"):format(o.src, o.dst))
    return { dry_run = true, bytes = 0, sha256 = "", key_id = "" }
  end
  local h, err, tok = head(o.src)
  if not h then return nil, err, tok end
  local hd, why = parse_header(h)
  if not hd then
    return fail("format", "%s is not a drrun encrypted backup (%s)", o.src, why or "no DRRUNBAK header")
  end
  local path = key_path(o.keys, hd.id)
  if not path then
    return fail("auth", "%s was encrypted with key '%s', which the keyring does not have (it has: %s)",
      o.src, hd.id, key_ids(o.keys))
  end
  local master, kerr, ktok = read_key(hd.id, path)
  if not master then return nil, kerr, ktok end
  local dk = crypto.decrypt(master, hd.sealed, { aad = MAGIC .. hd.id })
  if not dk then
    return fail("auth", "key '%s' (%s) does not open the data key of %s: another key with that id, or a modified header",
      hd.id, path, o.src)
  end
  core.redact(dk); core.redact(crypto.hex(dk))
  -- the body is read where it starts, past the header: no copy of it
  local r, derr, dtok = crypto.decrypt_file(dk, o.src, o.dst,
    { aad = hd.header .. (o.aad or ""), offset = #hd.header })
  if not r then return nil, derr, dtok end
  core.log(("decrypted %s to %s (%d bytes) with key '%s'"):format(o.src, o.dst, r.bytes, hd.id))
  return { bytes = r.bytes, sha256 = r.sha256, key_id = hd.id }
end

-- backup.key_id(path) -> the id of the master key a backup was encrypted
-- under (read from its header; nothing is decrypted)
local function key_id(path)
  local h, err, tok = head(path)
  if not h then return nil, err, tok end
  local hd, why = parse_header(h)
  if not hd then return fail("format", "%s is not a drrun encrypted backup (%s)", path, why or "no DRRUNBAK header") end
  return hd.id
end

-- backup.new_key(path) -> true: a new random master key in a new file (0600)
local function new_key(path)
  if type(path) ~= "string" or path == "" then bad("backup.new_key: a path is required") end
  if core.dry_run() then
    core.log("would make a new key file " .. path)
    return true
  end
  local hex = crypto.hex(crypto.key())
  core.redact(hex)
  local r, err, tok = sh([[umask 077; set -C; cat > "$1"]], { path }, hex .. "\n", "30s")
  if not r then
    if tostring(err):find("cannot overwrite existing file", 1, true) then return fail("conflict", "%s exists already", path) end
    return nil, err, tok
  end
  return true
end

local function wrap(fn)
  return function(...)
    local ok, a, b, c = pcall(fn, ...)
    if ok then return a, b, c end
    if type(a) == "table" and a.misuse then error(a.misuse, 2) end
    error(a, 0)
  end
end

M.encrypt = wrap(encrypt)
M.decrypt = wrap(decrypt)
M.key_id = wrap(key_id)
M.new_key = wrap(new_key)

return M
