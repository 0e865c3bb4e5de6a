-- Invalid: a duration that does not parse.
-- Nothing may run: step "side" would leave side-effect.txt behind.
local exec = require "drrun.exec"

runbook { name = "duration" }

step "side" {
	run = function() exec.run { "sh", "-c", "echo ran > side-effect.txt" } end,
}

step "a" {
	run = function() end,
	timeout = "5 seconds",
}
