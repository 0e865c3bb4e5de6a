-- 100,000 steps in a chain: loading and checking them is linear (or
-- n log n) in the number of steps, not quadratic.
runbook { name = "many" }
local N = 100000
for i = 1, N do
	step("s" .. i) {
		after = i > 1 and ("s" .. (i - 1)) or nil,
		run = function() return i end,
	}
end
