-- A step whose program hangs: after timeout = "1s" the step fails with a
-- timeout and the program is killed (check.py looks at the pid it wrote).
local exec = require "drrun.exec"

runbook { name = "timeout-exec" }

step "hang" {
	timeout = "1s",
	run = function()
		exec.run { "sh", "-c", "echo $$ > child.pid; exec sleep 100" }
		return "not reached"
	end,
}

step "after-hang" {
	after = "hang",
	run = function() return "should not run" end,
}
