-- http_spec.lua: drrun.http against a real nginx, run as a runbook; every
-- step must complete.  tests/run.sh starts the servers (tests/servers.sh) and
-- exports DRRUN_TEST_*; without them the first step fails, and so the spec.
--   tests/servers.sh start DIR && . DIR/env
--   drrun run --state-dir STATE http_spec.lua   (from tests/lua; exit 0 = pass)
-- The steps form one chain: a step's timings are not disturbed by another's
-- requests queueing on the same connections.
--
-- Not covered here: --dry-run (a POST is then only described in the journal,
-- never sent).  run.sh runs every spec without --dry-run, so that belongs in
-- an integration case (tests/integration/NNN-*/ with `args run ... --dry-run`).
local http = require "drrun.http"
local exec = require "drrun.exec"

runbook { name = "http-spec" }

local HTTP = os.getenv("DRRUN_TEST_HTTP")
local HTTPS = os.getenv("DRRUN_TEST_HTTPS")
local WRONG = os.getenv("DRRUN_TEST_HTTPS_WRONG")
local CA = os.getenv("DRRUN_TEST_CA")
local CLOSED = os.getenv("DRRUN_TEST_CLOSED_PORT")

local T = require "lib.spec"
local eq, ok, fails, raises, journal = T.eq, T.ok, T.fails, T.raises, T.journal

step "servers" {
	doc = "the servers of tests/servers.sh are there (a spec without them fails)",
	run = function()
		for _, name in ipairs { "DRRUN_TEST_HTTP", "DRRUN_TEST_HTTPS", "DRRUN_TEST_HTTPS_WRONG",
			"DRRUN_TEST_CA", "DRRUN_TEST_CLOSED_PORT" } do
			if not os.getenv(name) then
				error(name .. " is not set: run the specs with tests/run.sh, which starts "
					.. "tests/servers.sh and sources its env", 0)
			end
		end
		ok(http.get(HTTP .. "/healthz"))
	end,
}

step "get" {
	after = "servers",
	doc = "status, body, lowercased headers, time fields, effective URL",
	run = function()
		local r = ok(http.get(HTTP .. "/healthz"))
		eq(r.status, 200, "status")
		eq(r.body, "ok\n", "body")
		eq(r.url, HTTP .. "/healthz", "url")
		eq(r.headers["content-type"], "text/plain", "content-type")
		eq(r.headers["content-length"], "3", "content-length")
		assert(r.headers.server:match("^nginx"), r.headers.server)
		for k, v in pairs(r.headers) do
			eq(k, k:lower(), "header name")
			eq(type(v), "string", "header " .. k)
			assert(not v:find("[\r\n]"), "line ending left in header " .. k)
		end
		local t = r.time
		for _, k in ipairs { "connect", "tls", "first_byte", "total" } do
			eq(type(t[k]), "number", "time." .. k)
			assert(t[k] >= 0 and t[k] < 5, k .. " = " .. t[k])
		end
		eq(t.tls, 0, "time.tls over plain HTTP")
		assert(t.connect <= t.first_byte and t.first_byte <= t.total,
			("times out of order: %g %g %g"):format(t.connect, t.first_byte, t.total))

		r = ok(http.get(HTTP .. "/"))
		eq(r.body, "hello static\n", "index")
		r = ok(http.get(HTTP .. "/big"))
		eq(#r.body, 65536, "64 KiB body")
		r = ok(http.head(HTTP .. "/big"))
		eq(r.status, 200, "HEAD status")
		eq(r.body, "", "HEAD body")
		eq(r.headers["content-length"], "65536", "HEAD content-length")
		-- the generic form, and a lowercase method
		r = ok(http.request { url = HTTP .. "/healthz", method = "get" })
		eq(r.body, "ok\n", "request{}")
	end,
}

step "statuses-are-results" {
	after = "get",
	doc = "a 4xx or 5xx is a response, not a failure",
	run = function()
		for _, s in ipairs { 200, 201, 204, 400, 401, 403, 404, 418, 429, 500, 502, 503, 504 } do
			local r, err, tok = http.get(HTTP .. "/status/" .. s)
			assert(r, ("%d: %s"):format(s, tostring(err)))
			eq(err, nil, "err for " .. s)
			eq(tok, nil, "token for " .. s)
			eq(r.status, s, "status")
			eq(r.body, s == 204 and "" or ("status %d\n"):format(s), "body of " .. s)
		end
		local r = ok(http.get(HTTP .. "/no-such-file"))
		eq(r.status, 404, "missing file")
		-- nginx's 444 closes the connection without a response
		fails("closed", http.get(HTTP .. "/status/444"))
	end,
}

step "post-body" {
	after = "statuses-are-results",
	doc = "the request body and method reach nginx (/post reflects them)",
	run = function()
		local r = ok(http.post(HTTP .. "/post", { body = "a=1&b=2",
			headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } }))
		eq(r.status, 200, "status")
		eq(r.body, "a=1&b=2", "reflected body")
		eq(r.headers["x-method"], "POST", "method")
		eq(r.headers["x-content-type"], "application/x-www-form-urlencoded", "content-type")
		eq(r.headers["x-content-length"], "7", "content-length")
		-- binary, with NULs
		local bin = "\0\1\2\255 bin\0ary\r\n"
		r = ok(http.post(HTTP .. "/post", { body = bin }))
		eq(r.body, bin, "binary body")
		eq(r.headers["x-content-length"], tostring(#bin), "binary length")
		-- 100 KiB, no Expect: 100-continue round trip
		local big = string.rep("0123456789abcdef", 6400)
		r = ok(http.put(HTTP .. "/post", { body = big }))
		eq(r.headers["x-method"], "PUT", "method")
		eq(#r.body, #big, "100 KiB body length")
		assert(r.body == big, "100 KiB body differs")
		for _, m in ipairs { "patch", "delete" } do
			r = ok(http[m](HTTP .. "/post", { body = m }))
			eq(r.headers["x-method"], m:upper(), "method")
			eq(r.body, m, m .. " body")
		end
		-- no body at all, and an empty one
		r = ok(http.post(HTTP .. "/post"))
		eq(r.status, 200, "POST without body")
		eq(r.headers["x-method"], "POST", "method")
		eq(r.body, "", "empty reflection")
		r = ok(http.post(HTTP .. "/post", { body = "" }))
		eq(r.headers["x-content-length"], "0", "empty body length")
	end,
}

step "post-json" {
	after = "post-body",
	doc = "json = ... is encoded, sent with Content-Type application/json",
	run = function()
		local json = require "drrun.json"
		local doc = { text = "failover done", n = 3, list = { 1, 2, 3 }, nested = { ok = true } }
		local r = ok(http.post(HTTP .. "/post", { json = doc }))
		eq(r.headers["x-content-type"], "application/json", "content-type")
		local back = assert(json.decode(r.body))
		eq(back.text, "failover done", "text")
		eq(back.n, 3, "n")
		eq(#back.list, 3, "list")
		eq(back.nested.ok, true, "nested.ok")
		-- the same through r.json()
		eq(r.json().list[2], 2, "r.json()")
		-- a Content-Type of the caller's (any case) is kept
		r = ok(http.put(HTTP .. "/post", { json = { a = 1 },
			headers = { ["content-TYPE"] = "application/merge-patch+json" } }))
		eq(r.headers["x-content-type"], "application/merge-patch+json", "caller's content-type")
		eq(r.body, '{"a":1}', "body")
	end,
}

step "headers" {
	after = "post-json",
	doc = "request headers reach nginx; repeated response headers are joined",
	run = function()
		local r = ok(http.get(HTTP .. "/echo-headers", { headers = { ["X-Test"] = "drrun-42" } }))
		eq(r.body, "drrun-42", "reflected X-Test")
		eq(r.headers["x-seen-ua"], "drrun/" .. drrun.version, "user agent")
		eq(r.headers["x-multi"], "one, two", "repeated header")
		r = ok(http.get(HTTP .. "/echo-headers", { headers = { ["x-test"] = 7 } }))
		eq(r.body, "7", "a number as a header value")
		r = ok(http.get(HTTP .. "/echo-headers"))
		eq(r.body, "", "no X-Test")
		raises(http.get, HTTP .. "/echo-headers", { headers = "X-Test: 1" })
	end,
}

step "refused" {
	after = "headers",
	doc = "nothing listening: nil, \"refused: ...\", \"refused\"",
	run = function()
		local r, err, tok = http.get("http://127.0.0.1:" .. CLOSED .. "/healthz")
		eq(r, nil, "response")
		eq(tok, "refused", "token")
		assert(err:match("^refused: ."), err)
		-- a name that cannot resolve (.invalid is reserved, RFC 6761)
		fails("dns", http.get("http://drrun-test.invalid/", { timeout = "10s" }))
	end,
}

step "timeout" {
	after = "refused",
	doc = "headers that come after the timeout: token timeout, on time",
	run = function()
		local t0 = drrun.now()
		local err = fails("timeout", http.get(HTTP .. "/slowhdr", { timeout = "1s" }))
		local took = drrun.now() - t0
		assert(took >= 0.9 and took < 2.5, ("took %.2fs: %s"):format(took, err))
		-- a body that trickles past the timeout (seconds as a number)
		t0 = drrun.now()
		fails("timeout", http.get(HTTP .. "/slow", { timeout = 0.5 }))
		took = drrun.now() - t0
		assert(took >= 0.4 and took < 2.5, ("slow body: took %.2fs"):format(took))
		-- a bad duration is a mistake in the runbook: it raises
		assert(raises(http.get, HTTP .. "/healthz", { timeout = "soon" }):find("timeout"))
		raises(http.get, HTTP .. "/healthz", { timeout = true })
	end,
}

step "redirects" {
	after = "timeout",
	doc = "302 is returned as is unless follow = true",
	run = function()
		local r = ok(http.get(HTTP .. "/moved"))
		eq(r.status, 302, "default: not followed")
		eq(r.headers.location, HTTP .. "/healthz", "location")
		r = ok(http.get(HTTP .. "/moved", { follow = false }))
		eq(r.status, 302, "follow = false")
		r = ok(http.get(HTTP .. "/moved", { follow = true }))
		eq(r.status, 200, "follow = true")
		eq(r.body, "ok\n", "body after the redirect")
		eq(r.url, HTTP .. "/healthz", "effective url")
		eq(r.headers.location, nil, "headers are the last response's")
		r = ok(http.get(HTTP .. "/status/301", { follow = true }))
		eq(r.status, 200, "301 followed")
	end,
}

step "max-body" {
	after = "redirects",
	doc = "a response larger than max_body: token too_large",
	run = function()
		-- known up front (Content-Length)
		fails("too_large", http.get(HTTP .. "/big", { max_body = 65535 }))
		local r = ok(http.get(HTTP .. "/big", { max_body = 65536 }))
		eq(#r.body, 65536, "exactly max_body")
		-- found out while reading (chunked, no Content-Length)
		local err = fails("too_large", http.post(HTTP .. "/post",
			{ body = string.rep("x", 5000), max_body = 1000 }))
		assert(err:find("1000"), err)
		r = ok(http.post(HTTP .. "/post", { body = string.rep("x", 5000), max_body = 5000 }))
		eq(#r.body, 5000, "chunked, exactly max_body")
		-- HEAD reads no body, whatever its Content-Length says
		r = ok(http.head(HTTP .. "/big", { max_body = 1000 }))
		eq(r.headers["content-length"], "65536", "HEAD over max_body")
	end,
}

step "https" {
	after = "max-body",
	doc = "verified TLS with the test CA; no CA or the wrong name: token tls",
	run = function()
		local r = ok(http.get(HTTPS .. "/healthz", { tls = { ca = CA } }))
		eq(r.status, 200, "status")
		eq(r.body, "ok\n", "body")
		assert(r.time.tls > 0 and r.time.tls <= r.time.total, "time.tls " .. r.time.tls)
		-- the certificate names localhost too
		local port = HTTPS:match(":(%d+)$")
		r = ok(http.get("https://localhost:" .. port .. "/healthz", { tls = { ca = CA } }))
		eq(r.body, "ok\n", "via localhost")
		-- explicit verify = true is the default
		ok(http.get(HTTPS .. "/healthz", { tls = { ca = CA, verify = true } }))
		-- the system's CAs do not know the test CA
		fails("tls", http.get(HTTPS .. "/healthz"))
		fails("tls", http.get(HTTPS .. "/healthz", { tls = {} }))
		-- a CA that signed the certificate, but the certificate names wrong.example
		local err = fails("tls", http.get(WRONG .. "/healthz", { tls = { ca = CA } }))
		assert(err:find("127.0.0.1", 1, true), err)
		-- a CA file that is not there
		fails("tls", http.get(HTTPS .. "/healthz", { tls = { ca = CA .. ".missing" } }))
	end,
}

step "tls-verify-off" {
	after = "https",
	doc = "verify = false connects to anything, and says so in the journal",
	run = function(ctx)
		local r = ok(http.get(WRONG .. "/healthz", { tls = { verify = false } }))
		eq(r.body, "ok\n", "wrong name, unverified")
		r = ok(http.get(HTTPS .. "/healthz", { tls = { verify = false } }))
		eq(r.body, "ok\n", "unknown CA, unverified")
		-- two requests, two warnings, in this step's log
		local n = 0
		for line in journal(ctx):gmatch("[^\n]+") do
			if line:find('"type":"step_log"', 1, true) and line:find('"step":"tls-verify-off"', 1, true)
				and line:find("TLS verification is OFF", 1, true) then
				n = n + 1
			end
		end
		eq(n, 2, "warnings in the journal")
	end,
}

step "json" {
	after = "tls-verify-off",
	doc = "r.json() decodes the body",
	run = function()
		local r = ok(http.get(HTTP .. "/json"))
		eq(r.headers["content-type"], "application/json", "content-type")
		local doc = assert(r.json())
		eq(doc.service, "orders", "service")
		eq(doc.db.status, "up", "db.status")
		eq(doc.db.lag_ms, 12, "db.lag_ms")
		eq(math.type(doc.db.lag_ms), "integer", "an integer stays one")
		eq(#doc.db.replicas, 2, "replicas")
		eq(doc.db.replicas[2].name, "r2", "replicas[2].name")
		eq(doc.db.replicas[2].ok, false, "replicas[2].ok")
		eq(doc.tags[1], "a", "tags[1]")
		-- not JSON: nil, err from the decoder, not a raise
		r = ok(http.get(HTTP .. "/healthz"))
		local v, err = r.json()
		eq(v, nil, "decoded non-JSON")
		assert(type(err) == "string" and err ~= "", "no error for non-JSON")
	end,
}

step "parallel-200" {
	after = "json",
	doc = "200 requests at once from one step, each answer to its own request",
	run = function()
		local items = {}
		for i = 1, 200 do items[i] = i end
		local t0 = drrun.now()
		local res = drrun.parallel(items, function(i)
			if i % 2 == 0 then
				local r = ok(http.get(HTTP .. "/healthz?i=" .. i))
				eq(r.body, "ok\n", "body " .. i)
				return r.status
			end
			local r = ok(http.get(HTTP .. "/echo-headers?i=" .. i, { headers = { ["X-Test"] = "n" .. i } }))
			eq(r.body, "n" .. i, "reflected header of request " .. i)
			return r.status
		end, { limit = 200 })
		eq(#res, 200, "results")
		for i = 1, 200 do eq(res[i], 200, "status of " .. i) end
		-- and over TLS, 50 at once
		res = drrun.parallel({ table.unpack(items, 1, 50) }, function(i)
			return ok(http.get(HTTPS .. "/healthz?i=" .. i, { tls = { ca = CA } })).status
		end, { limit = 50 })
		for i = 1, 50 do eq(res[i], 200, "TLS status of " .. i) end
		local took = drrun.now() - t0
		assert(took < 20, ("250 requests took %.1fs"):format(took))
	end,
}

step "cancel-in-flight" {
	after = "parallel-200",
	doc = "requests cancelled mid-flight (a parallel sibling fails) leave the loop usable",
	run = function()
		local items = {}
		for i = 1, 40 do items[i] = i end
		local t0 = drrun.now()
		local good, err = pcall(drrun.parallel, items, function(i)
			if i == 1 then
				drrun.sleep("200ms")
				error("sibling failed", 0)
			end
			-- headers after 3 s, or a body over 8 s: cancelled long before
			return http.get(HTTP .. (i % 2 == 0 and "/slowhdr" or "/slow") .. "?cancel=" .. i)
		end, { limit = 40 })
		local took = drrun.now() - t0
		eq(good, false, "parallel with a failing item")
		assert(tostring(err):find("sibling failed", 1, true), tostring(err))
		assert(took < 1.5, ("the cancelled requests ran on: %.2fs"):format(took))
		-- new requests are not held up behind the cancelled ones
		t0 = drrun.now()
		local res = drrun.parallel(items, function(i)
			return ok(http.get(HTTP .. "/healthz?after-cancel=" .. i)).status
		end, { limit = 40 })
		for i = 1, 40 do eq(res[i], 200, "status after the cancel, " .. i) end
		assert(drrun.now() - t0 < 1, "requests after the cancel were slow")
	end,
}

step "misuse-raises" {
	after = "cancel-in-flight",
	doc = "mistakes in the call raise; they are not nil, err",
	run = function(ctx)
		raises(http.request, "http://x/")
		assert(raises(http.request, {}):find("url"))
		raises(http.get, HTTP .. "/healthz", { max_body = "big" })
		eq(ctx.dry_run, false, "the specs run for real: the POSTs above were sent")
	end,
}
