-- A step that swallows every error with pcall while it computes: once its
-- timeout has passed, the CPU hook raises on every hook call, so pcall
-- cannot keep it alive.
runbook { name = "pcall-timeout" }

step "spin" {
	timeout = "1s",
	run = function()
		while true do
			pcall(function()
				for i = 1, 1e7 do end
			end)
		end
	end,
}
