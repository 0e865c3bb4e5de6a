-- drrun.netlify: the Netlify API (its open-api reference): deploys,
-- restoring (publishing) an old deploy, locking auto-publishing, builds.
-- Requests, auth, retries, errors and --dry-run are drrun.api's.
--
--   local netlify = require "drrun.netlify"    -- secrets = { "NETLIFY_AUTH_TOKEN" }
--   local d = drrun.must(netlify.rollback{ site = "marketing.example.com" })
--
-- Every verb takes one table of options; besides its own, each takes token
-- (else the declared secret NETLIFY_AUTH_TOKEN), base_url (else
-- DRRUN_NETLIFY_URL, else https://api.netlify.com/api/v1), retry, timeout,
-- tls.  `site` is the site id or its domain name.  A 429 waits for
-- Retry-After, else for X-RateLimit-Reset (as Netlify's own client does).
local core = require "drrun.core"
local api = require "drrun.api"

local M = { _plain = { with = true } }
local null = api.value

local svc = api.service {
  name = "netlify",
  secret = "NETLIFY_AUTH_TOKEN",
  bases = { api = { option = "base_url", env = "DRRUN_NETLIFY_URL",
                    default = "https://api.netlify.com/api/v1" } },
  auth = function(token) return { Authorization = "Bearer " .. token } end,
  reset_header = "x-ratelimit-reset",
}
M._service = svc

-- netlify.with{ token, base_url, ... }: the verbs with these defaults
function M.with(defaults) return api.bind(M, defaults) end

local function site_path(o, rest)
  return "/sites/" .. api.seg(o.site) .. (rest or "")
end

local function deploy_id(d)
  if type(d) == "table" then return d.id end
  return d
end

-- netlify.site{ site }: the site (published_deploy.id is the live deploy)
function M.site(o)
  api.args(o, "netlify.site", { "site" })
  return svc:get(o, site_path(o))
end

-- netlify.deploys{ site, state, branch, production, page = 1, per_page = 100 }:
-- one page of the site's deploys, as the API orders them (newest first).
function M.deploys(o)
  api.args(o, "netlify.deploys", { "site" })
  return svc:get(o, site_path(o, "/deploys"), {
    page = o.page, per_page = o.per_page or 100, state = o.state, branch = o.branch,
    production = o.production and "true" or nil,
  })
end

-- netlify.deploy{ deploy [, site] }: one deploy
function M.deploy(o)
  api.args(o, "netlify.deploy", { "deploy" })
  local id = api.seg(deploy_id(o.deploy))
  if o.site then return svc:get(o, site_path(o, "/deploys/" .. id)) end
  return svc:get(o, "/deploys/" .. id)
end

-- netlify.lock{ deploy } / netlify.unlock{ deploy }: stop (or resume)
-- auto-publishing, so the next build does not overwrite a restored deploy.
-- Safe to repeat.
function M.lock(o)
  api.args(o, "netlify.lock", { "deploy" })
  return svc:request(o, { method = "POST", idempotent = true,
                          path = "/deploys/" .. api.seg(deploy_id(o.deploy)) .. "/lock" })
end

function M.unlock(o)
  api.args(o, "netlify.unlock", { "deploy" })
  return svc:request(o, { method = "POST", idempotent = true,
                          path = "/deploys/" .. api.seg(deploy_id(o.deploy)) .. "/unlock" })
end

-- netlify.restore{ site, deploy, lock = false }: publish an old deploy
-- (only state "ready" deploys can be); the deploy.  Publishing the one
-- already live is harmless, so this is retried like a read.  lock = true
-- then locks it.
function M.restore(o)
  api.args(o, "netlify.restore", { "site", "deploy" })
  local id = deploy_id(o.deploy)
  local d, err, tok = svc:request(o, { method = "POST", idempotent = true,
    path = site_path(o, "/deploys/" .. api.seg(id) .. "/restore") })
  if not d then return nil, err, tok end
  if d.dry_run then
    d = { dry_run = true, id = id, site = o.site }
  else
    core.log(("netlify: %s: published deploy %s"):format(o.site, tostring(id)))
  end
  if o.lock then
    local ok
    ok, err, tok = M.lock(api.merge(o, { deploy = id }))
    if not ok then return nil, err, tok end
    d.locked = true
  end
  return d
end

-- Production deploys (context absent or "production"), newest first by
-- created_at, reading at most `pages` pages.
local function production_deploys(o, pages)
  local all = {}
  for page = 1, pages or 10 do
    local list, err, tok = M.deploys(api.merge(o, { page = page, per_page = 100 }))
    if not list then return nil, err, tok end
    for _, d in ipairs(list) do
      local ctx = null(d.context)
      if ctx == nil or ctx == "production" then all[#all + 1] = d end
    end
    if #list < 100 then break end
  end
  table.sort(all, function(a, b) return tostring(a.created_at) > tostring(b.created_at) end)
  return all
end

-- netlify.last_good_deploy{ site }: the newest "ready" production deploy
-- created before the published one; also returns the published deploy's id.
function M.last_good_deploy(o)
  api.args(o, "netlify.last_good_deploy", { "site" })
  local site, err, tok = M.site(o)
  if not site then return nil, err, tok end
  local live = type(null(site.published_deploy)) == "table" and null(site.published_deploy.id)
  if not live then
    return nil, ("netlify: site %s has no published deploy"):format(o.site), "not_found"
  end
  local list
  list, err, tok = production_deploys(o)
  if not list then return nil, err, tok end
  local seen
  for _, d in ipairs(list) do
    if seen and d.state == "ready" and d.id ~= live then return d, live end
    if d.id == live then seen = d end
  end
  if not seen then
    return nil, ("netlify: the published deploy %s of %s is not among its deploys"):format(live,
      o.site), "not_found"
  end
  return nil, ("netlify: site %s has no ready deploy older than the published one (%s)"):format(
    o.site, live), "not_found"
end

-- netlify.rollback{ site, lock = true }: publish the newest ready deploy
-- before the published one, and lock it (unless lock = false) so that the
-- next build does not publish over it.  Returns that deploy, then the id of
-- the deploy that was live (to restore it again).
function M.rollback(o)
  api.args(o, "netlify.rollback", { "site" })
  local target, live, tok = M.last_good_deploy(o)
  if not target then return nil, live, tok end
  core.log(("netlify: %s: %s from deploy %s to %s (%s)"):format(o.site,
    core.dry_run() and "would roll back" or "rolling back", live, target.id,
    tostring(null(target.title) or null(target.commit_ref) or target.created_at)))
  local d, err
  d, err, tok = M.restore(api.merge(o, { deploy = target.id, lock = o.lock ~= false }))
  if not d then return nil, err, tok end
  d.previous = live
  return d, live
end

-- Wait until a deploy is ready: the deploy, or nil, err, "failed" when it
-- ends in "error" or "rejected".
local function wait_deploy(o, id)
  local d, err, tok = api.poll(function()
    local cur, e, t = M.deploy(api.merge(o, { deploy = id, site = false }))
    if not cur then return nil, e, t end
    if cur.state == "ready" or cur.state == "error" or cur.state == "rejected" then return cur end
    return false
  end, { interval = o.interval or "3s", timeout = o.wait_timeout or "30m",
         what = "deploy " .. tostring(id) })
  if not d then return nil, err, tok end
  if d.state ~= "ready" then
    return nil, ("netlify: deploy %s ended %s: %s"):format(id, d.state,
      tostring(null(d.error_message) or "no message")), "failed", d
  end
  return d
end

-- netlify.build{ site, branch, clear_cache, title, wait = true,
-- interval = "3s", wait_timeout = "30m" }: start a build; with wait, the
-- deploy it made once ready (or nil, err, "failed"), else the build.  Each
-- POST starts a build: retried after a 429 or 5xx, never after a timeout.
function M.build(o)
  api.args(o, "netlify.build", { "site" })
  local b, err, tok = svc:request(o, { method = "POST", idempotent = false,
    path = site_path(o, "/builds"),
    query = { branch = o.branch, clear_cache = o.clear_cache and "true" or nil, title = o.title } })
  if not b or b.dry_run or o.wait == false then return b, err, tok end
  core.log(("netlify: %s: build %s started (deploy %s)"):format(o.site, tostring(b.id),
    tostring(b.deploy_id)))
  return wait_deploy(o, b.deploy_id)
end

-- netlify.cancel{ deploy }: cancel a deploy that is building
function M.cancel(o)
  api.args(o, "netlify.cancel", { "deploy" })
  return svc:request(o, { method = "POST", idempotent = true,
                          path = "/deploys/" .. api.seg(deploy_id(o.deploy)) .. "/cancel" })
end

return M
