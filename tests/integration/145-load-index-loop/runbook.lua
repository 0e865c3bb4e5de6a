-- A step body whose __index never returns: reading the step's fields runs
-- it, under the same CPU bound as the top-level code.
runbook { name = "load-index-loop" }

step "a" (setmetatable({}, {
	__index = function()
		while true do end
	end,
}))
