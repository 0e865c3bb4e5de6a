-- --state-dir wins over DRRUN_STATE_DIR.
local exec = require "drrun.exec"

runbook { name = "state-dir-flag" }

step "side" {
	run = function()
		exec.run { "sh", "-c", "echo ran > side-effect.txt" }
	end,
}
