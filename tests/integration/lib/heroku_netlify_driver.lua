-- heroku_netlify_driver.lua: the test driver of the heroku-netlify cases
-- (050, 051, 052 run it with `args run @CASE@/../lib/heroku_netlify_driver.lua`).  The harness runs drrun with a minimal
-- environment and no servers, so this runbook
--   1. starts tests/servers.sh (nginx and the SaaS fakes) under the run dir,
--   2. configures the fakes (--param fail_restore=true: the next Heroku
--      restore fails),
--   3. runs runbooks/heroku-netlify.lua in a drrun of its own, with the
--      fakes' URLs in DRRUN_<SERVICE>_URL and the credentials as the
--      runbook's declared secrets: HEROKU_API_KEY, NETLIFY_AUTH_TOKEN and
--      STATUSPAGE_API_KEY from the case's `env` directives (this runbook
--      declares them too, so they are redacted here as well), and
--      SLACK_WEBHOOK_URL from the fakes' env; its state dir is
--      $DRRUN_STATE_DIR/inner, its output inner.out,
--   4. saves what each fake received and its state in fakes/SERVICE.*.json,
--   5. stops the servers (also the rollback of step 1).
-- check.py then asserts on the inner journal and the fakes' records.
-- DRRUN_REPO (a case `env` directive) is the repository's root.
local exec = require "drrun.exec"
local http = require "drrun.http"

runbook {
  name = "heroku-netlify-e2e",
  params = {
    fail_restore = { default = false, doc = "the fake's next restore finishes with succeeded=false" },
    dry_run = { default = false, doc = "run the runbook with --dry-run" },
  },
  secrets = { "HEROKU_API_KEY", "NETLIFY_AUTH_TOKEN", "STATUSPAGE_API_KEY" },
}

local REPO = os.getenv("DRRUN_REPO")
local SERVERS = (os.getenv("HOME") or ".") .. "/servers"
local FAKES = { "heroku", "netlify", "statuspage", "pagerduty", "slack" }
local E = {} -- the servers' env (kept out of the journal: it holds the webhook)

local function sh(...)
  local r = drrun.must(exec.run { ... })
  if r.status ~= 0 then error(("%s failed (%s): %s"):format((...), tostring(r.status), r.stderr), 0) end
  return r
end

local function control(svc, method, what, body)
  local base = E.control[svc]
  local r = drrun.must(http.request { method = method, url = base .. "/" .. what, json = body })
  if r.status ~= 200 then error(("%s %s/%s: HTTP %d %s"):format(method, base, what, r.status, r.body), 0) end
  return r.body
end

step "start_servers" {
  timeout = "1m",
  run = function()
    assert(REPO, "DRRUN_REPO is not set (a case env directive)")
    sh(REPO .. "/tests/servers.sh", "start", SERVERS)
    local r = sh("bash", "-c", '. "$1/env" && env', "env", SERVERS)
    for k, v in r.stdout:gmatch("(DRRUN_[%w_]+)=([^\n]*)") do E[k] = v end
    E.control = {}
    for svc, url in (E.DRRUN_TEST_FAKES_CONTROL or ""):gmatch("([%w_]+)=(%S+)") do E.control[svc] = url end
    for _, svc in ipairs(FAKES) do assert(E.control[svc], "no control URL for " .. svc) end
    return { heroku = E.DRRUN_HEROKU_URL, netlify = E.DRRUN_NETLIFY_URL }
  end,
  rollback = function()
    sh(REPO .. "/tests/servers.sh", "stop", SERVERS)
  end,
}

step "configure_fakes" {
  after = "start_servers",
  run = function(ctx)
    for _, svc in ipairs(FAKES) do control(svc, "POST", "reset") end
    if ctx.params.fail_restore then
      control("heroku", "POST", "config", { fail_next_restore = true })
    end
  end,
}

step "run_runbook" {
  after = "configure_fakes",
  timeout = "3m",
  run = function(ctx)
    local argv = { "bash", "-c", [[
      exe=$(readlink "/proc/$PPID/exe")   # the drrun running this case
      "$exe" "$@" >inner.out 2>&1
      echo $? >inner.status]], "inner",
      "run", "--yes", "--no-color", "--state-dir", os.getenv("DRRUN_STATE_DIR") .. "/inner",
      REPO .. "/runbooks/heroku-netlify.lua",
      "--param", "app=myapp",
      "--param", "site=3970e0fe-8564-4903-9a55-c5f8de49fb8b",
      "--param", "page=kctbh9vrtdwd",
      "--param", "components=b13yz5g2cw10,ftgks51sfs2d",
      "--param", "status_url=" .. E.DRRUN_TEST_HTTP .. "/healthz",
      "--param", "app_url=" .. E.DRRUN_TEST_HTTP .. "/healthz",
      "--param", "site_url=" .. E.DRRUN_TEST_HTTP .. "/",
      "--param", "poll_interval=100ms",
    }
    if ctx.params.dry_run then argv[#argv + 1] = "--dry-run" end
    argv.env = {
      DRRUN_HEROKU_URL = E.DRRUN_HEROKU_URL, DRRUN_HEROKU_DATA_URL = E.DRRUN_HEROKU_DATA_URL,
      DRRUN_NETLIFY_URL = E.DRRUN_NETLIFY_URL, DRRUN_STATUSPAGE_URL = E.DRRUN_STATUSPAGE_URL,
      DRRUN_PAGERDUTY_URL = E.DRRUN_PAGERDUTY_URL,
      SLACK_WEBHOOK_URL = E.DRRUN_TEST_SLACK_WEBHOOK,
    }
    argv.timeout = "170s"
    local r = drrun.must(exec.run(argv))
    if r.status ~= 0 then error("the inner run could not be started: " .. r.stderr, 0) end
    local status = sh("cat", "inner.status").stdout:gsub("%s+", "")
    ctx.log("runbooks/heroku-netlify.lua exited %s", status)
    return { exit = tonumber(status) }
  end,
}

step "save_fakes" {
  after = "run_runbook",
  run = function()
    sh("mkdir", "-p", "fakes")
    for _, svc in ipairs(FAKES) do
      for _, what in ipairs { "requests", "state" } do
        local body = control(svc, "GET", what)
        drrun.must(exec.run { "sh", "-c", 'cat >"$1"', "save", ("fakes/%s.%s.json"):format(svc, what),
                              stdin = body })
      end
    end
  end,
}

step "stop_servers" {
  after = "save_fakes",
  run = function()
    sh(REPO .. "/tests/servers.sh", "stop", SERVERS)
  end,
}
