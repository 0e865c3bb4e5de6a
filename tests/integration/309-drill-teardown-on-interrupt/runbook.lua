-- SIGINT in the middle of restore: it is cancelled, provision rolls back,
-- and the teardown still runs before the run ends interrupted.
local exec = require "drrun.exec"
runbook { name = "drill-teardown-int" }

local function note(line)
	exec.run { "sh", "-c", "echo \"$1\" >> ledger.txt", "sh", line }
end

step "provision" {
	run = function() note("provision") end,
	rollback = function() note("undo provision") end,
}

step "restore" {
	phase = "restore", after = "provision",
	run = function() exec.run { "sh", "-c", "touch restoring; sleep 30" } end,
}

step "drop_all" {
	phase = "teardown",
	run = function() note("teardown") end,
}
