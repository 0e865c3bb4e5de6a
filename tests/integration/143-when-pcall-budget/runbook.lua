-- A `when` that swallows its budget's error with pcall: the hook keeps
-- raising, so the step fails with the budget message instead of hanging.
runbook { name = "when-pcall-budget" }

step "gated" {
	when = function()
		while true do
			pcall(function()
				for i = 1, 1e7 do end
			end)
		end
	end,
	run = function() return "ran" end,
}
