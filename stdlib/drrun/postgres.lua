-- drrun.postgres: PostgreSQL for failover and restore steps, over drrun.exec
-- with PostgreSQL's own clients (psql, pg_dump, pg_restore), so nothing here
-- blocks the loop and every call has a timeout.
--
--   local pg = require "drrun.postgres"
--   local db = { host = "10.0.0.2", port = 5432, user = "postgres", dbname = "app" }
--   pg.ready(db)                      -> true | nil, err, token
--   pg.in_recovery(db)                -> boolean
--   pg.lsn(db)                        -> { in_recovery, current, received, replayed }
--   pg.lag(replica, { primary = p })  -> { bytes, seconds, received, replayed, ... }
--   pg.promote(db, { wait = "60s" })  -> { promoted, already, seconds, lsn }
--   pg.wait_writable(db, { timeout }) -> { seconds, lsn }
--   pg.query(db, sql, params)         -> rows (row.column, rows.columns)
--   pg.execute(db, sql, params)       -> true
--   pg.dump(db, file, opts), pg.restore(db, file, opts), pg.row_counts(db, opts)
--
-- Parameters are psql variables: `:'name'` is the value as a quoted literal,
-- `:"name"` as a quoted identifier; psql quotes them (PQescapeLiteral /
-- PQescapeIdentifier) and the values reach it on stdin, never on a command
-- line.  The password goes in PGPASSWORD, never in argv, and is redacted.
-- Failures are `nil, "token: postgres.fn: detail", token`.
local exec = require "drrun.exec"
local core = require "drrun.core"

local M = {}

-- ---- connections -------------------------------------------------------------

local KEYS = { "service", "host", "port", "user", "dbname", "connect_timeout", "sslmode", "sslrootcert",
  "application_name", "target_session_attrs" }

-- a conninfo value: bare when it is plain, else single-quoted ('\'' and '\\')
local function ci_value(v)
  v = tostring(v)
  if v ~= "" and not v:find("[%s'\\]") then return v end
  return "'" .. v:gsub("[\\']", "\\%0") .. "'"
end

-- a key=value conninfo string without its password: the string, the password
local function strip_kv(s, who)
  local out, pw, i = {}, nil, 1
  while true do
    local a, b = s:find("^%s*", i)
    i = b + 1
    if i > #s then break end
    local key, e = s:match("^([%w_]+)%s*=%s*()", i)
    if not key then error(who .. ": cannot parse the connection string near '" ..
        s:sub(i, i + 10) .. "'", 3) end
    i = e
    local val
    if s:sub(i, i) == "'" then
      local buf, j = {}, i + 1
      while true do
        local c = s:sub(j, j)
        if c == "" then error(who .. ": unterminated quote in the connection string", 3) end
        if c == "\\" then buf[#buf + 1] = s:sub(j + 1, j + 1); j = j + 2
        elseif c == "'" then j = j + 1; break
        else buf[#buf + 1] = c; j = j + 1 end
      end
      val, i = table.concat(buf), j
    else
      val = s:match("^[^%s]*", i)
      i = i + #val
    end
    if key == "password" then pw = val else out[#out + 1] = key .. "=" .. ci_value(val) end
  end
  return table.concat(out, " "), pw
end

-- a postgres:// URI without its password (userinfo or ?password=)
local function strip_uri(s)
  local pw
  local scheme, rest = s:match("^(postgres[%w]*://)(.*)$")
  local auth, tail = rest:match("^([^@/?]*)@(.*)$")
  if auth then
    local u, p = auth:match("^([^:]*):(.*)$")
    if u then pw = p; auth = u end
    rest = auth .. "@" .. tail
  end
  rest = rest:gsub("([?&])password=([^&]*)&?", function(sep, p)
    pw = p
    return sep
  end):gsub("[?&]$", "")
  if pw then pw = pw:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end) end
  return scheme .. rest, pw
end

-- conn (a table or a conninfo string / URI) -> conninfo without the password,
-- the password or nil, a name for messages (host:port/db)
local function conninfo(conn, who)
  local ci, pw, name
  if type(conn) == "string" then
    if conn:match("^postgres[%w]*://") then ci, pw = strip_uri(conn) else ci, pw = strip_kv(conn, who) end
    name = ci:match("^postgres[%w]*://[^@]*@([^?]*)") or ci:match("^postgres[%w]*://([^?]*)")
    if not name then
      local h = ci:match("host=([^%s]+)") or "localhost"
      local p = ci:match("port=([^%s]+)") or "5432"
      local d = ci:match("dbname=([^%s]+)")
      name = h .. ":" .. p .. (d and ("/" .. d) or "")
    end
    name = name:gsub("'", "")
  elseif type(conn) == "table" then
    local parts = {}
    for _, k in ipairs(KEYS) do
      local v = conn[k]
      if k == "dbname" and v == nil then v = conn.database end
      if v ~= nil then parts[#parts + 1] = k .. "=" .. ci_value(v) end
    end
    ci, pw = table.concat(parts, " "), conn.password
    if pw ~= nil and type(pw) ~= "string" then error(who .. ": password must be a string", 3) end
    if conn.service and not conn.host then
      name = "service " .. tostring(conn.service)
    else
      name = ("%s:%s%s"):format(conn.host or "localhost", tostring(conn.port or 5432),
        (conn.dbname or conn.database) and ("/" .. (conn.dbname or conn.database)) or "")
    end
  else
    error(who .. ": the connection must be a table or a connection string, not " .. type(conn), 3)
  end
  if pw and pw ~= "" then core.redact(pw) end
  return ci, pw, name
end

local function opts(o, who)
  if o == nil then return {} end
  if type(o) ~= "table" then error(("%s: options must be a table, not %s"):format(who, type(o)), 4) end
  return o
end

local function prog(conn, name)
  local bin = type(conn) == "table" and conn.bin or nil
  if bin then return bin:gsub("/+$", "") .. "/" .. name end
  return name
end

local function secs(v, default, who, what)
  if v == nil then return default end
  if type(v) == "number" then
    if v > 0 and v == v and v < math.huge then return v end
  else
    local d = core.duration(tostring(v))
    if d and d > 0 then return d end
  end
  error(("%s: %s must be a positive duration, not %s"):format(who, what, tostring(v)), 3)
end

-- the environment a client runs with: no password on a command line, the
-- client encoding fixed, and the server told to stop a statement at the
-- client's own deadline
local function client_env(conn, pw, timeout)
  local env = { PGCLIENTENCODING = "UTF8", PGAPPNAME = "drrun", PSQLRC = "/dev/null" }
  if pw then env.PGPASSWORD = pw end
  if type(conn) ~= "table" or conn.connect_timeout == nil then
    env.PGCONNECT_TIMEOUT = "5"
  end
  if timeout then
    env.PGOPTIONS = ("-c statement_timeout=%d"):format(math.floor(timeout * 1000))
  end
  if type(conn) == "table" and conn.env then
    for k, v in pairs(conn.env) do env[k] = v end
  end
  return env
end

-- ---- failures ----------------------------------------------------------------

local SQLSTATE = {
  ["28"] = "auth", ["42501"] = "auth",
  ["42P01"] = "not_found", ["3D000"] = "not_found", ["42704"] = "not_found",
  ["3F000"] = "not_found", ["42883"] = "not_found",
  ["42"] = "invalid", ["22"] = "invalid", ["0A"] = "invalid",
  ["23"] = "conflict", ["40"] = "conflict", ["55"] = "conflict", ["25"] = "conflict",
  ["57014"] = "timeout",
  ["57"] = "unavailable", ["53"] = "unavailable", ["08"] = "closed",
}

local CONNECT = {
  { "Connection refused", "refused" },
  { "password authentication failed", "auth" },
  { "no pg_hba.conf entry", "auth" },
  { "no password supplied", "auth" },
  { "role \".-\" does not exist", "auth" },
  { "timeout expired", "timeout" },
  { "could not translate host name", "dns" },
  { "database \".-\" does not exist", "not_found" },
  { "SSL", "tls" },
  { "server closed the connection unexpectedly", "closed" },
  { "starting up", "unavailable" },
  { "shutting down", "unavailable" },
  { "too many clients", "unavailable" },
}

local MESSAGES = {
  { "already exists", "conflict" }, { "duplicate key", "conflict" },
  { "does not exist", "not_found" }, { "permission denied", "auth" },
  { "must be owner", "auth" }, { "syntax error", "invalid" },
  { "read%-only transaction", "conflict" }, { "canceling statement due to statement timeout", "timeout" },
}

-- psql / pg_dump / pg_restore's complaint as (token, one line)
local function classify(stderr)
  local text = stderr:gsub("\r", "")
  local state, msg = text:match("ERROR:%s+(%w%w%w%w%w):%s*([^\n]*)")
  if state then
    local tok = SQLSTATE[state] or SQLSTATE[state:sub(1, 2)] or "failed"
    return tok, ("%s (SQLSTATE %s)"):format(msg, state)
  end
  -- pg_dump and pg_restore print the server's message without its SQLSTATE
  local plain = text:match("ERROR:%s+([^\n]*)")
  if plain then
    for _, m in ipairs(MESSAGES) do
      if plain:find(m[1]) then return m[2], plain end
    end
    return "failed", plain
  end
  local fatal = text:match("FATAL:%s+%w%w%w%w%w:%s*([^\n]*)") or text:match("FATAL:%s*([^\n]*)")
  for _, m in ipairs(CONNECT) do
    if text:find(m[1]) then
      return m[2], (fatal or text:match("error:%s*([^\n]*)") or text:match("[^\n]+") or m[1])
    end
  end
  local line = text:match("error:%s*([^\n]*)") or text:match("[^\n]+") or "no message"
  return "unavailable", line
end

local function fail(who, name, tok, detail)
  return nil, ("%s: %s %s: %s"):format(tok, who, name, detail), tok
end

-- run one client program; r (status 0) or the failure triple
local function run(conn, who, name, argv, o)
  local r, err, tok = exec.run(argv)
  if not r then return nil, ("%s: %s %s: %s"):format(tok, who, name, err), tok end
  if r.status ~= 0 or r.signal then
    local t, detail = classify(r.stderr or "")
    return fail(who, name, t, detail)
  end
  return r
end

-- ---- psql scripts ------------------------------------------------------------

-- a value for psql's \set: single-quoted, with its own escapes
local function set_value(v, who, k)
  local t = type(v)
  if t == "boolean" then v = v and "true" or "false"
  elseif t == "number" then
    v = math.type(v) == "integer" and ("%d"):format(v) or ("%.17g"):format(v)
  elseif t ~= "string" then
    error(("%s: parameter '%s' must be a string, number or boolean, not %s"):format(who, k, t), 4)
  end
  if v:find("\0", 1, true) then
    error(("%s: parameter '%s' holds a NUL byte, which PostgreSQL text cannot"):format(who, k), 4)
  end
  return "'" .. v:gsub("[\\'\n\r]", { ["\\"] = "\\\\", ["'"] = "''", ["\n"] = "\\n",
    ["\r"] = "\\r" }) .. "'"
end

local function set_lines(params, who)
  local lines = {}
  if params == nil then return lines end
  if type(params) ~= "table" then error(who .. ": params must be a table of name = value", 3) end
  for k, v in pairs(params) do
    if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then
      error(("%s: parameter name %s is not a psql variable name (letters, digits, _)")
        :format(who, tostring(k)), 3)
    end
    lines[#lines + 1] = ("\\set %s %s"):format(k, set_value(v, who, k))
  end
  table.sort(lines) -- stable scripts, stable journals
  return lines
end

local function psql(conn, who, script, o)
  o = opts(o, who)
  local ci, pw, name = conninfo(conn, who)
  local timeout = secs(o.timeout, 30, who, "timeout")
  local argv = { prog(conn, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v",
    "VERBOSITY=verbose", "-d", ci, "-f", "-",
    stdin = script, env = client_env(conn, pw, timeout), timeout = timeout + 5,
    safe = o.safe, max_output = o.max_output }
  return run(conn, who, name, argv, o)
end

-- COPY ... CSV: NULL is an empty unquoted field, '' is "" (so they differ)
local function parse_csv(s)
  local records, rec, i, n = {}, {}, 1, #s
  if n == 0 then return records end
  while i <= n do
    local c = s:sub(i, i)
    local val
    if c == '"' then
      local buf, j = {}, i + 1
      while true do
        local q = s:find('"', j, true)
        if not q then error("postgres: unterminated quoted field in COPY output") end
        buf[#buf + 1] = s:sub(j, q - 1)
        if s:sub(q + 1, q + 1) == '"' then
          buf[#buf + 1] = '"'
          j = q + 2
        else
          i = q + 1
          break
        end
      end
      val = table.concat(buf)
    else
      local e = s:find("[,\n]", i) or (n + 1)
      local raw = s:sub(i, e - 1)
      if raw ~= "" then val = raw else val = nil end
      i = e
    end
    rec[#rec + 1] = val == nil and M.null or val
    local sep = s:sub(i, i)
    i = i + 1
    if sep == "\n" or sep == "" then
      records[#records + 1] = rec
      rec = {}
    end
  end
  return records
end

-- a private marker while parsing; never returned
M.null = setmetatable({}, { __tostring = function() return "postgres.null" end })

local function rows_of(csv)
  local recs = parse_csv(csv)
  local rows = { columns = {} }
  local head = recs[1] or {}
  for i, h in ipairs(head) do rows.columns[i] = h end
  for r = 2, #recs do
    local row = {}
    for i, h in ipairs(head) do
      local v = recs[r][i]
      if v ~= M.null then row[h] = v end
    end
    rows[#rows + 1] = row
  end
  return rows
end

local function strip_sql(sql, who)
  if type(sql) ~= "string" or sql:match("^%s*$") then error(who .. ": sql must be a non-empty string", 3) end
  return (sql:gsub("[%s;]+$", ""))
end

-- pg.query(conn, sql [, params [, opts]]) -> rows | nil, err, token.
-- The statement must return rows (SELECT, VALUES, TABLE, or INSERT/UPDATE/
-- DELETE ... RETURNING): it runs as COPY (sql) TO STDOUT, whose CSV keeps
-- NULL (a missing field) apart from ''.  Values are strings.
function M.query(conn, sql, params, o)
  local who = "postgres.query"
  sql = strip_sql(sql, who)
  local lines = set_lines(params, who)
  lines[#lines + 1] = "COPY (" .. sql .. "\n) TO STDOUT WITH (FORMAT csv, HEADER true);"
  local r, err, tok = psql(conn, who, table.concat(lines, "\n") .. "\n", o)
  if not r then return nil, err, tok end
  local rows = rows_of(r.stdout)
  if r.dry_run then rows.dry_run = true end
  return rows
end

-- pg.execute(conn, sql [, params [, opts]]) -> true | nil, err, token: any
-- statements (DDL, DML, several), run by psql with ON_ERROR_STOP.
function M.execute(conn, sql, params, o)
  local who = "postgres.execute"
  sql = strip_sql(sql, who)
  local lines = set_lines(params, who)
  lines[#lines + 1] = sql .. ";"
  local r, err, tok = psql(conn, who, table.concat(lines, "\n") .. "\n", o)
  if not r then return nil, err, tok end
  return true
end

-- one row of a probe, or the failure
local function one(conn, who, sql, o)
  o = opts(o, who)
  local r, err, tok = psql(conn, who,
    "COPY (" .. sql .. ") TO STDOUT WITH (FORMAT csv, HEADER true);\n",
    { timeout = o.timeout or "10s", safe = true })
  if not r then return nil, err, tok end
  local rows = rows_of(r.stdout)
  return rows[1] or {}, r.dry_run
end

-- ---- LSNs ----------------------------------------------------------------------

-- "16/B374D848" -> its byte position (an integer), or nil
function M.lsn_bytes(lsn)
  if type(lsn) ~= "string" then return nil end
  local hi, lo = lsn:match("^(%x+)/(%x+)$")
  if not hi or #hi > 8 or #lo > 8 then return nil end
  return (tonumber(hi, 16) << 32) | tonumber(lo, 16)
end

-- bytes from b to a (a - b), or nil when either is not an LSN
function M.lsn_diff(a, b)
  local x, y = M.lsn_bytes(a), M.lsn_bytes(b)
  if not x or not y then return nil end
  return x - y
end

-- ---- probes --------------------------------------------------------------------

-- pg.ready(conn [, opts]) -> true | nil, err, token: the server accepts a
-- connection from these credentials and answers a query.
function M.ready(conn, o)
  local row, err, tok = one(conn, "postgres.ready", "SELECT 1 AS ok", o)
  if not row then return nil, err, tok end
  return true
end

-- pg.in_recovery(conn [, opts]) -> boolean | nil, err, token
function M.in_recovery(conn, o)
  local row, err, tok = one(conn, "postgres.in_recovery", "SELECT pg_is_in_recovery() AS r", o)
  if not row then return nil, err, tok end
  return row.r == "t"
end

local LSN_SQL = [[SELECT pg_is_in_recovery() AS in_recovery,
  CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS current,
  pg_last_wal_receive_lsn() AS received, pg_last_wal_replay_lsn() AS replayed,
  EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) AS replay_age,
  (SELECT status FROM pg_stat_wal_receiver) AS receiver]]

-- pg.lsn(conn [, opts]) -> { in_recovery, current, received, replayed }:
-- current is the primary's write position (pg_current_wal_lsn), or on a
-- standby the last replayed one; received and replayed are nil on a primary.
function M.lsn(conn, o)
  local row, err, tok = one(conn, "postgres.lsn", LSN_SQL, o)
  if not row then return nil, err, tok end
  return { in_recovery = row.in_recovery == "t", current = row.current, received = row.received,
    replayed = row.replayed, dry_run = err or nil }
end

-- pg.lag(replica [, { primary = conn, timeout }]) -> { bytes, seconds,
-- received, replayed, primary, streaming }.  bytes: from what the replica
-- replayed to the primary's current position (with a primary), else to what
-- it received.  seconds: 0 when everything received is replayed, else the
-- age of the last replayed transaction.
function M.lag(replica, o)
  local who = "postgres.lag"
  o = opts(o, who)
  local primary = o.primary
  local row, err, tok = one(replica, who, LSN_SQL, o)
  if not row then return nil, err, tok end
  local dry = err
  if row.in_recovery ~= "t" and not dry then
    local _, _, name = conninfo(replica, who)
    return fail(who, name, "conflict", "not a replica (not in recovery)")
  end
  local out = { received = row.received, replayed = row.replayed,
    streaming = row.receiver == "streaming", dry_run = dry or nil }
  if primary ~= nil then
    local p, perr, ptok = one(primary, who, "SELECT pg_current_wal_lsn() AS lsn", o)
    if not p then return nil, perr, ptok end
    out.primary = p.lsn
    out.bytes = M.lsn_diff(p.lsn, row.replayed)
  else
    out.bytes = M.lsn_diff(row.received, row.replayed)
  end
  if dry then out.bytes = out.bytes or 0 end
  if out.bytes and out.bytes < 0 then out.bytes = 0 end
  if out.bytes == 0 or row.received == row.replayed then
    out.seconds = 0
  else
    out.seconds = tonumber(row.replay_age)
  end
  return out
end

-- ---- promotion -------------------------------------------------------------------

-- pg.promote(conn [, { wait = "60s" }]) -> { promoted, already, seconds, lsn }:
-- pg_promote(wait => true) on a standby; on a server that is already a
-- primary nothing is done and already is true (a resumed run promotes once).
function M.promote(conn, o)
  local who = "postgres.promote"
  o = opts(o, who)
  local wait = secs(o.wait, 60, who, "wait")
  local row, err, tok = one(conn, who, "SELECT pg_is_in_recovery() AS r", o)
  if not row then return nil, err, tok end
  local _, _, name = conninfo(conn, who)
  if row.r == "f" then
    local l = one(conn, who, "SELECT pg_current_wal_lsn() AS lsn", o)
    return { promoted = false, already = true, seconds = 0, lsn = l and l.lsn }
  end
  local t0 = core.now()
  local r, perr, ptok = psql(conn, who, ("COPY (SELECT pg_promote(true, %d) AS done) TO STDOUT " ..
    "WITH (FORMAT csv, HEADER true);\n"):format(math.max(1, math.ceil(wait))),
    { timeout = wait + 10 })
  if not r then return nil, perr, ptok end
  if r.dry_run then return { promoted = false, dry_run = true, seconds = 0 } end
  local done = rows_of(r.stdout)[1] or {}
  if done.done ~= "t" then
    return fail(who, name, "timeout", ("not promoted within %gs"):format(wait))
  end
  local l = one(conn, who, "SELECT pg_current_wal_lsn() AS lsn", o)
  return { promoted = true, already = false, seconds = core.now() - t0, lsn = l and l.lsn }
end

local WRITABLE = [[BEGIN READ WRITE;
SELECT pg_current_xact_id() AS xid \gset
ROLLBACK;
COPY (SELECT pg_is_in_recovery() AS recovery, current_setting('default_transaction_read_only') AS ro,
  pg_current_wal_lsn() AS lsn) TO STDOUT WITH (FORMAT csv, HEADER true);
]]

local RETRY = { refused = true, unavailable = true, closed = true, conflict = true, timeout = true }

-- pg.wait_writable(conn [, { timeout = "60s", interval = "1s" }]) ->
-- { seconds, lsn } | nil, err, token: polls until a read-write transaction
-- gets a transaction id and new transactions default to read-write.
-- Refused, unavailable, closed and read-only answers are waited out; other
-- failures (auth, not_found, ...) end the wait at once.
function M.wait_writable(conn, o)
  local who = "postgres.wait_writable"
  o = opts(o, who)
  local limit = secs(o.timeout, 60, who, "timeout")
  local every = secs(o.interval, 1, who, "interval")
  local _, _, name = conninfo(conn, who)
  local t0 = core.now()
  local last
  while true do
    local left = limit - (core.now() - t0)
    local r, err, tok = psql(conn, who, WRITABLE, { timeout = math.max(1, math.min(10, left)),
      safe = o.safe })
    if r then
      if r.dry_run then return { seconds = 0, dry_run = true } end
      local row = rows_of(r.stdout)[1] or {}
      if row.recovery == "f" and row.ro == "off" then
        return { seconds = core.now() - t0, lsn = row.lsn }
      end
      last = row.recovery == "t" and "still in recovery" or "default_transaction_read_only is on"
    elseif RETRY[tok] or err:find("during recovery", 1, true) then
      last = err
    else
      return nil, err, tok
    end
    if core.now() - t0 + every > limit then
      return fail(who, name, "timeout", ("not writable after %gs (last: %s)"):format(limit, last))
    end
    core.sleep(every)
  end
end

-- ---- dumps -------------------------------------------------------------------------

local FORMATS = { custom = "c", plain = "p", directory = "d", tar = "t" }

-- pg.dump(conn, file [, { format = "custom", tables = {}, schemas = {},
-- jobs = n, timeout = "1h" }]) -> { file, format, seconds } | nil, err, token
function M.dump(conn, file, o)
  local who = "postgres.dump"
  o = opts(o, who)
  if type(file) ~= "string" or file == "" then error(who .. ": file must be a path", 2) end
  local fmt = o.format or "custom"
  if not FORMATS[fmt] then error(who .. ": format must be custom, plain, directory or tar", 2) end
  local ci, pw, name = conninfo(conn, who)
  local timeout = secs(o.timeout, 3600, who, "timeout")
  local argv = { prog(conn, "pg_dump"), "-F" .. FORMATS[fmt], "-f", file, "-d", ci,
    env = client_env(conn, pw, nil), timeout = timeout }
  for _, t in ipairs(o.tables or {}) do argv[#argv + 1] = "-t"; argv[#argv + 1] = t end
  for _, s in ipairs(o.schemas or {}) do argv[#argv + 1] = "-n"; argv[#argv + 1] = s end
  if o.jobs then
    if fmt ~= "directory" then error(who .. ": jobs needs format = \"directory\"", 2) end
    argv[#argv + 1] = "-j"; argv[#argv + 1] = tostring(o.jobs)
  end
  local t0 = core.now()
  local r, err, tok = run(conn, who, name, argv, o)
  if not r then return nil, err, tok end
  return { file = file, format = fmt, seconds = core.now() - t0, dry_run = r.dry_run or nil }
end

-- pg.restore(conn, file [, { format, clean = false, no_owner = true, jobs = n,
-- timeout = "1h" }]) -> { file, seconds } | nil, err, token.  A plain dump
-- (format = "plain", or a name ending in .sql) goes through psql in one
-- transaction; the others through pg_restore --exit-on-error (one
-- transaction unless jobs is given).
function M.restore(conn, file, o)
  local who = "postgres.restore"
  o = opts(o, who)
  if type(file) ~= "string" or file == "" then error(who .. ": file must be a path", 2) end
  local ci, pw, name = conninfo(conn, who)
  local timeout = secs(o.timeout, 3600, who, "timeout")
  local plain = o.format == "plain" or (o.format == nil and file:match("%.sql$") ~= nil)
  local argv
  if plain then
    argv = { prog(conn, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose",
      "--single-transaction", "-d", ci, "-f", file }
  else
    argv = { prog(conn, "pg_restore"), "--exit-on-error", "-d", ci, file }
    if o.no_owner ~= false then table.insert(argv, 2, "--no-owner") end
    if o.clean then table.insert(argv, 2, "--clean"); table.insert(argv, 3, "--if-exists") end
    if o.jobs then
      table.insert(argv, 2, "-j"); table.insert(argv, 3, tostring(o.jobs))
    else
      table.insert(argv, 2, "--single-transaction")
    end
  end
  argv.env = client_env(conn, pw, nil)
  argv.timeout = timeout
  local t0 = core.now()
  local r, err, tok = run(conn, who, name, argv, o)
  if not r then return nil, err, tok end
  return { file = file, seconds = core.now() - t0, dry_run = r.dry_run or nil }
end

local LIST_TABLES = [[SELECT schemaname AS s, tablename AS t FROM pg_catalog.pg_tables
  WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND schemaname NOT LIKE 'pg\_%'
  ORDER BY 1, 2]]

-- pg.row_counts(conn [, { tables = { "public.runs", "orders" }, timeout }])
-- -> { ["public.runs"] = 1000, ... }: exact counts (count(*)), of the tables
-- named, or of every table outside the system schemas.
function M.row_counts(conn, o)
  local who = "postgres.row_counts"
  o = opts(o, who)
  local list = {}
  if o.tables then
    for _, t in ipairs(o.tables) do
      if type(t) ~= "string" or t == "" then error(who .. ": tables must be names", 2) end
      local s, n = t:match("^([^.]+)%.(.+)$")
      list[#list + 1] = { s = s or "public", t = n or t }
    end
  else
    local r, err, tok = psql(conn, who, "COPY (" .. LIST_TABLES ..
      ") TO STDOUT WITH (FORMAT csv, HEADER true);\n", { timeout = o.timeout, safe = true })
    if not r then return nil, err, tok end
    for _, row in ipairs(rows_of(r.stdout)) do list[#list + 1] = row end
  end
  local counts = {}
  if #list == 0 then return counts end
  local lines, sel = {}, {}
  for i, x in ipairs(list) do
    lines[#lines + 1] = ("\\set drrun_s%d %s"):format(i, set_value(x.s, who, "schema"))
    lines[#lines + 1] = ("\\set drrun_t%d %s"):format(i, set_value(x.t, who, "table"))
    sel[#sel + 1] = ("SELECT %d AS i, count(*) AS n FROM :\"drrun_s%d\".:\"drrun_t%d\""):format(i, i, i)
  end
  lines[#lines + 1] = "COPY (" .. table.concat(sel, "\nUNION ALL ") ..
    ") TO STDOUT WITH (FORMAT csv, HEADER true);"
  local r, err, tok = psql(conn, who, table.concat(lines, "\n") .. "\n",
    { timeout = o.timeout or 600, safe = true })
  if not r then return nil, err, tok end
  for _, row in ipairs(rows_of(r.stdout)) do
    local x = list[tonumber(row.i)]
    counts[x.s .. "." .. x.t] = math.tointeger(tonumber(row.n))
  end
  return counts
end

return M
