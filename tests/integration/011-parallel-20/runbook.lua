-- 20 independent steps that each sleep 1s: they must all run at once.
runbook { name = "parallel-20" }

for i = 1, 20 do
	step("s" .. i) {
		run = function()
			drrun.sleep("1s")
			return i
		end,
	}
end
