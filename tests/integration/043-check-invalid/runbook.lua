-- Invalid: a misspelled field, with a suggestion.
-- Nothing may run: step "side" would leave side-effect.txt behind.
local exec = require "drrun.exec"

runbook { name = "unknown-field" }

step "side" {
	run = function() exec.run { "sh", "-c", "echo ran > side-effect.txt" } end,
}

step "a" {
	after = "side",
	run = function() end,
	rollbak = function() end,
}
