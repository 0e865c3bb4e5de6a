-- exec.run under --dry-run: a probe marked safe = true runs, anything else is
-- described.  The description of what did not run gives its env and the start
-- of its stdin, redacted before the cut at 200 bytes (the secret straddles
-- it); the audit line of what ran gives env names and stdin's size only.
runbook { name = "safe-probe", secrets = { "DB_PASSWORD" } }
local exec = require "drrun.exec"
step "probe" {
  run = function(ctx)
    local pw = ctx.secret("DB_PASSWORD")
    local input = string.rep("x", 190) .. pw .. string.rep("y", 100)
    local r = assert(exec.run { "sh", "-c", "cat > probe.txt; echo up", safe = true,
      env = { PGPASSWORD = pw, PGCONNECT_TIMEOUT = 5 }, stdin = input })
    assert(r.dry_run == nil and r.stdout == "up\n", "the safe probe really ran")
    local w = assert(exec.run { "sh", "-c", "cat > promoted.txt", cwd = ".",
      env = { PGPASSWORD = pw, PGCONNECT_TIMEOUT = 5 }, stdin = input })
    assert(w.dry_run == true, "the write is a placeholder")
    return { probe = r.stdout }
  end,
}
