-- ctx.recovery_point("yesterday"): misuse raises, naming the step; the
-- step is not retried, the run rolls back, and exits 65.
local exec = require "drrun.exec"
runbook { name = "rp-bad", rpo = "1h" }

step "provision" {
	run = function() end,
	rollback = function() exec.run { "sh", "-c", "echo undone >> ledger.txt" } end,
}

step "restore" {
	phase = "restore", after = "provision",
	retry = { attempts = 3, delay = "10ms" },
	run = function(ctx) ctx.recovery_point("yesterday") end,
}
