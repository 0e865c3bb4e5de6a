rule "a" { source = "alertmanager", runbook = "db.lua", match = { alertname = "X" } }
rule "b" { source = "nagios", runbook = "db.lua", colour = "red" }
rule "c" { source = "generic", runbook = "nowhere.lua", cooldown = "soon" }
rule "d" { source = "generic", runbook = "db.lua", match_re = { instance = "(" } }
rule "e" { source = "pagerduty", runbook = "db.lua", mode = "ask", confirm = { timeout = "5m" } }
schedule "f" { cron = "0 25 * * *", runbook = "db.lua" }
schedule "g" { cron = "0 5 * * 1", tz = "Europe/Paris", runbook = "db.lua" }
rule "a" { source = "generic", runbook = "db.lua" }
rule "h" { source = "generic", runbook = "db.lua", mode = "confirm", confirm = { default = "run", notify = "email", quorum = 3, approvers = { "alice", "b b" }, colour = 1 } }
