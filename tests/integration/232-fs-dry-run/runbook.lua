-- Under --dry-run, drrun.fs reads (read, stat, exists, glob) and describes
-- its writes (write, append, remove, mkdir) without making them.
local fs = require "drrun.fs"

runbook { name = "fs-dry-run" }

step "files" {
	run = function(ctx)
		ctx.log("read [%s]", (fs.read("input.txt"):gsub("\n", "|")))
		ctx.log("size %d", fs.stat("input.txt").size)
		ctx.log("exists %s", tostring(fs.exists("input.txt")))
		ctx.log("glob %s", table.concat(fs.glob("*.txt"), ","))
		local w = fs.write("out.txt", "12345", { mode = "0600" })
		ctx.log("write dry_run=%s", tostring(w.dry_run))
		fs.append("input.txt", "more\n")
		fs.remove("input.txt")
		fs.remove("dir", { recursive = true })
		fs.mkdir("new/dir", { mode = "0700" })
		ctx.log("still exists %s", tostring(fs.exists("input.txt")))
	end,
}
