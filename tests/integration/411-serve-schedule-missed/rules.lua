schedule "every-minute" { cron = "* * * * *", runbook = "tick.lua" }
schedule "yearly" { cron = "0 0 1 1 *", tz = "UTC", runbook = "tick.lua" }
