-- backup.retention plans in one step; backup.apply carries the plan out in
-- the next, from the journalled output (as resume would read it back).
local backup = require "drrun.backup"

runbook { name = "retention-apply" }

-- six daily dumps, db-0 the newest, at 05:00Z on 2026-11-25 .. 2026-11-30
local NOW = "2026-12-01T00:00:00Z"

step "plan" {
  run = function()
    local b = {}
    for k = 0, 5 do
      b[#b + 1] = { path = ("db-%d.dump"):format(k), time = ("2026-11-%02dT05:00:00Z"):format(30 - k) }
    end
    return backup.retention { backups = b, policy = { keep_last = 2, older_than = "3d" }, now = NOW }
  end,
}

step "apply" {
  after = "plan",
  run = function(ctx)
    return backup.apply(ctx.outputs.plan)
  end,
}
