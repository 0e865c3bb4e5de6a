-- drrun.parallel over 10 items with limit 3: results come back in input
-- order although later items finish first, and at most 3 run at once.
runbook { name = "drrun-parallel" }

step "fan-out" {
	run = function()
		local items = {}
		for i = 1, 10 do
			items[i] = i * 10
		end
		local inflight, peak = 0, 0
		local results = drrun.parallel(items, function(item, i)
			inflight = inflight + 1
			if inflight > peak then
				peak = inflight
			end
			drrun.sleep(((11 - i) * 30) .. "ms")
			inflight = inflight - 1
			return item + i
		end, { limit = 3 })
		return { results = results, peak = peak }
	end,
}
