schedule "weekly" { cron = "0 5 * * 1", runbook = "tick.lua", drill = true }
