-- drrun dies (SIGKILL) in the first teardown step; resume runs it again
-- and then the teardown step after it, and nothing else.
local exec = require "drrun.exec"
runbook { name = "drill-teardown-resume" }

local function note(line)
	exec.run { "sh", "-c", "echo \"$1\" >> ledger.txt", "sh", line }
end

step "restore" { run = function() note("restore") end }

step "drop_db" {
	phase = "teardown",
	run = function()
		note("drop db")
		exec.run { "sh", "-c", "test -e killed || { touch killed; kill -9 $PPID; sleep 5; }" }
	end,
}

step "drop_dns" {
	phase = "teardown", after = "drop_db",
	run = function() note("drop dns") end,
}
