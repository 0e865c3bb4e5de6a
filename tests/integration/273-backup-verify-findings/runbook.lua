-- backup.verify under --dry-run reads nothing and runs nothing: it logs
-- what it would verify and returns ok with dry_run = true.  Without
-- --dry-run (case 273) the same file fails its readable check.
local backup = require "drrun.backup"

runbook { name = "verify-dry-run" }

step "verify" {
  run = function()
    local r = backup.verify { path = "broken.gz", min_size = 1 }
    return { ok = r.ok, dry_run = r.dry_run == true, failed = table.concat(r.failed, ","),
             checks = r.checks }
  end,
}
