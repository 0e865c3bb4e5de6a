-- backup-verification.lua: prove the newest database backup in S3 restores
-- and runs.  Fetch the latest dump under a prefix, verify it (size and
-- SHA-256 against the manifest stored beside it, pg_restore --list reads
-- it), restore it into a fresh database on a DR PostgreSQL that is not
-- production, deploy the tag production runs against it, smoke-test it (HTTP
-- checks, row counts against the manifest), and always scale down: stop the
-- application, drop the database, remove the files, even when a step failed.
--
--   drrun drill backup-verification.lua --param bucket=db-backups \
--         --param dr_host=10.1.0.5 --param app_cmd='/srv/app/run' --param tag_url=https://app/version
--
-- The backups are the ones drrun.backup.postgres writes (NAME.dump, pg_dump's
-- custom format, and its manifest NAME.json: size, sha256, tables with their
-- row counts, recovery_point), copied to s3://BUCKET/PREFIX.  AWS credentials,
-- region and endpoint come from drrun.aws's chain (AWS_PROFILE,
-- AWS_ENDPOINT_URL_S3, ...).  The DR server is dr_host/dr_port/dr_user
-- (a password comes from libpq's own places: PGPASSWORD in drrun's
-- environment, ~/.pgpass).
--
-- The tag production runs is --param tag, or what GET tag_url answers (its
-- body, or the "tag" of a JSON body).  The application is --param app_cmd,
-- started in its own process group with PGHOST, PGPORT, PGUSER, PGDATABASE set
-- to the restored database, PORT to app_port and APP_TAG to the tag; it must
-- answer GET /healthz with 200 (and, when it names its tag in the body, the
-- right one).
local aws_s3 = require "drrun.aws.s3"
local backup = require "drrun.backup"
local exec = require "drrun.exec"
local http = require "drrun.http"
local json = require "drrun.json"

runbook {
  name = "backup-verification",
  description = "restore the newest S3 backup on a DR PostgreSQL, run the production tag on it, smoke-test, scale down",
  rto = "1h", rpo = "26h",
  params = {
    bucket = { required = true, doc = "the S3 bucket of the backups" },
    prefix = { default = "", doc = "the key prefix the backups are under" },
    region = { default = "", doc = "the bucket's region (empty: drrun.aws's chain)" },
    dr_host = { default = "127.0.0.1", doc = "the DR PostgreSQL (never production)" },
    dr_port = { default = 5432 },
    dr_user = { default = "postgres" },
    dr_db = { default = "backup_verification", doc = "the database restored into (dropped at teardown)" },
    tag = { default = "", doc = "the tag production runs (empty: ask tag_url)" },
    tag_url = { default = "", doc = "a production URL that answers the running tag" },
    app_cmd = { required = true, doc = "the application, started on the restored database" },
    app_port = { default = 18081, doc = "its port on 127.0.0.1" },
    work_dir = { default = "verify-work", doc = "the fetched backup (removed at teardown)" },
    min_size = { default = 1024, doc = "bytes a backup must have at least" },
  },
}

local function sq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function s3opts(ctx, t)
  t.bucket = ctx.params.bucket
  if ctx.params.region ~= "" then t.region = ctx.params.region end
  return t
end

local function dr_env(ctx)
  return { PGHOST = ctx.params.dr_host, PGPORT = tostring(ctx.params.dr_port), PGUSER = ctx.params.dr_user,
           PGCONNECT_TIMEOUT = "10" }
end

step "find_latest" {
  phase = "detect",
  doc = "the newest NAME.dump under the prefix, and its manifest NAME.json beside it",
  run = function(ctx)
    local all = drrun.must(aws_s3.list(s3opts(ctx, { prefix = ctx.params.prefix })))
    local best
    for _, o in ipairs(all) do
      if o.Key:match("%.dump$") and (not best or o.LastModified > best.LastModified
                                      or (o.LastModified == best.LastModified and o.Key > best.Key)) then
        best = o
      end
    end
    if not best then error(("no backup (*.dump) under s3://%s/%s"):format(ctx.params.bucket, ctx.params.prefix), 0) end
    local mkey = best.Key:gsub("%.dump$", ".json")
    local m = drrun.must(aws_s3.get(s3opts(ctx, { key = mkey })))
    local manifest = json.decode(m.body)
    if type(manifest) ~= "table" or type(manifest.sha256) ~= "string" or type(manifest.size) ~= "number" then
      error(("s3://%s/%s is not a backup manifest (no sha256 and size)"):format(ctx.params.bucket, mkey), 0)
    end
    ctx.log("newest backup: %s (%d bytes, %s), recovery point %s", best.Key, best.Size, best.LastModified,
      tostring(manifest.recovery_point))
    return { key = best.Key, size = best.Size, last_modified = best.LastModified, manifest_key = mkey,
             manifest = manifest }
  end,
}

step "fetch" {
  phase = "restore", after = "find_latest", timeout = "2h",
  doc = "download it (streamed, SHA-256 checked against the manifest) and check it is readable",
  run = function(ctx)
    local f = ctx.outputs.find_latest
    local m, w = f.manifest, ctx.params.work_dir
    if f.size ~= m.size then
      error(("size: the object is %d bytes, the manifest says %d"):format(f.size, m.size), 0)
    end
    if m.size < ctx.params.min_size then
      error(("size: %d bytes, under the minimum of %d"):format(m.size, ctx.params.min_size), 0)
    end
    drrun.must(exec.run { "mkdir", "-p", w })
    local file = w .. "/latest.dump"
    local g = drrun.must(aws_s3.get(s3opts(ctx, { key = f.key, file = file, sha256 = m.sha256 })))
    if g.dry_run then
      ctx.log("dry run: %s read and checked (sha256 %s), not written", f.key, g.sha256)
      return { key = f.key, sha256 = g.sha256, dry_run = true }
    end
    local l = drrun.must(exec.run { "pg_restore", "--list", file, timeout = "10m" })
    if l.status ~= 0 then error("pg_restore --list cannot read it: " .. l.stderr, 0) end
    local entries = select(2, l.stdout:gsub("\n%d+;", ""))
    ctx.log("sha256 ok (%s), size ok (%d), readable ok (pg_restore --list: %d entries)", g.sha256, g.size, entries)
    if m.recovery_point_epoch or m.recovery_point then
      ctx.recovery_point(m.recovery_point_epoch or m.recovery_point)
    end
    return { key = f.key, file = file, sha256 = g.sha256, size = g.size, entries = entries,
             recovery_point = m.recovery_point }
  end,
}

step "restore" {
  phase = "restore", after = "fetch", timeout = "2h",
  doc = "into a fresh database on the DR server, row counts compared with the manifest",
  run = function(ctx)
    local f = ctx.outputs.fetch
    if f.dry_run then
      ctx.log("would restore %s into %s on %s:%s", f.key, ctx.params.dr_db, ctx.params.dr_host, ctx.params.dr_port)
      return { dry_run = true }
    end
    local e = dr_env(ctx)
    local r = drrun.must(backup.postgres_restore { file = f.file, db = ctx.params.dr_db, drop_first = true,
      manifest = ctx.outputs.find_latest.manifest, host = e.PGHOST, port = e.PGPORT, user = e.PGUSER })
    return { db = r.db, duration_s = r.duration_s, ok = r.ok, mismatched = r.mismatched, tables = r.tables }
  end,
}

step "production_tag" {
  phase = "detect",
  doc = "the tag production runs: --param tag, or GET tag_url",
  run = function(ctx)
    if ctx.params.tag ~= "" then return { tag = ctx.params.tag, from = "param" } end
    if ctx.params.tag_url == "" then error("neither --param tag nor --param tag_url is set", 0) end
    local r = drrun.must(http.get(ctx.params.tag_url, { timeout = "10s", retry = 3 }))
    if r.status ~= 200 then error(("%s answered HTTP %d"):format(ctx.params.tag_url, r.status), 0) end
    local body = r.body:gsub("^%s+", ""):gsub("%s+$", "")
    local doc = body:match("^{") and json.decode(body)
    local tag = type(doc) == "table" and doc.tag or body
    if type(tag) ~= "string" or not tag:match("^[%w._:/@+-]+$") then
      error(("%s answered no tag: %q"):format(ctx.params.tag_url, body:sub(1, 80)), 0)
    end
    return { tag = tag, from = ctx.params.tag_url }
  end,
}

step "deploy" {
  phase = "provision", after = { "restore", "production_tag" }, timeout = "5m",
  doc = "start the production tag on the restored database, and wait until it is healthy",
  run = function(ctx)
    local tag, w, port = ctx.outputs.production_tag.tag, ctx.params.work_dir, ctx.params.app_port
    if ctx.outputs.restore.dry_run then
      ctx.log("would start %s (tag %s) on port %d", ctx.params.app_cmd, tag, port)
      return { dry_run = true, tag = tag }
    end
    local e = dr_env(ctx)
    -- its own process group, its PID in a file that scale_down reads
    local env = { PGHOST = e.PGHOST, PGPORT = e.PGPORT, PGUSER = e.PGUSER, PGDATABASE = ctx.params.dr_db,
                  PORT = tostring(port), APP_TAG = tag }
    drrun.must(exec.run { "sh", "-c", ("setsid sh -c %s </dev/null >%s 2>&1 & echo $! > %s"):format(
      sq("exec " .. ctx.params.app_cmd), sq(w .. "/app.log"), sq(w .. "/app.pid")), env = env })
    local url = ("http://127.0.0.1:%d/healthz"):format(port)
    local last
    for _ = 1, 150 do
      local r, err = http.get(url, { timeout = "2s" })
      if r and r.status == 200 then
        ctx.log("deployed %s: %s", tag, (r.body:gsub("%s+$", "")))
        return { tag = tag, url = url }
      end
      last = r and ("HTTP " .. r.status .. ": " .. r.body) or err
      drrun.sleep("200ms")
    end
    error(("the application (tag %s) never became healthy: %s"):format(tag, tostring(last)), 0)
  end,
}

step "smoke_test" {
  phase = "verify", after = "deploy", timeout = "5m",
  doc = "HTTP checks on the deployed tag, and every table's row count against the manifest",
  run = function(ctx)
    local d = ctx.outputs.deploy
    if d.dry_run then return { dry_run = true } end
    local r = drrun.must(http.get(d.url, { timeout = "5s" }))
    if r.status ~= 200 then error(("GET %s: HTTP %d"):format(d.url, r.status), 0) end
    local named = r.body:match("tag=(%S+)")
    if named and named ~= d.tag then error(("the application runs tag %s, not %s"):format(named, d.tag), 0) end
    local res = ctx.outputs.restore
    if not res.ok then
      error("row counts differ from the manifest: " .. table.concat(res.mismatched or {}, ", "), 0)
    end
    local counts = {}
    for _, t in ipairs(res.tables or {}) do counts[#counts + 1] = ("%s=%d"):format(t.name, t.got) end
    ctx.log("smoke test ok: %s answers 200 (%s); rows %s", d.url, (r.body:gsub("%s+$", "")),
      table.concat(counts, " "))
    return { status = r.status, tag = d.tag, rows = table.concat(counts, " ") }
  end,
}

-- ---- scale down: whatever was made, whatever happened --------------------------

step "stop_app" {
  phase = "teardown",
  run = function(ctx)
    local pidfile = ctx.params.work_dir .. "/app.pid"
    local r = drrun.sh(("if [ -s %s ]; then p=$(cat %s); kill -TERM -- -$p 2>/dev/null || kill -TERM $p 2>/dev/null; " ..
      "for i in $(seq 50); do kill -0 $p 2>/dev/null || break; sleep 0.1; done; " ..
      "if kill -0 $p 2>/dev/null; then echo left $p; else rm -f %s; echo stopped $p; fi; else echo none; fi"):format(
      sq(pidfile), sq(pidfile), sq(pidfile)))
    local what, pid = r.stdout:match("^(%a+) ?(%d*)")
    if what == "left" then error("the application (pid " .. pid .. ") did not stop", 0) end
    return { stopped = what == "stopped" and tonumber(pid) or false }
  end,
}

step "drop_db" {
  phase = "teardown", after = "stop_app",
  run = function(ctx)
    if require("drrun.core").dry_run() then
      ctx.log("would drop %s on %s:%s", ctx.params.dr_db, ctx.params.dr_host, ctx.params.dr_port)
      return { dry_run = true }
    end
    local r = drrun.must(exec.run { "dropdb", "--if-exists", "--force", ctx.params.dr_db, env = dr_env(ctx),
                                    timeout = "5m" })
    if r.status ~= 0 then error("dropdb: " .. r.stderr, 0) end
    return { dropped = ctx.params.dr_db }
  end,
}

step "clean_work" {
  phase = "teardown", after = "drop_db",
  run = function(ctx)
    drrun.sh("rm -rf -- " .. sq(ctx.params.work_dir))
    return { removed = ctx.params.work_dir }
  end,
}
