-- Invalid: an unknown dependency.
-- Nothing may run: step "side" would leave side-effect.txt behind.
local exec = require "drrun.exec"

runbook { name = "unknown-dep" }

step "side" {
	run = function() exec.run { "sh", "-c", "echo ran > side-effect.txt" } end,
}

step "b" { after = "nope", run = function() end }
