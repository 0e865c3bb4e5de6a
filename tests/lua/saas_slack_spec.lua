-- saas_slack_spec.lua: drrun.slack against the Slack incoming-webhook fake
-- of tests/fakes (tests/fakes/README.md: one hook,
-- /services/T0000/B0000/XXXXXXXXXXXXXXXX; plain-text answers), as a
-- runbook; every step must complete.  tests/run.sh starts the fakes
-- (tests/servers.sh) and exports DRRUN_TEST_SLACK_WEBHOOK and
-- DRRUN_TEST_FAKES_CONTROL; without them the first step fails, and so the
-- spec.
--   drrun run --state-dir STATE saas_slack_spec.lua   (from tests/lua; exit 0 = pass)
-- The webhook URL is the credential: the spec passes url = ... (run.sh does
-- not set SLACK_WEBHOOK_URL); tests/integration/050-heroku-netlify-success
-- covers the declared secret.
local slack = require "drrun.slack"
local http = require "drrun.http"
local json = require "drrun.json"
local exec = require "drrun.exec"

runbook { name = "saas-slack-spec" }

local HOOK = os.getenv("DRRUN_TEST_SLACK_WEBHOOK")
local ORIGIN = HOOK and HOOK:match("^(https?://[^/]+)")
local PATH = HOOK and HOOK:match("^https?://[^/]+(/.*)$")
local S = slack.with { url = HOOK, retry = { attempts = 4, delay = "50ms", max_delay = "200ms" } }

local T, F = require "lib.spec", require "lib.saas"
local eq, has, raises, journal = T.eq, T.has, T.raises, T.journal
local fails = T.service_fails("slack")
local control, reset, config, clear, state, received = F.control, F.reset, F.config, F.clear, F.state, F.received

-- ---- the spec ---------------------------------------------------------------

local function messages() return state("slack").messages end

step "fakes" {
	doc = "the fakes of tests/servers.sh are there (a spec without them fails)",
	run = function()
		for _, name in ipairs { "DRRUN_TEST_SLACK_WEBHOOK", "DRRUN_TEST_FAKES_CONTROL" } do
			if not os.getenv(name) then
				error(name .. " is not set: run the specs with tests/run.sh, which starts "
					.. "tests/servers.sh (with the SaaS fakes) and sources its env", 0)
			end
		end
		reset("slack")
	end,
}

step "credential-and-misuse" {
	after = "fakes",
	doc = "no URL: a clear error and no request; no text raises",
	run = function()
		clear("slack")
		local msg = raises(slack.post, { text = "x" })
		has(msg, "slack: no credential: declare the secret in runbook { secrets = { \"SLACK_WEBHOOK_URL\" } }",
			"message")
		has(msg, "or pass url = ...", "the option")
		has(raises(S.post, {}), "slack.post: text is required", "no text")
		has(raises(slack.post, { text = "x", url = "not a url" }), "must be an http:// or https:// URL", "bad URL")
		eq(#received("slack"), 0, "no request")
	end,
}

step "post" {
	after = "credential-and-misuse",
	doc = "the JSON body, the headers; Slack's plain-text ok",
	run = function()
		clear("slack")
		local text = slack.template("Failover of {app} done in {secs}s", { app = "orders", secs = 42 })
		local r = assert(S.post { text = text })
		eq(r.ok, true, "ok")
		local got = received("slack", "POST", PATH)
		eq(#got, 1, "one post")
		eq(got[1].body, '{"text":"Failover of orders done in 42s"}', "body")
		eq(got[1].headers["content-type"], "application/json", "Content-Type")
		eq(got[1].headers["user-agent"], "drrun/" .. drrun.version, "User-Agent")
		local blocks = { { type = "section", text = { type = "mrkdwn", text = "*Failover* done" } } }
		assert(S.post { text = "Failover done", blocks = blocks })
		local m = messages()
		eq(#m, 2, "two messages")
	end,
}

step "errors" {
	after = "post",
	doc = "Slack's error strings surfaced with their status and token; not retried",
	run = function()
		clear("slack")
		local wrong = ORIGIN .. "/services/T0000/B0000/wrongsecretwrongsecret"
		local err = fails("auth", slack.post { text = "x", url = wrong })
		eq(err, "slack: invalid_token (HTTP 403)", "403")
		err = fails("not_found", slack.post { text = "x", url = ORIGIN .. "/services/T1/B1/x" })
		eq(err, "slack: no_service (HTTP 404)", "404")
		eq(#received("slack"), 2, "not retried")
		config("slack", { fail_next = { status = 400, count = 1, body = "invalid_payload" } })
		err = fails("invalid", S.post { text = "x" })
		eq(err, "slack: invalid_payload (HTTP 400)", "400")
	end,
}

step "retries" {
	after = "errors",
	doc = "429 (Retry-After) and 5xx retried; each message posted once",
	run = function()
		reset("slack")
		config("slack", { burst = 1, burst_window = 1, retry_after = 1 })
		local t0 = drrun.now()
		assert(S.post { text = "one" })
		assert(S.post { text = "two" })
		config("slack", { burst = json.null })
		assert(drrun.now() - t0 >= 0.9, "waited for Retry-After")
		config("slack", { fail_next = { status = 500, count = 1, body = "rollup_error" } })
		assert(S.post { text = "three" })
		local m = messages()
		eq(#m, 3, "three messages, none twice")
		local n = {}
		for _, r in ipairs(received("slack")) do n[r.status] = (n[r.status] or 0) + 1 end
		eq(n[429], 1, "one 429")
		eq(n[500], 1, "one 500")
		eq(n[200], 3, "three 200")
	end,
}

step "endpoint" {
	after = "retries",
	doc = "base_url replaces the webhook URL's scheme and host, and keeps its secret path",
	run = function()
		clear("slack")
		assert(slack.post { text = "via base_url", url = "https://hooks.slack.com" .. PATH, base_url = ORIGIN })
		eq(#received("slack", "POST", PATH), 1, "the fake got it")
	end,
}

step "journal-clean" {
	after = "endpoint",
	doc = "the webhook URL (the credential) never reaches the journal; logs show its host only",
	run = function(ctx)
		ctx.log("logging the URL on purpose: %s", HOOK)
		local j = journal(ctx)
		if j:find(PATH, 1, true) then error("the webhook's secret path is in the journal", 0) end
		has(j, "logging the URL on purpose: ***", "redacted")
		has(j, "slack: POST " .. ORIGIN .. "/***: HTTP 200", "logged with the path hidden")
	end,
}

step "confirm-notify" {
	after = "journal-clean",
	timeout = "60s",
	doc = "a confirmation with notify = \"slack\" (serve's mode = \"confirm\") posts the question, "
		.. "the drrun approve command and the approvers' links; none reach the journal",
	run = function()
		clear("slack")
		local r = assert(exec.run { "sh", "-c", [[
			drrun=$(readlink "/proc/$PPID/exe") && d=$(mktemp -d) || exit 90
			trap 'rm -rf "$d"' EXIT
			printf '%s' '{"source":"generic","labels":{"alertname":"X"},"annotations":{},'\
'"startsAt":"","fingerprint":"f","confirm":{"question":"Start confirm_child.lua for rule x?",'\
'"timeout":2,"default":"run","quorum":1,"approvers":["alice"],"notify":"slack"}}' > "$d/t.json"
			SLACK_WEBHOOK_URL="$1" DRRUN_APPROVAL_URL=http://127.0.0.1:1 \
			DRRUN_APPROVAL_SECRET=spec-approval-secret \
				"$drrun" run --no-color --state-dir "$d/state" --trigger "$d/t.json" \
				confirm_child.lua 2>&1 || exit 91
			cat "$d"/state/runs/*/journal.jsonl
		]], "sh", HOOK, timeout = "50s" })
		if r.status ~= 0 then error("the child run: " .. r.stdout .. r.stderr, 0) end
		has(r.stdout, "result: completed", "confirmed by the timeout's default, then ran")
		local got = received("slack", "POST", PATH)
		eq(#got, 1, "one message")
		local text = json.decode(got[1].body).text
		has(text, "Start confirm_child.lua for rule x?", "the question")
		has(text, "drrun approve ", "the command")
		has(text, "alice: http://127.0.0.1:1/approve/", "alice's link")
		if r.stdout:find("/approve/", 1, true) then
			error("an approval link reached the journal or the output", 0)
		end
	end,
}
