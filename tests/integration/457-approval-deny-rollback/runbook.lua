local exec = require "drrun.exec"

runbook { name = "deny-rollback", description = "a deny undoes what was done" }

step "maintenance_on" {
  run = function(ctx) exec.run { "touch", "maintenance" } end,
  rollback = function(ctx) exec.run { "rm", "-f", "maintenance" } end,
}

step "promote" {
  after = { "maintenance_on" },
  approve = { "Promote the replica?", approvers = { "alice", "bob" }, on_deny = "rollback" },
  run = function(ctx) exec.run { "touch", "promoted" } end,
}
