-- dry_run_shapes.lua: not a spec of its own; dry_run_spec.lua runs it with
-- `drrun run --dry-run`.  Every plugin's dry-run placeholder must be the one
-- documented shape (RUNBOOKS.md, "Dry runs"); the step raises otherwise.
-- Needs the ssh servers of tests/sshd.sh (DRRUN_TEST_SSH_*).
local exec = require "drrun.exec"
local http = require "drrun.http"
local crypto = require "drrun.crypto"
local ssh = require "drrun.ssh"

runbook { name = "dry-run-shapes" }

local PORT = tonumber((os.getenv("DRRUN_TEST_SSH_PORTS") or ""):match("%d+") or "")

local WANT = { dry_run = true, status = 0, stdout = "", stderr = "", body = "", bytes = 0,
	sha256 = "", duration = 0 }

local function check(name, r)
	if type(r) ~= "table" then error(("%s: no result table (%s)"):format(name, tostring(r)), 2) end
	for k, v in pairs(WANT) do
		if r[k] ~= v then
			error(("%s: %s = %s, want %s"):format(name, k, tostring(r[k]), tostring(v)), 2)
		end
	end
	if type(r.headers) ~= "table" or next(r.headers) ~= nil then
		error(("%s: headers must be an empty table"):format(name), 2)
	end
	-- (methods a module adds, like http's r.json, are not data)
	for k, v in pairs(r) do
		if WANT[k] == nil and k ~= "headers" and type(v) ~= "function" then
			error(("%s: extra field %s"):format(name, k), 2)
		end
	end
end

step "shapes" {
	run = function(ctx)
		if not ctx.dry_run then error("run me with --dry-run") end
		check("exec.run", exec.run { "touch", "never-exec" })
		check("http.request", drrun.must(http.request { method = "POST", url = "http://127.0.0.1:9/never" }))
		check("crypto.encrypt_file", drrun.must(crypto.encrypt_file(crypto.key(), "/nonexistent", "never.enc")))
		local s = drrun.must(ssh.connect { host = "127.0.0.1", port = PORT,
			user = os.getenv("DRRUN_TEST_SSH_USER"), key = os.getenv("DRRUN_TEST_SSH_KEY"),
			known_hosts = os.getenv("DRRUN_TEST_SSH_KNOWN_HOSTS"), agent = false, timeout = "10s" })
		check("session:exec", drrun.must(s:exec("touch never-ssh")))
		check("session:put", drrun.must(s:put("/nonexistent", "never-put")))
		check("session:get", drrun.must(s:get("/nonexistent", "never-get")))
		return { checked = 6 }
	end,
}
