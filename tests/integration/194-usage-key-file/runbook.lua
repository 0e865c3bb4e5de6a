-- --key-file must name a small regular file: /dev/zero used to be read
-- until memory ran out.
runbook { name = "key-file" }

step "a" {
	run = function() return "A" end,
}
