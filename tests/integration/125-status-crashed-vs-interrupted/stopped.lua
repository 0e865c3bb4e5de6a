-- drrun gets SIGINT (as from Ctrl-C) in the middle of a step: it stops,
-- rolls back, and ends interrupted; that run cannot be resumed.
local exec = require "drrun.exec"
runbook { name = "stopped" }
step "prepare" {
	run = function() end,
	rollback = function() end,
}
step "work" {
	after = "prepare",
	run = function() exec.run { "sh", "-c", "kill -INT $PPID; sleep 5" } end,
}
