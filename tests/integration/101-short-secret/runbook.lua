-- A one-byte secret (and a one-byte audit key): redaction hides it in the
-- values the runbook writes, and never touches the record's own members
-- (type, run id, hashes, prev, mac, ts).
runbook { name = "short-secret", secrets = { "PIN" } }

step "use" {
	run = function(ctx)
		ctx.log("pin is %s", ctx.secret("PIN"))
		return { pin = ctx.secret("PIN"), note = "a cat" }
	end,
}

step "next" {
	after = "use",
	run = function(ctx)
		return { seen = ctx.outputs.use.note }
	end,
}
