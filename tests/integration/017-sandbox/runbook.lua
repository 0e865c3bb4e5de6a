-- The runbook sandbox: no io, no os.execute/os.exit; os.time and the safe
-- libraries are there.
runbook { name = "sandbox" }

step "probe" {
	run = function()
		local io_ok = pcall(function() return io.popen end)
		return {
			io_ok = io_ok,
			execute = os.execute == nil,
			exit = os.exit == nil,
			time = type(os.time()),
			string = string.format("%d-%s", 7, table.concat({ "a", "b" }, ",")),
			floor = math.floor(2.5),
		}
	end,
}
