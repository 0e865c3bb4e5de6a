-- RTO to the end of verify, RPO from the recovery point a restore step
-- reports (the last call counts), a phase budget: all met.
runbook {
	name = "startsat-empty", rto = "10m", rpo = "1h",
	budgets = { restore = "1m", verify = "30s" },
}

step "restore" {
	phase = "restore",
	run = function(ctx)
		ctx.recovery_point(os.time() - 7200) -- a first guess, replaced below
		ctx.recovery_point(os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - 600))
		drrun.sleep("50ms")
	end,
}

step "verify" { phase = "verify", after = "restore", run = function() drrun.sleep("20ms") end }

step "cleanup" { phase = "teardown", run = function() drrun.sleep("300ms") end }
