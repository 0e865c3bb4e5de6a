-- drrun.heroku: the Heroku Platform API and Heroku Postgres (the Data API),
-- as Heroku's Platform API reference describes them and the Heroku CLI calls them.
-- Requests, auth, retries, errors and --dry-run are drrun.api's.
--
--   local heroku = require "drrun.heroku"      -- secrets = { "HEROKU_API_KEY" }
--   local rel = drrun.must(heroku.rollback_to_last_good{ app = "shop" })
--   drrun.must(heroku.restart{ app = "shop" })
--   drrun.must(heroku.pg_restore{ app = "shop", backup = "latest", confirm = "shop" })
--
-- Every verb takes one table of options; besides its own fields, each takes
-- token (else the declared secret HEROKU_API_KEY), base_url (else
-- DRRUN_HEROKU_URL, else https://api.heroku.com), data_base_url (else
-- DRRUN_HEROKU_DATA_URL, else https://api.data.heroku.com), retry, timeout,
-- tls.  Results are the API's objects (decoded JSON); failures are nil, err,
-- token.
local core = require "drrun.core"
local json = require "drrun.json"
local api = require "drrun.api"
local T = require "drrun.backup.time"

local M = { _plain = { with = true } }
local null = api.value

local svc = api.service {
  name = "heroku",
  secret = "HEROKU_API_KEY",
  bases = {
    api = { option = "base_url", env = "DRRUN_HEROKU_URL", default = "https://api.heroku.com" },
    data = { option = "data_base_url", env = "DRRUN_HEROKU_DATA_URL",
             default = "https://api.data.heroku.com" },
  },
  -- required on every request (the Data API gets it too: harmless there)
  headers = { Accept = "application/vnd.heroku+json; version=3" },
  auth = function(token) return { Authorization = "Bearer " .. token } end,
  message = function(doc)
    if type(doc.message) == "string" and doc.message ~= "" then return doc.message end
    return type(doc.id) == "string" and doc.id or nil
  end,
}
M._service = svc

-- heroku.with{ token, base_url, ... }: the verbs with these defaults
function M.with(defaults) return api.bind(M, defaults) end

local function app_path(o, rest)
  return "/apps/" .. api.seg(o.app) .. (rest or "")
end

-- ---- releases ---------------------------------------------------------------

-- heroku.releases{ app, limit = 10, order = "desc" }: newest first (the
-- Range header "version ..; max=N, order=desc"), one page of at most
-- `limit` (up to 1000).  Also returns the Next-Range header, when the
-- server says there are more (pass it back as range = ...).
function M.releases(o)
  api.args(o, "heroku.releases", { "app" })
  local range = o.range or ("version ..; max=%d, order=%s"):format(o.limit or 10, o.order or "desc")
  local doc, r, tok = svc:get(o, app_path(o, "/releases"), nil, { headers = { Range = range } })
  if not doc then return nil, r, tok end
  return doc, r.headers and r.headers["next-range"]
end

-- Every release, newest first, page by page until `stop(release)` is true
-- or `max` releases were read: the list, and the release that stopped it.
local function scan_releases(o, stop, max)
  local list, range = {}, ("version ..; max=%d, order=desc"):format(o.page_size or 100)
  while true do
    local page, next_range, tok = M.releases(api.merge(o, { range = range }))
    if not page then return nil, next_range, tok end
    for _, rel in ipairs(page) do
      list[#list + 1] = rel
      if stop and stop(rel, list) then return list, rel end
    end
    if not next_range or #page == 0 or #list >= (max or 1000) then return list end
    range = next_range
  end
end

local function version_of(v)
  if type(v) == "number" then return math.tointeger(v) end
  if type(v) == "string" then return tonumber((v:match("^[vV]?(%d+)$"))) end
  return nil
end

-- heroku.release{ app, id | version }: one release (version may be 12 or "v12")
function M.release(o)
  api.args(o, "heroku.release", { "app" })
  local which = o.id or o.version or o.release
  api.check(which ~= nil, "heroku.release: give id = ... or version = ...")
  local v = version_of(which)
  local ref = v and tostring(v) or tostring(which)
  return svc:get(o, app_path(o, "/releases/" .. api.seg(ref)))
end

-- The current release: the newest with current = true.
function M.current_release(o)
  api.args(o, "heroku.current_release", { "app" })
  local list, cur, tok = scan_releases(o, function(rel) return rel.current == true end)
  if not list then return nil, cur, tok end
  if not cur then return nil, ("heroku: app %s has no current release"):format(o.app), "not_found" end
  return cur
end

-- Wait until a release has left "pending" (its release phase ran):
-- the release, or nil, err, "failed" when it failed.
local function wait_release(o, rel)
  if core.dry_run() or rel.dry_run then return rel end
  local done, err, tok = api.poll(function()
    local r, e, t = M.release(api.merge(o, { id = rel.id, version = false, release = false }))
    if not r then return nil, e, t end
    if r.status == "pending" then return false end
    return r
  end, { interval = o.interval or "3s", timeout = o.wait_timeout or "30m",
         what = ("release v%s of %s"):format(tostring(rel.version), o.app) })
  if not done then return nil, err, tok end
  if done.status ~= "succeeded" then
    return nil, ("heroku: release v%s of %s ended %s"):format(tostring(done.version), o.app,
      tostring(done.status)), "failed", done
  end
  return done
end

-- heroku.rollback{ app, release, wait = false }: a new release that runs
-- the code and config of `release` (a release object, its uuid, or a
-- version: 12, "v12").  Not idempotent (every POST adds a release): before
-- retrying after a 5xx or a timeout, the releases are read again, and a
-- "Rollback to vN" release made since is taken as the result.
-- With wait = true, waits for the new release's release phase.
function M.rollback(o)
  api.args(o, "heroku.rollback", { "app", "release" })
  local target = o.release
  if type(target) ~= "table" or not target.id or not target.version then
    local id = type(target) == "table" and (target.id or target.version) or target
    local err, tok
    target, err, tok = M.release(api.merge(o, { id = id, release = false }))
    if not target then return nil, err, tok end
  end
  local before, err, tok = M.releases(api.merge(o, { limit = 1 }))
  if not before then return nil, err, tok end
  local newest = before[1] and before[1].version or 0
  local desc = "Rollback to v" .. tostring(target.version)
  local rel
  rel, err, tok = svc:request(o, {
    method = "POST", path = app_path(o, "/releases"), json = { release = target.id },
    idempotent = false,
    verify = function()
      local list = M.releases(api.merge(o, { limit = 10 }))
      for _, r in ipairs(list or {}) do
        if type(r.version) == "number" and r.version > newest and r.description == desc then
          return r
        end
      end
    end,
  })
  if not rel then return nil, err, tok end
  if rel.dry_run then
    return { dry_run = true, app = o.app, rollback_to = target.version, release = target.id }
  end
  core.log(("heroku: %s: v%s, %s"):format(o.app, tostring(rel.version), tostring(rel.description or desc)))
  if o.wait then return wait_release(o, rel) end
  return rel
end

-- A release a rollback may go to: succeeded and not marked ineligible.
local function good(rel)
  return rel.status == "succeeded" and rel.eligible_for_rollback ~= false
end

-- heroku.last_good_release{ app }: the newest release before the current
-- one whose status is succeeded (and that Heroku does not mark
-- eligible_for_rollback = false); also returns the current release.
function M.last_good_release(o)
  api.args(o, "heroku.last_good_release", { "app" })
  local cur
  local list, found, tok = scan_releases(o, function(rel)
    if not cur then
      if rel.current == true then cur = rel end
      return false
    end
    return type(rel.version) == "number" and rel.version < cur.version and good(rel)
  end)
  if not list then return nil, found, tok end
  if not cur then return nil, ("heroku: app %s has no current release"):format(o.app), "not_found" end
  if not found then
    return nil, ("heroku: app %s has no succeeded release before v%s to roll back to"):format(o.app,
      tostring(cur.version)), "not_found"
  end
  return found, cur
end

-- heroku.rollback_to_last_good{ app, wait = false }: roll back to
-- last_good_release.  Returns the new release, then { from = the release
-- that was current, to = the release rolled back to }.
function M.rollback_to_last_good(o)
  api.args(o, "heroku.rollback_to_last_good", { "app" })
  local target, cur, tok = M.last_good_release(o)
  if not target then return nil, cur, tok end
  core.log(("heroku: %s: %s from v%s to v%s"):format(o.app, core.dry_run() and "would roll back"
    or "rolling back", tostring(cur.version), tostring(target.version)))
  local rel, err
  rel, err, tok = M.rollback(api.merge(o, { release = target }))
  if not rel then return nil, err, tok end
  return rel, { from = cur, to = target }
end

-- ---- dynos and formation ------------------------------------------------------

-- heroku.restart{ app [, dyno = "web.1" | type = "web"] }: restart every
-- dyno, one dyno, or one process type.  Safe to repeat.
function M.restart(o)
  api.args(o, "heroku.restart", { "app" })
  api.check(not (o.dyno and o.type), "heroku.restart: give dyno or type, not both")
  local path = o.dyno and app_path(o, "/dynos/" .. api.seg(o.dyno))
    or o.type and app_path(o, "/formations/" .. api.seg(o.type))
    or app_path(o, "/dynos")
  return svc:request(o, { method = "DELETE", path = path })
end

-- heroku.formation{ app [, type] }: the process types (or one of them)
function M.formation(o)
  api.args(o, "heroku.formation", { "app" })
  local path = o.type and app_path(o, "/formation/" .. api.seg(o.type)) or app_path(o, "/formation")
  return svc:get(o, path)
end

-- heroku.scale{ app, type, quantity, size } or heroku.scale{ app, updates =
-- { { type, quantity, size }, ... } }: absolute values, so safe to repeat.
function M.scale(o)
  api.args(o, "heroku.scale", { "app" })
  local function update(u, with_type)
    api.check(u.quantity ~= nil or u.size ~= nil, "heroku.scale: give quantity and/or size")
    api.check(u.quantity == nil or math.type(u.quantity) == "integer" and u.quantity >= 0,
      "heroku.scale: quantity must be a whole number >= 0")
    return { type = with_type and u.type or nil, quantity = u.quantity, dyno_size = u.size }
  end
  if o.updates then
    local list = {}
    for i, u in ipairs(o.updates) do
      api.check(type(u) == "table" and u.type, "heroku.scale: updates[%d] needs a type", i)
      list[i] = update(u, true)
    end
    api.check(#list > 0, "heroku.scale: updates is empty")
    return svc:request(o, { method = "PATCH", path = app_path(o, "/formation"),
                            json = { updates = list }, idempotent = true })
  end
  api.check(o.type, "heroku.scale: type is required (or updates = {...})")
  return svc:request(o, { method = "PATCH", path = app_path(o, "/formation/" .. api.seg(o.type)),
                          json = update(o), idempotent = true })
end

-- heroku.maintenance{ app, on = true|false }: the app object
function M.maintenance(o)
  api.args(o, "heroku.maintenance", { "app" })
  api.check(type(o.on) == "boolean", "heroku.maintenance: on must be true or false")
  return svc:request(o, { method = "PATCH", path = app_path(o), json = { maintenance = o.on },
                          idempotent = true })
end

-- heroku.app{ app }: the app object
function M.app(o)
  api.args(o, "heroku.app", { "app" })
  return svc:get(o, app_path(o))
end

-- ---- config vars ------------------------------------------------------------
-- (GET/PATCH /apps/{app}/config-vars, from the Platform API reference.)
-- Values are often credentials: config_get registers with
-- the redactor every value whose name looks secret (URL, KEY, TOKEN, SECRET,
-- PASSWORD, PASS, CREDENTIALS), and a dry run shows config_set's values as ***.

local SECRETISH = { "URL", "KEY", "TOKEN", "SECRET", "PASSWORD", "PASS", "CREDENTIAL", "PRIVATE" }
local function secretish(name)
  name = name:upper()
  for _, w in ipairs(SECRETISH) do
    if name:find(w, 1, true) then return true end
  end
  return false
end

-- heroku.config_get{ app [, name] }: all the config vars, or one value
function M.config_get(o)
  api.args(o, "heroku.config_get", { "app" })
  local vars, err, tok = svc:get(o, app_path(o, "/config-vars"))
  if not vars then return nil, err, tok end
  for k, v in pairs(vars) do
    if type(v) == "string" and secretish(k) then core.redact(v) end
  end
  if o.name then return null(vars[o.name]) end
  return vars
end

-- heroku.config_set{ app, vars = { NAME = "value", OLD = json.null } }:
-- sets (or, with json.null, removes) vars; the app's new config vars.
function M.config_set(o)
  api.args(o, "heroku.config_set", { "app", "vars" })
  local shown = {}
  for k, v in pairs(o.vars) do
    api.check(type(k) == "string", "heroku.config_set: var names must be strings")
    api.check(type(v) == "string" or type(v) == "number" or v == json.null,
      "heroku.config_set: %s must be a string, a number or json.null", k)
    if type(v) == "string" and secretish(k) then core.redact(v) end
    shown[k] = v == json.null and v or "***"
  end
  local vars, err, tok = svc:request(o, { method = "PATCH", path = app_path(o, "/config-vars"),
                                          json = o.vars, log_json = shown, idempotent = true })
  if not vars then return nil, err, tok end
  for k, v in pairs(vars) do
    if type(v) == "string" and secretish(k) then core.redact(v) end
  end
  return vars
end

-- ---- builds -------------------------------------------------------------------
-- (POST /apps/{app}/builds, GET /apps/{app}/builds/{id}, from the Platform
-- API reference.)

-- heroku.build{ app, url, version, checksum, wait = true, interval = "3s",
-- wait_timeout = "30m" }: builds the source tarball at url; with wait, polls
-- until the build is no longer pending and returns it, or nil, err, "failed".
-- Each POST starts a build, so it is retried after a 429 or 5xx only.
function M.build(o)
  api.args(o, "heroku.build", { "app", "url" })
  local blob = { url = o.url, version = o.version, checksum = o.checksum }
  local b, err, tok = svc:request(o, { method = "POST", path = app_path(o, "/builds"),
                                       json = { source_blob = blob }, idempotent = false })
  if not b or b.dry_run or o.wait == false then return b, err, tok end
  core.log(("heroku: %s: build %s started"):format(o.app, tostring(b.id)))
  local done
  done, err, tok = api.poll(function()
    local cur, e, t = svc:get(o, app_path(o, "/builds/" .. api.seg(b.id)))
    if not cur then return nil, e, t end
    if cur.status == "pending" then return false end
    return cur
  end, { interval = o.interval or "3s", timeout = o.wait_timeout or "30m",
         what = "build " .. tostring(b.id) })
  if not done then return nil, err, tok end
  if done.status ~= "succeeded" then
    return nil, ("heroku: build %s of %s %s"):format(tostring(done.id), o.app,
      tostring(done.status)), "failed", done
  end
  return done
end

-- ---- Heroku Postgres ----------------------------------------------------------

-- The add-on behind an attachment name (DATABASE_URL by default), as the
-- CLI resolves it before every pg call.  A POST that only reads: retried
-- like a GET.  Under --dry-run drrun.http does not send it, so the add-on
-- is then { id = <the attachment name>, dry_run = true }.
function M.pg_addon(o)
  api.args(o, "heroku.pg_addon", { "app" })
  local list, err, tok = svc:request(o, {
    method = "POST", path = "/actions/addon-attachments/resolve", read = true,
    json = { addon_attachment = o.database or "DATABASE_URL", app = o.app },
  })
  if not list then return nil, err, tok end
  if list.dry_run then -- not sent: the attachment's name stands in for the add-on
    local name = o.database or "DATABASE_URL"
    return { id = name, name = name, dry_run = true }
  end
  local first = list[1]
  if type(first) ~= "table" or type(first.addon) ~= "table" or not first.addon.id then
    return nil, ("heroku: no database %s on app %s"):format(o.database or "DATABASE_URL", o.app),
      "not_found"
  end
  return first.addon
end

-- The CLI's names: b (manual backup), a (scheduled), r (restore), c (copy),
-- then the number on 3 digits.
function M.transfer_name(t)
  local prefix
  if t.to_type == "pg_restore" then prefix = "r"
  elseif t.from_type == "pg_dump" and t.to_type == "gof3r" then
    prefix = null(t.schedule) and "a" or "b"
  else prefix = "c" end
  return ("%s%03d"):format(prefix, math.tointeger(t.num) or 0)
end

local function is_backup(t)
  return t.from_type == "pg_dump" and t.to_type == "gof3r"
end

-- heroku.pg_transfers{ app }: every transfer (backups, restores, copies),
-- each with a `name` added.
function M.pg_transfers(o)
  api.args(o, "heroku.pg_transfers", { "app" })
  local list, err, tok = svc:get(o, "/client/v11/apps/" .. api.seg(o.app) .. "/transfers", nil,
    { base = "data" })
  if not list then return nil, err, tok end
  for _, t in ipairs(list) do t.name = M.transfer_name(t) end
  return list
end

-- heroku.pg_transfer{ app, id, verbose }: one transfer (by uuid or number)
function M.pg_transfer(o)
  api.args(o, "heroku.pg_transfer", { "app", "id" })
  local t, err, tok = svc:get(o, "/client/v11/apps/" .. api.seg(o.app) .. "/transfers/"
    .. api.seg(o.id), o.verbose and { verbose = "true" } or nil, { base = "data" })
  if not t then return nil, err, tok end
  t.name = M.transfer_name(t)
  return t
end

-- heroku.pg_backups{ app }: the backups, newest first (by number)
function M.pg_backups(o)
  api.args(o, "heroku.pg_backups", { "app" })
  local list, err, tok = M.pg_transfers(o)
  if not list then return nil, err, tok end
  local out = setmetatable({}, json.array_mt)
  for _, t in ipairs(list) do
    if is_backup(t) then out[#out + 1] = t end
  end
  table.sort(out, function(a, b) return (a.num or 0) > (b.num or 0) end)
  return out
end

-- Wait for a transfer to finish (finished_at set): the transfer, or nil,
-- err, "failed" (succeeded = false; the last log line in the message).
local function wait_transfer(o, t, what)
  local done, err, tok = api.poll(function()
    local cur, e, k = M.pg_transfer(api.merge(o, { id = t.uuid }))
    if not cur then return nil, e, k end
    if not null(cur.finished_at) then return false end
    return cur
  end, { interval = o.interval or "3s", timeout = o.wait_timeout or "2h", what = what })
  if not done then return nil, err, tok end
  if done.succeeded ~= true then
    local detail = ""
    local v = M.pg_transfer(api.merge(o, { id = done.uuid, verbose = true }))
    local logs = v and null(v.logs)
    if type(logs) == "table" and #logs > 0 then
      detail = ": " .. tostring(logs[#logs].message)
    end
    return nil, ("heroku: %s failed%s"):format(what, detail), "failed", done
  end
  return done
end

-- heroku.pg_capture{ app, database = "DATABASE_URL", wait = false }: a
-- new backup (the transfer).  Each POST starts a backup: retried after a
-- 429 or 5xx only.
function M.pg_capture(o)
  api.args(o, "heroku.pg_capture", { "app" })
  local addon, err, tok = M.pg_addon(o)
  if not addon then return nil, err, tok end
  local t
  t, err, tok = svc:request(o, { method = "POST", base = "data", idempotent = false,
    path = "/client/v11/databases/" .. api.seg(addon.id) .. "/backups" })
  if not t or t.dry_run then return t, err, tok end
  t.name = M.transfer_name(t)
  core.log(("heroku: %s: backup %s of %s started"):format(o.app, t.name, tostring(addon.name)))
  if o.wait then return wait_transfer(o, t, ("backup %s of %s"):format(t.name, o.app)) end
  return t
end

-- The backup `want`: "latest" (the newest succeeded backup by
-- finished_at) or a name ("b005", "a012"): the transfer, or nil, err, token.
local function pick_backup(backups, want, app)
  local chosen
  if want == "latest" then
    for _, b in ipairs(backups) do
      if b.succeeded == true and null(b.finished_at) and
        (not chosen or tostring(b.finished_at) > tostring(chosen.finished_at)) then
        chosen = b
      end
    end
    if not chosen then
      return nil, ("heroku: app %s has no succeeded backup"):format(app), "not_found"
    end
  else
    for _, b in ipairs(backups) do
      if b.name == want then chosen = b end
    end
    if not chosen then
      return nil, ("heroku: app %s has no backup %s"):format(app, tostring(want)), "not_found"
    end
    if chosen.succeeded ~= true then
      return nil, ("heroku: backup %s of %s did not succeed"):format(want, app), "invalid"
    end
  end
  return chosen
end

-- heroku.pg_backup{ app, backup = "latest" }: one backup (the transfer):
-- "latest" is the newest succeeded one by finished_at; otherwise a name
-- like "b005" (which must have succeeded).
function M.pg_backup(o)
  api.args(o, "heroku.pg_backup", { "app" })
  local list, err, tok = M.pg_backups(o)
  if not list then return nil, err, tok end
  return pick_backup(list, o.backup or "latest", o.app)
end

-- The URL to restore from and a name for the log: a URL as it is, or the
-- backup's to_url.
local function find_backup(backups, want, app)
  if type(want) == "string" and want:match("^https?://") then return want, "a URL" end
  local chosen, err, tok = pick_backup(backups, want, app)
  if not chosen then return nil, err, tok end
  local url = null(chosen.to_url)
  if type(url) ~= "string" then
    return nil, ("heroku: backup %s of %s has no URL"):format(chosen.name, app), "invalid"
  end
  return url, chosen.name, chosen
end

-- The point a backup's data reaches, as epoch seconds: pg_dump's snapshot
-- is taken when the dump starts, so started_at (else created_at).  The Data
-- API writes "2024-05-14 09:30:12 +0000".
local function backup_point(b)
  local at = b and (null(b.started_at) or null(b.created_at))
  if type(at) ~= "string" then return nil end
  at = at:gsub("%s*UTC$", "Z"):gsub("%s*([+-]%d%d):?(%d%d)$", "%1:%2")
  return T.parse(at)
end

-- heroku.pg_restore{ app, database = "DATABASE_URL", backup = "latest" |
--   "b005" | url, confirm = app, extensions = { "hstore" }, wait = true,
--   interval = "3s", wait_timeout = "2h", ctx }
-- Overwrites the database with the backup; this cannot be undone, so
-- confirm must be the app's name (the CLI's --confirm).  Waits until the
-- restore finishes and returns the transfer, or nil, err, "failed" when it
-- did not succeed.  Not idempotent: before retrying after a 5xx or a
-- timeout, the transfers are read again and a restore that appeared since
-- is taken (and waited for) instead of starting a second one.  The result's
-- recovery_point is the backup's started_at (else created_at) in epoch
-- seconds (nil for a URL); with ctx = the step's ctx, a restore that
-- succeeded (or started, with wait = false) reports it with
-- ctx.recovery_point.
function M.pg_restore(o)
  api.args(o, "heroku.pg_restore", { "app", "backup" })
  local c = o.ctx
  if c ~= nil and not (type(c) == "table" and type(c.recovery_point) == "function") then
    error("heroku.pg_restore: ctx must be the step's ctx (run = function(ctx) ... ctx = ctx)", 2)
  end
  if o.confirm ~= o.app then
    error(("heroku.pg_restore: a restore overwrites the database of app '%s' and cannot be "
      .. "undone: pass confirm = %q"):format(tostring(o.app), tostring(o.app)), 2)
  end
  local addon, err, tok = M.pg_addon(o)
  if not addon then return nil, err, tok end
  local transfers
  transfers, err, tok = M.pg_transfers(o)
  if not transfers then return nil, err, tok end
  local known = {}
  for _, t in ipairs(transfers) do known[t.uuid] = true end
  local backups = {}
  for _, t in ipairs(transfers) do
    if is_backup(t) then backups[#backups + 1] = t end
  end
  local url, name, chosen
  url, name, chosen = find_backup(backups, o.backup, o.app)
  if not url then return nil, name, chosen end
  local point = backup_point(chosen)
  local body = { backup_url = url }
  if o.extensions then
    local ext = {}
    for i, e in ipairs(o.extensions) do ext[i] = tostring(e):lower() end
    table.sort(ext)
    body.extensions = ext
  end
  core.log(("heroku: %s: %s %s into %s"):format(o.app, core.dry_run() and "would restore" or
    "restoring", name, tostring(addon.name)))
  local t
  t, err, tok = svc:request(o, {
    method = "POST", base = "data", idempotent = false, json = body,
    path = "/client/v11/databases/" .. api.seg(addon.id) .. "/restores",
    verify = function()
      for _, x in ipairs(M.pg_transfers(o) or {}) do
        if not known[x.uuid] and x.to_type == "pg_restore" then return x end
      end
    end,
  })
  if not t then return nil, err, tok end
  if t.dry_run then
    return { dry_run = true, app = o.app, backup = name, database = addon.name }
  end
  -- the restore runs: the step's ctx learns the point it brings the data to
  local function report()
    if not c then return end
    if point then c.recovery_point(point)
    else core.log(("heroku: %s: the recovery point of %s is not known: none reported"):format(o.app, name)) end
  end
  if o.wait == false then
    report()
    t.recovery_point = point
    return t
  end
  local what = ("restore of %s into %s"):format(name, tostring(addon.name))
  local done
  done, err, tok = wait_transfer(o, t, what)
  if not done then return nil, err, tok end
  core.log(("heroku: %s: %s succeeded (%s)"):format(o.app, what, done.name))
  done.backup = name
  done.recovery_point = point
  report()
  return done
end

return M
