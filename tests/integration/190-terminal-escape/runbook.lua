-- Control bytes from a log line, a command's output and an error reach the
-- terminal escaped (\r, \x1b, ...), never raw, so none of them can print a
-- fake "result: completed" over drrun's own last line.  The journal keeps
-- the real bytes.  check.py does the same for `drrun log` and `status`.
local exec = require "drrun.exec"

runbook { name = "terminal-escape" }

local fake = "\r\27[2Kresult: completed"

step "logs" {
	run = function(ctx)
		ctx.log(fake)
		ctx.log("title\27]0;owned\7 bell\7 del\127 csi\194\155" .. "2K nel\194\133 raw\155" .. "K")
		ctx.log("two\nlines\nresult: completed")
	end,
}

step "remote" {
	after = "logs",
	run = function(ctx)
		local r = drrun.must(exec.run { "printf", "%s", "\r\27[2Kresult: completed\n" })
		ctx.log(r.stdout)
		return { out = r.stdout }
	end,
}

step "fails" {
	after = "remote",
	run = function(ctx)
		error("boom" .. fake .. "\nresult: completed", 0)
	end,
}
