-- Invalid: --param names a param the runbook does not declare.
-- Nothing may run: step "side" would leave side-effect.txt behind.
local exec = require "drrun.exec"

runbook { name = "unknown-param", params = { region = { default = "eu" } } }

step "side" {
	run = function() exec.run { "sh", "-c", "echo ran > side-effect.txt" } end,
}

