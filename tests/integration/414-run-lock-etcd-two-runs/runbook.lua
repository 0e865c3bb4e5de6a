-- One runbook, three steps; step two sleeps `nap` seconds.  Each step notes
-- itself in ledger.txt, so a check sees which steps started.
local exec = require "drrun.exec"

runbook {
	name = "locky",
	description = "a runbook held by an etcd lock while it runs",
	params = { nap = { default = "0", doc = "seconds step two sleeps" } },
}

local function note(line)
	assert(exec.run { "sh", "-c", 'printf "%s\\n" "$1" >> ledger.txt', "sh", line })
end

step "one" {
	run = function(ctx)
		note("one")
	end,
}

step "two" {
	after = "one",
	run = function(ctx)
		note("two-start")
		assert(exec.run { "sleep", ctx.params.nap })
		note("two-end")
	end,
}

step "three" {
	after = "two",
	run = function(ctx)
		note("three")
	end,
}
