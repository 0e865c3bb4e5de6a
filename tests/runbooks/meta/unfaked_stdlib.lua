-- Statuspage is not faked: drrun.statuspage's real code runs, down to the
-- HTTP layer, where the guard stops it.  The failure must name the layer,
-- the module function the runbook called and the runbook's line.
local t = require "drrun.test"
t.runbook "../../../runbooks/heroku-netlify.lua"
t.case "statuspage left unfaked" {
  params = { app = "shop", site = "www.shop.example", page = "pg1",
             app_url = "https://shop.example/healthz", site_url = "https://www.shop.example/" },
  secrets = { HEROKU_API_KEY = "hk-0123456789abcdef", NETLIFY_AUTH_TOKEN = "nf-0123456789abcdef",
              STATUSPAGE_API_KEY = "sp-0123456789abcdef",
              SLACK_WEBHOOK_URL = "https://hooks.slack.example/T0/B0/0123456789abcdef" },
  fake = { ["drrun.http"] = { get = function() return { status = 200, body = "{}" } end } },
  expect = { result = "completed" },
}
