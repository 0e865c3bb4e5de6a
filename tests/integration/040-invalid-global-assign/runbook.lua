-- Invalid: top-level code assigns an undeclared global.
-- Nothing may run: step "side" would leave side-effect.txt behind.
local exec = require "drrun.exec"

runbook { name = "global-assign" }

step "side" {
	run = function() exec.run { "sh", "-c", "echo ran > side-effect.txt" } end,
}

counter = 0

step "a" { run = function() end }
