-- drrun.backup: backups a recovery can trust, over drrun's primitives
-- (exec, fs, crypto, ssh, aws.s3).  Policy only; the parts live in
-- stdlib/drrun/backup/ and load when first used:
--   retention.lua  backup.retention{ backups, policy } and backup.apply(plan)
--   time.lua       calendars: RFC 3339, ISO weeks, zones, "90d" durations
--   verify.lua     backup.verify{ ... }: exists, size, sha256, readable, required
--   crypt.lua      backup.encrypt/decrypt: envelope AES-256-GCM, keyrings
--   postgres.lua   backup.postgres{ ... } (pg_dump -Fc and its manifest) and
--                  backup.postgres_restore{ ... } (checked row counts)
-- docs/modules/drrun.backup.md is the reference.
local M = {}

local PARTS = {
  retention = { "drrun.backup.retention", "plan" },
  apply = { "drrun.backup.retention", "apply" },
  plan_lines = { "drrun.backup.retention", "lines" },
  defaults = { "drrun.backup.retention", "defaults" },
  verify = { "drrun.backup.verify", "verify" },
  encrypt = { "drrun.backup.crypt", "encrypt" },
  decrypt = { "drrun.backup.crypt", "decrypt" },
  key_id = { "drrun.backup.crypt", "key_id" },
  new_key = { "drrun.backup.crypt", "new_key" },
  postgres = { "drrun.backup.postgres", "dump" },
  postgres_restore = { "drrun.backup.postgres", "restore" },
  postgres_tables = { "drrun.backup.postgres", "tables" },
  postgres_check = { "drrun.backup.postgres", "check" },
}

return setmetatable(M, {
  __index = function(t, k)
    local p = PARTS[k]
    if not p then return nil end
    local v = require(p[1])[p[2]]
    rawset(t, k, v)
    return v
  end,
})
