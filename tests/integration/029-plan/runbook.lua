-- `drrun plan` lists the steps in the order they would run; runs nothing.
local exec = require "drrun.exec"

runbook { name = "plan" }

step "flip-dns" {
	after = "promote-replica",
	run = function() exec.run { "sh", "-c", "echo ran > side-effect.txt" } end,
}

step "promote-replica" {
	after = "fetch-snapshot",
	approve = "Promote?",
	run = function() exec.run { "sh", "-c", "echo ran > side-effect.txt" } end,
}

step "fetch-snapshot" {
	run = function() exec.run { "sh", "-c", "echo ran > side-effect.txt" } end,
}
