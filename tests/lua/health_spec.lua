-- health_spec.lua: drrun.health against a real nginx, run as a runbook;
-- every step must complete.  tests/run.sh starts the servers
-- (tests/servers.sh) and exports DRRUN_TEST_*; without them the first step
-- fails, and so the spec.
--   drrun run --state-dir STATE health_spec.lua   (from tests/lua; exit 0 = pass)
-- Every check returns ok, detail; the details are part of the contract (they
-- end up in reports), so they are compared in full where they are fixed.
local health = require "drrun.health"
local http = require "drrun.http"
local exec = require "drrun.exec"

runbook { name = "health-spec" }

local HTTP = os.getenv("DRRUN_TEST_HTTP")
local HTTPS = os.getenv("DRRUN_TEST_HTTPS")
local CA = os.getenv("DRRUN_TEST_CA")
local LOG = os.getenv("DRRUN_TEST_HTTP_LOG")
local CLOSED = tonumber(os.getenv("DRRUN_TEST_CLOSED_PORT"))
local PORT = tonumber(HTTP and HTTP:match(":(%d+)$"))

local T = require "lib.spec"
local eq, has = T.eq, T.has
local logged = T.access_log(LOG)

-- a check that must pass / fail: its detail
local function passes(ok, detail)
	if ok ~= true then error("check failed: " .. tostring(detail), 2) end
	eq(type(detail), "string", "detail")
	return detail
end
local function fails(ok, detail)
	if ok ~= false then error("check passed: " .. tostring(detail), 2) end
	eq(type(detail), "string", "detail")
	return detail
end

step "servers" {
	doc = "the servers of tests/servers.sh are there (a spec without them fails)",
	run = function()
		for _, name in ipairs { "DRRUN_TEST_HTTP", "DRRUN_TEST_HTTPS", "DRRUN_TEST_CA",
			"DRRUN_TEST_HTTP_LOG", "DRRUN_TEST_CLOSED_PORT" } do
			if not os.getenv(name) then
				error(name .. " is not set: run the specs with tests/run.sh, which starts "
					.. "tests/servers.sh and sources its env", 0)
			end
		end
		assert(http.get(HTTP .. "/healthz"))
	end,
}

step "http-ok" {
	after = "servers",
	doc = "passing checks and their details",
	run = function()
		local url = HTTP .. "/healthz"
		local d = passes(health.http { url = url })
		assert(d:match("^" .. url:gsub("%p", "%%%0") .. ": HTTP 200 in %d+ms$"), d)
		passes(health.http { url = url, status = 200, body = "^ok" })
		passes(health.http { url = HTTP .. "/status/204" }) -- any 2xx by default
		passes(health.http { url = HTTP .. "/status/204", status = { 200, 204 } })
		passes(health.http { url = HTTP .. "/status/404", status = 404 })
		passes(health.http { url = HTTP .. "/status/503", status = function(s) return s >= 500 end })
		-- headers, method and request body are passed on
		passes(health.http { url = HTTP .. "/echo-headers", headers = { ["X-Test"] = "probe-1" },
			body = "^probe.1$" })
		passes(health.http { url = HTTP .. "/post", method = "POST", request_body = "ping",
			body = "^ping$" })
		-- TLS options and redirects are passed on
		passes(health.http { url = HTTPS .. "/healthz", tls = { ca = CA } })
		passes(health.http { url = HTTP .. "/moved", follow = true, body = "^ok" })
	end,
}

step "http-fail" {
	after = "http-ok",
	doc = "failing checks say why: status, body, transport",
	run = function()
		local u = HTTP .. "/status/503"
		eq(fails(health.http { url = u, status = 200 }), u .. ": HTTP 503, want 200", "status mismatch")
		eq(fails(health.http { url = u }), u .. ": HTTP 503, want 2xx", "not 2xx")
		eq(fails(health.http { url = u, status = { 200, 204 } }), u .. ": HTTP 503, want 200 or 204",
			"a list of statuses")
		eq(fails(health.http { url = u, status = function(s) return s == 200 end }),
			u .. ": HTTP 503, want a status the check accepts", "a status function")
		local m = HTTP .. "/moved"
		eq(fails(health.http { url = m }), m .. ": HTTP 302, want 2xx", "a redirect not followed")
		-- the body
		u = HTTP .. "/healthz"
		eq(fails(health.http { url = u, body = "^fail" }),
			u .. ': HTTP 200 but the body does not match "^fail"', "body mismatch")
		-- a pattern that does not compile is a mistake in the runbook: it raises
		assert(not pcall(health.http, { url = u, body = "(" }), "a bad pattern did not raise")
		-- transport failures carry the token
		local c = "http://127.0.0.1:" .. CLOSED .. "/healthz"
		local d = fails(health.http { url = c })
		assert(d:find(c .. ": refused: ", 1, true) == 1, d)
		d = fails(health.http { url = HTTP .. "/slowhdr", timeout = "300ms" })
		has(d, ": timeout: ")
		d = fails(health.http { url = HTTPS .. "/healthz" }) -- no CA
		has(d, ": tls: ")
		-- misuse raises
		assert(not pcall(health.http, {}), "no url")
		assert(not pcall(health.http, { url = u, interval = "soon", attempts = 2 }), "bad interval")
	end,
}

step "http-regex" {
	after = "http-fail",
	doc = "body patterns are PCRE2 (drrun.re)",
	run = function(ctx)
		local u = HTTP .. "/json"
		-- patterns that read the same in PCRE and in Lua
		passes(health.http { url = u, body = '"status":"up"' })
		fails(health.http { url = u, body = '"status":"down"' })
		-- drrun.re is always built in (RUNBOOKS.md: body is a PCRE); without
		-- it the PCRE cases below could not run, so the step fails
		local have_re, re_err = pcall(require, "drrun.re")
		if not have_re then error("drrun.re is not built in: " .. tostring(re_err), 0) end
		passes(health.http { url = u, body = [["lag_ms":\d+,]] })
		passes(health.http { url = u, body = [[^\{"service":"(orders|billing)"]] })
		fails(health.http { url = u, body = [["lag_ms":\d{3,}]] })
		passes(health.http { url = HTTP .. "/healthz", body = [[^ok\n$]] })
	end,
}

step "http-json" {
	after = "http-regex",
	doc = "json = { [\"dotted.path\"] = value }: all must match",
	run = function()
		local u = HTTP .. "/json"
		passes(health.http { url = u, json = {
			["db.status"] = "up", ["db.lag_ms"] = 12, ["db.replicas.2.name"] = "r2",
			["db.replicas.1.ok"] = true, ["db.replicas.2.ok"] = false, ["tags.1"] = "a",
			service = "orders",
		} })
		eq(fails(health.http { url = u, json = { ["db.status"] = "down" } }),
			u .. ": db.status is up, want down", "value mismatch")
		eq(fails(health.http { url = u, json = { ["db.replicas.3.name"] = "r3" } }),
			u .. ": db.replicas.3.name is nil, want r3", "missing path")
		eq(fails(health.http { url = u, json = { ["service.name"] = "x" } }),
			u .. ": service.name is nil, want x", "path through a string")
		eq(fails(health.http { url = u, json = { ["db.lag_ms"] = "12" } }),
			u .. ": db.lag_ms is 12, want 12", "a number is not a string")
		local h = HTTP .. "/healthz"
		local d = fails(health.http { url = h, json = { status = "up" } })
		assert(d:find(h .. ": body is not JSON: ", 1, true) == 1, d)
		-- the status is checked before the body
		eq(fails(health.http { url = HTTP .. "/status/500", json = { a = 1 } }),
			HTTP .. "/status/500: HTTP 500, want 2xx", "status first")
	end,
}

step "http-attempts" {
	after = "http-json",
	doc = "attempts and interval: a failing check is probed again",
	run = function(ctx)
		local p = "probe=" .. ctx.run_id .. "-attempts"
		local t0 = drrun.now()
		local d = fails(health.http { url = HTTP .. "/status/503?" .. p, status = 200,
			attempts = 3, interval = "200ms" })
		local took = drrun.now() - t0
		has(d, "HTTP 503, want 200")
		assert(took >= 0.4 and took < 2, ("3 attempts 200ms apart took %.2fs"):format(took))
		eq(logged(p, 3), 3, "probes nginx saw")
		-- a passing check stops at once
		p = "probe=" .. ctx.run_id .. "-once"
		t0 = drrun.now()
		passes(health.http { url = HTTP .. "/healthz?" .. p, attempts = 5, interval = "1s" })
		assert(drrun.now() - t0 < 0.9, "waited after a pass")
		eq(logged(p, 1), 1, "probes of a passing check")
	end,
}

step "tcp" {
	after = "http-attempts",
	doc = "health.tcp: up, down, and many at once",
	run = function()
		local d = passes(health.tcp { host = "127.0.0.1", port = PORT })
		assert(d:match("^127%.0%.0%.1:" .. PORT .. ": connected in %d+ms$"), d)
		passes(health.tcp { host = "localhost", port = PORT, timeout = "2s" })
		d = fails(health.tcp { host = "127.0.0.1", port = CLOSED })
		assert(d:find("127.0.0.1:" .. CLOSED .. ": refused: ", 1, true) == 1, d)
		-- misuse raises
		assert(not pcall(health.tcp, { host = "127.0.0.1" }), "no port")
		assert(not pcall(health.tcp, { host = "127.0.0.1", port = 0 }), "port 0")
		assert(not pcall(health.tcp, { host = "127.0.0.1", port = 70000 }), "port 70000")
		-- 400 checks at once, up and down mixed; then HTTP still works on the
		-- same loop (connect-only sockets leave nothing behind)
		local items = {}
		for i = 1, 400 do items[i] = i end
		local res = drrun.parallel(items, function(i)
			local up = i % 4 ~= 0
			local ok = health.tcp { host = "127.0.0.1", port = up and PORT or CLOSED }
			eq(ok, up, "check " .. i)
			return ok
		end, { limit = 100 })
		eq(#res, 400, "results")
		passes(health.http { url = HTTP .. "/healthz" })
	end,
}

step "wait-until" {
	after = "tcp",
	doc = "wait_until: polls until true, or gives up at the timeout with the last detail",
	run = function()
		local n = 0
		local t0 = drrun.now()
		local ok, d = health.wait_until(function()
			n = n + 1
			return n >= 3, "poll " .. n
		end, { timeout = "5s", interval = "100ms" })
		local took = drrun.now() - t0
		eq(ok, true, "ok")
		eq(d, "poll 3", "detail of the passing poll")
		eq(n, 3, "polls")
		assert(took >= 0.18 and took < 1.5, ("3 polls 100ms apart took %.2fs"):format(took))

		-- with a real check inside
		ok, d = health.wait_until(function()
			return health.http { url = HTTP .. "/healthz" }
		end, { timeout = "2s", interval = "50ms" })
		eq(ok, true, "http inside")
		has(d, "HTTP 200")

		-- never true: false after about the timeout, with the last detail
		n = 0
		t0 = drrun.now()
		ok, d = health.wait_until(function()
			n = n + 1
			return health.http { url = HTTP .. "/status/503", status = 200 }
		end, { timeout = "600ms", interval = "100ms" })
		took = drrun.now() - t0
		eq(ok, false, "ok")
		eq(d, "not ready after 600ms: " .. HTTP .. "/status/503: HTTP 503, want 200", "detail")
		assert(n >= 4 and n <= 7, "polls: " .. n)
		assert(took >= 0.45 and took < 2, ("gave up after %.2fs"):format(took))
		-- a detail-less function, and seconds as numbers
		ok, d = health.wait_until(function() return false end, { timeout = 0.2, interval = 0.05 })
		eq(ok, false, "ok")
		eq(d, "not ready after 0.2s", "detail without one from fn")
	end,
}
