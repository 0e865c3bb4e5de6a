-- drrun dies (SIGKILL) in verify; the journal carries HMACs.
local exec = require "drrun.exec"
runbook { name = "report-crashed", rto = "1m" }
step "restore" { phase = "restore", run = function() end }
step "check" {
	phase = "verify", after = "restore",
	run = function() exec.run { "sh", "-c", "kill -9 $PPID; sleep 5" } end,
}
