-- SIGTERM follows --on-interrupt too: pause, in a drill, whose teardown then
-- waits for the run's real end (a resume).
local exec = require "drrun.exec"
runbook { name = "pause-term" }

local function note(line)
	exec.run { "sh", "-c", "echo \"$1\" >> ledger.txt", "sh", line }
end

step "provision" {
	run = function() note("provision") end,
	rollback = function() note("undo provision") end,
}

step "restore" {
	after = "provision",
	run = function() note("restore") exec.run { "sh", "-c", "touch waiting; exec sleep 60" } end,
}

step "drop" { phase = "teardown", run = function() note("teardown") end }
