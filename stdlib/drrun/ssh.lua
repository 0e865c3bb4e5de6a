-- drrun.ssh: commands and file transfers on many hosts at once.
-- The sessions, channels and SFTP run on the event loop in C
-- (drrun.ssh.core, libssh2 non-blocking); this module adds the fan-out and
-- reading the OpenSSH client config the operator already has.
--
--   local ssh = require "drrun.ssh"
--   for _, r in ipairs(ssh.run({ "web1", "web2", "deploy@db1:2222" }, "systemctl restart app",
--                              { limit = 50, timeout = "1m", config = "~/.ssh/config" })) do
--     if not r.ok then ctx.log("%s: %s", r.host, r.error or r.stderr) end
--   end
local core = require "drrun.ssh.core"
local drrun = require "drrun"

local M = { libssh2_version = core.libssh2_version }

local function home(p)
  if type(p) == "string" and p:sub(1, 2) == "~/" then return (os.getenv("HOME") or ".") .. p:sub(2) end
  return p
end

-- ---- OpenSSH client config -------------------------------------------------

local Config = {}
Config.__index = Config

local function glob(p)
  return "^" .. p:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".") .. "$"
end

local function matches(patterns, name)
  local hit = false
  for _, p in ipairs(patterns) do
    if p:sub(1, 1) == "!" then
      if name:match(glob(p:sub(2))) then return false end
    elseif name:match(glob(p)) then
      hit = true
    end
  end
  return hit
end

-- ssh.config(path): read an OpenSSH client config (default ~/.ssh/config).
-- Host blocks with patterns (*, ?, !negation) and, per the first match of
-- each keyword, HostName, User, Port, IdentityFile, UserKnownHostsFile and
-- StrictHostKeyChecking.  Match blocks are skipped.  A missing file is an
-- empty config.  The file is read off the event loop (core.read_file, in
-- the thread pool), so this is called inside a step.
function M.config(path)
  path = home(path or "~/.ssh/config")
  local cfg = setmetatable({ blocks = {}, path = path }, Config)
  local text, err, tok = core.read_file(path)
  if not text then
    if tok == "not_found" then return cfg end
    error(("ssh.config: %s"):format(err), 2)
  end
  if text ~= "" and text:sub(-1) ~= "\n" then text = text .. "\n" end
  local block = { patterns = { "*" }, opts = {} }
  cfg.blocks[1] = block
  local n = 0
  for line in text:gmatch("([^\n]*)\n") do
    n = n + 1
    line = line:gsub("#.*$", ""):match("^%s*(.-)%s*$")
    if line ~= "" then
      local key, value = line:match("^(%S+)%s*=%s*(.-)$")
      if not key then key, value = line:match("^(%S+)%s+(.-)$") end
      if not key then
        error(("%s:%d: cannot read '%s'"):format(path, n, line), 2)
      end
      key = key:lower()
      value = value:gsub('^"(.*)"$', "%1")
      if key == "host" then
        local pats = {}
        for p in value:gmatch("%S+") do pats[#pats + 1] = p end
        block = { patterns = pats, opts = {} }
        cfg.blocks[#cfg.blocks + 1] = block
      elseif key == "match" then
        block = { patterns = {}, opts = {} }   -- never matches
        cfg.blocks[#cfg.blocks + 1] = block
      elseif key == "identityfile" then
        block.opts.identityfile = block.opts.identityfile or value
      elseif block.opts[key] == nil then
        block.opts[key] = value
      end
    end
  end
  return cfg
end

-- cfg:resolve(alias) -> { name, host, port, user, key, known_hosts, host_key }
function Config:resolve(alias)
  local o = {}
  for _, b in ipairs(self.blocks) do
    if matches(b.patterns, alias) then
      for k, v in pairs(b.opts) do if o[k] == nil then o[k] = v end end
    end
  end
  local hostname = (o.hostname or alias):gsub("%%h", alias)
  local shk = o.stricthostkeychecking and o.stricthostkeychecking:lower()
  local port = tonumber(o.port) or 22
  -- the tokens ssh_config(5) allows in IdentityFile and UserKnownHostsFile
  local tokens = { ["%"] = "%", d = os.getenv("HOME") or ".", h = hostname, n = alias,
                   p = tostring(port), r = o.user or os.getenv("USER") or "",
                   u = os.getenv("USER") or "" }
  local function path(p)
    return p and home((p:gsub("%%(.)", function(c) return tokens[c] end)))
  end
  return {
    name = alias,
    host = hostname,
    port = port,
    user = o.user,
    key = path(o.identityfile),
    known_hosts = path(o.userknownhostsfile and o.userknownhostsfile:match("^(%S+)")),
    host_key = shk == "accept-new" and "accept-new" or nil,
  }
end

-- ---- hosts and fan-out ------------------------------------------------------

-- A host is "host", "user@host", "user@host:port", or a table
-- { host, port, user, key, known_hosts, host_key, passphrase, agent }.
-- Names found in the config (opts.config) take their settings from it;
-- explicit fields and opts fill what is missing.
local function spec(h, opts, cfg)
  local s = {}
  if type(h) == "table" then
    for k, v in pairs(h) do s[k] = v end
  else
    local user, rest = tostring(h):match("^([^@]+)@(.+)$")
    rest = rest or tostring(h)
    local host, port = rest:match("^%[(.+)%]:(%d+)$")
    if not host then host, port = rest:match("^([^:]+):(%d+)$") end
    s.host, s.port, s.user = host or rest, tonumber(port), user
  end
  s.name = s.name or s.host
  if cfg then
    local c = cfg:resolve(s.host)
    s.host = c.host
    for _, k in ipairs { "port", "user", "key", "known_hosts", "host_key" } do
      if s[k] == nil then s[k] = c[k] end
    end
  end
  for _, k in ipairs { "port", "user", "key", "known_hosts", "host_key", "passphrase", "agent",
                       "timeout" } do
    if s[k] == nil then s[k] = opts[k] end
  end
  s.port = s.port or 22
  s.timeout = opts.connect_timeout or s.timeout
  return s
end

M.connect = core.connect

-- ssh.hosts(list, { config = path }) -> the connection specs, resolved
function M.hosts(list, opts)
  opts = opts or {}
  local cfg = opts.config and M.config(opts.config) or nil
  local out = {}
  for i, h in ipairs(list) do out[i] = spec(h, opts, cfg) end
  return out
end

-- ssh.run(hosts, cmd, { limit = 100, timeout, connect_timeout, stdin, pty,
--   max_output, user, key, port, known_hosts, host_key, config })
-- Runs cmd on every host, at most `limit` at a time, reusing the run's
-- pooled sessions.  Returns one result per host, in host order:
--   { name, host, port, ok, status, signal, stdout, stderr, duration }
--   or { name, host, port, ok = false, error, token } when it could not run.
function M.run(hosts, cmd, opts)
  assert(type(hosts) == "table", "ssh.run expects a list of hosts")
  assert(type(cmd) == "string", "ssh.run expects a command string")
  opts = opts or {}
  local specs = M.hosts(hosts, opts)
  return drrun.parallel(specs, function(s)
    local sess, err, tok = core.connect(s)
    local r
    if sess then
      r, err, tok = sess:exec(cmd, { timeout = opts.timeout, stdin = opts.stdin, pty = opts.pty,
                                     max_output = opts.max_output })
    end
    if not r then
      return { name = s.name, host = s.host, port = s.port, ok = false, error = err, token = tok }
    end
    r.name, r.host, r.port, r.ok = s.name, s.host, s.port, r.status == 0
    return r
  end, { limit = opts.limit or 100 })
end

return M
