local exec = require "drrun.exec"

runbook { name = "deny-stop", description = "a deny stops; a resume asks again" }

step "prepare" { run = function(ctx) exec.run { "touch", "prepared" } end }

step "promote" {
  after = { "prepare" },
  approve = { question = "Promote?", approvers = { "alice" } },
  run = function(ctx) exec.run { "touch", "promoted" } end,
}
