-- Valid, but the state dir cannot be created: exit 75 before anything runs.
local exec = require "drrun.exec"

runbook { name = "state-dir" }

step "side" {
	run = function()
		exec.run { "sh", "-c", "echo ran > side-effect.txt" }
	end,
}
