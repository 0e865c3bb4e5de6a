-- Text that is not UTF-8 keeps its bytes, each invalid byte written as the
-- four characters \xNN: a log message, a step's output and why a step failed
-- are never dropped.
runbook { name = "bad-bytes" }

step "logs" {
	run = function(ctx)
		ctx.log("raw \xff byte")
		ctx.log("%s", "half \xc3 sequence")
		return { bin = "\xfe\xff ok", ["k\xff"] = 1 }
	end,
}

step "fails" {
	after = "logs",
	run = function(ctx)
		error("cannot \xfe parse", 0)
	end,
}
