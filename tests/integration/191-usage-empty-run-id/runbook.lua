-- One completed run, then `rollback ""` (check.py).  An empty RUN_ID
-- is a prefix of every run id: it must be a usage error, never "the only run".
local exec = require "drrun.exec"

runbook { name = "empty-run-id" }

step "a" {
	run = function() return { n = 1 } end,
	rollback = function()
		drrun.must(exec.run { "sh", "-c", "echo undone >> ledger.txt" })
	end,
}
