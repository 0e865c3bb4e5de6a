-- Invalid: top-level code reads an unknown global (a typo of print).
-- Nothing may run: step "side" would leave side-effect.txt behind.
local exec = require "drrun.exec"

runbook { name = "global-read" }

step "side" {
	run = function() exec.run { "sh", "-c", "echo ran > side-effect.txt" } end,
}

local x = prnt

step "a" { run = function() return x end }
