-- started by serve: one ledger line per run, from ctx.trigger and params
local exec = require "drrun.exec"
runbook { name = "note", params = { who = { default = "-" } } }
step "note" {
  run = function(ctx)
    local t = ctx.trigger
    local line = string.format("%s|%s|%s|%s", t.rule, t.source, t.fingerprint, ctx.params.who)
    assert(exec.run { "sh", "-c", 'printf "%s\\n" "$1" >> "$2"', "sh", line,
                      os.getenv("LEDGER") or "ledger.txt" })
  end,
}
