-- A step that needs approval.  Without a terminal and without --yes nobody
-- can approve it: the run stops (exit 3) before the step starts.
local exec = require "drrun.exec"

runbook { name = "approval" }

step "prep" {
	run = function() return "prepared" end,
}

step "promote" {
	after = "prep",
	approve = "Promote the replica in eu-west?",
	run = function()
		exec.run { "sh", "-c", "echo promoted > promote.txt" }
		return "promoted"
	end,
}

step "finish" {
	after = "promote",
	run = function() return "finished" end,
}
