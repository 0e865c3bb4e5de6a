-- The journal hides DB_PASSWORD as ***, in the db_url param and in
-- connect's output.  drrun dies while use runs; the resumed use must see the
-- real values, as the first session did, not ***.
local exec = require "drrun.exec"

runbook {
	name = "secret-resume",
	params = { db_url = { default = "postgres://app@db/x" } },
	secrets = { "DB_PASSWORD" },
}

step "connect" {
	run = function(ctx)
		return { url = ctx.params.db_url, token = "tok-" .. ctx.secret("DB_PASSWORD") }
	end,
	rollback = function(ctx, out)
		exec.run { "sh", "-c", "printf '%s %s\\n' \"$1\" \"$2\" >> undone.txt", "-", out.url, out.token }
	end,
}

step "use" {
	after = "connect",
	run = function(ctx)
		local o = ctx.outputs.connect
		exec.run { "sh", "-c", "printf '%s|%s|%s\\n' \"$1\" \"$2\" \"$3\" >> seen.txt", "-",
			ctx.params.db_url, o.url, o.token }
		exec.run { "sh", "-c", "test -e killed || { touch killed; kill -9 $PPID; sleep 5; }" }
	end,
}
