runbook { name = "beta" }
step "b" { run = function() return { which = "beta" } end }
