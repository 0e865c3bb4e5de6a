-- backup-schedules.lua: the backup runbooks' schedules for `drrun serve`
-- (docs/serve.md), the third way to run them on time besides cron and the
-- systemd timer in contrib/systemd/.  Check it with
--   drrun check contrib/serve/backup-schedules.lua
-- and serve it with --rules.  Runbook paths are relative to this file.

-- the platform database's consistent backup, daily at 05:00 UTC
schedule "platform-backup-daily" {
  cron = "0 5 * * *", tz = "UTC",
  runbook = "../../runbooks/platform-backup.lua",
  params = { action = "create", dir = "/srv/backups/platform" },
}

-- the orders database's verified, encrypted, off-site backup, daily at 05:00 UTC
schedule "orders-backup-daily" {
  cron = "0 5 * * *", tz = "UTC",
  runbook = "../../runbooks/backup-drill.lua",
  params = { db = "orders", dir = "/srv/backups/orders", key_dir = "/etc/drrun/keys", active_key = "k2026-12",
             offsite_host = "backup.example.net", offsite_user = "drrun", offsite_key = "/etc/drrun/offsite_ed25519",
             offsite_dir = "/srv/offsite/orders" },
}

-- its restore drill, every Monday at 06:00 UTC (after that day's backup)
schedule "orders-restore-drill-weekly" {
  cron = "0 6 * * 1", tz = "UTC", drill = true,
  runbook = "../../runbooks/backup-drill.lua",
  params = { db = "orders", key_dir = "/etc/drrun/keys", active_key = "k2026-12",
             offsite_host = "backup.example.net", offsite_user = "drrun", offsite_key = "/etc/drrun/offsite_ed25519",
             offsite_dir = "/srv/offsite/orders", app_cmd = "/opt/orders/bin/serve", app_port = 18080 },
}
