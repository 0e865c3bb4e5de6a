-- Three drills: the second fails its check (rolled back), the third misses
-- its RPO.  --history lists them oldest first, with the success rate.
runbook { name = "report-history", rto = "10m", rpo = "1h", params = { age = { default = 60 }, fail = { default = false } } }

step "restore" {
	phase = "restore",
	run = function(ctx) ctx.recovery_point(os.time() - ctx.params.age) drrun.sleep("20ms") end,
}

step "row_counts" {
	phase = "verify", after = "restore",
	run = function(ctx) if ctx.params.fail then error("row counts differ") end end,
}
