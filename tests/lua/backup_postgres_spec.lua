-- backup_postgres_spec: backup.postgres and backup.postgres_restore against
-- a real PostgreSQL 15 (tests/pg.sh starts it on loopback): a consistent
-- dump between maintenance on and off, a live one while rows keep arriving,
-- manifests (row counts from the dump, size, sha256, times, recovery
-- point), failures that leave no file, backup.verify on real pg_dump files,
-- and restores checked row by row against the manifest.
--
--   drrun run backup_postgres_spec.lua   (from tests/lua; exit 0 = pass)
local backup = require "drrun.backup"
local exec = require "drrun.exec"
local json = require "drrun.json"
local BT = require "drrun.backup.time"

runbook { name = "backup-postgres-spec" }

local T = require "lib.spec"
local eq, has, raises_with, sh, fails = T.eq, T.has, T.raises_with, T.sh, T.fails

local PGDIR, D
local C = {} -- host, port, user

local function psql(db, sql)
  local r = assert(exec.run { "psql", "-XtAq", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql,
    env = { PGHOST = C.host, PGPORT = tostring(C.port), PGUSER = C.user }, timeout = "60s" })
  if r.status ~= 0 then error("psql: " .. r.stderr, 2) end
  return (r.stdout:gsub("%s+$", ""))
end
local function opts(o)
  for k, v in pairs(C) do o[k] = v end
  return o
end

step "server" {
  timeout = "2m",
  run = function()
    PGDIR = T.state_dir() .. "/pg"
    D = T.state_dir() .. "/pgbackups"
    sh('rm -rf "$2" && mkdir -p "$2" && ../pg.sh start "$1" >&2', PGDIR, D)
    local env = sh('cat "$1/env"', PGDIR)
    C.host = env:match("PGHOST=(%S+)")
    C.port = tonumber(env:match("PGPORT=(%d+)"))
    C.user = env:match("PGUSER=(%S+)")
  end,
  rollback = function() sh('../pg.sh stop "$1"', PGDIR) end,
}

step "seed" {
  after = "server",
  run = function()
    sh('PGHOST=$1 PGPORT=$2 PGUSER=$3 createdb orders', C.host, tostring(C.port), C.user)
    psql("orders", [[
      create table customers(id serial primary key, name text);
      insert into customers(name) select 'c' || g from generate_series(1, 250) g;
      create table orders(id serial primary key, customer int references customers, note text);
      insert into orders(customer, note) select 1 + g % 250, E'line one\nline two\t' || g from generate_series(1, 1000) g;
      create table audit(id int);
      create schema billing;
      create table billing."Invoice Lines"(id int, amount numeric);
      insert into billing."Invoice Lines" select g, g * 1.5 from generate_series(1, 7) g;]])
  end,
}

local function counts(m)
  local t = {}
  for _, e in ipairs(m.tables) do t[#t + 1] = e.name .. "=" .. e.rows end
  return table.concat(t, " ")
end

step "consistent_dump" {
  after = "seed",
  timeout = "2m",
  run = function()
    local events = {}
    local m = assert(backup.postgres(opts { db = "orders", dir = D, name = "orders-consistent",
      maintenance = {
        on = function() events[#events + 1] = { "on", drrun.now() } end,
        off = function() events[#events + 1] = { "off", drrun.now() } end,
      } }))
    eq(#events, 2, "on and off called once each")
    eq(events[1][1] .. events[2][1], "onoff", "in order")
    eq(counts(m), 'billing."Invoice Lines"=7 public.audit=0 public.customers=250 public.orders=1000', "tables")
    eq(m.live, false, "not live"); eq(m.kind, "pg_dump", "kind"); eq(m.database, "orders", "database")
    eq(m.path, D .. "/orders-consistent.dump", "path")
    eq(m.sha256, T.sha256sum(m.path), "sha256 of the file")
    eq(m.size, tonumber(sh('stat -c %s "$1"', m.path)), "size")
    -- the recovery point is the pause; the dump ran inside it
    eq(m.recovery_point, BT.format(events[1][2]), "recovery point = writes paused")
    assert(BT.parse(m.dump_started) >= math.floor(events[1][2]), "dump after the pause")
    assert(BT.parse(m.dump_ended) <= events[2][2] + 1, "dump before the resume")
    has(m.consistency, "consistent: writes paused from ", "consistency")
    has(m.server_version, "15.", "server version"); has(m.pg_dump, "pg_dump (PostgreSQL) 15", "pg_dump version")
    -- the manifest file says the same
    local f = json.decode(sh('cat "$1"', m.manifest_path))
    eq(f.sha256, m.sha256, "manifest file sha256"); eq(f.recovery_point, m.recovery_point, "manifest file rp")
    eq(f.tables[4].rows, 1000, "manifest file rows"); eq(f.file, "orders-consistent.dump", "relative file name")
    eq(sh('ls "$1" | grep -c drrun- || true', D), "0\n", "no part file left")
    -- the dump really has the rows: a plain restore to SQL counts them again
    eq(sh('pg_restore -a -f - -t orders "$1" | grep -c "line one"', m.path), "1000\n", "1000 order rows")
  end,
}

step "live_dump" {
  after = "consistent_dump",
  timeout = "2m",
  run = function()
    -- rows keep arriving while the live dump runs
    local res = drrun.parallel({ "writer", "dump" }, function(what)
      if what == "writer" then
        for i = 1, 20 do psql("orders", "insert into customers(name) values ('live " .. i .. "')") end
        return "wrote"
      end
      return assert(backup.postgres(opts { db = "orders", dir = D, name = "orders-live", live = true }))
    end)
    local m = res[2]
    eq(m.live, true, "flagged live")
    has(m.consistency, "possibly inconsistent with other stores", "says so")
    eq(m.recovery_point, BT.format(BT.parse(m.dump_started)), "recovery point = the dump's start")
    local n = m.tables[3]
    eq(n.name, "public.customers", "customers")
    assert(n.rows >= 250 and n.rows <= 270, "customers counted from the dump: " .. n.rows)
    eq(psql("orders", "select count(*) from customers"), "270", "all 20 written")
    raises_with("live = true pauses nothing", backup.postgres, { db = "orders", dir = D, live = true,
      maintenance = { on = print, off = print } })
    raises_with("a consistent dump needs maintenance", backup.postgres, { db = "orders", dir = D })
    raises_with("unknown field 'database'", backup.postgres, { database = "orders", dir = D })
  end,
}

step "failures_leave_nothing" {
  after = "live_dump",
  timeout = "2m",
  run = function()
    local off = 0
    local err = fails("failed", backup.postgres(opts { db = "orders", dir = D, name = "m-on",
      maintenance = { on = function() error("app refused", 0) end, off = function() off = off + 1 end } }))
    has(err, "maintenance on: app refused", "maintenance on failure"); eq(off, 1, "off still called")
    err = fails("failed", backup.postgres(opts { db = "orders", dir = D, name = "m-off",
      maintenance = { on = function() end, off = function() error("stuck", 0) end } }))
    has(err, "maintenance off: stuck (writes may still be paused)", "maintenance off failure")
    err = fails("failed", backup.postgres(opts { db = "nosuchdb", dir = D, name = "no-db", live = true }))
    has(err, "pg_dump exited 1", "pg_dump's failure"); has(err, "nosuchdb", "its words")
    eq(sh('cd "$1" && ls | sort | tr "\\n" " "', D),
      "orders-consistent.dump orders-consistent.json orders-live.dump orders-live.json ", "only the good dumps")
  end,
}

step "verify_dumps" {
  after = "failures_leave_nothing",
  run = function()
    local mp = D .. "/orders-consistent.json"
    local r = backup.verify { path = D .. "/orders-consistent.dump", manifest = mp, min_size = 1000 }
    eq(r.ok, true, "ok")
    local ev = {}
    for _, c in ipairs(r.checks) do ev[c.name] = c.evidence end
    has(ev.readable, "pg_restore --list: ", "listing"); has(ev.readable, "4 with table data", "4 tables")
    has(ev.required, "all 4 present: billing.\"Invoice Lines\", public.audit, public.customers, public.orders",
      "tables from the manifest")
    has(ev.readable, "pg_restore -f /dev/null read all of it", "every entry read")
    -- cut short inside the data: the table of contents still lists, the data does not read
    local size = tonumber(sh('stat -c %s "$1"', D .. "/orders-consistent.dump"))
    sh('head -c "$2" "$1/orders-consistent.dump" > "$1/cut.dump"', D, tostring(size - 8))
    r = backup.verify { path = D .. "/cut.dump" }
    eq(r.ok, false, "a cut dump")
    has(r.checks[2].evidence, "with table data, but pg_restore -f /dev/null exited 1", "the data does not read")
    sh('head -c 3000 "$1/orders-consistent.dump" > "$1/cut.dump"', D)
    r = backup.verify { path = D .. "/cut.dump" }
    has(r.checks[2].evidence, "pg_restore --list exited 1", "not even the table of contents")
    r = backup.verify { path = D .. "/orders-consistent.dump", required = { "public.orders", "public.payments" } }
    eq(r.checks[3].evidence, "missing 1 of 2: public.payments", "a table the dump lacks")
    sh('rm -f "$1/cut.dump"', D)
  end,
}

step "restore_checked" {
  after = "verify_dumps",
  timeout = "2m",
  run = function()
    local r = assert(backup.postgres_restore(opts { file = D .. "/orders-consistent.dump", db = "orders_scratch",
      manifest = D .. "/orders-consistent.json" }))
    eq(r.ok, true, "all counts match")
    eq(#r.tables, 4, "four tables checked")
    eq(r.tables[4].name .. r.tables[4].want .. "/" .. r.tables[4].got, "public.orders1000/1000", "orders")
    eq(psql("orders_scratch", [[select count(*) from billing."Invoice Lines"]]), "7", "the quoted table is there")
    -- a manifest that disagrees with what was restored
    local m = json.decode(sh('cat "$1"', D .. "/orders-consistent.json"))
    m.tables[3].rows = 251
    r = assert(backup.postgres_restore(opts { file = D .. "/orders-consistent.dump", db = "orders_scratch",
      drop_first = true, manifest = m }))
    eq(r.ok, false, "mismatch found"); eq(r.mismatched[1], "public.customers", "named")
    eq(r.tables[3].got, 250, "what is there")
    -- the check alone, on the database as it is now
    local c = assert(backup.postgres_check(opts { db = "orders_scratch", manifest = D .. "/orders-consistent.json" }))
    eq(c.ok, true, "postgres_check")
    psql("orders_scratch", "delete from orders where id <= 10")
    c = assert(backup.postgres_check(opts { db = "orders_scratch", manifest = D .. "/orders-consistent.json" }))
    eq(c.ok, false, "ten rows gone"); eq(c.tables[4].got, 990, "counted")
    -- restoring over an existing database without drop_first fails: createdb refuses
    local err = fails("failed", backup.postgres_restore(opts { file = D .. "/orders-consistent.dump", db = "orders_scratch" }))
    has(err, "createdb exited 1", "createdb's failure")
  end,
}

step "stop" {
  after = "restore_checked",
  run = function()
    sh('../pg.sh stop "$1"', PGDIR)
  end,
}
