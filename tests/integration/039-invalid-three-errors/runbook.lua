-- Invalid: three mistakes in three steps; all three are reported at once.
-- Nothing may run: step "side" would leave side-effect.txt behind.
local exec = require "drrun.exec"

runbook { name = "three-errors" }

step "side" {
	run = function() exec.run { "sh", "-c", "echo ran > side-effect.txt" } end,
}

step "a" {
	run = function() end,
	rollbak = function() end,
}

step "b" {
	run = function() end,
	timeout = "5 seconds",
}

step "c" { run = 42 }
