-- Zero durations where zero would switch a limit off.  A zero retry delay
-- is fine: it only means "retry at once".
runbook { name = "step-timeout-zero", rto = "0s" }

step "a" {
	timeout = "0s",
	retry = { attempts = 2, delay = "0s", max_delay = "0ms" },
	run = function() end,
}
