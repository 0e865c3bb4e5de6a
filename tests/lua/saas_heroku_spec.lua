-- saas_heroku_spec.lua: drrun.heroku against the Heroku fake of tests/fakes
-- (tests/fakes/README.md: app "myapp", releases v30..v41 with v41 current
-- and v40 failed, backups b001 a002 b004 a005 and a failed b006), as a
-- runbook; every step must complete.  tests/run.sh starts the fakes
-- (tests/servers.sh) and exports DRRUN_HEROKU_URL, DRRUN_HEROKU_DATA_URL,
-- DRRUN_TEST_HEROKU_TOKEN and DRRUN_TEST_FAKES_CONTROL; without them the
-- first step fails, and so the spec.
--   drrun run --state-dir STATE saas_heroku_spec.lua   (from tests/lua; exit 0 = pass)
-- The spec cannot declare HEROKU_API_KEY (run.sh does not set it), so it
-- passes token = ...; tests/integration/050-heroku-netlify-success covers
-- the declared secret.  Every step asserts on what the fake received, read
-- back through its control API (/_fake/...).  The steps form one chain: each
-- clears the fake's request log first.
local heroku = require "drrun.heroku"
local http = require "drrun.http"
local json = require "drrun.json"
local exec = require "drrun.exec"

runbook { name = "saas-heroku-spec" }

local TOKEN = os.getenv("DRRUN_TEST_HEROKU_TOKEN")
local APP = "myapp"
local H = heroku.with { token = TOKEN, retry = { attempts = 4, delay = "50ms", max_delay = "200ms" },
                        interval = "50ms" }

local T, F = require "lib.spec", require "lib.saas"
local eq, has, raises, journal = T.eq, T.has, T.raises, T.journal
local fails = T.service_fails("heroku")
local control, reset, config, clear, state, received = F.control, F.reset, F.config, F.clear, F.state, F.received

-- ---- the spec ---------------------------------------------------------------

-- the headers every Heroku request must carry
local function heroku_headers(req, what)
	eq(req.headers["accept"], "application/vnd.heroku+json; version=3", what .. ": Accept")
	eq(req.headers["authorization"], "Bearer " .. TOKEN, what .. ": Authorization")
	eq(req.headers["user-agent"], "drrun/" .. drrun.version, what .. ": User-Agent")
	if req.body ~= "" then
		eq(req.headers["content-type"], "application/json", what .. ": Content-Type")
	end
end

step "fakes" {
	doc = "the fakes of tests/servers.sh are there (a spec without them fails)",
	run = function()
		for _, name in ipairs { "DRRUN_HEROKU_URL", "DRRUN_HEROKU_DATA_URL", "DRRUN_TEST_HEROKU_TOKEN",
			"DRRUN_TEST_FAKES_CONTROL" } do
			if not os.getenv(name) then
				error(name .. " is not set: run the specs with tests/run.sh, which starts "
					.. "tests/servers.sh (with the SaaS fakes) and sources its env", 0)
			end
		end
		reset("heroku")
	end,
}

step "credential" {
	after = "fakes",
	doc = "without token = and without a declared HEROKU_API_KEY: a clear error, no request",
	run = function()
		clear("heroku")
		local msg = raises(heroku.releases, { app = APP })
		has(msg, "heroku: no credential: declare the secret in runbook { secrets = { \"HEROKU_API_KEY\" } }",
			"message")
		eq(#received("heroku"), 0, "requests")
		has(raises(heroku.releases, {}), "heroku.releases: app is required", "misuse")
		has(raises(heroku.releases, "myapp"), "expects a table of options", "misuse")
	end,
}

step "releases" {
	after = "credential",
	doc = "newest first through the Range header, the required headers, paging",
	run = function()
		clear("heroku")
		local list = assert(H.releases { app = APP })
		eq(#list, 10, "one page of 10")
		eq(list[1].version, 41, "newest first")
		eq(list[10].version, 32, "last of the page")
		local reqs = received("heroku", "GET", "/apps/myapp/releases")
		eq(#reqs, 1, "requests")
		heroku_headers(reqs[1], "releases")
		eq(reqs[1].headers["range"], "version ..; max=10, order=desc", "Range")
		local page, next_range = assert(H.releases { app = APP, limit = 3 })
		eq(#page, 3, "limit")
		eq(next_range, "version ]39..; max=3, order=desc", "Next-Range")
		page = assert(H.releases { app = APP, range = next_range })
		eq(page[1].version, 38, "the next page")
		local rel = assert(H.release { app = APP, version = "v39" })
		eq(rel.status, "succeeded", "v39")
		eq(assert(H.release { app = APP, id = rel.id }).version, 39, "by id")
		eq(assert(H.release { app = APP, version = 40 }).status, "failed", "by number")
		eq(received("heroku", "GET", "/apps/myapp/releases/39")[1] ~= nil, true, "the CLI strips the v")
		eq(assert(H.current_release { app = APP }).version, 41, "current")
		local err = fails("not_found", H.release { app = APP, version = "v999" })
		eq(err, "heroku: Couldn't find that release. (HTTP 404)", "the service's message")
		err = fails("not_found", H.releases { app = "nosuchapp" })
		eq(err, "heroku: Couldn't find that app. (HTTP 404)", "unknown app")
	end,
}

step "auth" {
	after = "releases",
	doc = "a wrong token: 401 with Heroku's message, token auth, not retried",
	run = function()
		clear("heroku")
		local err = fails("auth", heroku.releases { app = APP, token = "not-the-token" })
		eq(err, "heroku: Invalid credentials provided. (HTTP 401)", "message")
		eq(#received("heroku"), 1, "a 401 is not retried")
	end,
}

step "rollback" {
	after = "auth",
	doc = "last good release (skips the failed v40), rollback, roll forward again",
	run = function()
		clear("heroku")
		local good, cur = assert(H.last_good_release { app = APP })
		eq(good.version, 39, "last good")
		eq(cur.version, 41, "current")
		local rel, info = assert(H.rollback_to_last_good { app = APP })
		eq(rel.version, 42, "the new release")
		eq(rel.description, "Rollback to v39", "description")
		eq(info.from.version, 41, "from")
		eq(info.to.version, 39, "to")
		local posts = received("heroku", "POST", "/apps/myapp/releases")
		eq(#posts, 1, "one POST")
		heroku_headers(posts[1], "rollback")
		eq(json.decode(posts[1].body).release, good.id, "body: the release's uuid")
		eq(assert(H.current_release { app = APP }).version, 42, "current now")
		-- back to v41, by version; and wait for the release phase
		rel = assert(H.rollback { app = APP, release = "v41", wait = true })
		eq(rel.description, "Rollback to v41", "roll forward")
		eq(rel.status, "succeeded", "waited")
	end,
}

step "rollback-verify" {
	after = "rollback",
	doc = "a POST answered 503 is checked (releases read again) before it is sent again",
	run = function()
		clear("heroku")
		local before = assert(H.current_release { app = APP })
		local target = assert(H.release { app = APP, version = 39 })
		config("heroku", { fail_next = { status = 503, count = 1 } })
		-- the module's request with a verify, as heroku.rollback makes it
		local checked = 0
		local rel = assert(heroku._service:request({ token = TOKEN, retry = { attempts = 3, delay = "50ms" } }, {
			method = "POST", path = "/apps/myapp/releases", json = { release = target.id },
			idempotent = false,
			verify = function()
				checked = checked + 1
				local list = H.releases { app = APP, limit = 5 }
				for _, r in ipairs(list) do
					if r.version > before.version then return r end
				end
			end,
		}))
		eq(checked, 1, "verified once")
		eq(rel.version, before.version + 1, "one new release")
		local posts = received("heroku", "POST", "/apps/myapp/releases")
		eq(#posts, 2, "POSTs: the 503 and the retry")
		eq(posts[1].status, 503, "first")
		eq(posts[2].status, 201, "second")
		eq(assert(H.current_release { app = APP }).version, before.version + 1, "not two releases")
	end,
}

step "dynos-and-formation" {
	after = "rollback-verify",
	doc = "restart all, one dyno, one type; scale single and batch; maintenance",
	run = function()
		clear("heroku")
		local r = assert(H.restart { app = APP })
		eq(next(r), nil, "202 {}")
		assert(H.restart { app = APP, dyno = "web.1" })
		assert(H.restart { app = APP, type = "worker" })
		eq(#received("heroku", "DELETE", "/apps/myapp/dynos"), 1, "all")
		eq(#received("heroku", "DELETE", "/apps/myapp/dynos/web.1"), 1, "one dyno")
		eq(#received("heroku", "DELETE", "/apps/myapp/formations/worker"), 1, "one type (formations)")
		heroku_headers(received("heroku", "DELETE")[1], "restart")
		has(raises(H.restart, { app = APP, dyno = "web.1", type = "web" }), "dyno or type, not both")
		local f = assert(H.formation { app = APP })
		eq(#f, 2, "formation")
		f = assert(H.scale { app = APP, type = "web", quantity = 3, size = "standard-2X" })
		eq(f.quantity, 3, "scaled")
		eq(f.size, "standard-2X", "sized")
		local patch = received("heroku", "PATCH", "/apps/myapp/formation/web")
		eq(patch[1].body, '{"dyno_size":"standard-2X","quantity":3}', "single body")
		heroku_headers(patch[1], "scale")
		f = assert(H.scale { app = APP, updates = { { type = "web", quantity = 2 }, { type = "worker", quantity = 0 } } })
		eq(#f, 2, "batch result")
		eq(received("heroku", "PATCH", "/apps/myapp/formation")[1].body,
			'{"updates":[{"quantity":2,"type":"web"},{"quantity":0,"type":"worker"}]}', "batch body")
		has(raises(H.scale, { app = APP, type = "web", quantity = -1 }), "quantity must be a whole number")
		local err = fails("invalid", H.scale { app = APP, type = "web", size = "huge-9X" })
		eq(err, "heroku: No such dyno size as 'huge-9X'. (HTTP 422)", "the service's message")
		eq(assert(H.maintenance { app = APP, on = true }).maintenance, true, "maintenance on")
		eq(received("heroku", "PATCH", "/apps/myapp")[1].body, '{"maintenance":true}', "maintenance body")
		eq(assert(H.maintenance { app = APP, on = false }).maintenance, false, "maintenance off")
		has(raises(H.maintenance, { app = APP, on = "yes" }), "on must be true or false")
	end,
}

step "postgres" {
	after = "dynos-and-formation",
	doc = "backups and their names, latest, capture, restore (confirm, body, polling, recovery point)",
	run = function(ctx)
		local reported = {}
		local rctx = setmetatable({ recovery_point = function(t)
			reported[#reported + 1] = t
			ctx.recovery_point(t)
		end }, { __index = ctx })
		clear("heroku")
		local list = assert(H.pg_backups { app = APP })
		local names = {}
		for i, b in ipairs(list) do names[i] = b.name end
		eq(table.concat(names, " "), "b006 a005 b004 a002 b001", "names, newest first")
		eq(assert(H.pg_backup { app = APP }).name, "a005", "latest succeeded (b006 failed)")
		eq(assert(H.pg_backup { app = APP, backup = "b004" }).num, 4, "by name")
		fails("invalid", H.pg_backup { app = APP, backup = "b006" })
		fails("not_found", H.pg_backup { app = APP, backup = "b099" })
		has(raises(H.pg_restore, { app = APP, backup = "latest" }),
			"a restore overwrites the database of app 'myapp' and cannot be undone: pass confirm = \"myapp\"",
			"no confirm")
		has(raises(H.pg_restore, { app = APP, backup = "latest", confirm = "otherapp" }), "pass confirm")
		local b004 = assert(H.pg_backup { app = APP, backup = "b004" })
		clear("heroku")
		local t = assert(H.pg_restore { app = APP, backup = "b004", confirm = APP,
			extensions = { "PGCRYPTO", "hstore" }, ctx = rctx })
		eq(t.succeeded, true, "restored")
		eq(t.name:sub(1, 1), "r", "a restore's name")
		eq(t.backup, "b004", "which backup")
		local resolve = received("heroku", "POST", "/actions/addon-attachments/resolve")
		eq(#resolve, 1, "add-on resolved")
		eq(resolve[1].body, '{"addon_attachment":"DATABASE_URL","app":"myapp"}', "resolve body")
		local posts = received("heroku", "POST")
		local restore = posts[#posts]
		eq(restore.path, "/client/v11/databases/6f2e1c1a-9d3b-4a5e-8c7f-0a1b2c3d4e5f/restores", "path")
		eq(restore.body, json.encode({ backup_url = b004.to_url, extensions = { "hstore", "pgcrypto" } },
			{ sort_keys = true }), "restore body: the backup's URL, extensions sorted and lowercase")
		heroku_headers(restore, "restore")
		local polls = received("heroku", "GET", "/client/v11/apps/myapp/transfers/" .. t.uuid)
		assert(#polls >= 3, "polled until finished: " .. #polls)
		eq(state("heroku").database.restored_from, b004.to_url, "the fake restored b004")
		-- the recovery point: when b004's dump started ("2024-05-14 09:30:12 +0000")
		local y, mo, d, h, mi, sec = b004.started_at:match("^(%d+)-(%d+)-(%d+) (%d+):(%d+):(%d+) %+0000$")
		assert(y, "the Data API's time format: " .. tostring(b004.started_at))
		local want = require("drrun.backup.time").days(tonumber(y), tonumber(mo), tonumber(d)) * 86400
			+ h * 3600 + mi * 60 + sec
		eq(t.recovery_point, want, "recovery_point: b004's started_at")
		eq(#reported, 1, "reported to ctx")
		eq(reported[1], want, "the point reported")
		-- latest, and a URL
		t = assert(H.pg_restore { app = APP, backup = "latest", confirm = APP, ctx = rctx })
		eq(t.backup, "a005", "latest")
		local a005 = assert(H.pg_backup { app = APP, backup = "a005" })
		eq(#reported, 2, "reported again")
		eq(reported[2], t.recovery_point, "the latest backup's point reported")
		assert(t.recovery_point > want, "a005 is newer than b004: " .. a005.started_at)
		t = assert(H.pg_restore { app = APP, backup = "https://example.com/dump", confirm = APP,
			ctx = rctx })
		eq(t.succeeded, true, "from a URL")
		eq(t.recovery_point, nil, "a URL has no known recovery point")
		eq(#reported, 2, "and none is reported")
		has(raises(H.pg_restore, { app = APP, backup = "latest", confirm = APP, ctx = {} }),
			"heroku.pg_restore: ctx must be the step's ctx", "a ctx that is not one")
		-- capture, waiting
		t = assert(H.pg_capture { app = APP, wait = true })
		eq(t.succeeded, true, "captured")
		eq(t.name:sub(1, 1), "b", "a manual backup")
		eq(assert(H.pg_backup { app = APP }).name, t.name, "now the latest")
	end,
}

step "restore-fails" {
	after = "postgres",
	doc = "a restore that finishes with succeeded = false: nil, the last log line, token failed",
	run = function()
		config("heroku", { fail_next_restore = true })
		local reported = 0
		local err = fails("failed", H.pg_restore { app = APP, backup = "b004", confirm = APP,
			ctx = { recovery_point = function() reported = reported + 1 end } })
		eq(reported, 0, "a failed restore reports no recovery point")
		has(err, "heroku: restore of b004 into postgresql-curved-12345 failed: "
			.. "pg_restore: error: could not execute query", "message")
	end,
}

step "throttling" {
	after = "restore-fails",
	doc = "429 with Retry-After honoured (throttled token); 503 retried; other 4xx not",
	run = function()
		clear("heroku")
		config("heroku", { burst = 2, burst_window = 1, retry_after = 1 })
		local t0 = drrun.now()
		for i = 1, 4 do assert(H.releases { app = APP, limit = 1 }, "call " .. i) end
		local took = drrun.now() - t0
		config("heroku", { burst = json.null })
		local got = received("heroku", "GET", "/apps/myapp/releases")
		local n429 = 0
		for _, r in ipairs(got) do if r.status == 429 then n429 = n429 + 1 end end
		assert(n429 >= 1, "the burst limit answered 429")
		eq(#got, 4 + n429, "each 429 retried once")
		assert(took >= 0.9, "waited for Retry-After: " .. took)
		-- out of patience: the service's own message
		config("heroku", { burst = 1, burst_window = 5, retry_after = 4 })
		assert(H.releases { app = APP, limit = 1 })
		local err = fails("throttled", H.releases { app = APP, limit = 1,
			retry = { attempts = 3, max_wait = "1s" } })
		has(err, "heroku: Your account reached the API rate limit", "message")
		has(err, "(HTTP 429)", "status")
		config("heroku", { burst = json.null })
		-- 503 twice, then the answer
		clear("heroku")
		config("heroku", { fail_next = { status = 503, count = 2 } })
		assert(H.formation { app = APP })
		got = received("heroku")
		eq(#got, 3, "503, 503, 200")
		eq(got[1].status, 503, "first")
		eq(got[3].status, 200, "third")
		-- 503 until attempts run out: the service's message
		config("heroku", { fail_next = { status = 503, count = 5 } })
		err = fails("unavailable", H.releases { app = APP, limit = 1, retry = { attempts = 2, delay = "10ms" } })
		eq(err, "heroku: injected failure (fail_next) (HTTP 503)", "503 message")
		config("heroku", { fail_next = json.null })
		-- a 422 once: not retried
		clear("heroku")
		config("heroku", { fail_next = { status = 422, count = 1 } })
		fails("invalid", H.releases { app = APP, limit = 1 })
		eq(#received("heroku"), 1, "a 422 is not retried")
	end,
}

step "endpoint" {
	after = "throttling",
	doc = "base_url wins over DRRUN_HEROKU_URL",
	run = function()
		local closed = os.getenv("DRRUN_TEST_CLOSED_PORT") or "1"
		local err = fails("refused", H.releases { app = APP, base_url = "http://127.0.0.1:" .. closed,
			retry = 1 })
		has(err, "heroku: refused: ", "message")
		fails("refused", H.pg_backups { app = APP, data_base_url = "http://127.0.0.1:" .. closed, retry = 1 })
	end,
}

step "journal-clean" {
	after = "endpoint",
	doc = "the token never reaches the journal: registered for redaction when passed as token =",
	run = function(ctx)
		ctx.log("logging the token on purpose: %s", TOKEN)
		local j = journal(ctx)
		if j:find(TOKEN, 1, true) then error("the token is in the journal", 0) end
		has(j, "logging the token on purpose: ***", "redacted")
		has(j, "heroku: POST " .. os.getenv("DRRUN_HEROKU_URL") .. "/apps/myapp/releases: HTTP 201",
			"mutating requests are logged")
	end,
}
