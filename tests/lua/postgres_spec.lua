-- postgres_spec.lua: drrun.postgres against a real PostgreSQL 15 primary and
-- its streaming replica (tests/pg.sh start DIR --replica), run as a
-- runbook; every step must complete.  The pair is started by the first step
-- and stopped, its files removed, by the last (or by the first step's
-- rollback when a step failed).
--   drrun run --state-dir STATE postgres_spec.lua   (from tests/lua; exit 0 = pass)
-- The steps form one chain: the promotion at the end changes the pair.
local pg = require "drrun.postgres"
local exec = require "drrun.exec"
local drrun = require "drrun"

runbook { name = "postgres-spec" }

local T = require "lib.spec"
local eq, has, ok, fails, raises_with, sh = T.eq, T.has, T.ok, T.fails, T.raises_with, T.sh

local E = {}          -- DRRUN_TEST_PG_* of tests/pg.sh's env file
local P, R, DOWN      -- the primary, the replica, a port nothing listens on
local DIR

local function conn(port, extra)
	local c = { host = E.DRRUN_TEST_PG_HOST, port = port, user = "postgres", dbname = "postgres" }
	for k, v in pairs(extra or {}) do c[k] = v end
	return c
end

-- poll f() until it returns true (up to 20 s)
local function eventually(what, f)
	for _ = 1, 200 do
		if f() then return end
		drrun.sleep("100ms")
	end
	error("never happened: " .. what, 2)
end

step "start_pair" {
	timeout = "90s",
	run = function(ctx)
		DIR = T.state_dir() .. "/pg"
		sh('../pg.sh start "$1" --replica >&2', DIR)
		for line in sh('. "$1"/env && env', DIR):gmatch("[^\n]+") do
			local k, v = line:match('^(DRRUN_TEST_PG_[%w_]+)=(.*)$')
			if k then E[k] = v end
		end
		P = conn(tonumber(E.DRRUN_TEST_PG_PORT))
		R = conn(tonumber(E.DRRUN_TEST_PG_REPLICA_PORT))
		DOWN = conn(tonumber(E.DRRUN_TEST_PG_DOWN_PORT))
	end,
	-- a failed spec stops the pair too
	rollback = function()
		if DIR then sh('../pg.sh stop "$1"', DIR) end
	end,
}

step "ready_and_roles" {
	after = "start_pair",
	run = function()
		eq(ok(pg.ready(P)), true, "primary ready")
		eq(ok(pg.ready(R)), true, "replica ready")
		fails("refused", pg.ready(DOWN))
		eq(pg.in_recovery(P), false, "primary in recovery")
		eq(ok(pg.in_recovery(R)), true, "replica in recovery")
		fails("not_found", pg.ready(conn(P.port, { dbname = "no_such_db" })))
		fails("auth", pg.ready(conn(P.port, { user = "no_such_role" })))
		-- a password role: the password goes in PGPASSWORD and is redacted
		local pw, user = E.DRRUN_TEST_PG_PASSWORD, E.DRRUN_TEST_PG_PW_USER
		eq(ok(pg.ready(conn(P.port, { user = user, password = pw }))), true, "password login")
		local err = fails("auth", pg.ready(conn(P.port, { user = user, password = pw .. "-wrong" })))
		eq(err:find(pw, 1, true), nil, "the wrong password in the message")
		fails("auth", pg.ready(conn(P.port, { user = user })))
		-- connection strings, key=value and URI, with the password in them
		local kv = ("host=127.0.0.1 port=%d user=%s password='%s' dbname=postgres"):format(P.port, user, pw)
		eq(ok(pg.ready(kv)), true, "key=value conninfo")
		local uri = ("postgresql://%s:%s@127.0.0.1:%d/postgres"):format(user, pw, P.port)
		eq(ok(pg.ready(uri)), true, "URI")
		local at = uri:find(pw, 1, true)
		err = fails("auth", pg.ready(uri:sub(1, at - 1) .. "x" .. uri:sub(at)))
		eq(err:find(pw, 1, true), nil, "the password of a URI in the message")
		raises_with("cannot parse the connection string", pg.ready, "host=x port")
		raises_with("must be a table or a connection string", pg.ready, 5432)
	end,
}

step "lsn" {
	after = "ready_and_roles",
	run = function()
		local p = ok(pg.lsn(P))
		eq(p.in_recovery, false, "primary in_recovery")
		ok(pg.lsn_bytes(p.current), "primary current " .. tostring(p.current))
		eq(p.received, nil, "primary received")
		eq(p.replayed, nil, "primary replayed")
		local r = ok(pg.lsn(R))
		eq(r.in_recovery, true, "replica in_recovery")
		ok(pg.lsn_bytes(r.received), "replica received " .. tostring(r.received))
		ok(pg.lsn_bytes(r.replayed), "replica replayed " .. tostring(r.replayed))
		eq(r.current, r.replayed, "a replica's current is what it replayed")
		eq(pg.lsn_bytes("1/0"), 1 << 32, "lsn_bytes 1/0")
		eq(pg.lsn_bytes("0/3000148"), 0x3000148, "lsn_bytes")
		eq(pg.lsn_diff("1/10", "0/FFFFFFF0"), 0x20, "lsn_diff across the high word")
		eq(pg.lsn_bytes("nope"), nil, "not an LSN")
	end,
}

-- values that would break a query built by concatenation
local NASTY = {
	"it's", [[back\slash]], "new\nline", "cr\rlf", ":'x' :\"y\" :z", "'; DROP TABLE runs; --",
	"$1 $$ dollar $$", "ünïcødé ✓", "", "   ", "\\set x 1", "E'\\x41'", "\\\\", "tab\there",
	"\"", ",", "\"\"", "a,\"b\"\nc",
}

step "query" {
	after = "lsn",
	run = function()
		ok(pg.execute(P, [[CREATE TABLE runs (id serial PRIMARY KEY, note text, n int);
			CREATE UNIQUE INDEX runs_note ON runs (note)]]))
		for i, v in ipairs(NASTY) do
			local rows = ok(pg.query(P, "INSERT INTO runs (note, n) VALUES (:'v', :'i') RETURNING id, note",
				{ v = v, i = i }))
			eq(#rows, 1, "one row returned for " .. T.show(v))
			eq(rows[1].note, v, "the value back from INSERT ... RETURNING")
		end
		ok(pg.execute(P, "INSERT INTO runs (note, n) VALUES (NULL, 0)"))
		local rows = ok(pg.query(P, "SELECT note, n FROM runs WHERE n > 0 ORDER BY n"))
		eq(#rows, #NASTY, "row count")
		for i, v in ipairs(NASTY) do eq(rows[i].note, v, "row " .. i) end
		eq(rows.columns[1], "note", "first column")
		eq(rows.columns[2], "n", "second column")
		-- NULL is nil, '' is ""
		rows = ok(pg.query(P, "SELECT NULL::text AS a, ''::text AS b, 'x' AS c"))
		eq(rows[1].a, nil, "NULL")
		eq(rows[1].b, "", "empty string")
		eq(rows[1].c, "x", "plain")
		-- parameters are never SQL
		eq(ok(pg.query(P, "SELECT count(*) AS n FROM runs WHERE note = :'v'", { v = "x' OR '1'='1" }))[1].n,
			"0", "an injection attempt matches nothing")
		eq(ok(pg.query(P, "SELECT count(*) AS n FROM runs"))[1].n, tostring(#NASTY + 1), "table intact")
		-- identifiers as :"name"
		eq(ok(pg.query(P, "SELECT count(*) AS n FROM :\"t\"", { t = "runs" }))[1].n, tostring(#NASTY + 1),
			"identifier parameter")
		fails("not_found", pg.query(P, "SELECT 1 FROM :\"t\"", { t = "runs\"; DROP TABLE runs; --" }))
		-- numbers and booleans
		rows = ok(pg.query(P, "SELECT :'a'::int + 1 AS a, :'b'::boolean AS b, :'c'::float8 AS c",
			{ a = 41, b = true, c = 0.5 }))
		eq(rows[1].a, "42", "integer param")
		eq(rows[1].b, "t", "boolean param")
		eq(rows[1].c, "0.5", "float param")
		-- no rows: the columns still come
		rows = ok(pg.query(P, "SELECT id FROM runs WHERE false;"))
		eq(#rows, 0, "no rows")
		eq(rows.columns[1], "id", "columns of an empty answer")
		-- failures, each with its token
		fails("not_found", pg.query(P, "SELECT * FROM no_such_table"))
		local err = fails("invalid", pg.query(P, "SELEC 1"))
		has(err, "42601", "the SQLSTATE in the message")
		fails("conflict", pg.query(P, "INSERT INTO runs (note) VALUES ('it''s') RETURNING id"))
		fails("invalid", pg.query(P, "SELECT 1/0"))
		fails("conflict", pg.query(R, "INSERT INTO runs (note) VALUES ('on the replica') RETURNING id"))
		fails("invalid", pg.query(P, "SELECT 1; SELECT 2"))
		fails("refused", pg.query(DOWN, "SELECT 1"))
		local t0 = drrun.now()
		fails("timeout", pg.query(P, "SELECT pg_sleep(20)", nil, { timeout = "1s" }))
		ok(drrun.now() - t0 < 8, "a timed-out query came back in time")
		-- misuse raises
		raises_with("NUL byte", pg.query, P, "SELECT :'v'", { v = "a\0b" })
		raises_with("not a psql variable name", pg.query, P, "SELECT 1", { ["bad name"] = 1 })
		raises_with("must be a string, number or boolean", pg.query, P, "SELECT 1", { v = {} })
		raises_with("sql must be a non-empty string", pg.query, P, "  ")
		raises_with("timeout must be a positive duration", pg.query, P, "SELECT 1", nil, { timeout = "soon" })
		-- the replica has it all, once replayed
		eventually("the replica has every row", function()
			local r = pg.query(R, "SELECT count(*) AS n FROM runs")
			return r and r[1].n == tostring(#NASTY + 1)
		end)
	end,
}

step "lag" {
	after = "query",
	run = function()
		eventually("the replica caught up", function()
			local l = pg.lag(R, { primary = P })
			return l and l.bytes == 0
		end)
		local l = ok(pg.lag(R, { primary = P }))
		eq(l.seconds, 0, "no lag in seconds when caught up")
		eq(l.streaming, true, "streaming")
		eq(l.primary, ok(pg.lsn(P)).current, "the primary's position")
		-- replay paused: WAL arrives and is not applied
		ok(pg.execute(R, "SELECT pg_wal_replay_pause()"))
		drrun.sleep("1100ms")
		ok(pg.execute(P, "INSERT INTO runs (note, n) SELECT 'bulk ' || g, -g FROM generate_series(1, 500) g"))
		eventually("WAL received but not replayed", function()
			local x = pg.lag(R)
			return x and x.bytes > 0
		end)
		l = ok(pg.lag(R, { primary = P }))
		ok(l.bytes > 0, "bytes behind the primary: " .. tostring(l.bytes))
		ok(l.seconds and l.seconds >= 1, "seconds behind: " .. tostring(l.seconds))
		ok(pg.execute(R, "SELECT pg_wal_replay_resume()"))
		eventually("caught up again", function()
			local x = pg.lag(R, { primary = P })
			return x and x.bytes == 0
		end)
		fails("conflict", pg.lag(P))
		fails("refused", pg.lag(DOWN))
	end,
}

step "row_counts_dump_restore" {
	after = "lag",
	timeout = "120s",
	run = function()
		local want = #NASTY + 1 + 500
		local c = ok(pg.row_counts(P))
		eq(c["public.runs"], want, "row count of public.runs")
		ok(pg.execute(P, [[CREATE SCHEMA "odd schema"; CREATE TABLE "odd schema"."Odd ""Table""" (x int);
			INSERT INTO "odd schema"."Odd ""Table""" VALUES (1), (2)]]))
		c = ok(pg.row_counts(P))
		eq(c['odd schema.Odd "Table"'], 2, "quoted identifiers counted")
		c = ok(pg.row_counts(P, { tables = { "runs", 'odd schema.Odd "Table"' } }))
		eq(c["public.runs"], want, "a named table")
		fails("not_found", pg.row_counts(P, { tables = { "public.nope" } }))
		eq(next(ok(pg.row_counts(conn(P.port, { dbname = "template1" })))), nil, "no tables: empty")

		local file = DIR .. "/runs.dump"
		local d = ok(pg.dump(P, file))
		eq(d.file, file, "dump file")
		eq(d.format, "custom", "dump format")
		ok(T.exists(file), "the dump exists")
		ok(pg.execute(P, "CREATE DATABASE restored"))
		local r = ok(pg.restore(conn(P.port, { dbname = "restored" }), file))
		eq(r.file, file, "restore file")
		local back = ok(pg.row_counts(conn(P.port, { dbname = "restored" })))
		eq(back["public.runs"], want, "restored rows")
		eq(back['odd schema.Odd "Table"'], 2, "restored odd table")
		eq(ok(pg.query(conn(P.port, { dbname = "restored" }), "SELECT note FROM runs WHERE n = 3"))[1].note,
			NASTY[3], "a restored value")
		-- plain SQL too
		local sql = DIR .. "/runs.sql"
		ok(pg.dump(P, sql, { format = "plain", tables = { "runs" } }))
		ok(pg.execute(P, "CREATE DATABASE restored_plain"))
		ok(pg.restore(conn(P.port, { dbname = "restored_plain" }), sql))
		eq(ok(pg.row_counts(conn(P.port, { dbname = "restored_plain" })))["public.runs"], want, "plain restore")
		-- a second restore of the same dump into the same database conflicts
		fails("conflict", pg.restore(conn(P.port, { dbname = "restored" }), file))
		fails("not_found", pg.restore(conn(P.port, { dbname = "no_such_db" }), file))
		fails("refused", pg.dump(DOWN, DIR .. "/x.dump"))
		raises_with("format must be", pg.dump, P, file, { format = "zip" })
	end,
}

step "promote" {
	after = "row_counts_dump_restore",
	timeout = "120s",
	run = function()
		fails("timeout", pg.wait_writable(R, { timeout = "2s", interval = "200ms" }))
		fails("timeout", pg.wait_writable(DOWN, { timeout = "1s", interval = "200ms" }))
		fails("auth", pg.wait_writable(conn(R.port, { user = "no_such_role" }), { timeout = "10s" }))
		local p = ok(pg.promote(R, { wait = "60s" }))
		eq(p.promoted, true, "promoted")
		eq(p.already, false, "not already")
		ok(pg.lsn_bytes(p.lsn), "the new primary's LSN")
		eq(pg.in_recovery(R), false, "out of recovery")
		local w = ok(pg.wait_writable(R, { timeout = "30s" }))
		ok(w.seconds >= 0, "waited")
		ok(pg.query(R, "INSERT INTO runs (note, n) VALUES ('after promotion', 0) RETURNING id"))
		local again = ok(pg.promote(R))
		eq(again.promoted, false, "a second promote does nothing")
		eq(again.already, true, "already a primary")
		fails("conflict", pg.lag(R))
	end,
}

step "stop_pair" {
	after = "promote",
	run = function()
		if DIR then sh('../pg.sh stop "$1"', DIR) end
	end,
}
