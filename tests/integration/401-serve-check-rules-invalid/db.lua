runbook { name = "db-failover", params = { host = { default = "none" } } }
step "a" { run = function(ctx) return ctx.params.host end }
