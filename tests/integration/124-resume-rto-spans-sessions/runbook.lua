-- The first session spends 1.2s before drrun dies; the resumed one takes a
-- few milliseconds.  The 1s RTO is missed: objectives count from the first
-- run_start, not from the last session.
local exec = require "drrun.exec"

runbook { name = "rto-resume", rto = "1s" }

step "restore" {
	run = function() drrun.sleep("600ms") end,
}

step "switch" {
	after = "restore",
	run = function()
		exec.run { "sh", "-c", "test -e killed || { touch killed; sleep 0.6; kill -9 $PPID; sleep 5; }" }
	end,
}
