-- --param values override defaults and take the default's type; --env picks
-- one table of runbook.env as ctx.env.
runbook {
	name = "params-env",
	params = {
		region = { default = "eu", doc = "target region" },
		count = { default = 3 },
		force = { default = false },
		keep = { default = "kept" },
	},
	env = {
		dr = { region = "eu-west-2" },
		prod = { region = "us-east-1" },
	},
}

step "show" {
	run = function(ctx)
		return {
			region = ctx.params.region,
			count = ctx.params.count,
			count_type = type(ctx.params.count),
			force = ctx.params.force,
			keep = ctx.params.keep,
			env_region = ctx.env.region,
		}
	end,
}
