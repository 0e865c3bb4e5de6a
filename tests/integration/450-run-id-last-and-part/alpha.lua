runbook { name = "alpha" }
step "a" { run = function() return { which = "alpha" } end }
