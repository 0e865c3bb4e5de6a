local http = require "drrun.http"

runbook { name = "startup-uses-http" }

step "a" {
	run = function(ctx)
		-- nothing listens on port 9 of loopback
		local r, err, tok = http.get("http://127.0.0.1:9/", { timeout = "2s" })
		ctx.log(tostring(tok))
		return { token = tok }
	end,
}
