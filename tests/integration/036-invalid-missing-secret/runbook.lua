-- Invalid: a declared secret missing from the environment.
-- Nothing may run: step "side" would leave side-effect.txt behind.
local exec = require "drrun.exec"

runbook { name = "missing-secret", secrets = { "API_TOKEN" } }

step "side" {
	run = function() exec.run { "sh", "-c", "echo ran > side-effect.txt" } end,
}

