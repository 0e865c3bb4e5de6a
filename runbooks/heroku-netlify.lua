-- heroku-netlify.lua: the disaster-recovery plan of a Rails app on Heroku
-- (with Heroku Postgres) and its marketing site on Netlify, after a bad
-- release or a corrupted database: put everything back to the last good
-- state, and keep customers and the team informed.
--
--   drrun run runbooks/heroku-netlify.lua --param app=shop --param site=www.shop.example \
--     --param page=PAGE_ID --param components=COMPONENT_ID \
--     --param app_url=https://shop.example/healthz --param site_url=https://www.shop.example/
--
-- What it does, in this order (the plan shows the graph):
--   check_platform     Is Heroku itself up?  Restoring onto a platform that is
--                      down would not help: then the run stops (abort).
--   open_incident      A Statuspage incident from a template, components in
--                      major_outage.  (Reused, not duplicated, if the step or
--                      the run is retried.)
--   maintenance_on     The app shows its maintenance page while the data moves.
--   restore_database   Captures a safety backup of the database as it is, then
--                      restores the chosen backup (default: the newest that
--                      succeeded) and waits for it.  Asks first: it overwrites
--                      the database.
--   rollback_app       Rolls the app back to its newest good release before the
--                      current one, and restarts its dynos.
--   maintenance_off    Traffic again.
--   restore_site       Publishes the newest ready Netlify deploy before the live
--                      one, and locks it so no build publishes over it.
--   verify_app, verify_site   Health checks of both.
--   resolve_incident   Resolves the incident; components back to operational.
--   notify_team        Tells the team on Slack.
-- Every step that changes something has a rollback: the incident says the
-- recovery was rolled back (and Slack hears of it), maintenance mode goes
-- off, the safety backup is restored, the previous release comes back, the
-- previous deploy is published again.
--
-- Credentials are secrets (redacted everywhere); the endpoints can be
-- pointed elsewhere with DRRUN_HEROKU_URL, DRRUN_HEROKU_DATA_URL,
-- DRRUN_NETLIFY_URL, DRRUN_STATUSPAGE_URL and DRRUN_SLACK_URL.  Safe under
-- --dry-run: reads are done, changes are only described in the log.
local health = require "drrun.health"
local http = require "drrun.http"
local json = require "drrun.json"
local heroku = require "drrun.heroku"
local netlify = require "drrun.netlify"
local statuspage = require "drrun.statuspage"
local slack = require "drrun.slack"

runbook {
  name = "heroku-netlify",
  description = "Put a Heroku app (release and Postgres data) and its Netlify site back to the last good state",
  rto = "30m",
  rpo = "24h",
  params = {
    app = { required = true, doc = "the Heroku app" },
    database = { default = "DATABASE_URL", doc = "the app's database attachment" },
    backup = { default = "latest", doc = "the backup to restore: latest, a name like b005, or a URL" },
    safety_backup = { default = true, doc = "capture the database as it is before restoring" },
    site = { required = true, doc = "the Netlify site (id or domain)" },
    page = { required = true, doc = "the Statuspage page id" },
    components = { default = "", doc = "the Statuspage component ids that are down, comma-separated" },
    status_url = { default = "https://status.heroku.com/api/v4/current-status",
                   doc = "Heroku's status (JSON); a red Apps or Data system stops the run" },
    app_url = { required = true, doc = "the app's health check URL" },
    site_url = { required = true, doc = "the site's URL" },
    cause = { default = "a failed release", doc = "why the service is down, for the status page" },
    next_update = { default = "We will post an update within 30 minutes." },
    poll_interval = { default = "3s", doc = "how often to ask Heroku about the restore" },
  },
  secrets = { "HEROKU_API_KEY", "NETLIFY_AUTH_TOKEN", "STATUSPAGE_API_KEY", "SLACK_WEBHOOK_URL" },
}

local MSG = {
  open = "We're currently experiencing downtime of {app} due to {cause}. We are restoring the "
    .. "service from its last good release and database backup. {next_update}",
  restored = "{app} is back on its last good release and database backup, and the website on "
    .. "its last good version. We are monitoring the results.",
  resolved = "This incident has been resolved: {app} and the website are operating normally.",
  rolled_back = "The automated recovery of {app} did not complete and was rolled back. We are "
    .. "continuing to work on restoring the service. {next_update}",
  done = ":white_check_mark: Recovery of *{app}* done (run {run_id}): release v{release}, "
    .. "database from {backup}, site deploy {deploy}. Incident {incident} resolved.",
  failed = ":x: Recovery of *{app}* failed and was rolled back (run {run_id}). Incident "
    .. "{incident} is open: please take over.",
}

-- the values the templates use
local function vars(ctx, more)
  local v = { app = ctx.params.app, cause = ctx.params.cause, run_id = ctx.run_id,
              next_update = ctx.params.next_update }
  for k, x in pairs(more or {}) do v[k] = x end
  return v
end

-- the components param as { [id] = status }, or nil
local function components(ctx, status)
  local out
  for id in ctx.params.components:gmatch("[^,%s]+") do
    out = out or {}
    out[id] = status
  end
  return out
end

local function opts(ctx, extra)
  local o = { app = ctx.params.app }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

step "check_platform" {
  phase = "detect",
  timeout = "1m",
  doc = "Heroku's own status: stop if the platform itself is down",
  run = function(ctx)
    local url = ctx.params.status_url
    local r, err = http.get(url, { timeout = "10s", retry = { attempts = 3, delay = "1s" } })
    if not r or r.status ~= 200 then
      -- an unreachable status page says nothing about the platform
      ctx.log("could not read the platform status (%s); going on", err or ("HTTP " .. r.status))
      return { status = "unknown" }
    end
    local doc = json.decode(r.body)
    local red = {}
    if type(doc) == "table" and type(doc.status) == "table" then
      for _, s in ipairs(doc.status) do
        if type(s) == "table" and s.status == "red" then
          if s.system == "Apps" or s.system == "Data" then
            red[#red + 1] = s.system
          else -- e.g. Tools: the dashboard or the CLI, not the API this runbook uses
            ctx.log("Heroku reports %s as red; going on", tostring(s.system))
          end
        end
      end
    end
    if #red > 0 then
      ctx.abort("Heroku reports an outage of " .. table.concat(red, ", ")
        .. ": restoring onto it would not help; follow the platform-outage plan")
    end
    ctx.log("platform status: %s answers HTTP 200, nothing red", url)
    return { status = "up" }
  end,
}

step "open_incident" {
  phase = "communicate",
  after = "check_platform",
  timeout = "2m",
  doc = "a Statuspage incident from the template, the components in major_outage",
  run = function(ctx)
    local inc = drrun.must(statuspage.incident {
      page = ctx.params.page, ctx = ctx,
      name = ("Outage of %s"):format(ctx.params.app),
      status = "identified", impact_override = "major",
      body = statuspage.template(MSG.open, vars(ctx)),
      components = components(ctx, "major_outage"),
    })
    ctx.log("incident %s %s", inc.id, tostring(inc.shortlink))
    return { id = inc.id, shortlink = inc.shortlink }
  end,
  rollback = function(ctx, out)
    drrun.must(statuspage.update {
      page = ctx.params.page, incident = out.id, status = "identified",
      body = statuspage.template(MSG.rolled_back, vars(ctx)),
    })
    local ok, err = slack.post { text = slack.template(MSG.failed,
      vars(ctx, { incident = out.shortlink or out.id })) }
    if not ok then ctx.log("could not tell Slack: %s", err) end
  end,
}

step "maintenance_on" {
  phase = "restore",
  after = "open_incident",
  timeout = "2m",
  doc = "the app shows its maintenance page while the data moves",
  run = function(ctx)
    drrun.must(heroku.maintenance(opts(ctx, { on = true })))
  end,
  rollback = function(ctx)
    drrun.must(heroku.maintenance(opts(ctx, { on = false })))
  end,
}

step "restore_database" {
  phase = "restore",
  after = "maintenance_on",
  timeout = "2h",
  once = true,
  approve = "Overwrite the app's database with the backup (the current data is captured first)?",
  doc = "safety backup of the database as it is, then restore the chosen backup",
  run = function(ctx)
    local p = ctx.params
    local o = opts(ctx, { database = p.database, interval = p.poll_interval })
    -- which backup: decided before the safety backup, which would be the newest
    local backup = p.backup
    if not backup:match("^https?://") then
      backup = drrun.must(heroku.pg_backup(opts(ctx, { backup = p.backup }))).name
    end
    local safety
    if p.safety_backup then
      local t = drrun.must(heroku.pg_capture(opts(ctx, { database = p.database, wait = true,
                                                         interval = p.poll_interval })))
      safety = t.name
      ctx.log("safety backup: %s", tostring(safety))
    end
    local t, err = heroku.pg_restore(opts(ctx, { database = p.database, backup = backup,
      confirm = p.app, interval = p.poll_interval }))
    if not t then
      error(err .. (safety and ("; the backup taken just before is " .. safety) or ""), 0)
    end
    return { restored = t.name, backup = backup, safety = safety }
  end,
  rollback = function(ctx, out)
    if not out.safety then
      ctx.log("no safety backup was taken: the restore of %s cannot be undone", out.backup)
      return
    end
    drrun.must(heroku.pg_restore(opts(ctx, { database = ctx.params.database,
      backup = out.safety, confirm = ctx.params.app, interval = ctx.params.poll_interval })))
  end,
}

step "rollback_app" {
  phase = "restore",
  after = "restore_database",
  timeout = "15m",
  once = true, -- run twice, it would go one more release back
  doc = "the newest good release before the current one, then restart every dyno",
  run = function(ctx)
    local rel, info = drrun.must(heroku.rollback_to_last_good(opts(ctx)))
    drrun.must(heroku.restart(opts(ctx)))
    return { release = rel.version, from = info.from.version, from_id = info.from.id,
             to = info.to.version }
  end,
  rollback = function(ctx, out)
    drrun.must(heroku.rollback(opts(ctx, { release = out.from_id })))
    drrun.must(heroku.restart(opts(ctx)))
  end,
}

step "maintenance_off" {
  phase = "restore",
  after = "rollback_app",
  timeout = "2m",
  run = function(ctx)
    drrun.must(heroku.maintenance(opts(ctx, { on = false })))
  end,
}

step "restore_site" {
  phase = "restore",
  after = "open_incident",
  timeout = "5m",
  once = true, -- run twice, it would go one more deploy back
  doc = "publish the newest ready deploy before the live one, and lock it",
  run = function(ctx)
    local d, previous = drrun.must(netlify.rollback { site = ctx.params.site })
    return { deploy = d.id, previous = previous, title = d.title }
  end,
  rollback = function(ctx, out)
    drrun.must(netlify.unlock { deploy = out.deploy })
    drrun.must(netlify.restore { site = ctx.params.site, deploy = out.previous })
  end,
}

-- a health check that fails the step (and so is retried); under --dry-run
-- nothing was restored, so it only logs
local function verify(ctx, url)
  local ok, detail = health.http { url = url, status = 200, timeout = "10s" }
  if ctx.dry_run then
    ctx.log("dry run: %s", detail)
    return detail
  end
  if not ok then error(detail, 0) end
  return detail
end

step "verify_app" {
  phase = "verify",
  after = "maintenance_off",
  retry = { attempts = 10, delay = "2s", backoff = 1.5, max_delay = "15s" },
  timeout = "30s",
  run = function(ctx) return verify(ctx, ctx.params.app_url) end,
}

step "verify_site" {
  phase = "verify",
  after = "restore_site",
  retry = { attempts = 10, delay = "2s", backoff = 1.5, max_delay = "15s" },
  timeout = "30s",
  run = function(ctx) return verify(ctx, ctx.params.site_url) end,
}

step "resolve_incident" {
  phase = "communicate",
  after = { "verify_app", "verify_site" },
  timeout = "2m",
  run = function(ctx)
    local id = ctx.outputs.open_incident.id
    drrun.must(statuspage.update { page = ctx.params.page, incident = id, status = "monitoring",
      body = statuspage.template(MSG.restored, vars(ctx)) })
    drrun.must(statuspage.resolve { page = ctx.params.page, incident = id,
      body = statuspage.template(MSG.resolved, vars(ctx)) })
  end,
}

step "notify_team" {
  phase = "communicate",
  after = "resolve_incident",
  timeout = "1m",
  run = function(ctx)
    local o = ctx.outputs
    local function show(v) return v ~= nil and tostring(v) or "(dry run)" end
    drrun.must(slack.post { text = slack.template(MSG.done, vars(ctx, {
      release = show(o.rollback_app.release), backup = show(o.restore_database.backup),
      deploy = show(o.restore_site.deploy),
      incident = show(o.open_incident.shortlink or o.open_incident.id),
    })) })
  end,
}
