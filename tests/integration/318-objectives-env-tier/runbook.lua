-- The dr tier relaxes the objectives: its rto and rpo override the
-- runbook's, which this drill would miss.
runbook {
	name = "objectives-tier", rto = "1ms", rpo = "1s",
	env = { dr = { rto = "1h", rpo = "24h" }, default = {} },
}

step "restore" {
	phase = "restore",
	run = function(ctx) ctx.recovery_point(os.time() - 3600) drrun.sleep("20ms") end,
}

step "verify" { phase = "verify", after = "restore", run = function() end }
