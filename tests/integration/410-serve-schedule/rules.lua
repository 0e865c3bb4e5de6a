schedule "every-minute" { cron = "* * * * *", tz = "UTC", runbook = "tick.lua",
  params = { env = "dr" } }
