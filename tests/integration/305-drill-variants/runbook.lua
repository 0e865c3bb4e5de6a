-- drrun drill: ctx.drill is true, a drill function replaces run, "skip"
-- skips, ctx.tags marks resources as this drill's, teardown runs last.
local exec = require "drrun.exec"

runbook {
	name = "drill-variants",
	env = { dr = { db = "dr-db" }, prod = { db = "prod-db", production = true } },
}

local function note(line)
	exec.run { "sh", "-c", "echo \"$1\" >> ledger.txt", "sh", line }
end

step "detect" {
	phase = "detect",
	run = function(ctx)
		note("detect drill=" .. tostring(ctx.drill) .. " tag=" .. ctx.tags["drrun-drill"])
		return { run = ctx.tags["drrun-run"] == ctx.run_id, runbook = ctx.tags["drrun-runbook"] }
	end,
}

step "promote" {
	phase = "restore", after = "detect", production = true,
	run = function() note("PROMOTED PRODUCTION") end,
	drill = function(ctx) note("restore into " .. ctx.env.db) return { db = ctx.env.db } end,
}

step "page" {
	phase = "communicate", after = "promote", drill = "skip",
	run = function() note("PAGED") end,
}

step "verify" {
	phase = "verify", after = "page", drill = "run",
	run = function() note("verify") end,
}

step "drop_scratch" {
	phase = "teardown",
	run = function(ctx) note("teardown " .. ctx.outputs.promote.db) return { removed = { "db:dr-db" } } end,
}
