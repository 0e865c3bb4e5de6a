-- saas_api_spec.lua: drrun.api, the helper every SaaS module (heroku,
-- netlify, statuspage, pagerduty, slack) is built on, as a runbook; every
-- step must complete.  The pure parts need nothing; the live parts talk to
-- the nginx of tests/servers.sh (DRRUN_TEST_*, exported by tests/run.sh) and
-- fail, with the spec, when it is not there.  Each service's own spec
-- (saas_<service>_spec.lua) runs against its fake.
--   drrun run --state-dir STATE saas_api_spec.lua   (from tests/lua; exit 0 = pass)
-- Requests are counted in nginx's access log: each carries a query string
-- of its own.  Not covered here: --dry-run (run.sh runs no spec with it);
-- tests/integration/052-heroku-netlify-dry-run covers it.
local api = require "drrun.api"
local json = require "drrun.json"
local exec = require "drrun.exec"

runbook { name = "saas-api-spec" }

local HTTP = os.getenv("DRRUN_TEST_HTTP")
local LOG = os.getenv("DRRUN_TEST_HTTP_LOG")
local CLOSED = os.getenv("DRRUN_TEST_CLOSED_PORT")
local TOKEN = "spec-token-5f1e0c2a9b"

local T = require "lib.spec"
local eq, has, raises, journal, probe = T.eq, T.has, T.raises, T.journal, T.probe
local logged = T.access_log(LOG)

-- a test service on nginx
local FAST = { attempts = 3, delay = "20ms", jitter = false }
local function service(extra)
	local def = {
		name = "test", secret = "DRRUN_SAAS_SPEC_NOT_DECLARED",
		bases = { api = { option = "base_url", env = "DRRUN_TEST_HTTP",
		                  default = "http://127.0.0.1:1" } },
		auth = function(t) return { Authorization = "Bearer " .. t } end,
	}
	for k, v in pairs(extra or {}) do def[k] = v end
	return api.service(def)
end

step "servers" {
	doc = "the nginx of tests/servers.sh is there (a spec without it fails)",
	run = function()
		for _, name in ipairs { "DRRUN_TEST_HTTP", "DRRUN_TEST_HTTP_LOG", "DRRUN_TEST_CLOSED_PORT" } do
			if not os.getenv(name) then
				error(name .. " is not set: run the specs with tests/run.sh, which starts "
					.. "tests/servers.sh and sources its env", 0)
			end
		end
	end,
}

step "template" {
	doc = "{name} and {a.b} filled in; a missing value raises; {{ }} are literal braces",
	run = function()
		eq(api.template("We're down due to {cause}. {next_update}",
			{ cause = "a bad release", next_update = "More at 10:00." }),
			"We're down due to a bad release. More at 10:00.", "two names")
		eq(api.template("v{rel.version} of {rel.app} ({n})", { rel = { version = 42, app = "shop" }, n = 3 }),
			"v42 of shop (3)", "dotted paths, numbers")
		eq(api.template("{list.2}", { list = { "a", "b" } }), "b", "array index")
		eq(api.template("{{literal}} and {x}", { x = 1 }), "{literal} and 1", "escaped braces")
		eq(api.template("{ not a name } {\"json\": 1}", {}), "{ not a name } {\"json\": 1}", "left alone")
		eq(api.template("no names", nil), "no names", "no vars")
		has(raises(api.template, "down: {cause}", {}), "template: {cause} has no value", "missing")
		has(raises(api.template, "{x}", { x = json.null }), "{x} has no value", "null")
		has(raises(api.template, 42), "must be a string", "not a string")
	end,
}

step "url-helpers" {
	doc = "path segments and query strings are percent-encoded; nil and false left out",
	run = function()
		eq(api.seg("myapp"), "myapp", "plain")
		eq(api.seg("a b/c?d"), "a%20b%2Fc%3Fd", "reserved characters")
		eq(api.seg("v1.2_x~y-z"), "v1.2_x~y-z", "unreserved kept")
		eq(api.query(nil), "", "no query")
		eq(api.query({}), "", "empty query")
		eq(api.query({ b = "x y", a = 1, c = false, d = nil }), "?a=1&b=x%20y", "sorted, encoded")
		eq(api.status_token(401), "auth", "401")
		eq(api.status_token(403), "auth", "403")
		eq(api.status_token(404), "not_found", "404")
		eq(api.status_token(422), "invalid", "422")
		eq(api.status_token(400), "invalid", "400")
		eq(api.status_token(409), "conflict", "409")
		eq(api.status_token(429), "throttled", "429")
		eq(api.status_token(420), "throttled", "420 (Statuspage)")
		eq(api.status_token(503), "unavailable", "503")
		eq(api.status_token(418), "http", "418")
		eq(#api.hash("x"), 12, "hash length")
		eq(api.hash("x", 64), require("drrun.crypto").sha256_hex("x"), "hash is SHA-256")
	end,
}

step "describe" {
	doc = "what a dry run logs: method, URL, sorted headers with credentials as ***, the JSON body",
	run = function()
		local svc = service()
		eq(svc:describe("POST", "https://api.example/x", {
			Authorization = "Bearer " .. TOKEN, ["User-Agent"] = "drrun/0.1.0",
			["X-Api-Key"] = "k", Accept = "a/b", ["Content-Type"] = "application/json",
		}, '{"a":1}'),
			"test: would send: POST https://api.example/x | Accept: a/b | Authorization: *** | "
			.. "Content-Type: application/json | User-Agent: drrun/0.1.0 | X-Api-Key: *** | body: {\"a\":1}",
			"described")
		local slackish = service { show_url = function(u) return u:match("^https?://[^/]+") .. "/***" end }
		eq(slackish:describe("POST", "https://hooks.example/services/T/B/secret", {}, nil),
			"test: would send: POST https://hooks.example/***", "a secret URL")
	end,
}

step "base-url" {
	doc = "the option wins, then the variable, then the default; a bad URL raises",
	run = function(ctx)
		local svc = service()
		-- the variable (here DRRUN_TEST_HTTP) beats the default (port 1)
		local p = probe(ctx, "env")
		local r, err = svc:request({ token = TOKEN }, { path = "/json", query = { p = p } })
		assert(r, err)
		eq(r.service, "orders", "JSON decoded")
		eq(logged(p, 1), 1, "requests")
		-- the option beats the variable: nothing listens there
		local _, err2, tok = svc:request({ token = TOKEN, retry = 1,
			base_url = "http://127.0.0.1:" .. CLOSED .. "/" }, { path = "/json" })
		eq(tok, "refused", "token")
		has(err2, "test: refused: ", "message")
		has(raises(svc.request, svc, { token = TOKEN, base_url = "ftp://x" }, { path = "/" }),
			"base_url must be an http:// or https:// URL", "bad base_url")
		eq(svc:base({ base_url = HTTP .. "/api/v1///" }), HTTP .. "/api/v1", "trailing slashes")
	end,
}

step "credential" {
	doc = "no token option and an undeclared secret: a clear error; a token option is redacted",
	run = function(ctx)
		local svc = service()
		local msg = raises(svc.request, svc, {}, { path = "/json" })
		has(msg, "test: no credential: declare the secret in runbook { secrets = { "
			.. "\"DRRUN_SAAS_SPEC_NOT_DECLARED\" } }", "no token")
		has(msg, "or pass token = ...", "the option")
		-- a variable that is set but not declared is not used, and the error says so
		local home = service { secret = "HOME" }
		has(raises(home.request, home, {}, { path = "/json" }),
			"(HOME is set in the environment, but the runbook does not declare it)", "undeclared")
		has(raises(svc.request, svc, { token = "" }, { path = "/json" }),
			"token must be a non-empty string", "empty token")
		-- the option is registered for redaction: logging it shows ***
		svc:request({ token = TOKEN }, { path = "/json" })
		ctx.log("the token is %s", TOKEN)
	end,
}

step "headers" {
	doc = "User-Agent drrun/<version>, the service's headers and its auth scheme",
	run = function()
		local seen
		local svc = service {
			headers = { ["X-Test"] = "from-service" },
			decode_body = function(r) seen = r return r end,
		}
		local r = assert(svc:request({ token = TOKEN }, { path = "/echo-headers" }))
		eq(r.headers["x-seen-ua"], "drrun/" .. drrun.version, "User-Agent")
		eq(r.body, "from-service", "service header")
		eq(api.user_agent, "drrun/" .. drrun.version, "api.user_agent")
		-- a JSON body gets its Content-Type; nginx reflects both
		local echo = service { decode_body = function(x) return x end }
		local e = assert(echo:request({ token = TOKEN, retry = 1 }, { method = "POST", path = "/post",
			json = { b = 2, a = json.empty_array } }))
		eq(e.body, '{"a":[],"b":2}', "body: JSON with sorted keys")
		eq(e.headers["x-content-type"], "application/json", "Content-Type")
		eq(seen.status, 200, "decode_body saw the response")
	end,
}

step "answers" {
	doc = "2xx decoded; not JSON is invalid; an error status surfaces the body and a token",
	run = function(ctx)
		local svc = service()
		local r, err, tok = svc:request({ token = TOKEN }, { path = "/healthz" })
		eq(r, nil, "not JSON")
		has(err, "test: the answer is not JSON (HTTP 200): json: ", "message")
		eq(tok, "invalid", "token")
		local p = probe(ctx, "404")
		r, err, tok = svc:request({ token = TOKEN, retry = FAST }, { path = "/status/404", query = { p = p } })
		eq(r, nil, "404")
		eq(err, "test: status 404 (HTTP 404)", "the server's text")
		eq(tok, "not_found", "token")
		eq(logged(p, 1), 1, "a 404 is not retried")
		p = probe(ctx, "401")
		r, err, tok = svc:request({ token = TOKEN, retry = FAST }, { path = "/status/401", query = { p = p } })
		eq(tok, "auth", "401 token")
		eq(logged(p, 1), 1, "a 401 is not retried")
		local custom = service { message = function(doc) return "custom " .. tostring(doc.service) end }
		-- a message function sees the decoded body of an error (here a 200 is
		-- no error, so check failure() directly)
		local _, m, t = custom:failure({ status = 422, body = '{"service":"x","message":"m"}', headers = {} })
		eq(m, "test: custom x (HTTP 422)", "message function")
		eq(t, "invalid", "token")
		_, m = svc:failure({ status = 500, body = '{"message":"boom","id":"x"}', headers = {} })
		eq(m, "test: boom (HTTP 500)", "JSON message")
		_, m = svc:failure({ status = 400, body = '{"error":["a","b"]}', headers = {} })
		eq(m, "test: a; b (HTTP 400)", "an error list")
		_, m = svc:failure({ status = 502, body = "", headers = {} })
		eq(m, "test: no message (HTTP 502)", "no body")
	end,
}

step "retries" {
	doc = "429 with Retry-After and 5xx are retried with backoff; idempotent timeouts too",
	run = function(ctx)
		local svc = service()
		-- 503 every time: all attempts, then the error
		local p = probe(ctx, "503")
		local r, err, tok = svc:request({ token = TOKEN, retry = FAST },
			{ path = "/status/503", query = { p = p } })
		eq(r, nil, "503")
		eq(tok, "unavailable", "token")
		eq(err, "test: status 503 (HTTP 503)", "message")
		eq(logged(p, 3), 3, "503 attempts")
		-- 429 with Retry-After: 1 is waited for (not the 20ms backoff)
		p = probe(ctx, "429")
		local t0 = drrun.now()
		r, err, tok = svc:request({ token = TOKEN, retry = { attempts = 2, delay = "20ms" } },
			{ path = "/retry-after", query = { p = p } })
		local took = drrun.now() - t0
		eq(tok, "throttled", "429 token")
		eq(err, "test: slow down (HTTP 429)", "429 message")
		assert(took >= 0.95 and took < 3, "Retry-After honoured: " .. took)
		eq(logged(p, 2), 2, "429 attempts")
		-- a Retry-After over max_wait is not waited for
		p = probe(ctx, "maxwait")
		t0 = drrun.now()
		r, err, tok = svc:request({ token = TOKEN, retry = { attempts = 3, max_wait = "500ms" } },
			{ path = "/retry-after", query = { p = p } })
		eq(tok, "throttled", "max_wait token")
		assert(drrun.now() - t0 < 0.5, "did not wait")
		eq(logged(p, 1), 1, "max_wait attempts")
		-- a GET that times out is retried
		p = probe(ctx, "slow-get")
		r, err, tok = svc:request({ token = TOKEN, retry = { attempts = 2, delay = "10ms" },
			timeout = "300ms" }, { path = "/slowhdr", query = { p = p } })
		eq(tok, "timeout", "timeout token")
		has(err, "test: timeout: ", "timeout message")
		eq(logged(p, 2, 5), 2, "GET timeout attempts")
	end,
}

step "non-idempotent" {
	doc = "a POST: 5xx retried (after verify, if any); a timeout only when verify says it did nothing",
	run = function(ctx)
		local svc = service()
		-- 5xx without verify: retried, as the contracts allow
		local p = probe(ctx, "post-503")
		local r, err, tok = svc:request({ token = TOKEN, retry = FAST },
			{ method = "POST", path = "/status/503", query = { p = p }, json = {} })
		eq(tok, "unavailable", "token")
		eq(logged(p, 3), 3, "POST 503 attempts")
		-- 5xx and verify finds it done: no second POST, verify's value is the result
		p = probe(ctx, "post-verified")
		local checks = 0
		r, err = svc:request({ token = TOKEN, retry = FAST }, { method = "POST", path = "/status/503",
			query = { p = p }, json = {}, verify = function() checks = checks + 1 return { done = 1 } end })
		eq(type(r) == "table" and r.done, 1, "verified result: " .. tostring(err))
		eq(checks, 1, "verify calls")
		eq(logged(p, 1), 1, "POST sent once")
		-- 5xx and verify finds nothing: retried
		p = probe(ctx, "post-unverified")
		checks = 0
		r, err, tok = svc:request({ token = TOKEN, retry = FAST }, { method = "POST", path = "/status/503",
			query = { p = p }, json = {}, verify = function() checks = checks + 1 end })
		eq(tok, "unavailable", "token")
		eq(checks, 2, "verify before each retry")
		eq(logged(p, 3), 3, "POST attempts")
		-- a timeout without verify: not retried, and the error says why
		p = probe(ctx, "post-timeout")
		r, err, tok = svc:request({ token = TOKEN, retry = FAST, timeout = "300ms" },
			{ method = "POST", path = "/slowhdr", query = { p = p }, json = {} })
		eq(tok, "timeout", "token")
		has(err, "(not retried: the request may have been processed)", "message")
		eq(logged(p, 1, 5), 1, "POST timeout attempts")
		-- a timeout with verify saying done
		p = probe(ctx, "post-timeout-verified")
		r = svc:request({ token = TOKEN, retry = FAST, timeout = "300ms" }, { method = "POST",
			path = "/slowhdr", query = { p = p }, json = {}, verify = function() return { v = 2 } end })
		eq(r and r.v, 2, "verified after a timeout")
		eq(logged(p, 1, 5), 1, "sent once")
		-- refused: nothing was sent, so even a POST is retried
		local t0 = drrun.now()
		r, err, tok = svc:request({ token = TOKEN, base_url = "http://127.0.0.1:" .. CLOSED,
			retry = { attempts = 3, delay = "100ms", jitter = false } }, { method = "POST", path = "/x", json = {} })
		eq(tok, "refused", "refused")
		assert(drrun.now() - t0 >= 0.29, "two waits before giving up")
		-- idempotent = true: a timeout is retried
		p = probe(ctx, "put-timeout")
		r, err, tok = svc:request({ token = TOKEN, retry = { attempts = 2, delay = "10ms" }, timeout = "300ms" },
			{ method = "PATCH", path = "/slowhdr", query = { p = p }, json = {}, idempotent = true })
		eq(logged(p, 2, 5), 2, "idempotent PATCH attempts")
	end,
}

step "bind-and-poll" {
	doc = "module.with{} puts defaults under every call; api.poll waits, stops and times out",
	run = function()
		local seen = {}
		local mod = { _plain = { plain = true } }
		function mod.verb(o) seen.verb = o return o end
		function mod.plain(o) seen.plain = o return o end
		local b = api.bind(mod, { token = "d", base_url = "u" })
		eq(b.verb { app = "x", token = "mine" }.token, "mine", "a call's option wins")
		eq(seen.verb.base_url, "u", "default")
		eq(seen.verb.app, "x", "own option")
		eq(b.plain("s"), "s", "_plain functions are not wrapped")
		local n = 0
		eq(api.poll(function() n = n + 1 return n >= 3 and "done" or false end,
			{ interval = "10ms", timeout = "5s" }), "done", "poll result")
		eq(n, 3, "polls")
		local v, err, tok = api.poll(function() return nil, "it broke", "failed" end, { interval = "10ms" })
		eq(v, nil, "failure")
		eq(err, "it broke", "failure message")
		eq(tok, "failed", "failure token")
		v, err, tok = api.poll(function() return false end, { interval = "20ms", timeout = "50ms", what = "x" })
		eq(tok, "timeout", "deadline token")
		has(err, "x not finished after", "deadline message")
	end,
}

step "journal-clean" {
	after = { "credential", "headers", "answers", "retries", "non-idempotent", "base-url" },
	doc = "the token passed as an option never reached the journal",
	run = function(ctx)
		local j = journal(ctx)
		if j:find(TOKEN, 1, true) then error("the token is in the journal", 0) end
		has(j, "the token is ***", "redacted log line")
		has(j, "retrying POST " .. HTTP .. "/status/503", "retries are logged")
	end,
}
