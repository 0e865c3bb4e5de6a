runbook { name = "gamma" }
step "b" { run = function() return { which = "gamma" } end }
