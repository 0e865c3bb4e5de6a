-- Reading the step's fields raises: the loader reports it like any other
-- error of the runbook.
runbook { name = "check-index-raises" }

step "a" (setmetatable({}, {
	__index = function()
		error("the body's fields cannot be read")
	end,
}))
