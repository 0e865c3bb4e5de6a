-- Typed params: values from --param and defaults, checked and converted;
-- and `params` at the top level, so a declaration can use them.
local exec = require "drrun.exec"
runbook {
	name = "typed",
	params = {
		name     = { type = "string" },
		ratio    = { type = "number", default = 0.5 },
		replicas = { type = "integer", default = 2.0 },
		port     = { type = "integer" },
		dns      = { type = "boolean", default = false },
		wait     = { type = "duration", default = "30s" },
		api      = { type = "url", default = "https://api.example.com/v1" },
		count    = 3,
	},
}

local function kind(v)
	return math.type(v) or type(v)
end

-- top-level code reads the bound values
local cut = params.wait

step "show" {
	timeout = cut,
	run = function(ctx)
		local p = ctx.params
		local line = string.format("%s %s:%s %s:%s %s:%s %s %s %s %s:%s",
			p.name, kind(p.ratio), p.ratio, kind(p.replicas), p.replicas,
			kind(p.port), p.port, tostring(p.dns), p.wait, p.api,
			kind(p.count), p.count)
		exec.run { "sh", "-c", "echo \"$1\" >> ledger.txt", "sh", line }
	end,
}

if params.dns then
	step "switch_dns" { after = "show", run = function()
		exec.run { "sh", "-c", "echo dns >> ledger.txt" } end }
end
