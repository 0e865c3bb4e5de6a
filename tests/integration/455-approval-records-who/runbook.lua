-- an approval answered by --yes: the journal says who answered, and where
runbook { name = "ap" }
step "a" { approve = "go?", run = function() return {} end }
