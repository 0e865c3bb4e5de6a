-- --trigger FILE: the alert is ctx.trigger, read-only (nested tables too,
-- rawset included), and journalled in run_start with its secrets hidden.
runbook { name = "trigger-ctx", secrets = { "ALERT_TOKEN" } }

step "look" {
	run = function(ctx)
		local t = ctx.trigger
		ctx.log("alert %s on %s since %s", t.labels.alertname, t.labels.instance, t.startsAt)
		ctx.log("token %s", t.annotations.token)
		local ok, err = pcall(function() t.labels.alertname = "x" end)
		ctx.log("nested write ok=%s: %s", tostring(ok), err)
		ok, err = pcall(function() t.extra = 1 end)
		ctx.log("write ok=%s: %s", tostring(ok), err)
		ok = pcall(rawset, t, "extra", 1)
		ctx.log("rawset ok=%s", tostring(ok))
		local keys = {}
		for k in pairs(t) do keys[#keys + 1] = k end
		table.sort(keys)
		return { keys = table.concat(keys, ","), fp = t.fingerprint }
	end,
}
