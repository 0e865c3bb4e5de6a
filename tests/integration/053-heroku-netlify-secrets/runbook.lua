-- The SaaS modules take their credentials from the runbook's declared
-- secrets (or a token option) and from nowhere else, and under --dry-run
-- they send nothing: the log shows the request they would send, with the
-- credentials as ***.  No server is needed: nothing is sent.
local heroku = require "drrun.heroku"
local netlify = require "drrun.netlify"
local pagerduty = require "drrun.pagerduty"
local slack = require "drrun.slack"
local statuspage = require "drrun.statuspage"

runbook {
  name = "saas-secrets",
  secrets = { "HEROKU_API_KEY", "PAGERDUTY_ROUTING_KEY", "SLACK_WEBHOOK_URL" },
}

step "heroku" {
  doc = "HEROKU_API_KEY, declared; the endpoint from DRRUN_HEROKU_URL",
  run = function()
    return drrun.must(heroku.restart { app = "myapp", type = "web" })
  end,
}

step "netlify_undeclared" {
  doc = "NETLIFY_AUTH_TOKEN is in the environment but not declared: not used",
  run = function()
    local ok, err = pcall(netlify.lock, { deploy = "6650e2a4c2f1a10008b3c001" })
    assert(not ok, "netlify.lock must raise without a declared secret")
    return { error = err }
  end,
}

step "pagerduty" {
  doc = "the routing key goes in the body: shown as ***",
  run = function(ctx)
    return drrun.must(pagerduty.trigger { summary = "orders: failing over", source = "drrun", ctx = ctx })
  end,
}

step "slack" {
  doc = "the webhook URL is the credential: only its host is shown",
  run = function()
    return drrun.must(slack.post { text = "hello" })
  end,
}

step "token_option" {
  doc = "a token passed as an option is redacted like a declared secret",
  run = function(ctx)
    local c = drrun.must(statuspage.component { page = "kctbh9vrtdwd", id = "b13yz5g2cw10",
      status = "major_outage", token = "option-token-7c1d9e" })
    ctx.log("the option token is option-token-7c1d9e")
    return c
  end,
}
