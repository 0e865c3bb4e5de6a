-- started by serve's schedule: records its trigger, then asks the harness to
-- stop serve (the `signal TERM stop` directive) by creating `stop`
local exec = require "drrun.exec"
runbook { name = "tick", params = { env = { default = "prod" } } }
step "tick" {
  run = function(ctx)
    local t = ctx.trigger
    local line = string.format("%s|%s|%s|%s|%s", t.source, t.rule, t.labels.schedule,
                               ctx.params.env, tostring(ctx.drill))
    assert(exec.run { "sh", "-c", 'printf "%s\\n" "$1" >> ledger.txt; touch stop; sleep 1', "sh", line })
  end,
}
