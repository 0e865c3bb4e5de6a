-- exec.env of the runbook, under the step's, under each call's own env.
local exec = require "drrun.exec"
runbook {
	name = "exec-env",
	exec = { env = { PGCONNECT_TIMEOUT = "5", DR_LEVEL = "runbook", DR_KEEP = "rb" } },
}

local function show(tag, env)
	exec.run { "sh", "-c", "echo \"$1 $PGCONNECT_TIMEOUT $DR_LEVEL $DR_KEEP $DR_CALL\" >> ledger.txt",
		"sh", tag, env = env }
end

step "plain" { run = function() show("plain") end }

step "own" {
	after = "plain",
	exec = { env = { DR_LEVEL = "step", PGCONNECT_TIMEOUT = "9" } },
	run = function()
		show("own")
		show("call", { DR_LEVEL = "call", DR_CALL = "yes" })
		-- a task of drrun.parallel belongs to the step too
		drrun.parallel({ "child" }, function(tag) show(tag) end)
	end,
	rollback = function() end,
}

step "clear" {
	after = "own",
	run = function()
		local r = exec.run { "sh", "-c", "echo \"clear $PGCONNECT_TIMEOUT ${HOME:-nohome}\" >> ledger.txt",
			clear_env = true, env = { PATH = "/usr/bin:/bin" } }
		assert(r.status == 0)
	end,
}
