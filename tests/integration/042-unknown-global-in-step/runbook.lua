-- A step reads a global that does not exist: the step fails with
-- "unknown global" naming file and line; the run is not a validation error.
runbook { name = "unknown-global-in-step" }

step "a" {
	run = function(ctx)
		local v = undefined_thing
		return v
	end,
}

step "b" {
	run = function()
		leaked = 1
	end,
}
