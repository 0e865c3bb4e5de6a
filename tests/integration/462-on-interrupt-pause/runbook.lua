-- --on-interrupt pause: a SIGINT with no terminal stops the run at once,
-- cancelling b, rolling nothing back; drrun resume then runs b again and c.
local exec = require "drrun.exec"
runbook { name = "pause" }

local function note(line)
	exec.run { "sh", "-c", "echo \"$1\" >> ledger.txt", "sh", line }
end

step "a" {
	run = function() note("a") end,
	rollback = function() note("undo a") end,
}

step "b" {
	after = "a",
	run = function()
		note("b")
		-- the first time only: wait for the signal
		exec.run { "sh", "-c", "[ -e resumed ] || { touch waiting; exec sleep 60; }" }
	end,
}

step "c" { after = "b", run = function() note("c") end }
