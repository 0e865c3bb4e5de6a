-- check aborts the run; promote never starts.  The summary calls them
-- "aborted" and "not run", as status and the live view do.
runbook { name = "names" }

step "check" {
	run = function(ctx) ctx.abort("the primary is healthy") end,
}

step "promote" {
	after = "check",
	run = function() end,
}
