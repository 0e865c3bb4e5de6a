-- One SIGINT while the teardown runs does not cut it short: the teardown
-- step finishes, the one after it runs, and the drill ends completed.
local exec = require "drrun.exec"
runbook { name = "teardown-signal" }

local function note(line)
	exec.run { "sh", "-c", "echo \"$1\" >> ledger.txt", "sh", line }
end

step "restore" { run = function() note("restore") end }

step "drop_db" {
	phase = "teardown",
	run = function()
		exec.run { "sh", "-c", "touch tearing; sleep 0.5" }
		note("dropped db")
	end,
}

step "drop_dns" { phase = "teardown", after = "drop_db", run = function() note("dropped dns") end }
