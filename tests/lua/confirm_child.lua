-- confirm_child.lua: not a spec of its own; saas_slack_spec.lua runs it with
-- a trigger that asks for a confirmation (serve's mode = "confirm") whose
-- notify = "slack" posts to the Slack fake.
runbook { name = "confirm-child" }

step "after-confirmation" { run = function(ctx) ctx.log("confirmed, running") end }
