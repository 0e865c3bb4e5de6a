-- drrun.slack: Slack incoming webhooks (Slack's incoming-webhooks docs).
-- Requests, retries, errors and --dry-run are drrun.api's.
--
--   local slack = require "drrun.slack"        -- secrets = { "SLACK_WEBHOOK_URL" }
--   drrun.must(slack.post{ text = slack.template("Failover of {app} done in {secs}s", vars) })
--
-- The webhook URL is the credential: the url option (registered for
-- redaction), else the declared secret SLACK_WEBHOOK_URL.  Logs, dry runs
-- and errors show only its scheme and host ("https://hooks.slack.com/***").
-- base_url (else DRRUN_SLACK_URL) replaces the scheme, host and port of the
-- webhook URL and keeps its path, for a proxy or a test server.
-- A webhook has no idempotency: a post is retried after a 429 (Retry-After)
-- or a 5xx, never after a timeout or a dropped connection, which could
-- post it twice.
local api = require "drrun.api"
local core = require "drrun.core"

local M = { _plain = { with = true, template = true } }

local svc = api.service {
  name = "slack",
  secret = "SLACK_WEBHOOK_URL",
  token_option = "url",
  bases = {},
  show_url = function(url) return (url:match("^(https?://[^/]+)") or "") .. "/***" end,
  decode_body = function(r) return { ok = true, body = r.body } end,
}
M._service = svc

-- slack.template("... {name} ...", vars): see drrun.api.template
M.template = api.template

-- slack.with{ url, base_url, ... }: the verbs with these defaults
function M.with(defaults) return api.bind(M, defaults) end

-- The URL to post to: the webhook URL, its scheme and host replaced by
-- base_url or DRRUN_SLACK_URL when one is set.
local function webhook(o)
  local url = svc:token(o)
  if not url:match("^https?://[^/]+/") then
    error("slack: the webhook URL must be an http:// or https:// URL with a path", 0)
  end
  local base = o.base_url
  if base == nil or base == "" then base = os.getenv("DRRUN_SLACK_URL") end
  if base and base ~= "" then
    if not base:match("^https?://[^/]") then
      error("slack: base_url must be an http:// or https:// URL, not " .. base, 0)
    end
    url = base:gsub("/+$", "") .. url:gsub("^https?://[^/]+", "")
  end
  return url
end

-- slack.post{ text, blocks, attachments, thread_ts, mrkdwn, unfurl_links,
--   unfurl_media }: { ok = true }, or nil, "slack: <Slack's error, e.g.
--   invalid_payload> (HTTP 400)", token.  text is the notification text
--   (needed unless blocks are given).
function M.post(o)
  api.args(o, "slack.post")
  api.check(type(o.text) == "string" and o.text ~= "" or type(o.blocks) == "table",
    "slack.post: text is required (the notification text; blocks alone need it as a fallback too)")
  local r, err, tok = svc:request(o, { method = "POST", url = webhook(o), idempotent = false,
    json = { text = o.text, blocks = o.blocks, attachments = o.attachments,
             thread_ts = o.thread_ts, mrkdwn = o.mrkdwn, unfurl_links = o.unfurl_links,
             unfurl_media = o.unfurl_media } })
  if not r then return nil, err, tok end
  if r.dry_run then return { dry_run = true } end
  core.log("slack: posted: " .. (o.text or "(blocks)"):gsub("\n.*", " ..."):sub(1, 200))
  return { ok = true }
end

return M
