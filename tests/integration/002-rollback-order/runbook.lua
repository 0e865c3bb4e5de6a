-- a, b, c complete in a chain, d fails: rollbacks run c, b, a (reverse
-- completion order, not declaration order), each getting its step's output.
-- d failed, so its own rollback must not run.
local exec = require "drrun.exec"

runbook { name = "rollback-order" }

local function note(line)
	assert(exec.run { "sh", "-c", 'printf "%s\\n" "$1" >> ledger.txt', "sh", line })
end

local function undo(name)
	return function(ctx, out)
		note("undo " .. name .. " " .. tostring(out and out.value))
	end
end

step "c" {
	after = "b",
	run = function() note("do c") return { value = "C" } end,
	rollback = undo("c"),
}

step "a" {
	run = function() note("do a") return { value = "A" } end,
	rollback = undo("a"),
}

step "d" {
	after = "c",
	run = function()
		note("do d")
		error("d broke")
	end,
	rollback = undo("d"),
}

step "b" {
	after = "a",
	run = function() note("do b") return { value = "B" } end,
	rollback = undo("b"),
}
