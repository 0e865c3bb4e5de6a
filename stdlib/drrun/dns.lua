-- drrun.dns: DNS checked from the outside, and one switch for the three ways
-- teams host DNS, with an exact rollback.  Policy over drrun.dns.core (the
-- wire format, TSIG, queries and RFC 2136 updates on the loop, in C):
--
--   dns.query{ name, type = "A", server | servers, timeout, retries, tcp, key }
--   dns.authoritative(zone, { server | servers, port })
--   dns.wait_for{ name, type, values, servers = {...} | "authoritative",
--                 zone, serial, timeout = "2m", interval = "1s" }
--   dns.switch{ provider = "rfc2136" | "route53" | "cloudflare", zone, name,
--               type = "A", to = { ... }, ttl, prepare_ttl, wait, ... }
--   dns.restore(out)              -- the rollback: the old RRset, TTL included
--
-- Servers are addresses ("127.0.0.1:5353", "[::1]:53"): drrun never asks the
-- system resolver.  Failures are nil, "token: detail", token.
local drrun = require "drrun"
local core = require "drrun.core"
local dcore = require "drrun.dns.core"

local M = {}

-- ---- helpers ------------------------------------------------------------------

local function args(opts, verb, required)
  if type(opts) ~= "table" then
    error(("dns.%s expects a table of options"):format(verb), 3)
  end
  for _, k in ipairs(required or {}) do
    if opts[k] == nil or opts[k] == "" then
      error(("dns.%s: %s is required"):format(verb, k), 3)
    end
  end
  return opts
end

local function secs(v, default, what)
  if v == nil then return default end
  if type(v) == "number" then return v end
  local s, err = drrun.duration(v)
  if not s then error(("dns: %s: %s"):format(what, err), 3) end
  return s
end

local function copy(t, extra)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

-- the list of servers of opts: server = "a" or servers = { "a", "b" }
local function server_list(opts, verb)
  local list = opts.servers
  if type(list) == "string" then list = { list } end
  if list == nil and opts.server then list = { opts.server } end
  if type(list) ~= "table" or #list == 0 then
    error(("dns.%s: server (or servers) is required: an address such as \"127.0.0.1:53\""):format(verb), 3)
  end
  return list
end

-- Canonical values of type t, sorted: what two RRsets are compared on.
-- A value that does not fit its type raises, naming it.
local function canon_set(t, values, verb, what)
  if type(values) == "string" then values = { values } end
  if type(values) ~= "table" then
    error(("dns.%s: %s must be a list of values"):format(verb, what), 3)
  end
  local out = {}
  for i, v in ipairs(values) do
    local c, err = dcore.canon(t, tostring(v))
    if not c then
      error(("dns.%s: %s[%d] '%s': %s"):format(verb, what, i, tostring(v), (err:gsub("^invalid: ", ""))), 3)
    end
    out[#out + 1] = c
  end
  table.sort(out)
  return out
end

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- RFC 1982 serial arithmetic: a is after b
local function serial_after(a, b)
  return a ~= b and ((a - b) % 4294967296) < 2147483648
end

-- ---- keys: the secret stays in memory, never in an output -------------------------

local KEYS = {} -- key name -> key table, for restore() in the same run

-- The key of opts.key: { name, algorithm, secret } or { file = path } (a
-- BIND key file, mode 0600).  The secret is registered for redaction.
local function key_of(opts, verb)
  local k = opts.key
  if k == nil then return nil end
  if type(k) ~= "table" then error(("dns.%s: key must be a table"):format(verb), 3) end
  if k.file then
    local fk, err, tok = dcore.keyfile(k.file)
    if not fk then return nil, err, tok end
    core.redact(fk.secret)
    fk.file = k.file
    KEYS[fk.name] = fk
    return fk
  end
  if type(k.secret) ~= "string" or k.secret == "" then
    error(("dns.%s: key.secret is required (a declared secret: ctx.secret(\"TSIG_SECRET\"))"):format(verb), 3)
  end
  core.redact(k.secret)
  local key = { name = k.name, algorithm = k.algorithm or "hmac-sha256", secret = k.secret }
  KEYS[k.name] = key
  return key
end

-- What an output may keep of a key: never the secret.
local function key_ref(key)
  if not key then return nil end
  return { name = key.name, algorithm = key.algorithm, file = key.file }
end

-- ---- queries --------------------------------------------------------------------

local function exchange_opts(opts, extra)
  return copy({ timeout = opts.timeout, retries = opts.retries, tcp = opts.tcp,
                edns = opts.edns, dnssec = opts.dnssec, rd = opts.rd }, extra)
end

-- dns.query{ name, type = "A", class, server | servers, timeout = "2s",
--   retries = 2, tcp, edns, key } -> the answer of the first server that
-- gives one: { rcode, answers = { { name, type, class, ttl, value }, ... },
-- authority, additional, server, rtt, ... } | nil, err, token
function M.query(opts)
  args(opts, "query", { "name" })
  local list = server_list(opts, "query")
  local key, kerr, ktok = key_of(opts, "query")
  if opts.key and not key then return nil, kerr, ktok end
  local last, ltok
  for _, s in ipairs(list) do
    local r, err, tok = dcore.query(exchange_opts(opts, { server = s, name = opts.name,
      type = opts.type or "A", class = opts.class, key = key }))
    if r then return r end
    last, ltok = err, tok
  end
  return nil, last, ltok
end

-- The RRset of name/type in an answer: canonical values, sorted, and the
-- TTL (the smallest), only records of that very name and type.
local function rrset_of(r, name, t)
  local want = dcore.name(name):lower()
  local values, ttl = {}, nil
  for _, a in ipairs(r.answers or {}) do
    if a.type == t and a.name:lower() == want then
      values[#values + 1] = a.value
      if not ttl or a.ttl < ttl then ttl = a.ttl end
    end
  end
  table.sort(values)
  return values, ttl
end
M._rrset_of = rrset_of

-- dns.authoritative(zone, { server | servers, port = 53, timeout }) ->
-- { zone, ns = { { name, addresses = { ... } } }, servers = { "ip:port" } }.
-- The zone's NS set, and the addresses of those servers (from the answer's
-- glue, else asked of the same servers), through the servers given.
function M.authoritative(zone, opts)
  if type(zone) ~= "string" then error("dns.authoritative: the zone is required", 2) end
  opts = opts or {}
  local list = server_list(opts, "authoritative")
  zone = dcore.name(zone)
  local port = opts.port or 53
  local r, err, tok = M.query(copy(opts, { name = zone, type = "NS", servers = list, server = false }))
  if not r then return nil, err, tok end
  if r.rcode ~= "NOERROR" then
    return nil, ("not_found: %s has no NS set (%s from %s)"):format(zone, r.rcode, r.server), "not_found"
  end
  local glue = {}
  for _, a in ipairs(r.additional or {}) do
    if a.type == "A" or a.type == "AAAA" then
      local n = a.name:lower()
      glue[n] = glue[n] or {}
      table.insert(glue[n], a.value)
    end
  end
  local out = { zone = zone, ns = {}, servers = {} }
  for _, a in ipairs(r.answers) do
    if a.type == "NS" then
      local n = a.value:lower()
      local addrs = glue[n]
      if not addrs then
        addrs = {}
        for _, t in ipairs { "A", "AAAA" } do
          local ar = M.query(copy(opts, { name = n, type = t, servers = list, server = false }))
          if ar then
            for _, v in ipairs((rrset_of(ar, n, t))) do addrs[#addrs + 1] = v end
          end
        end
      end
      table.sort(addrs)
      out.ns[#out.ns + 1] = { name = n, addresses = addrs }
      for _, ip in ipairs(addrs) do
        out.servers[#out.servers + 1] = (ip:find(":", 1, true) and ("[" .. ip .. "]") or ip) .. ":" .. port
      end
    end
  end
  table.sort(out.ns, function(x, y) return x.name < y.name end)
  if #out.servers == 0 then
    return nil, ("not_found: no address for any name server of %s"):format(zone), "not_found"
  end
  return out
end

-- ---- waiting for the authoritative servers ---------------------------------------

local function show(values)
  if #values == 0 then return "nothing" end
  return table.concat(values, ", ")
end

-- dns.wait_for{ name, type = "A", values = { ... } (or value), servers =
--   { ... } | "authoritative", zone (for "authoritative" and the serial),
--   serial = n (each server's SOA serial must be after n), timeout = "2m",
--   interval = "1s", port, server/resolvers (to find the authoritative
--   servers) } -> { elapsed, servers = { [addr] = { values, ttl, serial } } }
-- | nil, "timeout: ... lags ...", "timeout".  An empty values list waits
-- for the RRset to be gone.
function M.wait_for(opts)
  args(opts, "wait_for", { "name" })
  local t = (opts.type or "A"):upper()
  local want = canon_set(t, opts.values or (opts.value and { opts.value }) or {}, "wait_for", "values")
  local timeout = secs(opts.timeout, 120, "timeout")
  local interval = secs(opts.interval, 1, "interval")
  local servers = opts.servers
  if servers == nil or servers == "authoritative" then
    if not opts.zone then error("dns.wait_for: servers = \"authoritative\" needs zone", 2) end
    local a, err, tok = M.authoritative(opts.zone, { servers = opts.resolvers or opts.server,
      port = opts.port, timeout = opts.query_timeout })
    if not a then return nil, err, tok end
    servers = a.servers
  end
  if type(servers) == "string" then servers = { servers } end
  if #servers == 0 then error("dns.wait_for: servers is empty", 2) end
  local zone = opts.zone and dcore.name(opts.zone)
  if opts.serial and not zone then error("dns.wait_for: serial needs zone", 2) end
  local t0 = drrun.now()
  local state = {}
  local qopts = { timeout = opts.query_timeout or "1s", retries = opts.retries or 1, tcp = opts.tcp }
  while true do
    local pending = {}
    for _, s in ipairs(servers) do
      if not (state[s] and state[s].done) then pending[#pending + 1] = s end
    end
    drrun.parallel(pending, function(s)
      local st = { done = false }
      local r, err = dcore.query(copy(qopts, { server = s, name = opts.name, type = t }))
      if not r then
        st.why = err
      elseif r.rcode ~= "NOERROR" and r.rcode ~= "NXDOMAIN" then
        st.why = "rcode " .. r.rcode
      else
        st.values, st.ttl = rrset_of(r, opts.name, t)
        st.ok = same(st.values, want)
        if st.ok and opts.serial then
          local sr, serr = dcore.query(copy(qopts, { server = s, name = zone, type = "SOA" }))
          local soa = sr and sr.answers[1]
          st.serial = soa and soa.serial
          if not st.serial then
            st.ok, st.why = false, serr or ("no SOA for " .. zone)
          elseif not serial_after(st.serial, opts.serial) then
            st.ok = false
          end
        end
      end
      st.done = st.ok
      state[s] = st
      return true
    end, { limit = 64 })
    local lag
    for _, s in ipairs(servers) do
      if not state[s].done then lag = s break end
    end
    local elapsed = drrun.now() - t0
    if not lag then
      local out = { elapsed = elapsed, servers = {} }
      for _, s in ipairs(servers) do
        out.servers[s] = { values = state[s].values, ttl = state[s].ttl, serial = state[s].serial }
      end
      return out
    end
    if elapsed + interval > timeout then
      local st = state[lag]
      local what = st.why or ("answers " .. show(st.values) ..
        (st.serial and (" (serial %d)"):format(st.serial) or ""))
      local n = 0
      for _, s in ipairs(servers) do if not state[s].done then n = n + 1 end end
      return nil, ("timeout: %s still %s for %s %s after %.1fs; want %s%s (%d of %d servers lag)")
        :format(lag, what, dcore.name(opts.name), t, elapsed, show(want),
          opts.serial and (" with serial after %d"):format(opts.serial) or "", n, #servers),
        "timeout"
    end
    drrun.sleep(interval)
  end
end

-- ---- RFC 2136 -------------------------------------------------------------------

local UPDATE_TOKENS = {
  NXDOMAIN = "conflict", YXDOMAIN = "conflict", YXRRSET = "conflict", NXRRSET = "conflict",
  NOTAUTH = "auth", REFUSED = "auth", NOTZONE = "invalid", FORMERR = "invalid",
  NOTIMP = "invalid", SERVFAIL = "unavailable",
}

local function update(o, prereq, changes, what)
  local r, err, tok = dcore.update(copy({ timeout = o.timeout, retries = o.retries, tcp = o.tcp,
    time = o.tsig_time }, { server = o.server, zone = o.zone, key = o.keyv, prereq = prereq,
    changes = changes }))
  if not r then return nil, err, tok end
  if r.dry_run then return r end
  if r.rcode ~= "NOERROR" then
    local t = UPDATE_TOKENS[r.rcode] or "failed"
    local why = (t == "conflict") and " (a prerequisite failed: the records are not what was read)" or ""
    return nil, ("%s: %s refused the update (%s): %s%s"):format(t, o.server, what, r.rcode, why), t
  end
  core.log(("dns: %s: %s: NOERROR in %.3fs"):format(o.server, what, r.rtt))
  return r
end

-- prerequisite: the RRset is exactly values (or absent when values is empty)
local function prereq_for(name, t, values)
  if #values == 0 then return { { kind = "not_exists", name = name, type = t } } end
  local p = {}
  for _, v in ipairs(values) do p[#p + 1] = { kind = "value", name = name, type = t, value = v } end
  return p
end

local function replace(name, t, values, ttl)
  local c = { { op = "delete_rrset", name = name, type = t } }
  for _, v in ipairs(values) do c[#c + 1] = { op = "add", name = name, type = t, ttl = ttl, value = v } end
  return c
end

local function read_rrset(o, name, t)
  local r, err, tok = dcore.query({ server = o.server, name = name, type = t, timeout = o.timeout,
    retries = o.retries, tcp = true })
  if not r then return nil, err, tok end
  if r.rcode ~= "NOERROR" and r.rcode ~= "NXDOMAIN" then
    return nil, ("unavailable: %s answered %s for %s %s"):format(o.server, r.rcode, name, t), "unavailable"
  end
  if not r.aa then
    return nil, ("invalid: %s is not authoritative for %s"):format(o.server, name), "invalid"
  end
  local values, ttl = rrset_of(r, name, t)
  local soa = dcore.query({ server = o.server, name = o.zone, type = "SOA", timeout = o.timeout,
    retries = o.retries, tcp = true })
  local serial = soa and soa.answers and soa.answers[1] and soa.answers[1].serial
  return { values = values, ttl = ttl }, serial
end

local function describe(name, t, from, to)
  local function side(s)
    if not s or #s.values == 0 then return "nothing" end
    return ("%s (ttl %d)"):format(table.concat(s.values, ", "), s.ttl)
  end
  return ("%s %s: %s -> %s"):format(name, t, side(from), side(to))
end

-- By default the zone's authoritative servers, found through the server
-- updated, on its port.
local function wait_after(o, name, t, values, serial)
  if o.wait == false or core.dry_run() then return nil end
  local port = o.port or tonumber(tostring(o.server):match(":(%d+)$")) or 53
  return M.wait_for { name = name, type = t, values = values, zone = o.zone, serial = serial,
    servers = o.wait_servers or "authoritative", resolvers = { o.server }, port = port,
    timeout = o.wait_timeout or "2m", interval = o.interval or "1s" }
end

local function rfc2136_switch(o)
  args(o, "switch", { "server", "zone" })
  local name, t = o.name, o.type
  local keyv, kerr, ktok = key_of(o, "switch")
  if o.key and not keyv then return nil, kerr, ktok end
  o.keyv = keyv
  local cur, serial, rtok = read_rrset(o, name, t)
  if not cur then return nil, serial, rtok end
  local previous = #cur.values > 0 and cur or nil
  local new = { values = o.to_canon, ttl = o.ttl or (previous and previous.ttl) or 300 }
  local out = { provider = "rfc2136", server = o.server, zone = o.zone, name = name, type = t,
                previous = previous, new = new, serial = serial, key = key_ref(keyv),
                wait_servers = o.wait_servers, dry_run = core.dry_run() or nil }
  if previous and same(previous.values, new.values) and previous.ttl == new.ttl then
    out.unchanged = true
    return out
  end
  -- 2. lower the TTL first, then wait out the old one
  if o.prepare_ttl and previous and previous.ttl > o.prepare_ttl then
    local what = describe(name, t, previous, { values = previous.values, ttl = o.prepare_ttl })
    if core.dry_run() then
      core.log("dns: would lower the TTL first: " .. what)
    else
      local r, err, tok = update(o, prereq_for(name, t, previous.values),
        replace(name, t, previous.values, o.prepare_ttl), "lower the TTL of " .. what)
      if not r then return nil, err, tok end
      out.prepared = { ttl = o.prepare_ttl, waited = previous.ttl }
      core.log(("dns: waiting out the old TTL of %ds"):format(previous.ttl))
      drrun.sleep(previous.ttl)
    end
  end
  -- 3. the change, atomic: prerequisite on what was read (the TTL may have
  -- been lowered, which does not change the values)
  local what = describe(name, t, previous, new)
  if core.dry_run() then
    core.log("dns: would send an UPDATE to " .. o.server .. ": " .. what)
    out.would_write = { name = name, type = t, ttl = new.ttl, values = new.values }
    return out
  end
  local r, err, tok = update(o, prereq_for(name, t, previous and previous.values or {}),
    replace(name, t, new.values, new.ttl), what)
  if not r then return nil, err, tok end
  -- 4. the authoritative servers answer with it
  local w
  w, err, tok = wait_after(o, name, t, new.values, serial)
  if o.wait ~= false and not w then
    out.wait_error = err
    return nil, err, tok, out
  end
  out.waited = w and w.elapsed
  return out
end

local function rfc2136_restore(out, opts)
  local o = copy(out, opts)
  local key = opts.key or (out.key and (out.key.file and { file = out.key.file } or KEYS[out.key.name]))
  if out.key and not key then
    error(("dns.restore: the TSIG key %s is not known in this run: pass dns.restore(out, { key = ... })")
      :format(out.key.name), 2)
  end
  o.key = key
  local keyv, kerr, ktok = key_of(o, "restore")
  if o.key and not keyv then return nil, kerr, ktok end
  o.keyv = keyv
  local prev = out.previous or { values = {}, ttl = 0 }
  local what = "restore " .. describe(out.name, out.type, out.new, out.previous)
  if core.dry_run() then
    core.log("dns: would send an UPDATE to " .. out.server .. ": " .. what)
    return true
  end
  local _, serial = read_rrset(o, out.name, out.type)
  local changes = replace(out.name, out.type, prev.values, prev.ttl)
  local r, err, tok = update(o, prereq_for(out.name, out.type, out.new.values), changes, what)
  if not r then return nil, err, tok end
  local w
  w, err, tok = wait_after(o, out.name, out.type, prev.values, serial)
  if o.wait ~= false and not w then return nil, err, tok end
  return true
end

-- ---- Cloudflare (API v4 DNS records, over drrun.api) -------------------------------

local cf_service
local function cf()
  if not cf_service then
    local api = require "drrun.api"
    cf_service = api.service {
      name = "cloudflare",
      secret = "CLOUDFLARE_API_TOKEN",
      bases = { api = { option = "base_url", env = "DRRUN_CLOUDFLARE_URL",
                        default = "https://api.cloudflare.com/client/v4" } },
      auth = function(token) return { Authorization = "Bearer " .. token } end,
      -- the envelope's errors: "Authentication error (10000)"
      message = function(doc)
        local parts = {}
        for _, e in ipairs(type(doc.errors) == "table" and doc.errors or {}) do
          if type(e) == "table" and e.message then
            parts[#parts + 1] = ("%s (%s)"):format(tostring(e.message), tostring(e.code))
          end
        end
        if #parts > 0 then return table.concat(parts, "; ") end
      end,
    }
  end
  return cf_service
end

local CF_TYPES = { A = true, AAAA = true, CNAME = true, TXT = true }

-- Cloudflare's names have no final dot; its CNAME content neither.
local function cf_name(n) return (n:gsub("%.$", "")) end

local function cf_call(o, spec)
  local doc, err, tok, r = cf():request(o, spec)
  if not doc then
    -- 81057: an identical record exists already (the contract: treat as done)
    if r and r.status == 400 and tostring(r.body):find('"code":%s*81057') then
      return nil, err, "conflict", r
    end
    return nil, err, tok, r
  end
  if doc.dry_run then return doc end
  if doc.success ~= true then
    return nil, ("invalid: cloudflare: the answer has success = %s"):format(tostring(doc.success)), "invalid"
  end
  return doc
end

-- Every record of name/type in the zone, over all pages (the pager stops on
-- page >= total_pages, or on an empty page).
local function cf_records(o, name, t)
  local api = require "drrun.api"
  local out, page = {}, 1
  local per_page = o.per_page or 100
  while true do
    local doc, err, tok = cf_call(o, { method = "GET", path = "/zones/" .. api.seg(o.zone) .. "/dns_records",
      query = { name = cf_name(name), type = t, page = page, per_page = per_page } })
    if not doc then return nil, err, tok end
    local list = type(doc.result) == "table" and doc.result or {}
    for _, r in ipairs(list) do
      if r.type == t and cf_name(r.name):lower() == cf_name(name):lower() then out[#out + 1] = r end
    end
    local info = type(doc.result_info) == "table" and doc.result_info or {}
    local pages = tonumber(info.total_pages)
    if not pages and tonumber(info.total_count) and tonumber(info.per_page) then
      pages = math.ceil(tonumber(info.total_count) / tonumber(info.per_page))
    end
    if #list == 0 or page >= (pages or 1) then break end
    page = page + 1
  end
  return out
end

local function cf_value(t, content)
  local v = content
  if t == "CNAME" then v = content .. "." end
  return (dcore.canon(t, v)) or content
end

local function cf_set(t, recs)
  local values, ttl = {}, nil
  for _, r in ipairs(recs) do
    values[#values + 1] = cf_value(t, r.content)
    if not ttl or r.ttl < ttl then ttl = r.ttl end
  end
  table.sort(values)
  return values, ttl
end

local function cf_switch(o)
  args(o, "switch", { "zone" })
  if not CF_TYPES[o.type] then
    error(("dns.switch: provider cloudflare takes A, AAAA, CNAME or TXT, not %s"):format(o.type), 3)
  end
  local api = require "drrun.api"
  local base = "/zones/" .. api.seg(o.zone) .. "/dns_records"
  local recs, err, tok = cf_records(o, o.name, o.type)
  if not recs then return nil, err, tok end
  local cur_values, cur_ttl = cf_set(o.type, recs)
  local previous = #recs > 0 and { values = cur_values, ttl = cur_ttl, records = {} } or nil
  for i, r in ipairs(recs) do
    previous.records[i] = { id = r.id, content = r.content, ttl = r.ttl, proxied = r.proxied == true }
  end
  -- the values as Cloudflare's content: CNAME targets without the dot
  local contents = {}
  for i, v in ipairs(o.to) do
    contents[i] = o.type == "CNAME" and cf_name(dcore.name(v)) or tostring(v)
  end
  table.sort(contents)
  local ttl = o.ttl or cur_ttl or 300
  local out = { provider = "cloudflare", zone = o.zone, name = o.name, type = o.type,
                previous = previous, new = { values = o.to_canon, ttl = ttl, records = {} },
                wait_servers = o.wait_servers, dry_run = core.dry_run() or nil,
                call = { base_url = o.base_url, per_page = o.per_page } }
  if previous and same(previous.values, o.to_canon) and previous.ttl == ttl then
    out.unchanged = true
    return out
  end
  -- 2. lower the TTLs first (1 is "automatic": nothing to lower)
  if o.prepare_ttl and previous and cur_ttl > o.prepare_ttl and cur_ttl ~= 1 then
    for _, r in ipairs(recs) do
      local doc
      doc, err, tok = cf_call(o, { method = "PATCH", path = base .. "/" .. api.seg(r.id),
        json = { ttl = o.prepare_ttl }, idempotent = true })
      if not doc then return nil, err, tok end
    end
    out.prepared = { ttl = o.prepare_ttl, waited = cur_ttl }
    if not core.dry_run() then
      core.log(("dns: waiting out the old TTL of %ds"):format(cur_ttl))
      drrun.sleep(cur_ttl)
    end
  end
  -- 3. the change, by record id: existing records are PATCHed in place,
  -- extra values created, extra records deleted
  local proxied = previous and previous.records[1].proxied or false
  for i, c in ipairs(contents) do
    local r, doc = recs[i], nil
    if r then
      doc, err, tok = cf_call(o, { method = "PATCH", path = base .. "/" .. api.seg(r.id),
        json = { content = c, ttl = ttl }, idempotent = true })
    else
      doc, err, tok = cf_call(o, { method = "POST", path = base,
        json = { type = o.type, name = cf_name(o.name), content = c, ttl = ttl, proxied = proxied } })
    end
    if not doc then
      out.partial = true
      return nil, err, tok, out
    end
    out.new.records[i] = { id = r and r.id or (doc.result and doc.result.id), content = c, ttl = ttl }
  end
  for i = #contents + 1, #recs do
    local doc
    doc, err, tok = cf_call(o, { method = "DELETE", path = base .. "/" .. api.seg(recs[i].id) })
    if not doc then
      out.partial = true
      return nil, err, tok, out
    end
  end
  if core.dry_run() then
    out.would_write = { name = o.name, type = o.type, ttl = ttl, values = o.to_canon }
    return out
  end
  -- 4. Cloudflare's own servers: only when named (they are anycast)
  if o.wait ~= false and o.wait_servers then
    local w
    w, err, tok = M.wait_for { name = o.name, type = o.type, values = o.to_canon,
      servers = o.wait_servers, timeout = o.wait_timeout or "2m", interval = o.interval or "1s" }
    if not w then return nil, err, tok, out end
    out.waited = w.elapsed
  end
  return out
end

local function cf_restore(out, opts)
  local api = require "drrun.api"
  local o = copy(out.call, opts)
  o.zone = out.zone
  local base = "/zones/" .. api.seg(out.zone) .. "/dns_records"
  -- still what switch wrote? else someone changed it since: conflict
  local recs, err, tok = cf_records(o, out.name, out.type)
  if not recs then return nil, err, tok end
  local now = {}
  for _, r in ipairs(recs) do now[r.id] = r end
  for _, w in ipairs(out.new.records) do
    local r = now[w.id]
    if not core.dry_run() and (not r or r.content ~= w.content) then
      return nil, ("conflict: cloudflare: %s %s record %s is no longer %s: not restoring over it")
        :format(out.name, out.type, tostring(w.id), w.content), "conflict"
    end
  end
  local prev = {}
  for _, p in ipairs(out.previous and out.previous.records or {}) do prev[p.id] = p end
  local doc
  for _, w in ipairs(out.new.records) do
    local p = prev[w.id]
    if p then
      doc, err, tok = cf_call(o, { method = "PATCH", path = base .. "/" .. api.seg(w.id),
        json = { content = p.content, ttl = p.ttl, proxied = p.proxied }, idempotent = true })
      prev[w.id] = nil
    else
      doc, err, tok = cf_call(o, { method = "DELETE", path = base .. "/" .. api.seg(w.id) })
    end
    if not doc then return nil, err, tok end
  end
  -- records switch deleted come back (with new ids)
  for _, p in ipairs(out.previous and out.previous.records or {}) do
    if prev[p.id] then
      doc, err, tok = cf_call(o, { method = "POST", path = base, json = { type = out.type,
        name = cf_name(out.name), content = p.content, ttl = p.ttl, proxied = p.proxied } })
      if not doc then return nil, err, tok end
    end
  end
  return true
end

-- ---- Route 53 (over drrun.aws.route53) ------------------------------------------

local function r53_set(rr)
  if not rr or not rr.ResourceRecords then return nil end
  local values = {}
  for _, v in ipairs(rr.ResourceRecords) do values[#values + 1] = v.Value end
  table.sort(values)
  return { values = values, ttl = tonumber(rr.TTL) }
end

local function r53_switch(o)
  local r53 = require "drrun.aws.route53"
  local function with(extra) return setmetatable(extra, { __index = o }) end
  local values = {}
  for i, v in ipairs(o.to) do values[i] = tostring(v) end
  local out = { provider = "route53", zone = o.zone, name = o.name, type = o.type,
                wait_servers = o.wait_servers, dry_run = core.dry_run() or nil }
  local first
  if o.prepare_ttl then
    local cur, err, tok = r53.records(with { name = o.name, type = o.type })
    if not cur then return nil, err, tok end
    local rr
    for _, x in ipairs(cur) do if (x.SetIdentifier or nil) == (o.set_id or nil) then rr = x end end
    local ttl = rr and tonumber(rr.TTL)
    if ttl and ttl > o.prepare_ttl then
      local pv = {}
      for i, v in ipairs(rr.ResourceRecords) do pv[i] = v.Value end
      first, err, tok = r53.switch(with { values = pv, ttl = o.prepare_ttl })
      if not first then return nil, err, tok end
      out.prepared = { ttl = o.prepare_ttl, waited = ttl }
      if not core.dry_run() then
        core.log(("dns: waiting out the old TTL of %ds"):format(ttl))
        drrun.sleep(ttl)
      end
    end
  end
  local r, err, tok = r53.switch(with { values = values, ttl = o.ttl })
  if not r then return nil, err, tok end
  -- the rollback puts back what was there before the TTL was lowered
  if first then r.previous = first.previous end
  out.route53 = r
  out.previous = r53_set(r.previous)
  out.new = r53_set(r.new)
  out.unchanged = r.unchanged
  if core.dry_run() then
    out.would_write = { name = o.name, type = o.type, ttl = out.new and out.new.ttl, values = o.to_canon }
    return out
  end
  if o.wait ~= false and o.wait_servers then
    local w
    w, err, tok = M.wait_for { name = o.name, type = o.type, values = o.to_canon,
      servers = o.wait_servers, timeout = o.wait_timeout or "2m", interval = o.interval or "1s" }
    if not w then return nil, err, tok, out end
    out.waited = w.elapsed
  end
  return out
end

local function r53_restore(out, opts)
  return require("drrun.aws.route53").restore(out.route53, opts)
end

-- ---- the switch -----------------------------------------------------------------

local PROVIDERS = {}
M._providers = PROVIDERS
PROVIDERS.rfc2136 = { switch = rfc2136_switch, restore = rfc2136_restore }
PROVIDERS.cloudflare = { switch = cf_switch, restore = cf_restore }
PROVIDERS.route53 = { switch = r53_switch, restore = r53_restore }

-- dns.switch{ provider, zone, name, type = "A", to = { ... }, ttl,
--   prepare_ttl, wait = true, wait_timeout = "2m", ... } -> out (out.previous
-- is the old RRset with its TTL) | nil, err, token.  In order: read the
-- current RRset; lower its TTL to prepare_ttl and wait out the old TTL (if
-- asked); change it atomically; wait for the authoritative servers.
-- rfc2136: server, key = { name, algorithm, secret } | { file }, wait_servers
-- route53: zone is the hosted zone id; profile, endpoint_url...
-- cloudflare: zone is the zone id; token (else the secret CLOUDFLARE_API_TOKEN)
function M.switch(opts)
  args(opts, "switch", { "provider", "zone", "name", "to" })
  local p = PROVIDERS[opts.provider]
  if not p then
    error(("dns.switch: provider '%s' is not rfc2136, route53 or cloudflare"):format(tostring(opts.provider)), 2)
  end
  local o = copy(opts)
  o.type = (opts.type or "A"):upper()
  o.name = dcore.name(opts.name)
  o.to_canon = canon_set(o.type, opts.to, "switch", "to")
  if #o.to_canon == 0 then error("dns.switch: to is empty", 2) end
  for _, f in ipairs { "ttl", "prepare_ttl" } do
    if o[f] ~= nil and (math.type(o[f]) ~= "integer" or o[f] < 0 or o[f] > 2147483647) then
      error(("dns.switch: %s must be a whole number of seconds"):format(f), 2)
    end
  end
  return p.switch(o)
end

-- dns.restore(out [, opts]) -> true | nil, err, token: puts back exactly the
-- RRset switch() replaced (TTL included), or removes the one it created,
-- only if the records are still those switch() wrote (else conflict).
function M.restore(out, opts)
  if type(out) ~= "table" or not out.provider or not out.name then
    error("dns.restore: expects the output of dns.switch", 2)
  end
  if out.unchanged then return true end
  local p = PROVIDERS[out.provider]
  if not p then error(("dns.restore: provider '%s' is unknown"):format(tostring(out.provider)), 2) end
  return p.restore(out, opts or {})
end

M._update = update
M._canon_set = canon_set
M._same = same
M._copy = copy
M._key_of = key_of
M._secs = secs

return M
