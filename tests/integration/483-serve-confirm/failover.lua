local exec = require "drrun.exec"

runbook { name = "failover", description = "started by an alert, once a human confirms",
          params = { site = { default = "?" } } }

step "switch" {
  run = function(ctx) exec.run { "sh", "-c", 'echo "$1" >> switched', "sh", ctx.params.site } end,
}
