runbook { name = "trigger-bad" }
step "never" { run = function() error("must not run") end }
