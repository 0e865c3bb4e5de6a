-- lib/saas.lua: the SaaS fakes' control API (tests/fakes/README.md), for the
-- saas_*_spec.lua specs; the assertions are lib/spec.lua's.  Loaded with
-- require "lib.saas" from a spec in tests/lua (a runbook's local module);
-- not a spec itself.
local http = require "drrun.http"
local json = require "drrun.json"

local F = {}

-- the fakes' control API: DRRUN_TEST_FAKES_CONTROL="heroku=URL netlify=URL ..."
function F.control(svc, method, what, body)
	local base
	for name, url in (os.getenv("DRRUN_TEST_FAKES_CONTROL") or ""):gmatch("([%w_]+)=(%S+)") do
		if name == svc then base = url:gsub("/+$", "") end
	end
	if not base then error("no control URL for the " .. svc .. " fake in DRRUN_TEST_FAKES_CONTROL", 2) end
	if not base:match("/_fake$") then base = base .. "/_fake" end
	local r, err = http.request { method = method, url = base .. "/" .. what, json = body }
	if not r or r.status ~= 200 then
		error(("%s %s/%s: %s"):format(method, base, what, r and (r.status .. " " .. r.body) or err), 2)
	end
	return json.decode(r.body)
end
function F.reset(svc) F.control(svc, "POST", "reset") end
function F.config(svc, t) return F.control(svc, "POST", "config", t) end
function F.clear(svc) F.control(svc, "DELETE", "requests") end
function F.state(svc) return F.control(svc, "GET", "state") end
-- what the fake received since the last clear, optionally only METHOD PATH
function F.received(svc, method, path)
	local out = {}
	for _, r in ipairs(F.control(svc, "GET", "requests")) do
		if (not method or r.method == method) and (not path or r.path == path) then out[#out + 1] = r end
	end
	return out
end

return F
