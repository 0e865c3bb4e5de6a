-- Invalid: a dependency cycle.
-- Nothing may run: step "side" would leave side-effect.txt behind.
local exec = require "drrun.exec"

runbook { name = "cycle" }

step "side" {
	run = function() exec.run { "sh", "-c", "echo ran > side-effect.txt" } end,
}

step "a" { after = "b", run = function() end }
step "b" { after = "a", run = function() end }
