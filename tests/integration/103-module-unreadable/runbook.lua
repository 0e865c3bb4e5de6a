-- A module path that is a directory, not a file: the loader says so
-- instead of loading nothing.
local helper = require "mods.helper"

runbook { name = "module-unreadable" }

step "a" { run = function() return helper end }
