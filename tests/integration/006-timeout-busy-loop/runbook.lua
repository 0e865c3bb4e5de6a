-- A step that never yields: the CPU hook must stop it at its timeout.
runbook { name = "timeout-busy-loop" }

step "spin" {
	timeout = "1s",
	run = function()
		while true do end
	end,
}
