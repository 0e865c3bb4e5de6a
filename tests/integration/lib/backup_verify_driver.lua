-- backup_verify_driver.lua: the driver of the backup-verification cases
-- (350-353).  The harness runs drrun with no servers and a minimal
-- environment; this step runs lib/backup_verify.py SCENARIO, which starts a
-- production and a DR PostgreSQL, S3 (s3rver behind the SigV4 check) and a
-- tag endpoint, backs production up twice with the real AWS CLI, runs
-- runbooks/backup-verification.lua in a drrun of its own (this binary) and
-- checks the outcome.  Its report goes to SCENARIO.out ("ok: ..." and
-- "FAIL: ..." lines), its exit status to SCENARIO.status; the case files
-- check those.  DRRUN_REPO (a case env directive) is the repository's root.
local exec = require "drrun.exec"

runbook {
  name = "backup-verification-e2e",
  params = { scenario = { required = true, doc = "ok, rows, checksum or dry" } },
}

step "scenario" {
  timeout = "115s",
  run = function(ctx)
    local repo = assert(os.getenv("DRRUN_REPO"), "DRRUN_REPO is not set (a case env directive)")
    local s = ctx.params.scenario
    local r = drrun.must(exec.run { "bash", "-c", [[
      exe=$(readlink "/proc/$PPID/exe")   # the drrun running this case
      /usr/bin/python3 "$1/tests/integration/lib/backup_verify.py" "$2" "$HOME/$2-run" "$exe" >"$2.out" 2>&1
      echo $? >"$2.status"]], "driver", repo, s, timeout = "110s" })
    if r.status ~= 0 then error("the scenario driver could not run: " .. r.stderr, 0) end
    return { scenario = s }
  end,
}
