-- The libraries and drrun's modules are read-only to a runbook: the string
-- metatable is shared with the stdlib, and so are the module tables.  Each
-- write raises an error naming the table; reading still works.
local exec = require "drrun.exec"
local json = require "drrun.json"

runbook { name = "sandbox-readonly" }

local function try(f)
	local ok, err = pcall(f)
	return ok and "accepted" or tostring(err)
end

step "probe" {
	run = function()
		local out = {
			try(function() getmetatable("").__index.upper = function() return "pwned" end end),
			try(function() string.format = nil end),
			try(function() table.insert = nil end),
			try(function() math.pi = 3 end),
			try(function() os.getenv = nil end),
			try(function() exec.run = nil end),
			try(function() drrun.sh = nil end),
			try(function() rawset(json, "encode", nil) end),
			try(function() setmetatable(string, nil) end),
			try(function() utf8.char = nil end),
			try(function() getmetatable("").__index = {} end),
		}
		-- reading, iterating and method calls are unchanged
		local n = 0
		for _ in pairs(string) do n = n + 1 end
		out[#out + 1] = ("abc"):upper() .. " " .. string.format("%d", 7) .. " " .. tostring(n > 10)
		out[#out + 1] = tostring(require "drrun.exec" == exec)
		-- a local module that is a directory is an error, not an empty module
		out[#out + 1] = try(function() return require "adir" end)
		-- a finalizer would run outside any budget: refused
		out[#out + 1] = try(function() setmetatable({}, { __gc = function() end }) end)
		out[#out + 1] = tostring(getmetatable(setmetatable({}, { __index = string })).__index == string)
		return out
	end,
}
