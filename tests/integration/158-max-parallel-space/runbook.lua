-- Never runs: the command line is refused first.
runbook { name = "max-parallel-space" }
step "a" { run = function() end }
