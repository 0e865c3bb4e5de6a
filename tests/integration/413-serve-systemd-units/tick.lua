runbook { name = "tick" }
step "tick" { run = function(ctx) end }
