-- drrun dies (SIGKILL) in the middle of a step: a crash, resumable.
local exec = require "drrun.exec"
runbook { name = "killed" }
step "work" {
	run = function() exec.run { "sh", "-c", "kill -9 $PPID; sleep 5" } end,
}
