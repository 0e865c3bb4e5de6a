-- `when` returning false skips a step (step_skipped); its dependents still run.
local exec = require "drrun.exec"

runbook {
	name = "when-skip",
	params = { go = { default = "yes" } },
}

step "a" {
	when = function(ctx) return false end,
	run = function()
		exec.run { "sh", "-c", "echo ran > a-ran.txt" }
	end,
}

step "b" {
	after = "a",
	run = function() return "b ran" end,
}

step "c" {
	when = function(ctx) return ctx.params.go == "yes" end,
	run = function() return "c ran" end,
}
