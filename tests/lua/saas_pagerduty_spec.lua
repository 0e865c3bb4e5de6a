-- saas_pagerduty_spec.lua: drrun.pagerduty against the PagerDuty Events v2
-- fake of tests/fakes (tests/fakes/README.md: POST /v2/enqueue, one known
-- routing key, alerts kept by dedup_key), as a runbook; every step must
-- complete.  tests/run.sh starts the fakes (tests/servers.sh) and exports
-- DRRUN_PAGERDUTY_URL, DRRUN_TEST_PAGERDUTY_KEY and DRRUN_TEST_FAKES_CONTROL;
-- without them the first step fails, and so the spec.
--   drrun run --state-dir STATE saas_pagerduty_spec.lua   (from tests/lua; exit 0 = pass)
-- The spec passes routing_key = ... (run.sh does not set
-- PAGERDUTY_ROUTING_KEY).  Every step asserts on what the fake received
-- (its control API, /_fake/...) and on its alerts: paged once, whatever
-- is retried.
local pagerduty = require "drrun.pagerduty"
local http = require "drrun.http"
local json = require "drrun.json"
local exec = require "drrun.exec"

runbook { name = "saas-pagerduty-spec" }

local KEY = os.getenv("DRRUN_TEST_PAGERDUTY_KEY")
local PD = pagerduty.with { routing_key = KEY, retry = { attempts = 4, delay = "50ms", max_delay = "200ms" } }

local T, F = require "lib.spec", require "lib.saas"
local eq, has, raises, journal = T.eq, T.has, T.raises, T.journal
local fails = T.service_fails("pagerduty")
local control, reset, config, clear, state, received = F.control, F.reset, F.config, F.clear, F.state, F.received

-- ---- the spec ---------------------------------------------------------------

local function alerts(key)
	local out = {}
	for _, a in ipairs(state("pagerduty").alerts) do
		if a.dedup_key == key then out[#out + 1] = a end
	end
	return out
end

step "fakes" {
	doc = "the fakes of tests/servers.sh are there (a spec without them fails)",
	run = function()
		for _, name in ipairs { "DRRUN_PAGERDUTY_URL", "DRRUN_TEST_PAGERDUTY_KEY", "DRRUN_TEST_FAKES_CONTROL" } do
			if not os.getenv(name) then
				error(name .. " is not set: run the specs with tests/run.sh, which starts "
					.. "tests/servers.sh (with the SaaS fakes) and sources its env", 0)
			end
		end
		reset("pagerduty")
	end,
}

step "credential-and-misuse" {
	after = "fakes",
	doc = "no key: a clear error and no request; bad arguments raise",
	run = function()
		clear("pagerduty")
		local msg = raises(pagerduty.trigger, { summary = "x" })
		has(msg, "pagerduty: no credential: declare the secret in runbook { secrets = { \"PAGERDUTY_ROUTING_KEY\" } }",
			"message")
		has(msg, "or pass routing_key = ...", "the option")
		has(raises(PD.trigger, { summary = "x", severity = "urgent" }), "severity must be critical", "severity")
		has(raises(PD.trigger, {}), "pagerduty.trigger: summary is required", "summary")
		has(raises(PD.resolve, {}), "pagerduty.resolve: dedup_key is required", "resolve")
		eq(#received("pagerduty"), 0, "no request")
	end,
}

step "dedup-keys" {
	after = "fakes",
	doc = "the default dedup_key: from the run and the summary (ctx), else source and summary",
	run = function(ctx)
		local k = pagerduty.dedup_key { summary = "orders down", ctx = ctx }
		eq(k, ("drrun:saas-pagerduty-spec:%s:%s"):format(ctx.run_id,
			require("drrun.crypto").sha256_hex("orders down"):sub(1, 12)), "with ctx")
		eq(pagerduty.dedup_key { summary = "orders down", ctx = ctx }, k, "deterministic")
		assert(pagerduty.dedup_key { summary = "other", ctx = ctx } ~= k, "per summary")
		local k2 = pagerduty.dedup_key { summary = "orders down", source = "db-1" }
		eq(k2, "drrun:" .. require("drrun.crypto").sha256_hex("db-1\norders down"):sub(1, 12), "without ctx")
	end,
}

step "trigger-ack-resolve" {
	after = { "credential-and-misuse", "dedup-keys" },
	doc = "the event bodies; a second trigger of the same summary is the same alert",
	run = function(ctx)
		clear("pagerduty")
		local ev = assert(PD.trigger { summary = "orders: failing over to DR", source = "drrun-spec",
			severity = "critical", component = "orders-db", group = "orders", class = "failover",
			custom_details = { run = ctx.run_id, step = ctx.step },
			links = { { href = "https://runbooks.example/orders", text = "runbook" } }, ctx = ctx })
		eq(ev.status, "success", "status")
		eq(ev.message, "Event processed", "message")
		eq(ev.dedup_key, pagerduty.dedup_key { summary = "orders: failing over to DR", ctx = ctx }, "dedup_key")
		local got = received("pagerduty", "POST", "/v2/enqueue")
		eq(#got, 1, "one event")
		local r = got[1]
		eq(r.headers["content-type"], "application/json", "Content-Type")
		eq(r.headers["user-agent"], "drrun/" .. drrun.version, "User-Agent")
		eq(r.headers["authorization"], nil, "no auth header: the key is in the body")
		local body = json.decode(r.body)
		eq(body.routing_key, KEY, "routing_key")
		eq(body.event_action, "trigger", "event_action")
		eq(body.dedup_key, ev.dedup_key, "dedup_key sent")
		eq(body.client, "drrun", "client")
		eq(body.payload.summary, "orders: failing over to DR", "summary")
		eq(body.payload.source, "drrun-spec", "source")
		eq(body.payload.severity, "critical", "severity")
		eq(body.payload.component, "orders-db", "component")
		eq(body.payload.custom_details.run, ctx.run_id, "custom_details")
		eq(body.links[1].href, "https://runbooks.example/orders", "links")
		-- the step retried: the same key, the same alert
		local again = assert(PD.trigger { summary = "orders: failing over to DR", source = "drrun-spec", ctx = ctx })
		eq(again.dedup_key, ev.dedup_key, "same key")
		local a = alerts(ev.dedup_key)
		eq(#a, 1, "paged once")
		eq(a[1].triggers, 2, "two triggers of one alert")
		assert(PD.acknowledge { dedup_key = ev.dedup_key })
		eq(alerts(ev.dedup_key)[1].status, "acknowledged", "acknowledged")
		assert(PD.resolve { dedup_key = ev }) -- trigger's result will do
		eq(alerts(ev.dedup_key)[1].status, "resolved", "resolved")
		local bodies = received("pagerduty", "POST", "/v2/enqueue")
		eq(json.encode(json.decode(bodies[#bodies].body), { sort_keys = true }),
			json.encode({ dedup_key = ev.dedup_key, event_action = "resolve", routing_key = KEY }, { sort_keys = true }),
			"resolve: only routing_key, event_action, dedup_key")
		-- a long summary is cut to 1024
		local long = assert(PD.trigger { summary = ("é"):rep(600), ctx = ctx })
		local sent = json.decode(received("pagerduty")[#received("pagerduty")].body).payload.summary
		eq(#sent, 1024, "cut to 1024 bytes")
		assert(utf8.len(sent), "still UTF-8")
		assert(PD.resolve { dedup_key = long.dedup_key })
	end,
}

step "errors-and-retries" {
	after = "trigger-ack-resolve",
	doc = "400 invalid event surfaced and not retried; 429 and 5xx retried without paging twice",
	run = function(ctx)
		clear("pagerduty")
		local err = fails("invalid", pagerduty.trigger { summary = "x", routing_key = ("0"):rep(32) })
		eq(err, "pagerduty: Event object is invalid: Invalid routing key (HTTP 400)", "the service's message")
		eq(#received("pagerduty"), 1, "a 400 is not retried")
		-- 503 twice, then accepted: one alert
		clear("pagerduty")
		config("pagerduty", { fail_next = { status = 503, count = 2 } })
		local ev = assert(PD.trigger { summary = "checkout errors", ctx = ctx })
		eq(#received("pagerduty"), 3, "503, 503, 202")
		eq(#alerts(ev.dedup_key), 1, "one alert")
		-- the burst limit: 429 with Retry-After
		clear("pagerduty")
		config("pagerduty", { burst = 1, burst_window = 1, retry_after = 1 })
		local t0 = drrun.now()
		assert(PD.trigger { summary = "checkout errors", ctx = ctx })
		assert(PD.trigger { summary = "checkout errors", ctx = ctx })
		config("pagerduty", { burst = json.null })
		assert(drrun.now() - t0 >= 0.9, "waited for Retry-After")
		local n429 = 0
		for _, r in ipairs(received("pagerduty")) do if r.status == 429 then n429 = n429 + 1 end end
		assert(n429 >= 1, "429 answered")
		eq(#alerts(ev.dedup_key), 1, "still one alert")
		assert(PD.resolve { dedup_key = ev.dedup_key })
		-- out of attempts: the throttle message
		config("pagerduty", { fail_next = { status = 429, count = 3, retry_after = 0 } })
		err = fails("throttled", PD.trigger { summary = "x", ctx = ctx, retry = { attempts = 2, delay = "10ms" } })
		eq(err, "pagerduty: Requests for this service are arriving too quickly. Please retry later. (HTTP 429)",
			"the throttle message")
		config("pagerduty", { fail_next = json.null })
	end,
}

step "journal-clean" {
	after = "errors-and-retries",
	doc = "the routing key never reaches the journal",
	run = function(ctx)
		ctx.log("logging the key on purpose: %s", KEY)
		local j = journal(ctx)
		if j:find(KEY, 1, true) then error("the routing key is in the journal", 0) end
		has(j, "logging the key on purpose: ***", "redacted")
	end,
}
