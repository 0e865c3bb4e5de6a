-- saas_netlify_spec.lua: drrun.netlify against the Netlify fake of
-- tests/fakes (tests/fakes/README.md: one site, ten deploys; the live one
-- 6650e2a4... "Bad release", an errored build after it, and 664f8a11...
-- "Known good release" the newest ready production deploy before it), as a
-- runbook; every step must complete.  tests/run.sh starts the fakes
-- (tests/servers.sh) and exports DRRUN_NETLIFY_URL, DRRUN_TEST_NETLIFY_TOKEN
-- and DRRUN_TEST_FAKES_CONTROL; without them the first step fails, and so
-- the spec.
--   drrun run --state-dir STATE saas_netlify_spec.lua   (from tests/lua; exit 0 = pass)
-- The spec passes token = ... (run.sh does not set NETLIFY_AUTH_TOKEN);
-- tests/integration/050-heroku-netlify-success covers the declared secret.
-- Every step asserts on what the fake received (its control API, /_fake/...).
local netlify = require "drrun.netlify"
local http = require "drrun.http"
local json = require "drrun.json"
local exec = require "drrun.exec"

runbook { name = "saas-netlify-spec" }

local TOKEN = os.getenv("DRRUN_TEST_NETLIFY_TOKEN")
local SITE = "3970e0fe-8564-4903-9a55-c5f8de49fb8b"
local LIVE = "6650e2a4c2f1a10008b3c001"   -- "Bad release: breaks checkout"
local ERRORED = "6650d1f0c2f1a10008b3bff2" -- "WIP build", state error
local GOOD = "664f8a11b7e2c500083a9d7e"   -- "Known good release"
local N = netlify.with { token = TOKEN, retry = { attempts = 4, delay = "50ms", max_delay = "200ms" },
                         interval = "50ms" }

local T, F = require "lib.spec", require "lib.saas"
local eq, has, raises, journal = T.eq, T.has, T.raises, T.journal
local fails = T.service_fails("netlify")
local control, reset, config, clear, state, received = F.control, F.reset, F.config, F.clear, F.state, F.received

-- ---- the spec ---------------------------------------------------------------

local function netlify_headers(req, what)
	eq(req.headers["authorization"], "Bearer " .. TOKEN, what .. ": Authorization")
	eq(req.headers["user-agent"], "drrun/" .. drrun.version, what .. ": User-Agent")
end

step "fakes" {
	doc = "the fakes of tests/servers.sh are there (a spec without them fails)",
	run = function()
		for _, name in ipairs { "DRRUN_NETLIFY_URL", "DRRUN_TEST_NETLIFY_TOKEN", "DRRUN_TEST_FAKES_CONTROL" } do
			if not os.getenv(name) then
				error(name .. " is not set: run the specs with tests/run.sh, which starts "
					.. "tests/servers.sh (with the SaaS fakes) and sources its env", 0)
			end
		end
		reset("netlify")
	end,
}

step "credential" {
	after = "fakes",
	doc = "without token = and without a declared NETLIFY_AUTH_TOKEN: a clear error, no request",
	run = function()
		clear("netlify")
		has(raises(netlify.site, { site = SITE }),
			"netlify: no credential: declare the secret in runbook { secrets = { \"NETLIFY_AUTH_TOKEN\" } }",
			"message")
		eq(#received("netlify"), 0, "requests")
		has(raises(netlify.rollback, {}), "netlify.rollback: site is required", "misuse")
	end,
}

step "reads" {
	after = "credential",
	doc = "the site and its live deploy; deploys with their query; one deploy",
	run = function()
		clear("netlify")
		local site = assert(N.site { site = SITE })
		eq(site.published_deploy.id, LIVE, "live deploy")
		eq(assert(N.site { site = "drrun-demo.netlify.app" }).id, SITE, "by domain")
		local list = assert(N.deploys { site = SITE })
		eq(#list, 10, "deploys")
		eq(list[1].id, LIVE, "newest first")
		local req = received("netlify", "GET", "/api/v1/sites/" .. SITE .. "/deploys")[1]
		eq(req.raw_query, "per_page=100", "query")
		netlify_headers(req, "deploys")
		eq(#assert(N.deploys { site = SITE, production = true }), 8, "production only")
		eq(#assert(N.deploys { site = SITE, state = "error" }), 2, "by state")
		eq(assert(N.deploy { deploy = GOOD }).title, "Known good release", "one deploy")
		eq(assert(N.deploy { site = SITE, deploy = GOOD }).id, GOOD, "one deploy of the site")
		local err = fails("not_found", N.deploy { deploy = "000000000000000000000000" })
		eq(err, "netlify: Not Found (HTTP 404)", "the service's message")
		local good, live = assert(N.last_good_deploy { site = SITE })
		eq(good.id, GOOD, "last good (skips the errored build and the deploy preview)")
		eq(live, LIVE, "live")
	end,
}

step "auth" {
	after = "reads",
	doc = "a wrong token: 401 with Netlify's message, token auth, not retried",
	run = function()
		clear("netlify")
		local err = fails("auth", netlify.site { site = SITE, token = "not-the-token" })
		eq(err, "netlify: Access Denied (HTTP 401)", "message")
		eq(#received("netlify"), 1, "not retried")
	end,
}

step "rollback" {
	after = "auth",
	doc = "publish the last good deploy and lock it; then the previous one again, unlocked",
	run = function()
		clear("netlify")
		local d, previous = assert(N.rollback { site = SITE })
		eq(d.id, GOOD, "restored")
		eq(d.locked, true, "locked")
		eq(previous, LIVE, "what was live")
		eq(d.previous, LIVE, "previous in the result")
		local restore = received("netlify", "POST", "/api/v1/sites/" .. SITE .. "/deploys/" .. GOOD .. "/restore")
		eq(#restore, 1, "one restore")
		netlify_headers(restore[1], "restore")
		eq(#received("netlify", "POST", "/api/v1/deploys/" .. GOOD .. "/lock"), 1, "locked")
		local s = state("netlify")
		eq(s.site.published_deploy.id, GOOD, "the fake publishes it")
		eq(s.site.published_deploy.locked, true, "and it is locked")
		-- undo: unlock it, publish the previous one again
		assert(N.unlock { deploy = GOOD })
		d = assert(N.restore { site = SITE, deploy = LIVE })
		eq(d.id, LIVE, "restored back")
		s = state("netlify")
		eq(s.site.published_deploy.id, LIVE, "live again")
		-- a deploy that is not ready cannot be published: the service's message
		local err = fails("invalid", N.restore { site = SITE, deploy = ERRORED })
		eq(err, "netlify: Deploy " .. ERRORED .. " is in state error; only ready deploys can be published (HTTP 422)",
			"422 message")
		-- lock = false: published, not locked
		clear("netlify")
		d = assert(N.rollback { site = SITE, lock = false })
		eq(d.id, GOOD, "restored")
		eq(#received("netlify", "POST", "/api/v1/deploys/" .. GOOD .. "/lock"), 0, "no lock")
		assert(N.restore { site = SITE, deploy = LIVE })
	end,
}

step "build" {
	after = "rollback",
	doc = "a build with its query, polled until ready; a failed build; a 503 on the POST",
	run = function()
		clear("netlify")
		local d = assert(N.build { site = SITE, title = "from drrun", clear_cache = true })
		eq(d.state, "ready", "built")
		local post = received("netlify", "POST", "/api/v1/sites/" .. SITE .. "/builds")
		eq(#post, 1, "one build")
		eq(post[1].raw_query, "clear_cache=true&title=from%20drrun", "query")
		assert(#received("netlify", "GET", "/api/v1/deploys/" .. d.id) >= 3, "polled")
		local b = assert(N.build { site = SITE, wait = false })
		assert(b.deploy_id, "without wait: the build")
		config("netlify", { fail_next_build = true })
		local err, _ = fails("failed", N.build { site = SITE })
		has(err, "ended error: Build script returned non-zero exit code: 2", "failed build")
		-- 503 on the POST: retried (the contract's rule for 5xx); one build made
		clear("netlify")
		local before = #state("netlify").builds
		config("netlify", { fail_next = { status = 503, count = 1 } })
		assert(N.build { site = SITE, wait = false })
		post = received("netlify", "POST", "/api/v1/sites/" .. SITE .. "/builds")
		eq(#post, 2, "503 then 200")
		eq(#state("netlify").builds, before + 1, "one build")
	end,
}

step "throttling" {
	after = "build",
	doc = "429 with Retry-After / X-RateLimit-Reset honoured; 503 retried; other 4xx not",
	run = function()
		clear("netlify")
		config("netlify", { burst = 2, burst_window = 1, retry_after = 1 })
		local t0 = drrun.now()
		for i = 1, 4 do assert(N.site { site = SITE }, "call " .. i) end
		local took = drrun.now() - t0
		config("netlify", { burst = json.null })
		local got = received("netlify")
		local n429 = 0
		for _, r in ipairs(got) do if r.status == 429 then n429 = n429 + 1 end end
		assert(n429 >= 1, "the burst limit answered 429")
		eq(#got, 4 + n429, "each 429 retried")
		assert(took >= 0.9, "waited: " .. took)
		-- a 429 without Retry-After: X-RateLimit-Reset
		local svc = netlify._service
		local w = svc:asked_wait { status = 429, headers = { ["x-ratelimit-reset"] = tostring(os.time() + 2) } }
		assert(w >= 1 and w <= 2, "reset header: " .. tostring(w))
		clear("netlify")
		config("netlify", { fail_next = { status = 502, count = 2 } })
		assert(N.site { site = SITE })
		eq(#received("netlify"), 3, "502, 502, 200")
		config("netlify", { fail_next = { status = 400, count = 1, body = { code = 400, message = "Bad filter" } } })
		clear("netlify")
		eq(fails("invalid", N.deploys { site = SITE }), "netlify: Bad filter (HTTP 400)", "400 message")
		eq(#received("netlify"), 1, "a 400 is not retried")
	end,
}

step "journal-clean" {
	after = "throttling",
	doc = "the token never reaches the journal",
	run = function(ctx)
		ctx.log("logging the token on purpose: %s", TOKEN)
		local j = journal(ctx)
		if j:find(TOKEN, 1, true) then error("the token is in the journal", 0) end
		has(j, "logging the token on purpose: ***", "redacted")
	end,
}
