-- A drill with everything the report holds: an alert, a secret param, a
-- gate approved by --yes, a step that needs two attempts, a drill
-- variant, a recovery point, a budget, and a teardown that says what it
-- removed and what it could not.
local exec = require "drrun.exec"
runbook {
	name = "report-json", rto = "10m", rpo = "1h",
	budgets = { restore = "5m" },
	params = { token = { default = "none" } },
	secrets = { "REPORT_TOKEN" },
	env = { dr = { rto = "20m" } },
}

step "detect" { phase = "detect", run = function(ctx) ctx.log("alert %s", ctx.trigger.labels.alertname) end }

step "restore" {
	phase = "restore", after = "detect",
	retry = { attempts = 2, delay = "10ms" },
	run = function() error("must not run in a drill") end,
	drill = function(ctx)
		if ctx.attempt == 1 then error("snapshot not ready") end
		ctx.recovery_point("2026-11-30T09:30:00Z")
		ctx.log("restored with %s", ctx.params.token)
		return { db = "orders-dr" }
	end,
}

step "switch" {
	phase = "dns", after = "restore", approve = "Point www at DR?",
	run = function() end,
}

step "check_rows" { phase = "verify", after = "switch", run = function() end }

step "drop" {
	phase = "teardown",
	run = function() return { removed = { "db:orders-dr" }, left = { "snapshot:s-1" } } end,
}
