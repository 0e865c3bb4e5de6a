-- backup.encrypt and backup.new_key under --dry-run write nothing and read
-- no key; they log what they would do.
local backup = require "drrun.backup"

runbook { name = "encrypt-dry-run" }

step "encrypt" {
  run = function()
    assert(backup.new_key("k2.key"))
    return assert(backup.encrypt { src = "db.dump", dst = "db.dump.enc", keys = { active = "k1", keys = { k1 = "k1.key" } } })
  end,
}
