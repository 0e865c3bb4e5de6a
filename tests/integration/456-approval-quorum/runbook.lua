local exec = require "drrun.exec"

runbook { name = "quorum", description = "a two-person rule before promoting" }

step "prepare" {
  run = function(ctx) ctx.log("replica db-2 is caught up") return { replica = "db-2" } end,
}

step "promote" {
  after = { "prepare" },
  approve = {
    function(ctx) return "Promote " .. ctx.outputs.prepare.replica .. "?" end,
    quorum = 2, approvers = { "alice", "bob", "carol" }, timeout = "60s",
  },
  run = function(ctx) exec.run { "touch", "promoted.txt" } end,
}
