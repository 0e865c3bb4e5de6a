-- A valid runbook; the command line around it is wrong, so nothing runs.
local exec = require "drrun.exec"

runbook { name = "usage" }

step "side" {
	run = function()
		exec.run { "sh", "-c", "echo ran > side-effect.txt" }
	end,
}
