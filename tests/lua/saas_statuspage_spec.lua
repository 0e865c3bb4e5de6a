-- saas_statuspage_spec.lua: drrun.statuspage against the Statuspage fake of
-- tests/fakes (tests/fakes/README.md: page kctbh9vrtdwd, components API,
-- Website, Checkout, Database (in the group Backend), one unresolved
-- incident of someone else's), as a runbook; every step must complete.
-- tests/run.sh starts the fakes (tests/servers.sh) and exports
-- DRRUN_STATUSPAGE_URL, DRRUN_TEST_STATUSPAGE_KEY and DRRUN_TEST_FAKES_CONTROL;
-- without them the first step fails, and so the spec.
--   drrun run --state-dir STATE saas_statuspage_spec.lua   (from tests/lua; exit 0 = pass)
-- The spec passes token = ... (run.sh does not set STATUSPAGE_API_KEY);
-- tests/integration/050-heroku-netlify-success covers the declared secret.
-- Every step asserts on what the fake received (its control API, /_fake/...).
local statuspage = require "drrun.statuspage"
local http = require "drrun.http"
local json = require "drrun.json"
local exec = require "drrun.exec"

runbook { name = "saas-statuspage-spec" }

local KEY = os.getenv("DRRUN_TEST_STATUSPAGE_KEY")
local PAGE = "kctbh9vrtdwd"
local CHECKOUT, API = "b13yz5g2cw10", "8kbf7d35c070"
local SP = statuspage.with { token = KEY, page = PAGE,
                             retry = { attempts = 4, delay = "50ms", max_delay = "200ms" } }
local MSG = "We're currently experiencing downtime due to {cause}. {next_update}"

local T, F = require "lib.spec", require "lib.saas"
local eq, has, raises, journal = T.eq, T.has, T.raises, T.journal
local fails = T.service_fails("statuspage")
local control, reset, config, clear, state, received = F.control, F.reset, F.config, F.clear, F.state, F.received

-- ---- the spec ---------------------------------------------------------------

local function sp_headers(req, what)
	eq(req.headers["authorization"], "OAuth " .. KEY, what .. ": Authorization")
	eq(req.headers["user-agent"], "drrun/" .. drrun.version, what .. ": User-Agent")
	eq(req.raw_query, "", what .. ": no api_key in the query")
	if req.body ~= "" then eq(req.headers["content-type"], "application/json", what .. ": Content-Type") end
end

local function component_status(id)
	for _, c in ipairs(state("statuspage").components) do
		if c.id == id then return c.status end
	end
end

local function find_incident(id)
	for _, i in ipairs(state("statuspage").incidents) do
		if i.id == id then return i end
	end
end

step "fakes" {
	doc = "the fakes of tests/servers.sh are there (a spec without them fails)",
	run = function()
		for _, name in ipairs { "DRRUN_STATUSPAGE_URL", "DRRUN_TEST_STATUSPAGE_KEY", "DRRUN_TEST_FAKES_CONTROL" } do
			if not os.getenv(name) then
				error(name .. " is not set: run the specs with tests/run.sh, which starts "
					.. "tests/servers.sh (with the SaaS fakes) and sources its env", 0)
			end
		end
		reset("statuspage")
	end,
}

step "credential-and-misuse" {
	after = "fakes",
	doc = "no key: a clear error and no request; bad statuses and lengths raise",
	run = function()
		clear("statuspage")
		has(raises(statuspage.unresolved, { page = PAGE }),
			"statuspage: no credential: declare the secret in runbook { secrets = { \"STATUSPAGE_API_KEY\" } }",
			"message")
		has(raises(SP.incident, { name = "x", status = "on_fire" }), "unknown status on_fire", "status")
		has(raises(SP.incident, { name = "x", components = { [CHECKOUT] = "down" } }),
			"component " .. CHECKOUT .. ": unknown status down", "component status")
		has(raises(SP.incident, { name = ("x"):rep(256) }), "at most 255 characters", "name")
		has(raises(SP.incident, { name = "x", body = ("x"):rep(25001) }), "at most 25000 characters", "body")
		has(raises(SP.incident, { name = "x", impact_override = "huge" }), "impact_override", "impact")
		has(raises(SP.component, { id = API, status = "meh" }), "unknown status meh", "component")
		eq(#received("statuspage"), 0, "no request")
	end,
}

step "template" {
	after = "fakes",
	doc = "statuspage.template fills in the variables",
	run = function()
		eq(statuspage.template(MSG, { cause = "a database failure", next_update = "Next update at 10:00 UTC." }),
			"We're currently experiencing downtime due to a database failure. Next update at 10:00 UTC.",
			"filled in")
		has(raises(statuspage.template, MSG, { cause = "x" }), "{next_update} has no value", "missing")
	end,
}

step "incident" {
	after = { "credential-and-misuse", "template" },
	doc = "open, update, resolve: the bodies the fake received, the components' statuses",
	run = function(ctx)
		clear("statuspage")
		local body = statuspage.template(MSG, { cause = "a database failure", next_update = "More soon." })
		local inc = assert(SP.incident { name = "Checkout is down", status = "identified", body = body,
			impact_override = "major", components = { [CHECKOUT] = "major_outage", [API] = "partial_outage" },
			ctx = ctx })
		assert(inc.id and inc.id ~= "", "an id")
		eq(inc.status, "identified", "status")
		eq(inc.page, PAGE, "page")
		eq(inc.components[CHECKOUT], "major_outage", "components kept")
		has(inc.shortlink, "https://stspg.io/", "shortlink")
		local unresolved = received("statuspage", "GET", "/v1/pages/" .. PAGE .. "/incidents/unresolved")
		eq(#unresolved, 1, "looked for an open one first")
		local post = received("statuspage", "POST", "/v1/pages/" .. PAGE .. "/incidents")
		eq(#post, 1, "one POST")
		sp_headers(post[1], "create")
		local sent = json.decode(post[1].body).incident
		eq(sent.name, "Checkout is down", "name")
		eq(sent.body, body, "body")
		eq(sent.status, "identified", "status")
		eq(sent.impact_override, "major", "impact")
		eq(sent.deliver_notifications, true, "notifications")
		eq(json.encode(sent.component_ids), '["8kbf7d35c070","b13yz5g2cw10"]', "component_ids, sorted")
		eq(sent.components[CHECKOUT], "major_outage", "components")
		eq(sent.metadata.drrun.run_id, ctx.run_id, "metadata: the run")
		eq(sent.metadata.drrun.key, inc.key, "metadata: the key")
		has(inc.key, "drrun:" .. ctx.run_id .. ":", "key from ctx")
		eq(component_status(CHECKOUT), "major_outage", "the fake's component")
		-- the same incident again (a retried step): reused, not a second POST
		clear("statuspage")
		local again = assert(SP.incident { name = "Checkout is down", body = body, ctx = ctx })
		eq(again.id, inc.id, "reused")
		eq(#received("statuspage", "POST"), 0, "no second incident")
		-- update through the handle
		clear("statuspage")
		assert(inc:update { status = "monitoring", body = "A fix is live; we are monitoring." })
		eq(inc.status, "monitoring", "handle updated")
		local patch = received("statuspage", "PATCH", "/v1/pages/" .. PAGE .. "/incidents/" .. inc.id)
		eq(#patch, 1, "one PATCH")
		sp_headers(patch[1], "update")
		eq(patch[1].body, '{"incident":{"body":"A fix is live; we are monitoring.",'
			.. '"deliver_notifications":true,"status":"monitoring"}}', "update body")
		-- resolve: the components it set go back to operational
		clear("statuspage")
		assert(inc:resolve { body = "Resolved." })
		eq(inc.status, "resolved", "resolved")
		sent = json.decode(received("statuspage", "PATCH")[1].body).incident
		eq(sent.status, "resolved", "status sent")
		eq(sent.components[CHECKOUT], "operational", "checkout back")
		eq(sent.components[API], "operational", "api back")
		eq(component_status(CHECKOUT), "operational", "the fake's component")
		local fake = find_incident(inc.id)
		eq(fake.status, "resolved", "the fake's incident")
		eq(fake.incident_updates[1].body, "Resolved.", "newest update")
		eq(#fake.incident_updates, 3, "three updates")
		-- the step may return the handle: plain data in the journal
		return inc
	end,
}

step "by-id" {
	after = "incident",
	doc = "statuspage.get/update/resolve for an incident known by id (a rollback, a resume)",
	run = function(ctx)
		local inc = assert(SP.incident { name = "Search is slow", body = "Investigating.",
			components = { [API] = "degraded_performance" }, key = "spec-by-id-" .. ctx.run_id })
		clear("statuspage")
		local h = assert(SP.update { incident = inc.id, status = "identified", body = "Found it." })
		eq(h.status, "identified", "updated")
		eq(received("statuspage", "GET", "/v1/pages/" .. PAGE .. "/incidents/" .. inc.id)[1] ~= nil, true,
			"read first")
		h = assert(SP.resolve { incident = inc.id, body = "Fixed." })
		eq(h.status, "resolved", "resolved")
		eq(component_status(API), "operational", "its component back to operational")
		eq(ctx.outputs.incident.status, "resolved", "the handle as a step output")
		local err = fails("not_found", SP.get { incident = "nosuchincident" })
		eq(err, "statuspage: Incident not found (HTTP 404)", "the service's message")
	end,
}

step "component" {
	after = "by-id",
	doc = "a component's status: the wrapper body, the answer",
	run = function()
		clear("statuspage")
		local c = assert(SP.component { id = CHECKOUT, status = "degraded_performance" })
		eq(c.status, "degraded_performance", "answer")
		local patch = received("statuspage", "PATCH", "/v1/pages/" .. PAGE .. "/components/" .. CHECKOUT)
		eq(patch[1].body, '{"component":{"status":"degraded_performance"}}', "body")
		sp_headers(patch[1], "component")
		eq(#assert(SP.components {}), 5, "components")
		assert(SP.component { id = CHECKOUT, status = "operational" })
		local err = fails("invalid", SP.incident { name = "x", components = { nosuchcomp = "major_outage" },
			reuse = false })
		eq(err, "statuspage: Component nosuchcomp not found (HTTP 422)", "422 message")
	end,
}

step "errors-and-throttling" {
	after = "component",
	doc = "401; 420 and 429 with Retry-After; a 503 on a create or an update is verified before a retry",
	run = function(ctx)
		clear("statuspage")
		local err = fails("auth", statuspage.unresolved { page = PAGE, token = "not-the-key" })
		eq(err, "statuspage: Could not authenticate (HTTP 401)", "401")
		eq(#received("statuspage"), 1, "not retried")
		-- Statuspage's own 420
		for _, st in ipairs { 420, 429 } do
			clear("statuspage")
			config("statuspage", { burst = 1, burst_window = 1, retry_after = 1, burst_status = st })
			for i = 1, 3 do assert(SP.components {}, "call " .. i) end
			config("statuspage", { burst = json.null, burst_status = json.null })
			local n = 0
			for _, r in ipairs(received("statuspage")) do if r.status == st then n = n + 1 end end
			assert(n >= 1, st .. " answered")
		end
		-- a 503 on the POST: the unresolved incidents are read again; none
		-- with our key, so it is sent again: one incident
		clear("statuspage")
		config("statuspage", { fail_next = { status = 503, count = 1 } })
		local key = "spec-503-" .. ctx.run_id
		local inc = assert(SP.incident { name = "Payments are down", body = "Investigating.", key = key,
			reuse = false })
		local posts = received("statuspage", "POST")
		eq(#posts, 2, "503, then 201")
		eq(posts[1].status, 503, "first")
		local n = 0
		for _, i in ipairs(state("statuspage").incidents) do
			if type(i.metadata) == "table" and type(i.metadata.drrun) == "table" and i.metadata.drrun.key == key then
				n = n + 1
			end
		end
		eq(n, 1, "one incident")
		-- a 503 on an update with a body: read again, then sent again: one update
		clear("statuspage")
		config("statuspage", { fail_next = { status = 503, count = 1 } })
		assert(inc:update { body = "Still on it." })
		eq(#received("statuspage", "PATCH"), 2, "503, then 200")
		local bodies = 0
		for _, u in ipairs(find_incident(inc.id).incident_updates) do
			if u.body == "Still on it." then bodies = bodies + 1 end
		end
		eq(bodies, 1, "one update")
		assert(inc:resolve { body = "Done." })
	end,
}

step "journal-clean" {
	after = "errors-and-throttling",
	doc = "the key never reaches the journal",
	run = function(ctx)
		ctx.log("logging the key on purpose: %s", KEY)
		local j = journal(ctx)
		if j:find(KEY, 1, true) then error("the key is in the journal", 0) end
		has(j, "logging the key on purpose: ***", "redacted")
	end,
}
