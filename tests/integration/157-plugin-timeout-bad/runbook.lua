-- Each bad timeout must raise before anything starts; the step collects the
-- messages and returns them as its output.
local exec = require "drrun.exec"
local http = require "drrun.http"
local hcore = require "drrun.http.core"
local ssh = require "drrun.ssh"

runbook { name = "plugin-timeout-bad" }

local function msg(f, ...)
	local ok, err = pcall(f, ...)
	return ok and "accepted" or tostring(err)
end

step "probe" {
	run = function()
		return {
			msg(exec.run, { "true", timeout = 0 / 0 }),
			msg(exec.run, { "true", timeout = math.huge }),
			msg(exec.run, { "true", timeout = "0s" }),
			msg(exec.run, { "true", timeout = 0 }),
			msg(exec.run, { "true", timeout = -1 }),
			msg(http.get, "http://127.0.0.1:9/", { timeout = 0 }),
			msg(http.get, "http://127.0.0.1:9/", { connect_timeout = 0 / 0 }),
			msg(ssh.connect, { host = "127.0.0.1", port = 9, timeout = math.huge }),
			msg(hcore.connect, "127.0.0.1", 9, 0),
			msg(drrun.sleep, 0 / 0),
			drrun.sleep(0) == nil and "ok" or "sleep(0) failed",
		}
	end,
}
