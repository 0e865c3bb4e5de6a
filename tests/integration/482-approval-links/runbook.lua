local exec = require "drrun.exec"

runbook { name = "linked", description = "approvers answer from signed links" }

step "promote" {
  approve = {
    "Promote the replica?", quorum = 2, approvers = { "alice", "bob" }, timeout = "60s",
    -- what a real runbook posts to Slack or PagerDuty; here, files the check reads
    notify = function(ctx, req)
      for name, url in pairs(req.links) do
        exec.run { "sh", "-c", 'printf %s "$1" > "link-$2"', "sh", url, name }
      end
      exec.run { "sh", "-c", 'printf "%s|%s|%s" "$1" "$2" "$3" > notified', "sh",
                 req.step, req.question, req.command }
    end,
  },
  run = function(ctx) exec.run { "touch", "promoted" } end,
}
