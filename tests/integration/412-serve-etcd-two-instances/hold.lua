-- started by serve: notes its start in the ledger, then holds until the test
-- creates release-<instance> (so repeats arrive while it runs), then ends
local exec = require "drrun.exec"
runbook { name = "hold", params = { who = { default = "-" } } }
step "hold" {
  timeout = "60s",
  run = function(ctx)
    local t = ctx.trigger
    local line = string.format("%s|%s|%s|%s", t.rule, t.source, t.labels.alertname, ctx.params.who)
    assert(exec.run { "sh", "-c", 'printf "%s\\n" "$1" >> ledger.txt', "sh", line })
    assert(exec.run { "sh", "-c", 'while [ ! -e "release-$1" ]; do sleep 0.05; done', "sh",
                      ctx.params.who, timeout = "50s" })
  end,
}
