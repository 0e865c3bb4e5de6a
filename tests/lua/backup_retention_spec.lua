-- backup_retention_spec: backup.retention against calendars computed by hand
-- (the expected sets below were worked out on paper, not by the planner):
-- year and month ends, a leap day, ISO weeks that straddle a new year, fixed
-- UTC offsets, keep_last / older_than / keep_all, bad policies, and apply
-- over real files.  The DST calendars need drrun's own zone set, so they run
-- in a child drrun with TZ=Europe/Berlin (backup_tz_child.lua).
--
--   drrun run backup_retention_spec.lua   (from tests/lua; exit 0 = pass)
local backup = require "drrun.backup"
local BT = require "drrun.backup.time"
local exec = require "drrun.exec"

runbook { name = "backup-retention-spec" }

local T = require "lib.spec"
local eq, has, raises_with, sh = T.eq, T.has, T.raises_with, T.sh

local function at(s) return assert(BT.parse(s), s) end
local function name(t) return os.date("!%Y-%m-%dT%H:%MZ", t) end

-- backups from first to last (RFC 3339) every step seconds, named by UTC time
local function series(first, last, step)
  local out = {}
  for t = at(first), at(last), step do out[#out + 1] = { name = name(t), time = t } end
  return out
end

-- the names a plan keeps, sorted, joined by spaces
local function kept(plan)
  local n = {}
  for _, e in ipairs(plan.keep) do n[#n + 1] = e.name end
  table.sort(n)
  return table.concat(n, " ")
end

local function reason_of(plan, nm)
  for _, e in ipairs(plan.items) do if e.name == nm then return e.action, e.reason end end
  error("no entry " .. nm, 2)
end

local DAY = 86400

-- ---- the calendar helpers -----------------------------------------------------

step "calendar" {
  run = function()
    eq(BT.days(1970, 1, 1), 0, "epoch")
    eq(BT.days(2000, 3, 1), 11017, "2000-03-01")
    local y, m, d = BT.civil(BT.days(2028, 2, 29)); eq(y * 10000 + m * 100 + d, 20280229, "leap day")
    eq(BT.parse("2026-02-29T00:00:00Z"), nil, "no Feb 29 in 2026")
    eq(BT.parse("2026-12-01T05:00:00Z"), 1796101200, "RFC 3339 Z")
    eq(BT.parse("2026-12-01T06:30:00+01:30"), 1796101200, "RFC 3339 offset")
    eq(BT.parse("2026-12-01 05:00:00.5Z"), 1796101200.5, "fraction, space")
    eq(BT.parse("2026-12-01T05:00:00"), nil, "no zone: not a time")
    eq(BT.parse("yesterday"), nil, "words")
    -- ISO weeks (ISO 8601: week 1 holds the first Thursday)
    local function wk(s) local yy, w = BT.iso_week(BT.days(s[1], s[2], s[3])); return ("%d-W%02d"):format(yy, w) end
    eq(wk { 2025, 12, 28 }, "2025-W52", "Sun 2025-12-28")
    eq(wk { 2025, 12, 29 }, "2026-W01", "Mon 2025-12-29 is in 2026")
    eq(wk { 2026, 12, 28 }, "2026-W53", "2026 has 53 weeks")
    eq(wk { 2027, 1, 3 }, "2026-W53", "Sun 2027-01-03 is still 2026's")
    eq(wk { 2027, 1, 4 }, "2027-W01", "Mon 2027-01-04")
    eq(wk { 2021, 1, 1 }, "2020-W53", "Fri 2021-01-01")
    eq(BT.duration("90d"), 90 * DAY, "90d")
    eq(BT.duration("2w3d"), 17 * DAY, "2w3d")
    eq(BT.duration("1d12h"), 1.5 * DAY, "1d12h")
    eq(BT.duration("1h30m"), 5400, "1h30m")
    eq(BT.duration("90"), nil, "no unit")
    eq(BT.duration("1h1d"), nil, "order")
    eq(BT.duration("3y"), nil, "no years")
  end,
}

-- ---- UTC: a year end ------------------------------------------------------------

-- Daily at 23:30Z from 2026-11-25 to 2027-01-05 (42 backups).  By hand:
--   daily 7:   01-05 01-04 01-03 01-02 01-01 12-31 12-30
--   weekly 4:  2027-W01 -> 01-05 (Tue); 2026-W53 (Mon 12-28 .. Sun 01-03) -> 01-03;
--              W52 -> 12-27; W51 -> 12-20
--   monthly 3: 2027-01 -> 01-05; 2026-12 -> 12-31; 2026-11 -> 11-30
step "year_end_utc" {
  run = function()
    local b = series("2026-11-25T23:30:00Z", "2027-01-05T23:30:00Z", DAY)
    eq(#b, 42, "backups")
    local p = backup.retention { backups = b, policy = { daily = 7, weekly = 4, monthly = 3 },
                                 now = "2027-01-06T00:00:00Z" }
    eq(kept(p), table.concat({ "2026-11-30T23:30Z", "2026-12-20T23:30Z", "2026-12-27T23:30Z",
      "2026-12-30T23:30Z", "2026-12-31T23:30Z", "2027-01-01T23:30Z", "2027-01-02T23:30Z",
      "2027-01-03T23:30Z", "2027-01-04T23:30Z", "2027-01-05T23:30Z" }, " "), "kept")
    eq(#p.delete, 32, "deleted")
    local a, r = reason_of(p, "2027-01-03T23:30Z")
    eq(a, "keep", "01-03"); eq(r, "daily 2027-01-03 (3 of 7); weekly 2026-W53 (2 of 4)", "01-03 reasons")
    a, r = reason_of(p, "2026-12-31T23:30Z")
    eq(r, "daily 2026-12-31 (6 of 7); monthly 2026-12 (2 of 3)", "12-31 reasons")
    a, r = reason_of(p, "2026-12-28T23:30Z")
    eq(a, "delete", "12-28"); eq(r, "not kept by any rule", "12-28 reason")
    eq(p.items[1].name, "2027-01-05T23:30Z", "newest first")
    eq(p.policy.tz, "Z", "UTC by default")
  end,
}

-- The same backups in a fixed zone +02:00: 23:30Z is 01:30 the next local
-- day, so each bucket holds different backups.  By hand (UTC names):
--   daily 7 (local 01-06 .. 12-31): 01-05 .. 12-30, as before
--   weekly 4: local W01 -> 01-05; local W53 ends Sun 01-03 local = 01-02Z;
--             W52 ends local 12-27 = 12-26Z; W51 ends local 12-20 = 12-19Z
--   monthly 3: local 2027-01 -> 01-05; local 2026-12 ends at local 12-31 01:30
--             = 12-30Z; local 2026-11 -> 11-29Z
step "year_end_plus2" {
  run = function()
    local b = series("2026-11-25T23:30:00Z", "2027-01-05T23:30:00Z", DAY)
    local p = backup.retention { backups = b, now = "2027-01-06T00:00:00Z",
                                 policy = { daily = 7, weekly = 4, monthly = 3, tz = "+02:00" } }
    eq(kept(p), table.concat({ "2026-11-29T23:30Z", "2026-12-19T23:30Z", "2026-12-26T23:30Z",
      "2026-12-30T23:30Z", "2026-12-31T23:30Z", "2027-01-01T23:30Z", "2027-01-02T23:30Z",
      "2027-01-03T23:30Z", "2027-01-04T23:30Z", "2027-01-05T23:30Z" }, " "), "kept")
    local _, r = reason_of(p, "2026-12-30T23:30Z")
    eq(r, "daily 2026-12-31 (7 of 7); monthly 2026-12 (2 of 3)", "local day and month")
    eq(p.policy.tz, "+02:00", "zone recorded")
  end,
}

-- ISO weeks across 2025/2026: Sun 2025-12-28 is 2025-W52, Mon 2025-12-29 and
-- Thu 2026-01-01 are 2026-W01.  weekly 3 keeps 01-01 and 12-28 only.
step "iso_week_new_year" {
  run = function()
    local b = { { name = "sun", time = "2025-12-28T12:00:00Z" }, { name = "mon", time = "2025-12-29T12:00:00Z" },
                { name = "thu", time = "2026-01-01T12:00:00Z" } }
    local p = backup.retention { backups = b, policy = { weekly = 3 }, now = "2026-01-02T00:00:00Z" }
    eq(kept(p), "sun thu", "kept")
    local _, r = reason_of(p, "sun"); eq(r, "weekly 2025-W52 (2 of 3)", "sun")
    _, r = reason_of(p, "thu"); eq(r, "weekly 2026-W01 (1 of 3)", "thu")
  end,
}

-- Every 30 minutes from 2028-02-28T20:00Z to 2028-03-01T02:00Z (61 backups,
-- 2028 is a leap year).  hourly 5: 03-01 02:00, 01:30, 00:30, 02-29 23:30,
-- 22:30; daily 3: 03-01 02:00, 02-29 23:30, 02-28 23:30.
step "leap_month_end_hourly" {
  run = function()
    local b = series("2028-02-28T20:00:00Z", "2028-03-01T02:00:00Z", 1800)
    eq(#b, 61, "backups")
    local p = backup.retention { backups = b, policy = { hourly = 5, daily = 3 }, now = "2028-03-01T02:10:00Z" }
    eq(kept(p), "2028-02-28T23:30Z 2028-02-29T22:30Z 2028-02-29T23:30Z 2028-03-01T00:30Z "
      .. "2028-03-01T01:30Z 2028-03-01T02:00Z", "kept")
    local _, r = reason_of(p, "2028-02-29T23:30Z")
    eq(r, "hourly 2028-02-29T23Z (4 of 5); daily 2028-02-29 (2 of 3)", "leap day reasons")
  end,
}

-- A half-hour zone (+05:30): local hours start at :30Z.  00:00Z is 05:30,
-- 00:15Z 05:45 (same hour), 00:45Z 06:15 (the next): hourly 5 keeps 00:45Z
-- and 00:15Z.
step "half_hour_zone" {
  run = function()
    local b = { { name = "a", time = "2026-06-01T00:00:00Z" }, { name = "b", time = "2026-06-01T00:15:00Z" },
                { name = "c", time = "2026-06-01T00:45:00Z" } }
    local p = backup.retention { backups = b, policy = { hourly = 5, tz = "+05:30" }, now = "2026-06-01T01:00:00Z" }
    eq(kept(p), "b c", "kept")
    local _, r = reason_of(p, "b"); eq(r, "hourly 2026-06-01T05+05:30 (2 of 5)", "b")
  end,
}

-- ---- keep_last, older_than, keep_all, defaults ---------------------------------

-- ten backups, ages 1h, 10d1h, 20d1h ... 90d1h at now = 2026-12-01T00:00Z
local NOW = "2026-12-01T00:00:00Z"
local function aged()
  local b = {}
  for k = 0, 9 do b[#b + 1] = { name = "b" .. k, time = at(NOW) - k * 10 * DAY - 3600 } end
  return b
end
local function names(list)
  local n = {}
  for _, e in ipairs(list) do n[#n + 1] = e.name end
  table.sort(n)
  return table.concat(n, " ")
end

step "keep_last_older_than" {
  run = function()
    local p = backup.retention { backups = aged(), policy = { keep_last = 5, older_than = "30d" }, now = NOW }
    eq(names(p.keep), "b0 b1 b2 b3 b4", "keep_last is a floor under older_than")
    eq(names(p.delete), "b5 b6 b7 b8 b9", "older ones")
    local _, r = reason_of(p, "b4"); eq(r, "keep_last 5 of 5", "b4 (age 40d1h, kept by the floor)")
    _, r = reason_of(p, "b5"); eq(r, "older than 30d (age 50d1h)", "b5")
    _, r = reason_of(p, "b1"); eq(r, "keep_last 2 of 5; within 30d (age 10d1h)", "b1")

    p = backup.retention { backups = aged(), policy = { keep_last = 1, older_than = "30d" }, now = NOW }
    eq(names(p.keep), "b0 b1 b2", "younger than 30d kept without GFS rules")
    _, r = reason_of(p, "b3"); eq(r, "older than 30d (age 30d1h)", "just past the limit")

    p = backup.retention { backups = aged(), policy = { keep_last = 3 }, now = NOW }
    eq(names(p.keep), "b0 b1 b2", "keep_last alone")
    _, r = reason_of(p, "b3"); eq(r, "not kept by any rule", "b3")

    -- every backup past the limit: the newest stays
    local old = {}
    for k = 4, 9 do old[#old + 1] = aged()[k + 1] end
    p = backup.retention { backups = old, policy = { older_than = "30d" }, now = NOW }
    eq(names(p.keep), "b4", "never delete them all")
    _, r = reason_of(p, "b4"); eq(r, "the newest backup (a plan never deletes every backup)", "why")

    p = backup.retention { backups = aged(), policy = { keep_all = true, keep_last = 1 }, now = NOW }
    eq(#p.keep, 10, "keep_all"); eq(#p.delete, 0, "keep_all deletes nothing")
    _, r = reason_of(p, "b9"); eq(r, "keep_all", "keep_all reason")
  end,
}

-- GFS under an older_than cap.  Daily at 12:00Z from 2026-09-01 to
-- 2026-11-30, now 2026-12-01T00:00Z: daily 7 -> 11-24 .. 11-30; monthly 12
-- -> 11-30, 10-31 (age 30d12h), 09-30 (age 61d12h: past 40d, deleted).
step "gfs_capped" {
  run = function()
    local b = series("2026-09-01T12:00:00Z", "2026-11-30T12:00:00Z", DAY)
    local p = backup.retention { backups = b, policy = { daily = 7, monthly = 12, older_than = "40d" }, now = NOW }
    eq(kept(p), "2026-10-31T12:00Z 2026-11-24T12:00Z 2026-11-25T12:00Z 2026-11-26T12:00Z "
      .. "2026-11-27T12:00Z 2026-11-28T12:00Z 2026-11-29T12:00Z 2026-11-30T12:00Z", "kept")
    local a, r = reason_of(p, "2026-09-30T12:00Z")
    eq(a, "delete", "09-30"); eq(r, "older than 40d (age 61d12h)", "cap wins over monthly")
    a = reason_of(p, "2026-11-23T12:00Z"); eq(a, "delete", "young but thinned by GFS")
  end,
}

-- The seed's defaults when the policy names no rule: hourly 24, daily 7,
-- weekly 4, monthly 12.  Hourly backups over 3 days (72, the last at
-- 2026-12-03T23:00Z): hourly keeps 12-03T00 .. 12-03T23 (24), daily adds the
-- newest of 12-02 and of 12-01 (23:00 each); weekly and monthly pick the
-- 12-03 23:00 one and nothing older (Tue 12-01 .. Thu 12-03 is one ISO week,
-- 2026-W49, and one month): 26 kept.
step "defaults" {
  run = function()
    local b = series("2026-12-01T00:00:00Z", "2026-12-03T23:00:00Z", 3600)
    eq(#b, 72, "backups")
    local p = backup.retention { backups = b, now = "2026-12-04T00:00:00Z" }
    eq(p.policy.defaults, true, "defaults applied")
    eq(p.policy.hourly, 24, "hourly"); eq(p.policy.monthly, 12, "monthly")
    eq(#p.keep, 26, "kept")
    local _, r = reason_of(p, "2026-12-03T23:00Z")
    eq(r, "hourly 2026-12-03T23Z (1 of 24); daily 2026-12-03 (1 of 7); weekly 2026-W49 (1 of 4); "
      .. "monthly 2026-12 (1 of 12)", "newest")
    _, r = reason_of(p, "2026-12-01T23:00Z"); eq(r, "daily 2026-12-01 (3 of 7)", "oldest day")
    -- a policy with only tz still gets the defaults
    p = backup.retention { backups = b, policy = { tz = "UTC" }, now = "2026-12-04T00:00:00Z" }
    eq(#p.keep, 26, "tz alone")
    -- an empty list is a plan with nothing in it
    p = backup.retention { backups = {} }
    eq(#p.keep + #p.delete, 0, "empty")
  end,
}

-- ---- misuse raises, naming the field ---------------------------------------------

step "bad_input" {
  run = function()
    local b = { { name = "x", time = NOW } }
    raises_with("policy.dayly: unknown field", backup.retention, { backups = b, policy = { dayly = 7 } })
    raises_with("policy.daily must be a whole number >= 0, not -1", backup.retention,
      { backups = b, policy = { daily = -1 } })
    raises_with("policy.hourly must be a whole number >= 0, not 2.5", backup.retention,
      { backups = b, policy = { hourly = 2.5 } })
    raises_with("policy.older_than: invalid duration '90'", backup.retention,
      { backups = b, policy = { older_than = "90" } })
    raises_with("policy.tz: 'Europe/Paris'", backup.retention, { backups = b, policy = { tz = "Europe/Paris" } })
    raises_with("backups[2].time: not a time (2026-13-01T00:00:00Z)", backup.retention,
      { backups = { b[1], { name = "y", time = "2026-13-01T00:00:00Z" } } })
    raises_with("backups[1] needs a name", backup.retention, { backups = { { time = NOW } } })
    raises_with("unknown field 'polcy'", backup.retention, { backups = b, polcy = {} })
    raises_with("now: not a time", backup.retention, { backups = b, now = "soon" })
    raises_with("the plan both keeps and deletes 'x'", backup.apply,
      { keep = { { name = "x" } }, delete = { { name = "x" } } })
  end,
}

-- ---- apply over real files ------------------------------------------------------

step "apply_files" {
  run = function(ctx)
    local dir = T.state_dir() .. "/retention-files"
    sh('rm -rf "$1" && mkdir -p "$1"', dir)
    local b = {}
    for k = 0, 5 do
      local p = ("%s/db-%d.dump"):format(dir, k)
      sh('echo data >"$1"', p)
      b[#b + 1] = { path = p, time = at(NOW) - k * DAY }
    end
    -- a file the plan does not mention must survive too
    sh('echo other >"$1/unrelated"', dir)
    local plan = backup.retention { backups = b, policy = { keep_last = 2 }, now = NOW }
    local lines = {}
    local res = backup.apply(plan, { log = function(l) lines[#lines + 1] = l; ctx.log("%s", l) end })
    eq(#res.deleted, 4, "deleted"); eq(#res.failed, 0, "failed"); eq(res.kept, 2, "kept")
    eq(res.dry_run, false, "not a dry run")
    eq(sh('cd "$1" && ls | sort | tr "\\n" " "', dir), "db-0.dump db-1.dump unrelated ", "what is left")
    has(table.concat(lines, "\n"), "delete " .. dir .. "/db-5.dump", "the plan is printed")
    -- a deleter that fails for one backup does not stop the others
    for k = 2, 5 do sh('echo data >"$1"', ("%s/db-%d.dump"):format(dir, k)) end
    local seen = {}
    res = backup.apply(plan, { log = function() end, delete = function(bk)
      seen[#seen + 1] = bk.path
      if bk.path:find("db%-3") then return nil, "io: refused" end
      return exec.run { "rm", "--", bk.path }.status == 0
    end })
    eq(#seen, 4, "called for each deletion"); eq(#res.deleted, 3, "three went")
    eq(res.failed[1].name, dir .. "/db-3.dump", "the failure named"); eq(res.failed[1].error, "io: refused", "its error")
  end,
}

-- ---- DST: a child drrun in Europe/Berlin -------------------------------------------

step "dst_europe_berlin" {
  run = function()
    local me = assert(exec.run { "bash", "-c", "readlink /proc/$PPID/exe" })
    local drrun = me.stdout:gsub("%s+$", "")
    local r = assert(exec.run { drrun, "run", "--no-color", "--state-dir", T.state_dir() .. "/tz-child",
      "backup_tz_child.lua", env = { TZ = "Europe/Berlin" }, timeout = "60s" })
    if r.status ~= 0 then error("backup_tz_child.lua in Europe/Berlin failed:\n" .. r.stdout .. r.stderr) end
    has(r.stdout, "tz child: 4 checks passed", "child ran its checks")
  end,
}
