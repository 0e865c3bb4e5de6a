-- A table raised at the top level: the message says where.
runbook { name = "toplevel-error-table" }
step "a" { run = function() end }

error({ code = 7 })
