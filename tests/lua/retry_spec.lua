-- retry_spec.lua: drrun.retry (the policy every HTTP module uses), as a
-- runbook; every step must complete.  The pure parts need nothing; the live
-- parts talk to the nginx of tests/servers.sh (DRRUN_TEST_*, exported by
-- tests/run.sh), and fail, with the spec, when it is not there.
--   drrun run --state-dir STATE retry_spec.lua   (from tests/lua; exit 0 = pass)
-- Attempts are counted in nginx's access log: each live request carries a
-- query string of its own.
local retry = require "drrun.retry"
local http = require "drrun.http"
local exec = require "drrun.exec"

runbook { name = "retry-spec" }

local HTTP = os.getenv("DRRUN_TEST_HTTP")
local LOG = os.getenv("DRRUN_TEST_HTTP_LOG")
local CLOSED = os.getenv("DRRUN_TEST_CLOSED_PORT")

local T = require "lib.spec"
local eq, near, raises, probe = T.eq, T.near, T.raises, T.probe
local logged = T.access_log(LOG)

-- a fake request: returns the responses (or {nil, err, tok}) in turn
local function script(list)
	local calls = 0
	return function()
		calls = calls + 1
		local v = list[math.min(calls, #list)]
		if v.status then return v end
		return nil, v[1], v[2]
	end, function() return calls end
end

step "retry-after-values" {
	doc = "Retry-After as delay-seconds",
	run = function()
		eq(retry.retry_after("5"), 5, "\"5\"")
		eq(retry.retry_after("0"), 0, "\"0\"")
		eq(retry.retry_after("120"), 120, "\"120\"")
		eq(retry.retry_after(7), 7, "a number")
		eq(retry.retry_after(nil), nil, "absent")
		eq(retry.retry_after("-1"), nil, "negative")
		eq(retry.retry_after("soon"), nil, "junk")
		eq(retry.retry_after(""), nil, "empty")
	end,
}

step "retry-after-dates" {
	doc = "Retry-After as an HTTP-date, against a given now",
	run = function()
		-- with now = 0 the wait is the date's own epoch second
		for date, epoch in pairs {
			["Sun, 06 Nov 1994 08:49:37 GMT"] = 784111777, -- RFC 9110's example
			["Thu, 01 Jan 1970 00:00:01 GMT"] = 1,
			["Fri, 31 Dec 1999 23:59:59 GMT"] = 946684799,
			["Tue, 29 Feb 2000 12:00:00 GMT"] = 951825600, -- leap day, century leap year
			["Thu, 29 Feb 2024 00:00:00 GMT"] = 1709164800,
			["Tue, 19 Jan 2038 03:14:08 GMT"] = 2147483648, -- past 32 bits
			["Mon, 01 Mar 2100 00:00:00 GMT"] = 4107542400, -- 2100 is not a leap year
		} do
			eq(retry.retry_after(date, 0), epoch, date)
		end
		local now = 784111777 - 30
		eq(retry.retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), 30, "30 s ahead")
		eq(retry.retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now + 90), 0, "in the past")
		-- the two obsolete forms a recipient must also accept (RFC 9110 5.6.7)
		eq(retry.retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), 30, "rfc850-date")
		eq(retry.retry_after("Sun Nov  6 08:49:37 1994", now), 30, "asctime-date")
		-- a two-digit year more than 50 years ahead is in the past century
		eq(retry.retry_after("Thursday, 01-Jan-70 00:00:10 GMT", 0), 10, "rfc850 1970")
		eq(retry.retry_after("Tuesday, 01-Jan-30 00:00:00 GMT", now), 1893456000 - now, "rfc850 2030")
		eq(retry.retry_after("Sunday, 01-Jan-50 00:00:00 GMT", now), 0, "rfc850 1950, not 2050")
		eq(retry.retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now + 0.5), 29.5, "a fractional now")
		-- without now: against the clock
		local soon = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 100)
		local w = retry.retry_after(soon)
		assert(w >= 98 and w <= 100, "against the clock: " .. tostring(w))
		for _, bad in ipairs {
			"Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 UTC",
			"Sun, 06 Nov 1994 08:49:37 +0000", "06 Nov 1994 08:49:37 GMT", "1994-11-06T08:49:37Z",
		} do
			eq(retry.retry_after(bad, now), nil, bad)
		end
	end,
}

step "policy" {
	doc = "defaults, shorthands, and mistakes that raise",
	run = function()
		local p = retry.policy()
		eq(p.attempts, 3, "attempts")
		eq(p.delay, 0.5, "delay")
		eq(p.backoff, 2, "backoff")
		eq(p.max_delay, 30, "max_delay")
		eq(p.max_wait, 300, "max_wait")
		eq(p.jitter, true, "jitter")
		eq(retry.policy(5).attempts, 5, "a number is attempts")
		p = retry.policy { attempts = 4, delay = "250ms", max_delay = "2s", max_wait = "1m", jitter = false }
		eq(p.delay, 0.25, "delay from a duration")
		eq(p.max_delay, 2, "max_delay")
		eq(p.max_wait, 60, "max_wait")
		eq(p.jitter, false, "jitter off")
		eq(retry.policy { delay = 0.1 }.delay, 0.1, "seconds as a number")
		raises(retry.policy, { delay = "soon" })
		raises(retry.policy, { attempts = 0 })
		raises(retry.policy, { attempts = 2.5 })
		raises(retry.policy, { attempts = "three" })
	end,
}

step "backoff-bounds" {
	doc = "delay * backoff^(n-1), capped; equal jitter stays in [d/2, d]",
	run = function()
		local p = retry.policy { delay = "100ms", backoff = 2, max_delay = "1s", jitter = false }
		local want = { 0.1, 0.2, 0.4, 0.8, 1, 1, 1 }
		for n, d in ipairs(want) do near(retry.backoff(p, n), d, "no jitter, n = " .. n) end
		p = retry.policy { delay = 3, backoff = 1, jitter = false }
		for n = 1, 4 do near(retry.backoff(p, n), 3, "constant, n = " .. n) end

		p = retry.policy { delay = "100ms", backoff = 2, max_delay = "1s" } -- jitter by default
		for n, d in ipairs(want) do
			local lo, hi = math.huge, -math.huge
			for _ = 1, 2000 do
				local w = retry.backoff(p, n)
				assert(w >= d / 2 - 1e-12 and w <= d + 1e-12,
					("jitter out of bounds: n = %d, %g not in [%g, %g]"):format(n, w, d / 2, d))
				lo, hi = math.min(lo, w), math.max(hi, w)
			end
			-- and it does spread over the range
			assert(lo < d * 0.55 and hi > d * 0.95,
				("jitter does not spread: n = %d, [%g, %g] of [%g, %g]"):format(n, lo, hi, d / 2, d))
		end
	end,
}

step "http-policy" {
	doc = "retry.http over a scripted request: what is retried, how often, the result",
	run = function()
		local fast = { attempts = 4, delay = "1ms", jitter = false }
		-- 503, 503, then 200: three calls, the 200 comes back
		local fn, calls = script { { status = 503, headers = {} }, { status = 503, headers = {} },
			{ status = 200, headers = {} } }
		eq(retry.http(fn, fast).status, 200, "final status")
		eq(calls(), 3, "calls")
		-- always 500: attempts calls, the last response comes back
		fn, calls = script { { status = 500, headers = {} } }
		eq(retry.http(fn, fast).status, 500, "exhausted")
		eq(calls(), 4, "calls when exhausted")
		-- 404 is not retried, nor is a status outside p.statuses
		fn, calls = script { { status = 404, headers = {} } }
		eq(retry.http(fn, fast).status, 404, "404")
		eq(calls(), 1, "404 calls")
		fn, calls = script { { status = 404, headers = {} } }
		retry.http(fn, { attempts = 3, delay = "1ms", statuses = { [404] = true } })
		eq(calls(), 3, "own statuses")
		-- failures: timeout is retried, tls is not
		fn, calls = script { { "timeout: slow", "timeout" } }
		local r, err, tok = retry.http(fn, fast)
		eq(r, nil, "response")
		eq(err, "timeout: slow", "err")
		eq(tok, "timeout", "tok")
		eq(calls(), 4, "timeout calls")
		fn, calls = script { { "tls: bad cert", "tls" } }
		r, err, tok = retry.http(fn, fast)
		eq(tok, "tls", "tls tok")
		eq(calls(), 1, "tls calls")
		-- Retry-After is honoured, and a wait above max_wait is not waited for
		fn, calls = script { { status = 429, headers = { ["retry-after"] = "0" } }, { status = 204, headers = {} } }
		eq(retry.http(fn, fast).status, 204, "after Retry-After: 0")
		eq(calls(), 2, "Retry-After: 0 calls")
		fn, calls = script { { status = 503, headers = { ["retry-after"] = "3600" } } }
		local t0 = drrun.now()
		eq(retry.http(fn, { attempts = 3, max_wait = "1m" }).status, 503, "too long a wait")
		eq(calls(), 1, "calls when the server asks too much")
		assert(drrun.now() - t0 < 0.5, "waited anyway")
		-- a number is attempts
		fn, calls = script { { status = 502, headers = {} } }
		retry.http(fn, 2)
		eq(calls(), 2, "retry = 2")
	end,
}

step "call" {
	doc = "retry.call: until a value, only for the tokens asked",
	run = function()
		local n = 0
		local v = retry.call(function()
			n = n + 1
			if n < 3 then return nil, "timeout: x", "timeout" end
			return "done"
		end, { attempts = 5, delay = "1ms" })
		eq(v, "done", "value")
		eq(n, 3, "calls")
		n = 0
		local _, err, tok = retry.call(function()
			n = n + 1
			return nil, "auth: denied", "auth"
		end, { attempts = 5, delay = "1ms" }, { timeout = true })
		eq(n, 1, "a token not asked for is not retried")
		eq(err, "auth: denied", "err")
		eq(tok, "auth", "tok")
		n = 0
		retry.call(function() n = n + 1 return nil, "x", "closed" end, { attempts = 3, delay = "1ms" })
		eq(n, 3, "all tokens by default")
	end,
}

step "servers" {
	doc = "the servers of tests/servers.sh are there (a spec without them fails)",
	run = function()
		for _, name in ipairs { "DRRUN_TEST_HTTP", "DRRUN_TEST_HTTP_LOG", "DRRUN_TEST_CLOSED_PORT" } do
			if not os.getenv(name) then
				error(name .. " is not set: run the specs with tests/run.sh, which starts "
					.. "tests/servers.sh and sources its env", 0)
			end
		end
		assert(http.get(HTTP .. "/healthz"))
	end,
}

step "live-retry-after" {
	after = "servers",
	doc = "429 with Retry-After: 1, three attempts: two waits of 1 s, then the 429",
	run = function(ctx)
		local p = probe(ctx, "ra")
		local t0 = drrun.now()
		local r, err = http.get(HTTP .. "/retry-after?" .. p, { retry = { attempts = 3 } })
		local took = drrun.now() - t0
		assert(r, err)
		eq(r.status, 429, "status")
		eq(r.headers["retry-after"], "1", "Retry-After")
		assert(took >= 2 and took < 4, ("took %.2fs, want 2 s of Retry-After"):format(took))
		eq(logged(p, 3), 3, "attempts nginx saw")
	end,
}

step "live-503" {
	after = "live-retry-after",
	doc = "503 without Retry-After, delay 100ms: three attempts with backoff, then the 503",
	run = function(ctx)
		local p = probe(ctx, "503")
		local t0 = drrun.now()
		local r, err = http.get(HTTP .. "/status/503?" .. p, { retry = { attempts = 3, delay = "100ms" } })
		local took = drrun.now() - t0
		assert(r, err)
		eq(r.status, 503, "status")
		-- jittered waits: [50, 100] ms then [100, 200] ms
		assert(took >= 0.15 and took < 1.5, ("took %.2fs"):format(took))
		eq(logged(p, 3), 3, "attempts nginx saw")
		-- a 200 is not retried, a 404 neither
		p = probe(ctx, "200")
		eq(assert(http.get(HTTP .. "/healthz?" .. p, { retry = 3 })).status, 200, "200")
		eq(logged(p, 1), 1, "attempts for a 200")
		p = probe(ctx, "404")
		eq(assert(http.get(HTTP .. "/status/404?" .. p, { retry = { attempts = 3, delay = "10ms" } })).status,
			404, "404")
		eq(logged(p, 1), 1, "attempts for a 404")
		-- POST is retried the same way (the policy is the caller's choice)
		p = probe(ctx, "post")
		eq(assert(http.post(HTTP .. "/status/502?" .. p, { body = "x",
			retry = { attempts = 2, delay = "10ms" } })).status, 502, "POST 502")
		eq(logged(p, 2), 2, "attempts for a POST")
	end,
}

step "live-max-wait" {
	after = "live-503",
	doc = "Retry-After above max_wait: the 429 comes back at once",
	run = function(ctx)
		local p = probe(ctx, "mw")
		local t0 = drrun.now()
		local r = assert(http.get(HTTP .. "/retry-after?" .. p, { retry = { attempts = 3, max_wait = "500ms" } }))
		eq(r.status, 429, "status")
		assert(drrun.now() - t0 < 0.9, "waited although Retry-After > max_wait")
		eq(logged(p, 1), 1, "attempts nginx saw")
	end,
}

step "live-refused" {
	after = "live-max-wait",
	doc = "connection refused is retried, then returned as nil, err, \"refused\"",
	run = function()
		local t0 = drrun.now()
		local r, err, tok = http.get("http://127.0.0.1:" .. CLOSED .. "/",
			{ retry = { attempts = 3, delay = "100ms" } })
		local took = drrun.now() - t0
		eq(r, nil, "response")
		eq(tok, "refused", "token")
		assert(err:match("^refused: "), err)
		assert(took >= 0.15 and took < 1.5, ("took %.2fs for 3 attempts"):format(took))
	end,
}
