-- drrun.backup.postgres: PostgreSQL dumps with a manifest, and restores
-- checked against it, through the PostgreSQL client programs (pg_dump,
-- pg_restore, psql, createdb, dropdb) run by drrun.exec.
--   backup.postgres{ db, dir, ... }        consistent (writes paused by the
--       caller's maintenance on/off around pg_dump -Fc) or live = true; writes
--       DIR/NAME.dump and DIR/NAME.json (the manifest) and returns the manifest
--   backup.postgres_restore{ file, db, manifest, ... }
--       createdb + pg_restore into a database, then the row count of every
--       table of the manifest compared with the restored one
-- Row counts come from the dump itself (pg_restore's COPY data, counted by
-- awk), so they describe exactly what the file holds, live or not.
local core = require "drrun.core"
local exec = require "drrun.exec"
local json = require "drrun.json"
local T = require "drrun.backup.time"

local M = {}

local function bad(fmt, ...) error({ misuse = fmt:format(...) }) end

local CONN = { host = true, port = true, user = true, password = true }

-- the libpq environment of a connection (PGHOST, PGPORT, PGUSER, PGPASSWORD)
local function pg_env(o)
  local e = { PGCONNECT_TIMEOUT = "10" }
  if o.host then e.PGHOST = tostring(o.host) end
  if o.port then e.PGPORT = tostring(o.port) end
  if o.user then e.PGUSER = tostring(o.user) end
  if o.password then
    core.redact(tostring(o.password))
    e.PGPASSWORD = tostring(o.password)
  end
  return e
end

local function last_lines(s)
  s = (s or ""):gsub("%s+$", "")
  return s:sub(-600)
end

-- run a client program; nil, "failed: ..." when it exits non-zero
local function pg(argv, o, stdin, timeout)
  argv.env, argv.stdin, argv.timeout = pg_env(o), stdin, timeout or o.timeout or "1h"
  local r, err, tok = exec.run(argv)
  if not r then return nil, err, tok end
  if r.status ~= 0 then
    return nil, ("failed: %s exited %s: %s"):format(argv[1], tostring(r.status or ("signal " .. tostring(r.signal))),
      last_lines(r.stderr)), "failed"
  end
  return r
end

local function sh(script, args, timeout)
  local argv = { "bash", "-c", "set -o pipefail; " .. script, "drrun-backup" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv.timeout = timeout or "1h"
  local r, err, tok = exec.run(argv)
  if not r then return nil, err, tok end
  if r.status ~= 0 then return nil, "io: " .. last_lines(r.stderr), "io" end
  return r
end

-- the tables of a custom-format dump with their row counts, from its COPY
-- data: { { name = "public.runs", rows = 1000 }, ... } sorted by name
local COUNT = [[pg_restore --data-only -f - -- "$1" | awk '
  copy && /^\\\.$/ { print name "\t" n; copy = 0; next }
  copy { n++; next }
  /^COPY / { name = $0; sub(/^COPY /, "", name); sub(/ (\(.*\) )?FROM stdin;$/, "", name); n = 0; copy = 1 }']]

function M.tables(file, timeout)
  local r, err, tok = sh(COUNT, { file }, timeout)
  if not r then return nil, err, tok end
  local out = {}
  for name, n in r.stdout:gmatch("([^\t\n]+)\t(%d+)") do out[#out + 1] = { name = name, rows = tonumber(n) } end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

local function file_facts(path)
  local r, err, tok = sh('stat -c %s -- "$1" && sha256sum -- "$1"', { path }, "1h")
  if not r then return nil, err, tok end
  local size, sum = r.stdout:match("^(%d+)\n(%x+)")
  return tonumber(size), sum
end

-- write text to path atomically (temporary file beside it, sync, rename)
local function write_file(path, text)
  local r, err, tok = exec.run { "sh", "-c",
    'umask 077; t=$(mktemp "$1.drrun-tmp.XXXXXX") || exit 1; ' ..
    'if cat >"$t" && sync "$t" && mv -f "$t" "$1"; then exit 0; fi; rm -f "$t"; exit 1',
    "write", path, stdin = text, timeout = "1m" }
  if not r then return nil, err, tok end
  if r.status ~= 0 then return nil, "io: cannot write " .. path .. ": " .. last_lines(r.stderr), "io" end
  return true
end

local DUMP_FIELDS = { db = true, dir = true, name = true, live = true, maintenance = true, timeout = true,
                      jobs = true, tag = true }
for k in pairs(CONN) do DUMP_FIELDS[k] = true end

local function check_dump(o)
  if type(o) ~= "table" then bad("backup.postgres expects a table { db = ..., dir = ..., ... }") end
  for k in pairs(o) do
    if not DUMP_FIELDS[k] then bad("backup.postgres: unknown field '%s'", tostring(k)) end
  end
  if type(o.db) ~= "string" or o.db == "" then bad("backup.postgres: db is required (a database name)") end
  if type(o.dir) ~= "string" or o.dir == "" then bad("backup.postgres: dir is required (a directory)") end
  if o.name ~= nil and (type(o.name) ~= "string" or not o.name:match("^[%w._-]+$")) then
    bad("backup.postgres: name must be letters, digits, '.', '_' or '-'")
  end
  if o.live ~= nil and type(o.live) ~= "boolean" then bad("backup.postgres: live must be a boolean") end
  local m = o.maintenance
  if o.live then
    if m ~= nil then bad("backup.postgres: live = true pauses nothing: drop maintenance, or live") end
  else
    if type(m) ~= "table" or type(m.on) ~= "function" or type(m.off) ~= "function" then
      bad("backup.postgres: a consistent dump needs maintenance = { on = function, off = function } " ..
        "to pause writes (or live = true, flagged in the manifest)")
    end
  end
end

local function dump(o)
  check_dump(o)
  local started = core.now()
  local name = o.name or (o.db .. "-" .. os.date("!%Y%m%dT%H%M%SZ", math.floor(started)))
  local file = o.dir .. "/" .. name .. ".dump"
  local mpath = o.dir .. "/" .. name .. ".json"
  if core.dry_run() then
    core.log(("would dump %s to %s (%s), manifest %s"):format(o.db, file, o.live and "live" or
      "consistent: maintenance on, pg_dump -Fc, maintenance off", mpath))
    return { dry_run = true, name = name, file = file, manifest = mpath, live = o.live == true, tables = {} }
  end

  local ver = pg({ "psql", "-XtAq", "-d", o.db, "-c", "select current_setting('server_version')" }, o, nil, "1m")
  local server_version = ver and ver.stdout:gsub("%s+$", "") or nil

  -- pause writes, dump, resume (resume whatever happened)
  local paused_at, resumed_at, recovery
  if not o.live then
    local ok, err = pcall(o.maintenance.on)
    if not ok then
      pcall(o.maintenance.off)
      return nil, "failed: maintenance on: " .. tostring(err), "failed"
    end
    paused_at = core.now()
    core.log(("maintenance on for %s at %s: writes paused"):format(o.db, T.format(paused_at)))
  end
  local dump_start = core.now()
  local argv = { "pg_dump", "-Fc", "-d", o.db, "-f", file .. ".drrun-part" }
  local r, err, tok = pg(argv, o)
  local dump_end = core.now()
  if not o.live then
    local ok, merr = pcall(o.maintenance.off)
    resumed_at = core.now()
    if not ok then
      exec.run { "rm", "-f", "--", file .. ".drrun-part" }
      return nil, "failed: maintenance off: " .. tostring(merr) .. " (writes may still be paused)", "failed"
    end
    core.log(("maintenance off for %s at %s: writes resumed after %.1fs"):format(o.db, T.format(resumed_at),
      resumed_at - paused_at))
  end
  if not r then
    exec.run { "rm", "-f", "--", file .. ".drrun-part" }
    return nil, err, tok
  end
  -- every write before the pause is in the dump; a live dump holds what
  -- committed before pg_dump took its snapshot, just after it started
  recovery = paused_at or dump_start
  local ok, merr, mtok = sh('sync -- "$1" && mv -f -- "$1" "$2"', { file .. ".drrun-part", file }, "10m")
  if not ok then return nil, merr, mtok end
  local size, sum = file_facts(file)
  if not size then return nil, sum, "io" end
  local tables, terr, ttok = M.tables(file, o.timeout)
  if not tables then return nil, terr, ttok end
  local vr = exec.run { "pg_dump", "--version", timeout = "30s" }
  local ended = core.now()

  local manifest = {
    format = "drrun-backup/1", kind = "pg_dump", name = name, database = o.db,
    file = name .. ".dump", size = size, sha256 = sum,
    started = T.format(started), ended = T.format(ended), duration_s = ended - started,
    dump_started = T.format(dump_start), dump_ended = T.format(dump_end),
    recovery_point = T.format(recovery), recovery_point_epoch = recovery,
    live = o.live == true,
    consistency = o.live and "live: writes went on during the dump; the database is consistent as of pg_dump's snapshot, but possibly inconsistent with other stores"
      or ("consistent: writes paused from %s to %s"):format(T.format(paused_at), T.format(resumed_at)),
    tables = tables, server_version = server_version,
    pg_dump = vr and vr.status == 0 and vr.stdout:gsub("%s+$", "") or nil,
    host = o.host, port = o.port and tonumber(o.port) or nil, tag = o.tag,
  }
  if #tables == 0 then manifest.tables = json.empty_array end
  local text = json.encode(manifest, { sort_keys = true, indent = 2 }) .. "\n"
  manifest.tables = tables
  local w, werr, wtok = write_file(mpath, text)
  if not w then return nil, werr, wtok end
  local total = 0
  for _, t in ipairs(tables) do total = total + t.rows end
  core.log(("dumped %s to %s: %d bytes, %d tables, %d rows, recovery point %s%s"):format(o.db, file, size,
    #tables, total, manifest.recovery_point, o.live and " (live)" or ""))
  manifest.path = file
  manifest.manifest_path = mpath
  return manifest
end

local RESTORE_FIELDS = { file = true, db = true, manifest = true, create = true, drop_first = true,
                         timeout = true, jobs = true }
for k in pairs(CONN) do RESTORE_FIELDS[k] = true end

local function load_manifest(m)
  if type(m) == "table" then return m end
  local text, err, tok = require("drrun.fs").read(m, { max = 64 * 1024 * 1024 })
  if not text then return nil, err, tok end
  local ok, v = pcall(json.decode, text)
  if not ok or type(v) ~= "table" then return nil, "invalid: manifest " .. m .. " is not a JSON object", "invalid" end
  return v
end

-- psql's quoting of a possibly-quoted schema.table name: as in the dump
local function count_sql(name)
  return ("select '%s', count(*) from %s"):format(name:gsub("'", "''"), name)
end

-- every table of the manifest counted in db and compared:
-- { ok, tables = { { name, want, got, ok } }, mismatched = { names }, recovery_point }
local function check_rows(o, manifest)
  local m, merr, mtok = load_manifest(manifest)
  if not m then return nil, merr, mtok end
  if type(m.tables) ~= "table" then return nil, "invalid: the manifest has no tables", "invalid" end
  local res = { ok = true, db = o.db, tables = {}, mismatched = {}, recovery_point = m.recovery_point }
  local sql = {}
  for _, t in ipairs(m.tables) do sql[#sql + 1] = count_sql(t.name) end
  local got = {}
  if #sql > 0 then
    local q, qerr, qtok = pg({ "psql", "-XtAq", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", o.db },
      o, table.concat(sql, " union all ") .. ";\n")
    if not q then return nil, qerr, qtok end
    for name, n in q.stdout:gmatch("([^\t\n]+)\t(%d+)") do got[name] = tonumber(n) end
  end
  for _, t in ipairs(m.tables) do
    local e = { name = t.name, want = t.rows, got = got[t.name] }
    e.ok = e.got == e.want
    res.tables[#res.tables + 1] = e
    if not e.ok then res.ok = false; res.mismatched[#res.mismatched + 1] = t.name end
  end
  core.log(("row counts of %d tables against the manifest: %s"):format(#res.tables,
    res.ok and "all match" or ("mismatch in " .. table.concat(res.mismatched, ", "))))
  return res
end

local function check(o)
  if type(o) ~= "table" then bad("backup.postgres_check expects a table { db = ..., manifest = ... }") end
  for k in pairs(o) do
    if not (CONN[k] or k == "db" or k == "manifest" or k == "timeout") then
      bad("backup.postgres_check: unknown field '%s'", tostring(k))
    end
  end
  if type(o.db) ~= "string" or o.db == "" then bad("backup.postgres_check: db is required") end
  if type(o.manifest) ~= "table" and type(o.manifest) ~= "string" then
    bad("backup.postgres_check: manifest is required (a table or a path)")
  end
  if core.dry_run() then
    core.log(("would count the rows of %s against the manifest"):format(o.db))
    return { dry_run = true, ok = true, db = o.db, tables = {}, mismatched = {} }
  end
  return check_rows(o, o.manifest)
end

local function restore(o)
  if type(o) ~= "table" then bad("backup.postgres_restore expects a table { file = ..., db = ... }") end
  for k in pairs(o) do
    if not RESTORE_FIELDS[k] then bad("backup.postgres_restore: unknown field '%s'", tostring(k)) end
  end
  if type(o.file) ~= "string" or o.file == "" then bad("backup.postgres_restore: file is required") end
  if type(o.db) ~= "string" or not o.db:match("^[%w_][%w_.-]*$") then
    bad("backup.postgres_restore: db is required (letters, digits, '_', '.', '-')")
  end
  if o.manifest ~= nil and type(o.manifest) ~= "table" and type(o.manifest) ~= "string" then
    bad("backup.postgres_restore: manifest must be a table or a path")
  end
  if core.dry_run() then
    core.log(("would restore %s into database %s"):format(o.file, o.db))
    return { dry_run = true, ok = true, db = o.db, tables = {} }
  end
  local t0 = core.now()
  if o.drop_first then
    local r, err, tok = pg({ "dropdb", "--if-exists", o.db }, o, nil, "5m")
    if not r then return nil, err, tok end
  end
  if o.create ~= false then
    local r, err, tok = pg({ "createdb", o.db }, o, nil, "5m")
    if not r then return nil, err, tok end
  end
  local argv = { "pg_restore", "--no-owner", "--exit-on-error", "-d", o.db }
  if o.jobs then argv[#argv + 1] = "--jobs=" .. math.tointeger(o.jobs) end
  argv[#argv + 1] = o.file
  local r, err, tok = pg(argv, o)
  if not r then return nil, err, tok end
  local restored = core.now()
  local res = { ok = true, db = o.db, duration_s = restored - t0, tables = {}, mismatched = {} }
  core.log(("restored %s into %s in %.1fs"):format(o.file, o.db, restored - t0))
  if o.manifest then
    local c, cerr, ctok = check_rows(o, o.manifest)
    if not c then return nil, cerr, ctok end
    res.ok, res.tables, res.mismatched, res.recovery_point = c.ok, c.tables, c.mismatched, c.recovery_point
  end
  return res
end

local function wrap(fn)
  return function(...)
    local ok, a, b, c = pcall(fn, ...)
    if ok then return a, b, c end
    if type(a) == "table" and a.misuse then error(a.misuse, 2) end
    error(a, 0)
  end
end

M.dump = wrap(dump)
M.restore = wrap(restore)
M.check = wrap(check)

return M
