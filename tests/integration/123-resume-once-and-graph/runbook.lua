-- p (once = true) is in flight when drrun dies.  A resume without --yes
-- stops at p's question; one with --yes runs p again, and then q and r in
-- the order the graph says, each after the one it depends on.
local exec = require "drrun.exec"

runbook { name = "once-graph" }

local function log(name)
	exec.run { "sh", "-c", "echo " .. name .. " >> ledger.txt" }
end

step "a" {
	run = function() log("a") end,
}

step "p" {
	after = "a",
	once = true,
	run = function()
		log("p")
		exec.run { "sh", "-c", "test -e killed || { touch killed; kill -9 $PPID; sleep 5; }" }
		drrun.sleep("100ms")
	end,
}

step "q" {
	after = "p",
	run = function()
		drrun.sleep("100ms")
		log("q")
	end,
}

step "r" {
	after = "q",
	run = function() log("r") end,
}
