-- d fails; while rolling back, b's rollback fails too.  The other rollbacks
-- (c before it, a after it) must still run; the run ends "failed", exit 2.
local exec = require "drrun.exec"

runbook { name = "rollback-fails" }

local function note(line)
	assert(exec.run { "sh", "-c", 'printf "%s\\n" "$1" >> ledger.txt', "sh", line })
end

step "a" {
	run = function() return { value = "A" } end,
	rollback = function(ctx, out) note("undo a " .. out.value) end,
}

step "b" {
	after = "a",
	run = function() return { value = "B" } end,
	rollback = function(ctx, out)
		note("undo b " .. out.value)
		error("cannot undo b")
	end,
}

step "c" {
	after = "b",
	run = function() return { value = "C" } end,
	rollback = function(ctx, out) note("undo c " .. out.value) end,
}

step "d" {
	after = "c",
	run = function() error("d broke") end,
}
