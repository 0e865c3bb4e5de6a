-- Requiring the modules opens their libraries then, and they work.
local http = require "drrun.http"
local crypto = require "drrun.crypto"
local ssh = require "drrun.ssh"

runbook { name = "startup-uses-libraries" }

step "a" {
	run = function(ctx)
		-- nothing listens on port 9 of loopback
		local r, err, tok = http.get("http://127.0.0.1:9/", { timeout = "2s" })
		ctx.log("http: " .. tostring(tok))
		ctx.log("sha256: " .. crypto.sha256_hex("abc"))
		ctx.log("ssh: " .. tostring(ssh ~= nil))
		return { token = tok }
	end,
}
