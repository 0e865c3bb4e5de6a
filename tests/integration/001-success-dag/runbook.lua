-- A three-step DAG that succeeds: b waits for a, c waits for a and b.
-- Outputs flow through ctx.outputs; each step appends to ledger.txt.
local exec = require "drrun.exec"

runbook {
	name = "success-dag",
	description = "three steps that all succeed",
	rto = "15m",
	rpo = "1h",
	params = { region = { default = "eu", doc = "where to fail over" } },
}

local function note(line)
	assert(exec.run { "sh", "-c", 'printf "%s\\n" "$1" >> ledger.txt', "sh", line })
end

-- declared last-first on purpose: order comes from `after`, not from the file
step "c" {
	after = { "a", "b" },
	run = function(ctx)
		note("c")
		return ctx.outputs.b .. "C"
	end,
}

step "b" {
	after = "a",
	run = function(ctx)
		note("b")
		return ctx.outputs.a.value .. "B"
	end,
}

step "a" {
	phase = "prepare",
	run = function(ctx)
		note("a")
		return { value = "A", region = ctx.params.region, run_id = ctx.run_id }
	end,
}
