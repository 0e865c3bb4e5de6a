-- backup_verify_spec: backup.verify's checks (exists, size, sha256, readable,
-- required, a custom check) on real archives made here with tar and gzip,
-- intact and damaged; on an SFTP path of tests/sshd.sh's OpenSSH; and on an
-- S3 object in tests/servers.sh's s3rver (bucket made by the real AWS CLI).
-- pg_dump files are verified in backup_postgres_spec, against PostgreSQL.
--
--   tests/run.sh backup_verify   (needs the servers' DRRUN_TEST_* exports)
local backup = require "drrun.backup"
local exec = require "drrun.exec"
local ssh = require "drrun.ssh"
local s3 = require "drrun.aws.s3"

runbook { name = "backup-verify-spec" }

local T = require "lib.spec"
local eq, has, raises_with, sh, fails = T.eq, T.has, T.raises_with, T.sh, T.fails

local D -- scratch directory
local function p(name) return D .. "/" .. name end

-- the check named name in a result
local function check(r, name)
  for _, c in ipairs(r.checks) do if c.name == name then return c end end
  error("no check " .. name .. " in " .. table.concat((function()
    local n = {}
    for _, c in ipairs(r.checks) do n[#n + 1] = c.name end
    return n
  end)(), ","), 2)
end
local function names(r)
  local n = {}
  for _, c in ipairs(r.checks) do n[#n + 1] = c.name .. "=" .. tostring(c.ok) end
  return table.concat(n, " ")
end

step "setup" {
  run = function()
    D = T.state_dir() .. "/verify"
    sh([[rm -rf "$1" && mkdir -p "$1/src/etc" && cd "$1" &&
      printf 'listen 80\n' > src/etc/app.conf && head -c 200000 /dev/urandom > src/data.bin &&
      tar -cf app.tar -C src etc/app.conf data.bin && tar -czf app.tgz -C src . &&
      gzip -c src/data.bin > data.gz &&
      head -c 1000 app.tgz > truncated.tgz && head -c 5000 data.gz > truncated.gz &&
      cp data.gz flipped.gz && printf 'X' | dd of=flipped.gz bs=1 seek=3000 conv=notrunc 2>/dev/null &&
      mkdir adir]], D)
  end,
}

step "local_intact" {
  after = "setup",
  run = function()
    local sum = T.sha256sum(p("app.tar"))
    local size = tonumber(sh('stat -c %s "$1"', p("app.tar")))
    local r = backup.verify { path = p("app.tar"), sha256 = sum, min_size = 1024, previous_size = size * 0.9,
                              required = { "etc/app.conf", "data.bin" } }
    eq(r.ok, true, "ok: " .. names(r))
    eq(names(r), "exists=true size=true sha256=true readable=true required=true", "checks in order")
    has(check(r, "exists").evidence, size .. " bytes, modified ", "exists evidence")
    has(check(r, "sha256").evidence, sum .. " matches sha256 =", "sha256 evidence")
    has(check(r, "readable").evidence, "tar -tf: 2 members", "tar listing")
    has(check(r, "required").evidence, "all 2 present: etc/app.conf, data.bin", "required")
    has(check(r, "size").evidence, "band ±50%", "band")
    eq(r.sha256, sum, "sha256 returned")

    -- tgz (./ prefixes in the listing), gzip; format from the name
    r = backup.verify { path = p("app.tgz"), required = { "./etc/app.conf", "etc" } }
    eq(names(r), "exists=true readable=true required=true", "tgz")
    r = backup.verify { path = p("data.gz") }
    eq(names(r), "exists=true readable=true", "gzip"); eq(check(r, "readable").evidence, "gzip -t: intact", "gzip ev")
    -- a manifest (table or JSON file) gives the sha256
    sh('printf \'{"sha256":"%s","size":1}\' "$2" > "$1"', p("m.json"), T.sha256sum(p("data.gz")))
    r = backup.verify { path = p("data.gz"), manifest = p("m.json") }
    eq(r.ok, true, "manifest file"); has(check(r, "sha256").evidence, "matches the manifest", "manifest ev")
    -- a custom check gets the local path
    local seen
    r = backup.verify { path = p("app.tar"), check = function(f) seen = f; return true, "custom: fine" end }
    eq(seen, p("app.tar"), "custom check's argument"); eq(check(r, "readable").evidence, "custom: fine", "custom ev")
  end,
}

step "local_damaged" {
  after = "local_intact",
  run = function()
    local r = backup.verify { path = p("truncated.tgz"), required = { "etc/app.conf" } }
    eq(r.ok, false, "truncated tgz")
    eq(check(r, "readable").ok, false, "tar refuses it")
    has(check(r, "readable").evidence, "tar -tzf exited 2", "the exit status is evidence")
    eq(r.failed[1], "readable", "failed names")
    r = backup.verify { path = p("truncated.gz") }
    eq(check(r, "readable").ok, false, "truncated gzip")
    r = backup.verify { path = p("flipped.gz") }
    eq(check(r, "readable").ok, false, "a flipped byte: gzip -t's CRC")
    has(check(r, "readable").evidence, "gzip -t exited 1", "gzip ev")
    -- sha256 mismatch names both digests
    local good = T.sha256sum(p("data.gz"))
    r = backup.verify { path = p("flipped.gz"), sha256 = good, format = "gzip" }
    eq(check(r, "sha256").ok, false, "mismatch")
    has(check(r, "sha256").evidence, ", but sha256 = says " .. good, "mismatch ev")
    -- size: under the minimum, out of the band
    local size = tonumber(sh('stat -c %s "$1"', p("app.tar")))
    r = backup.verify { path = p("app.tar"), min_size = size + 1 }
    eq(check(r, "size").ok, false, "min_size"); has(check(r, "size").evidence, "minimum " .. (size + 1), "min ev")
    r = backup.verify { path = p("app.tar"), previous_size = size * 3, band = 0.2 }
    eq(check(r, "size").ok, false, "a third of the previous"); has(check(r, "size").evidence, "band ±20%", "band ev")
    r = backup.verify { path = p("app.tar"), previous_size = size * 1.1, band = 0.2 }
    eq(check(r, "size").ok, true, "within 20%")
    -- required member missing
    r = backup.verify { path = p("app.tar"), required = { "etc/app.conf", "etc/secrets.conf" } }
    eq(check(r, "required").ok, false, "missing member")
    eq(check(r, "required").evidence, "missing 1 of 2: etc/secrets.conf", "required ev")
    -- missing file: every configured check fails, saying why
    r = backup.verify { path = p("nope.tar"), sha256 = good, min_size = 1 }
    eq(names(r), "exists=false size=false sha256=false readable=false", "missing")
    has(check(r, "exists").evidence, "No such file", "exists ev")
    eq(check(r, "sha256").evidence, "not checked: the backup is not there", "skipped ev")
    r = backup.verify { path = p("adir"), format = "tar" }
    has(check(r, "exists").evidence, "is a directory, not a regular file", "a directory")
    -- a custom check that says no, or raises
    r = backup.verify { path = p("app.tar"), check = function() return false, "restore test failed" end }
    eq(check(r, "readable").evidence, "restore test failed", "custom no")
    r = backup.verify { path = p("app.tar"), check = function() error("boom", 0) end }
    eq(check(r, "readable").evidence, "the check raised: boom", "custom raise")
  end,
}

step "misuse" {
  after = "setup",
  run = function()
    raises_with("backup.verify: path is required", backup.verify, {})
    raises_with("unknown field 'sha'", backup.verify, { path = "x", sha = "y" })
    raises_with("format 'zip'", backup.verify, { path = "x", format = "zip" })
    raises_with("sha256 must be 64 hex digits", backup.verify, { path = "x", sha256 = "abc" })
    raises_with("required needs a listing", backup.verify, { path = "x.gz", required = { "a" } })
    raises_with("min_size must be a number", backup.verify, { path = "x", min_size = "1k" })
  end,
}

-- ---- SFTP ----------------------------------------------------------------------

local function sftp()
  return { host = "127.0.0.1", port = tonumber(os.getenv("DRRUN_TEST_SSH_PORTS"):match("%d+")),
           user = os.getenv("DRRUN_TEST_SSH_USER"), key = os.getenv("DRRUN_TEST_SSH_KEY"),
           known_hosts = os.getenv("DRRUN_TEST_SSH_KNOWN_HOSTS"), agent = false, timeout = "20s" }
end

step "sftp" {
  after = "local_damaged",
  timeout = "2m",
  run = function()
    assert(os.getenv("DRRUN_TEST_SSH_DIR"), "DRRUN_TEST_SSH_DIR is not set: run the specs with tests/run.sh")
    local rdir = os.getenv("DRRUN_TEST_SSH_DIR") .. "/verify-spec"
    local s = assert(ssh.connect(sftp()))
    eq(assert(s:exec("rm -rf '" .. rdir .. "' && mkdir -p '" .. rdir .. "'")).status, 0, "remote dir")
    assert(s:put(p("app.tgz"), rdir .. "/app.tgz"))
    assert(s:put(p("truncated.tgz"), rdir .. "/bad.tgz"))
    local sum = T.sha256sum(p("app.tgz"))
    sh('mkdir -p "$1"', p("work"))
    local r = assert(backup.verify { sftp = sftp(), path = rdir .. "/app.tgz", sha256 = sum, work_dir = p("work"),
                                     required = { "etc/app.conf" }, min_size = 100 })
    eq(names(r), "exists=true size=true sha256=true readable=true required=true", "remote intact")
    has(r.where, "sftp://" .. sftp().user .. "@127.0.0.1:", "where")
    has(check(r, "exists").evidence, "fetched ", "fetched")
    r = assert(backup.verify { sftp = sftp(), path = rdir .. "/bad.tgz", work_dir = p("work") })
    eq(check(r, "readable").ok, false, "remote truncated")
    r = assert(backup.verify { sftp = sftp(), path = rdir .. "/none.tgz", work_dir = p("work") })
    eq(names(r), "exists=false readable=false", "remote missing")
    has(check(r, "exists").evidence, "SFTP error 2", "the server's answer")
    -- the remote side unreachable: not a finding, a failure
    local down = sftp(); down.port = tonumber(os.getenv("DRRUN_TEST_SSH_DOWN_PORT"))
    fails("refused", backup.verify { sftp = down, path = rdir .. "/app.tgz", work_dir = p("work") })
    -- nothing left behind locally
    eq(sh('ls -A "$1" | wc -l', p("work")):gsub("%s", ""), "0", "fetched copies removed")
    s:exec("rm -rf '" .. rdir .. "'")
  end,
}

-- ---- S3 ------------------------------------------------------------------------

step "s3" {
  after = "sftp",
  timeout = "2m",
  run = function()
    local URL = assert(os.getenv("DRRUN_TEST_S3_URL"), "DRRUN_TEST_S3_URL is not set: run the specs with tests/run.sh")
    local KEY, SECRET = os.getenv("DRRUN_TEST_S3_KEY"), os.getenv("DRRUN_TEST_S3_SECRET")
    local r = assert(exec.run { "/usr/bin/aws", "--endpoint-url", URL, "s3api", "create-bucket", "--bucket",
      "verify-spec", clear_env = true, timeout = "60s",
      env = { PATH = "/usr/bin:/bin", HOME = D, AWS_ACCESS_KEY_ID = KEY, AWS_SECRET_ACCESS_KEY = SECRET,
              AWS_DEFAULT_REGION = "us-east-1", AWS_CONFIG_FILE = D .. "/none", AWS_SHARED_CREDENTIALS_FILE = D .. "/none",
              AWS_EC2_METADATA_DISABLED = "true", AWS_PAGER = "" } })
    eq(r.status, 0, "create-bucket: " .. r.stderr)
    local function o(key)
      return { bucket = "verify-spec", key = key, endpoint_url = URL, region = "us-east-1",
               credentials = { access_key = KEY, secret_key = SECRET } }
    end
    assert(s3.put((function() local x = o("db/app.tar"); x.file = p("app.tar"); return x end)()))
    assert(s3.put((function() local x = o("db/bad.gz"); x.file = p("flipped.gz"); return x end)()))
    local sum = T.sha256sum(p("app.tar"))
    local v = assert(backup.verify { s3 = o("db/app.tar"), sha256 = sum, required = { "data.bin" } })
    eq(names(v), "exists=true sha256=true readable=true required=true", "s3 intact")
    eq(v.where, "s3://verify-spec/db/app.tar", "where")
    v = assert(backup.verify { s3 = o("db/bad.gz") })
    eq(check(v, "readable").ok, false, "s3 damaged")
    v = assert(backup.verify { s3 = o("db/none.tar") })
    eq(check(v, "exists").ok, false, "s3 missing")
    has(check(v, "exists").evidence, "NoSuchKey", "S3's answer")
  end,
}
