-- 10 independent 1s steps under --max-parallel 5: never more than 5 at once.
runbook { name = "max-parallel" }

for i = 1, 10 do
	step("s" .. i) {
		run = function()
			drrun.sleep("1s")
			return i
		end,
	}
end
