-- backup_tz_child.lua: the DST calendars of backup_retention_spec, run by it
-- in a child drrun with TZ=Europe/Berlin, so that policy.tz = "local" means
-- CET/CEST.  Not a spec itself (run.sh runs only *_spec.lua).  By hand:
--   DST ends 2026-10-25 01:00Z (03:00 CEST -> 02:00 CET): 02:00-03:00 local
--   happens twice; DST starts 2026-03-29 01:00Z (02:00 CET -> 03:00 CEST).
local backup = require "drrun.backup"
local BT = require "drrun.backup.time"

runbook { name = "backup-tz-child" }

local T = require "lib.spec"
local eq = T.eq

local function plan(times, policy)
  local b = {}
  for i, s in ipairs(times) do b[i] = { name = s, time = s } end
  return backup.retention { backups = b, policy = policy, now = "2027-01-01T00:00:00Z" }
end
local function kept(p)
  local n = {}
  for _, e in ipairs(p.keep) do n[#n + 1] = e.name end
  table.sort(n)
  return table.concat(n, " ")
end
local function reason(p, name)
  for _, e in ipairs(p.items) do if e.name == name then return e.reason end end
end

step "checks" {
  run = function(ctx)
    -- the zone really is Europe/Berlin
    eq(os.date("%z", BT.parse("2026-07-01T00:00:00Z")), "+0200", "summer offset")
    eq(os.date("%z", BT.parse("2026-12-01T00:00:00Z")), "+0100", "winter offset")

    -- 1. the repeated hour: 00:30Z is 02:30 CEST, 01:00Z 02:00 CET, 01:30Z
    -- 02:30 CET.  Buckets carry the offset, so 02:xx CEST and 02:xx CET are
    -- two hours: hourly 10 keeps 02:30Z, 01:30Z, 00:30Z, 23:30Z (4 of 8).
    local fall = { "2026-10-24T23:00:00Z", "2026-10-24T23:30:00Z", "2026-10-25T00:00:00Z",
      "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z",
      "2026-10-25T02:00:00Z", "2026-10-25T02:30:00Z" }
    local p = plan(fall, { hourly = 10, tz = "local" })
    eq(kept(p), "2026-10-24T23:30:00Z 2026-10-25T00:30:00Z 2026-10-25T01:30:00Z 2026-10-25T02:30:00Z", "fall back")
    eq(reason(p, "2026-10-25T00:30:00Z"), "hourly 2026-10-25T02+02:00 (3 of 10)", "02:30 CEST")
    eq(reason(p, "2026-10-25T01:30:00Z"), "hourly 2026-10-25T02+01:00 (2 of 10)", "02:30 CET")
    eq(p.policy.tz, "local", "zone recorded")

    -- 2. the 25-hour local day: 10-24 22:30Z (00:30 CEST) and 10-25 22:30Z
    -- (23:30 CET) are both Oct 25 locally; 21:30Z on the 24th is 23:30 on the
    -- 24th, 23:30Z on the 25th is 00:30 on the 26th.  In UTC the days differ.
    local day = { "2026-10-24T21:30:00Z", "2026-10-24T22:30:00Z", "2026-10-25T22:30:00Z", "2026-10-25T23:30:00Z" }
    p = plan(day, { daily = 5, tz = "local" })
    eq(kept(p), "2026-10-24T21:30:00Z 2026-10-25T22:30:00Z 2026-10-25T23:30:00Z", "local days")
    eq(reason(p, "2026-10-25T22:30:00Z"), "daily 2026-10-25 (2 of 5)", "the long day")
    p = plan(day, { daily = 5 })
    eq(kept(p), "2026-10-24T22:30:00Z 2026-10-25T23:30:00Z", "UTC days")

    -- 3. the missing hour: 00:30Z is 01:30 CET, 01:00Z 03:00 CEST, 01:30Z
    -- 03:30 CEST: hourly keeps 01:30Z and 00:30Z.
    p = plan({ "2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z" }, { hourly = 10, tz = "local" })
    eq(kept(p), "2026-03-29T00:30:00Z 2026-03-29T01:30:00Z", "spring forward")
    eq(reason(p, "2026-03-29T01:30:00Z"), "hourly 2026-03-29T03+02:00 (1 of 10)", "03:30 CEST")

    -- 4. the 23-hour local day of 2026-03-29: 03-28 23:30Z (00:30 CET) and
    -- 03-29 21:30Z (23:30 CEST) are one local day; 03-29 22:30Z is the 30th.
    p = plan({ "2026-03-28T23:30:00Z", "2026-03-29T21:30:00Z", "2026-03-29T22:30:00Z" }, { daily = 5, tz = "local" })
    eq(kept(p), "2026-03-29T21:30:00Z 2026-03-29T22:30:00Z", "short day")
    eq(reason(p, "2026-03-29T22:30:00Z"), "daily 2026-03-30 (1 of 5)", "next local day")
    ctx.log("tz child: 4 checks passed")
  end,
}
