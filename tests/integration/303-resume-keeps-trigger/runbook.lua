-- drrun dies in the second step; the resumed session sees the same
-- ctx.trigger, rebuilt from run_start with its secret put back.
local exec = require "drrun.exec"
runbook { name = "trigger-resume", secrets = { "ALERT_TOKEN" } }

step "first" {
	run = function(ctx) return { fp = ctx.trigger.fingerprint } end,
}

step "second" {
	after = "first",
	run = function(ctx)
		exec.run { "sh", "-c", "test -e killed || { touch killed; kill -9 $PPID; sleep 5; }" }
		return {
			fp = ctx.trigger.fingerprint,
			token_ok = ctx.trigger.annotations.token == os.getenv("ALERT_TOKEN"),
			alert = ctx.trigger.labels.alertname,
		}
	end,
}
