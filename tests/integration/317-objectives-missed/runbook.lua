-- An alert started the run long ago: the RTO is measured from its startsAt
-- and missed; the RPO is the alert's time minus the recovery point (2h),
-- missed too.  The run completed: exit 4.
runbook { name = "objectives-missed", rto = "15m", rpo = "1h" }

step "restore" {
	phase = "restore",
	run = function(ctx) ctx.recovery_point("2026-01-01T08:00:00+02:00") end,
}

step "verify" { phase = "verify", after = "restore", run = function() end }
