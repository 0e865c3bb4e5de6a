-- drrun.statuspage: the Atlassian Statuspage Manage API (the service's
-- API reference): incidents, their updates, component statuses.  Requests,
-- auth, retries, errors and --dry-run are drrun.api's.
--
--   local sp = require "drrun.statuspage"      -- secrets = { "STATUSPAGE_API_KEY" }
--   local inc = drrun.must(sp.incident{ page = P, name = "Checkout is down",
--     status = "identified", body = sp.template(MSG, { cause = "a database failure" }),
--     components = { [COMPONENT] = "major_outage" }, ctx = ctx })
--   inc:update{ status = "monitoring", body = "The fix is live." }
--   inc:resolve{ body = "Resolved." }              -- components back to operational
--
-- Every verb takes one table of options; besides its own, each takes token
-- (else the declared secret STATUSPAGE_API_KEY), base_url (else
-- DRRUN_STATUSPAGE_URL, else https://api.statuspage.io/v1), retry, timeout,
-- tls.  Auth is "Authorization: OAuth <key>" (never the ?api_key= query).
local core = require "drrun.core"
local api = require "drrun.api"

local M = { _plain = { with = true, template = true } }
local null = api.value

local svc = api.service {
  name = "statuspage",
  secret = "STATUSPAGE_API_KEY",
  bases = { api = { option = "base_url", env = "DRRUN_STATUSPAGE_URL",
                    default = "https://api.statuspage.io/v1" } },
  auth = function(token) return { Authorization = "OAuth " .. token } end,
}
M._service = svc

-- statuspage.template("... {cause} ...", vars): see drrun.api.template
M.template = api.template

-- statuspage.with{ token, base_url, ... }: the verbs with these defaults
function M.with(defaults) return api.bind(M, defaults) end

local INCIDENT_STATUS = { investigating = true, identified = true, monitoring = true,
                          resolved = true, scheduled = true, in_progress = true,
                          verifying = true, completed = true }
local COMPONENT_STATUS = { operational = true, under_maintenance = true,
                           degraded_performance = true, partial_outage = true,
                           major_outage = true }
local IMPACT = { none = true, maintenance = true, minor = true, major = true, critical = true }

local function page_path(o, rest)
  return "/pages/" .. api.seg(o.page) .. rest
end

-- components = { [id] = status }: checked; the sorted ids
local function check_components(verb, comps)
  local ids = {}
  if comps == nil then return nil end
  api.check(type(comps) == "table", "%s: components must map component ids to statuses", verb)
  for id, st in pairs(comps) do
    api.check(type(id) == "string", "%s: components must map component ids to statuses", verb)
    api.check(COMPONENT_STATUS[st], "%s: component %s: unknown status %s (want operational, "
      .. "under_maintenance, degraded_performance, partial_outage or major_outage)", verb, id,
      tostring(st))
    ids[#ids + 1] = id
  end
  table.sort(ids)
  return ids
end

local function check_text(verb, o)
  api.check(o.status == nil or INCIDENT_STATUS[o.status], "%s: unknown status %s (want "
    .. "investigating, identified, monitoring or resolved)", verb, tostring(o.status))
  api.check(o.name == nil or type(o.name) == "string" and #o.name <= 255,
    "%s: name must be a string of at most 255 characters", verb)
  api.check(o.body == nil or type(o.body) == "string" and #o.body <= 25000,
    "%s: body must be a string of at most 25000 characters", verb)
  api.check(o.impact_override == nil or IMPACT[o.impact_override],
    "%s: impact_override must be none, maintenance, minor, major or critical", verb)
end

-- ---- incident handles ------------------------------------------------------
-- A handle is plain data (id, page, name, status, shortlink, key,
-- components = { [id] = status } as drrun last set them, updates = the
-- number of incident updates) with methods in its metatable, so a step may
-- return it: the journal gets the data.  The options it was made with
-- (token, base_url, ...) are kept outside it.

local Incident = {}
Incident.__index = Incident
local private = setmetatable({}, { __mode = "k" })

local function make_handle(o, doc, components)
  local meta = type(null(doc.metadata)) == "table" and null(doc.metadata.drrun) or nil
  local comps = {}
  for _, c in ipairs(type(null(doc.components)) == "table" and doc.components or {}) do
    if type(c) == "table" and c.id then comps[c.id] = c.status end
  end
  for id, st in pairs(components or {}) do comps[id] = st end
  local h = setmetatable({
    id = doc.id, page = o.page, name = null(doc.name), status = null(doc.status),
    shortlink = null(doc.shortlink), key = type(meta) == "table" and null(meta.key) or o.key,
    components = comps,
    updates = type(null(doc.incident_updates)) == "table" and #doc.incident_updates or 0,
  }, Incident)
  private[h] = o
  return h
end

-- The incident's own state, as Statuspage has it
function Incident:refresh()
  local o = private[self] or { page = self.page }
  local doc, err, tok = svc:get(o, page_path(o, "/incidents/" .. api.seg(self.id)))
  if not doc then return nil, err, tok end
  local fresh = make_handle(o, doc, self.components)
  for k, v in pairs(fresh) do self[k] = v end
  return self
end

-- handle:update{ status, body, components = { [id] = status }, name,
-- impact_override, deliver_notifications = true }: the handle, updated.
-- Each update with a body is a message to subscribers, so before retrying
-- after a 5xx or a timeout the incident is read again: an update with this
-- body that appeared since means it went through.
function Incident:update(u)
  api.args(u, "incident:update")
  check_text("incident:update", u)
  local comps = u.components or nil -- false: none
  local ids = check_components("incident:update", comps)
  local o = private[self] or { page = self.page }
  local known = self.updates or 0
  local body = { incident = { status = u.status, body = u.body, name = u.name,
    impact_override = u.impact_override, components = comps, component_ids = ids,
    deliver_notifications = u.deliver_notifications ~= false } }
  local doc, err, tok = svc:request(o, {
    method = "PATCH", path = page_path(o, "/incidents/" .. api.seg(self.id)), json = body,
    idempotent = u.body == nil,
    verify = function()
      local cur = svc:get(o, page_path(o, "/incidents/" .. api.seg(self.id)))
      local ups = cur and null(cur.incident_updates)
      if type(ups) ~= "table" or #ups <= known then return nil end
      for _, up in ipairs(ups) do
        if up.body == u.body then return cur end
      end
    end,
  })
  if not doc then return nil, err, tok end
  for id, st in pairs(comps or {}) do self.components[id] = st end
  if doc.dry_run then
    if u.status then self.status = u.status end
    return self
  end
  local fresh = make_handle(o, doc, self.components)
  for k, v in pairs(fresh) do self[k] = v end
  core.log(("statuspage: incident %s is %s"):format(tostring(self.id), tostring(self.status)))
  return self
end

-- handle:resolve{ body, components }: status "resolved"; every component
-- drrun set on it goes back to operational, unless components says
-- otherwise (a map, or false for none).
function Incident:resolve(u)
  u = u or {}
  api.args(u, "incident:resolve")
  local comps = u.components
  if comps == nil then
    comps = {}
    for id in pairs(self.components or {}) do comps[id] = "operational" end
    if next(comps) == nil then comps = nil end
  elseif comps == false then
    comps = nil
  end
  return self:update(api.merge(u, { status = "resolved", components = comps or false }))
end

-- ---- verbs ------------------------------------------------------------------

-- statuspage.unresolved{ page }: the open incidents
function M.unresolved(o)
  api.args(o, "statuspage.unresolved", { "page" })
  return svc:get(o, page_path(o, "/incidents/unresolved"))
end

-- statuspage.get{ page, incident }: a handle on an existing incident
function M.get(o)
  api.args(o, "statuspage.get", { "page", "incident" })
  local id = type(o.incident) == "table" and o.incident.id or o.incident
  if id == "dry-run" and core.dry_run() then -- the placeholder a dry run's incident{} gave
    local h = make_handle(o, { id = id }, type(o.incident) == "table" and o.incident.components)
    h.dry_run = true
    return h
  end
  local doc, err, tok = svc:get(o, page_path(o, "/incidents/" .. api.seg(id)))
  if not doc then return nil, err, tok end
  return make_handle(o, doc, type(o.incident) == "table" and o.incident.components or nil)
end

-- The key that marks drrun's incident (in metadata.drrun.key): the key
-- option, else one derived from the run (ctx) and the name, else from the
-- name alone.
local function incident_key(o)
  if o.key then return o.key end
  if type(o.ctx) == "table" and o.ctx.run_id then
    return ("drrun:%s:%s"):format(o.ctx.run_id, api.hash(o.name, 12))
  end
  return "drrun:" .. api.hash(o.name, 12)
end

-- An open incident drrun made with this key (or, for an incident whose
-- metadata the API did not return, this name).
local function find_open(o, key)
  local list = M.unresolved(o)
  for _, inc in ipairs(type(list) == "table" and list or {}) do
    local meta = type(null(inc.metadata)) == "table" and null(inc.metadata.drrun)
    if type(meta) == "table" and meta.key == key then return inc end
    if meta == nil and null(inc.metadata) == nil and inc.name == o.name then return inc end
  end
  return nil
end

-- statuspage.incident{ page, name, status = "investigating", body,
--   components = { [id] = "major_outage" }, impact_override,
--   deliver_notifications = true, metadata = { team = { ... } }, key, ctx,
--   reuse = true }: a handle (see above).
-- A POST makes a new incident each time, so drrun marks its incidents with
-- a key in metadata.drrun (the key option; with ctx =, derived from the run
-- and the name; otherwise from the name) and first looks among the
-- unresolved incidents for one with that key: if there is one (a retried
-- step, a resumed run), it is reused, not duplicated (reuse = false turns
-- that off).  The same look is taken before retrying after a 5xx or a
-- timeout.
function M.incident(o)
  api.args(o, "statuspage.incident", { "page", "name" })
  check_text("statuspage.incident", o)
  local ids = check_components("statuspage.incident", o.components)
  local key = incident_key(o)
  local opts = api.merge(o, { key = key, ctx = false })
  if o.reuse ~= false then
    local open = find_open(o, key)
    if open then
      core.log(("statuspage: incident %s (%s) is already open: reusing it"):format(open.id, key))
      return make_handle(opts, open, o.components)
    end
  end
  local meta = api.merge(o.metadata, { drrun = { key = key,
    run_id = type(o.ctx) == "table" and o.ctx.run_id or nil } })
  local doc, err, tok = svc:request(o, {
    method = "POST", path = page_path(o, "/incidents"), idempotent = false,
    json = { incident = { name = o.name, status = o.status or "investigating", body = o.body,
      impact_override = o.impact_override, components = o.components, component_ids = ids,
      deliver_notifications = o.deliver_notifications ~= false, metadata = meta } },
    verify = function() return find_open(o, key) end,
  })
  if not doc then return nil, err, tok end
  if doc.dry_run then
    local h = make_handle(opts, { id = "dry-run", name = o.name,
      status = o.status or "investigating" }, o.components)
    h.dry_run = true
    return h
  end
  core.log(("statuspage: incident %s opened: %s"):format(tostring(doc.id), o.name))
  return make_handle(opts, doc, o.components)
end

-- statuspage.update{ page, incident, status, body, components, ... } and
-- statuspage.resolve{ page, incident, body, components }: the same as the
-- handle's methods, for an incident known by id (e.g. from a step's output
-- in a rollback, or after drrun resume).
function M.update(o)
  api.args(o, "statuspage.update", { "page", "incident" })
  local h, err, tok = M.get(o)
  if not h then return nil, err, tok end
  return h:update(o)
end

function M.resolve(o)
  api.args(o, "statuspage.resolve", { "page", "incident" })
  local h, err, tok = M.get(o)
  if not h then return nil, err, tok end
  return h:resolve(o)
end

-- statuspage.component{ page, id, status }: the component.  Setting the
-- same status again is harmless: retried like a read.
function M.component(o)
  api.args(o, "statuspage.component", { "page", "id", "status" })
  api.check(COMPONENT_STATUS[o.status], "statuspage.component: unknown status %s",
    tostring(o.status))
  return svc:request(o, { method = "PATCH", idempotent = true,
    path = page_path(o, "/components/" .. api.seg(o.id)),
    json = { component = { status = o.status } } })
end

-- statuspage.components{ page }: the page's components
function M.components(o)
  api.args(o, "statuspage.components", { "page" })
  return svc:get(o, page_path(o, "/components"))
end

return M
