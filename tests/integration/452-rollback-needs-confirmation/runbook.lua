runbook { name = "undo" }
local exec = require "drrun.exec"
step "a" { run = function() return {} end,
  rollback = function() exec.run { "sh", "-c", "echo undo-a >> ledger.txt" } end }
step "b" { after = "a", run = function() return {} end }
step "c" { after = "b", run = function() return {} end,
  rollback = function() exec.run { "sh", "-c", "echo undo-c >> ledger.txt" } end }
