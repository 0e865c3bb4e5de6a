-- A signal while step b waits on a child process: the run stops as
-- "interrupted" (exit 3), c never starts, the child is killed, and the
-- journal is closed with run_end.
local exec = require "drrun.exec"

runbook { name = "interrupt" }

step "a" {
	run = function() return "A" end,
}

step "b" {
	after = "a",
	run = function()
		exec.run { "sh", "-c", "echo $$ > child.pid.tmp && mv child.pid.tmp child.pid && exec sleep 60" }
	end,
}

step "c" {
	after = "b",
	run = function() return "C" end,
}
