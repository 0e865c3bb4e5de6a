-- drrun.pagerduty: the PagerDuty Events API v2 (PagerDuty's Events API
-- v2 reference): trigger, acknowledge and resolve alerts.  Requests, retries, errors
-- and --dry-run are drrun.api's.
--
--   local pd = require "drrun.pagerduty"       -- secrets = { "PAGERDUTY_ROUTING_KEY" }
--   local ev = drrun.must(pd.trigger{ summary = "orders: failing over", source = "drrun",
--                                     severity = "critical", ctx = ctx })
--   ... pd.resolve{ dedup_key = ev.dedup_key }
--
-- There is no auth header: the integration key goes in the body as
-- routing_key.  It is the routing_key (or token) option, else the declared
-- secret PAGERDUTY_ROUTING_KEY; a dry run shows it as ***.  base_url (else
-- DRRUN_PAGERDUTY_URL, else https://events.pagerduty.com) replaces the host
-- part; the path is /v2/enqueue.
--
-- Idempotency is the dedup_key: every event carries one, so a retried
-- request (after a 5xx, a 429 or even a timeout) or a retried step updates
-- the same alert instead of paging twice.  The default key is
--   drrun:<runbook>:<run_id>:<12 hex of SHA-256(summary)>   with ctx = ctx
--   drrun:<12 hex of SHA-256(source .. "\n" .. summary)>    without
-- so the same summary in the same run is the same alert.
local api = require "drrun.api"
local core = require "drrun.core"

local M = { _plain = { with = true } }

local svc = api.service {
  name = "pagerduty",
  secret = "PAGERDUTY_ROUTING_KEY",
  token_option = "routing_key",
  token_alias = "token",
  bases = { api = { option = "base_url", env = "DRRUN_PAGERDUTY_URL",
                    default = "https://events.pagerduty.com" } },
  message = function(doc)
    local msg = type(doc.message) == "string" and doc.message or nil
    local errs = api.flat(doc.errors)
    if msg and errs then return msg .. ": " .. errs end
    return msg or errs
  end,
}
M._service = svc

-- pagerduty.with{ routing_key, base_url, ... }: the verbs with these defaults
function M.with(defaults) return api.bind(M, defaults) end

local SEVERITY = { critical = true, error = true, warning = true, info = true }

-- The runbook's name, from a run id like 20261122T053102.768Z-failover-9c8d
local function runbook_of(run_id)
  return tostring(run_id):match("^%d+T[%d.]+Z%-(.+)%-%x+$")
end

-- pagerduty.dedup_key{ summary, source, ctx }: the key trigger would use
function M.dedup_key(o)
  api.args(o, "pagerduty.dedup_key", { "summary" })
  if type(o.ctx) == "table" and o.ctx.run_id then
    local rb = runbook_of(o.ctx.run_id)
    return ("drrun:%s%s:%s"):format(rb and (rb .. ":") or "", o.ctx.run_id, api.hash(o.summary, 12))
  end
  return "drrun:" .. api.hash((o.source or "drrun") .. "\n" .. o.summary, 12)
end

-- a string cut to at most n bytes, on a UTF-8 character boundary
local function cut(s, n)
  if #s <= n then return s end
  local i = n
  while i > 0 and (s:byte(i + 1) or 0) & 0xC0 == 0x80 do i = i - 1 end
  return s:sub(1, i)
end

local function send(o, event)
  local key = svc:token(o)
  event.routing_key = key
  local shown = api.merge(event, { routing_key = "***" })
  local doc, err, tok = svc:request(o, { method = "POST", path = "/v2/enqueue", json = event,
                                         log_json = shown, idempotent = true })
  if not doc then return nil, err, tok end
  if doc.dry_run then return { dry_run = true, dedup_key = event.dedup_key } end
  core.log(("pagerduty: %s %s: %s"):format(event.event_action, tostring(doc.dedup_key or event.dedup_key),
    tostring(doc.message or doc.status)))
  return { status = doc.status, message = doc.message, dedup_key = doc.dedup_key or event.dedup_key }
end

-- pagerduty.trigger{ summary, source = "drrun", severity = "critical",
--   dedup_key, ctx, custom_details = {...}, component, group, class,
--   timestamp, links = { { href, text } }, images = { { src, href, alt } },
--   client = "drrun", client_url }: { status, message, dedup_key }.
-- A summary over 1024 bytes is cut to 1024.
function M.trigger(o)
  api.args(o, "pagerduty.trigger", { "summary" })
  local severity = o.severity or "critical"
  api.check(SEVERITY[severity], "pagerduty.trigger: severity must be critical, error, warning "
    .. "or info, not %s", tostring(severity))
  api.check(type(o.summary) == "string", "pagerduty.trigger: summary must be a string")
  api.check(o.custom_details == nil or type(o.custom_details) == "table",
    "pagerduty.trigger: custom_details must be a table")
  local key = o.dedup_key or M.dedup_key(o)
  api.check(type(key) == "string" and #key <= 255, "pagerduty.trigger: dedup_key must be a "
    .. "string of at most 255 characters")
  return send(o, {
    event_action = "trigger", dedup_key = key,
    payload = { summary = cut(o.summary, 1024), source = o.source or "drrun", severity = severity,
      timestamp = o.timestamp, component = o.component, group = o.group, class = o.class,
      custom_details = o.custom_details },
    links = o.links, images = o.images, client = o.client or "drrun", client_url = o.client_url,
  })
end

local function follow_up(action)
  return function(o)
    local verb = "pagerduty." .. action
    api.args(o, verb)
    local key = o.dedup_key
    if key == nil and o.summary then key = M.dedup_key(o) end
    if type(key) == "table" then key = key.dedup_key end -- trigger's result
    api.check(type(key) == "string" and key ~= "", "%s: dedup_key is required (trigger's "
      .. "result has it; or give the same summary and ctx as the trigger)", verb)
    return send(o, { event_action = action, dedup_key = key })
  end
end

-- pagerduty.acknowledge{ dedup_key } and pagerduty.resolve{ dedup_key }
-- (or the trigger's summary and ctx, which give the same key)
M.acknowledge = follow_up("acknowledge")
M.resolve = follow_up("resolve")

return M
