#!/usr/bin/env python3
"""backup_verify.py SCENARIO RUN_DIR DRRUN - runbooks/backup-verification.lua
end to end, for cases 350-353, against real servers on loopback:

  * a production PostgreSQL and a separate DR PostgreSQL (tests/pg.sh);
  * S3: s3rver behind the independent SigV4 check (tests/fakes/s3-signed.js);
  * a production endpoint that answers the running tag (python3 http.server).

The production database "orders" is backed up twice (pg_dump -Fc and a
drrun-backup/1 manifest: size, sha256, row counts, recovery point); the real
AWS CLI uploads both, the older first.  Then drrun runs the runbook, and the
script checks the outcome of SCENARIO:

  ok        exit 0: the newest backup restored on the DR server, the tag
            deployed and smoke-tested, then scaled down
  rows      the manifest's row count is wrong: the smoke test fails (exit 1),
            the scale-down still runs
  checksum  the manifest's sha256 is wrong: the fetch fails (exit 1), nothing
            is restored, no file is left
  dry       --dry-run: reads made, nothing restored, started or written

Prints "ok: ..." lines, "FAIL: ..." for each check that failed, the runbook's
output to RUN_DIR/inner.out; exits 1 when a check failed.  Every server is
stopped by PID whatever happens.
"""
import glob
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
PG_SH = os.path.join(ROOT, "tests", "pg.sh")
AWS = "/usr/bin/aws"
BUCKET, PREFIX, TAG, DR_DB = "dr-backups", "orders/", "v2.4.1", "backup_verification"
KEY, SECRET = "AKIDDRRUN", "drrun-test-secret"
failures = []


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failures.append(what)


def sh(argv, env=None, check_rc=True, timeout=60, input=None):
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL)
    if check_rc and p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(argv), p.returncode, (p.stderr or p.stdout)[-600:]))
    return p


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def listening(port):
    s = socket.socket()
    s.settimeout(0.5)
    try:
        return s.connect_ex(("127.0.0.1", port)) == 0
    finally:
        s.close()


def pg_env(d):
    out = sh(["bash", "-c", '. "$1/env" && env', "sh", d]).stdout
    e = dict(l.split("=", 1) for l in out.splitlines() if l.startswith("PG"))
    return dict(os.environ, PGHOST=e["PGHOST"], PGPORT=e["PGPORT"], PGUSER=e["PGUSER"], PGCONNECT_TIMEOUT="5")


def psql(env, db, sql):
    return sh(["psql", "-XqtA", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql], env=env).stdout.strip()


def backup(env, run, name, broken=None):
    """pg_dump of orders as NAME.dump and its manifest NAME.json"""
    dump = os.path.join(run, name + ".dump")
    t0 = time.time()
    sh(["pg_dump", "-Fc", "-d", "orders", "-f", dump], env=env)
    data = open(dump, "rb").read()
    tables = [{"name": "public." + t, "rows": int(psql(env, "orders", "select count(*) from " + t))}
              for t in ("customers", "orders")]
    m = {"format": "drrun-backup/1", "kind": "pg_dump", "name": name, "database": "orders",
         "file": name + ".dump", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
         "recovery_point": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)), "recovery_point_epoch": t0,
         "tables": tables}
    if broken == "rows":
        m["tables"][1]["rows"] += 1
    elif broken == "checksum":
        m["sha256"] = "0" * 64
    with open(os.path.join(run, name + ".json"), "w") as f:
        json.dump(m, f)
    return m


def main():
    scenario, run, drrun = sys.argv[1:4]
    run = os.path.abspath(run)
    procs, pgs = [], []
    aws_env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1",
                   AWS_EC2_METADATA_DISABLED="true", AWS_PAGER="", HOME=run,
                   AWS_CONFIG_FILE=run + "/no-config", AWS_SHARED_CREDENTIALS_FILE=run + "/no-creds")
    try:
        for n in ("prod", "dr"):
            sh([PG_SH, "start", os.path.join(run, n)], timeout=90)
            pgs.append(os.path.join(run, n))
        prod, dr = pg_env(pgs[0]), pg_env(pgs[1])
        os.makedirs(run + "/s3data", exist_ok=True)
        s3 = subprocess.Popen(["node", "--openssl-legacy-provider", ROOT + "/tests/fakes/s3-signed.js",
                               run + "/s3data", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL, text=True)
        procs.append(s3)
        line = s3.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError("s3-signed.js did not start: %r" % line)
        s3url = "http://127.0.0.1:%d" % int(line.split()[1])
        os.makedirs(run + "/web", exist_ok=True)
        with open(run + "/web/version", "w") as f:
            json.dump({"tag": TAG, "since": "2026-11-30"}, f)
        wport = freeport()
        procs.append(subprocess.Popen(["python3", "-m", "http.server", "--bind", "127.0.0.1", str(wport),
                                       "--directory", run + "/web"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL))

        sh(["createdb", "orders"], env=prod)
        psql(prod, "orders", "create table customers(id serial primary key, name text);"
             "insert into customers(name) select 'c' || g from generate_series(1, 300) g;"
             "create table orders(id serial primary key, customer int references customers, total numeric);"
             "insert into orders(customer, total) select 1 + g % 300, g * 0.5 from generate_series(1, 1500) g")
        backup(prod, run, "orders-20261130T050000Z")
        psql(prod, "orders", "insert into orders(customer, total) select 1 + g % 300, g from generate_series(1, 500) g")
        newest = "orders-20261201T050000Z"
        m = backup(prod, run, newest, broken=scenario if scenario in ("rows", "checksum") else None)
        cli = [AWS, "--endpoint-url", s3url]
        sh(cli + ["s3api", "create-bucket", "--bucket", BUCKET], env=aws_env)
        for i, n in enumerate(("orders-20261130T050000Z", newest)):
            if i:
                time.sleep(1.1)  # LastModified has whole seconds
            for ext in (".dump", ".json"):
                sh(cli + ["s3", "cp", os.path.join(run, n + ext), "s3://%s/%s%s%s" % (BUCKET, PREFIX, n, ext)],
                   env=aws_env)

        app_port = freeport()
        work = os.path.join(run, "verify-work")
        argv = [drrun, "run", "--no-color", "--state-dir", run + "/inner-state"]
        if scenario == "dry":
            argv.append("--dry-run")
        argv += [ROOT + "/runbooks/backup-verification.lua", "--param", "bucket=" + BUCKET,
                 "--param", "prefix=" + PREFIX, "--param", "region=us-east-1",
                 "--param", "dr_host=127.0.0.1", "--param", "dr_port=" + dr["PGPORT"],
                 "--param", "dr_user=" + dr["PGUSER"],
                 "--param", "tag_url=http://127.0.0.1:%d/version" % wport,
                 "--param", "app_cmd=python3 " + ROOT + "/tests/integration/lib/tagged_app.py",
                 "--param", "app_port=%d" % app_port, "--param", "work_dir=" + work]
        env = {"PATH": os.environ["PATH"], "HOME": run, "LANG": "C.UTF-8", "AWS_ACCESS_KEY_ID": KEY,
               "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_ENDPOINT_URL_S3": s3url, "AWS_EC2_METADATA_DISABLED": "true"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
        out = r.stdout + r.stderr
        with open(run + "/inner.out", "w") as f:
            f.write(out)

        # ---- what must hold, whatever the scenario
        steps = {}
        for j in glob.glob(run + "/inner-state/runs/*/journal.jsonl"):
            for l in open(j):
                rec = json.loads(l)
                if rec.get("type") == "step_end":
                    steps[rec["step"]] = rec.get("status")
        check("AddressSanitizer" not in out and "runtime error:" not in out, "no sanitizer report")
        check(psql(dr, "postgres", "select count(*) from pg_database where datname = '%s'" % DR_DB) == "0",
              "the DR database is gone")
        check(not listening(app_port), "the application is stopped")
        check(not os.path.exists(work), "the work directory is gone")
        check(psql(prod, "orders", "select count(*) from orders") == "2000", "production is untouched")
        for s in ("stop_app", "drop_db", "clean_work"):
            check(steps.get(s) == "completed", "scale-down step %s completed (%s)" % (s, steps.get(s)))

        def has(text):
            check(text in out, "the output has %r" % text)

        if scenario == "ok":
            check(r.returncode == 0, "exit 0 (got %d)" % r.returncode)
            has("newest backup: %s%s.dump (%d bytes" % (PREFIX, newest, m["size"]))
            has("sha256 ok (%s), size ok (%d), readable ok (pg_restore --list:" % (m["sha256"], m["size"]))
            has("deployed %s: ok tag=%s orders=2000 customers=300" % (TAG, TAG))
            has("smoke test ok")
            has("rows public.customers=300 public.orders=2000")
            for s in ("find_latest", "fetch", "restore", "production_tag", "deploy", "smoke_test"):
                check(steps.get(s) == "completed", "step %s completed (%s)" % (s, steps.get(s)))
        elif scenario == "rows":
            check(r.returncode == 1, "exit 1 (got %d)" % r.returncode)
            has("row counts differ from the manifest: public.orders")
            check(steps.get("smoke_test") == "failed", "smoke_test failed (%s)" % steps.get("smoke_test"))
            check(steps.get("deploy") == "completed", "the tag was deployed before the check (%s)" % steps.get("deploy"))
        elif scenario == "checksum":
            check(r.returncode == 1, "exit 1 (got %d)" % r.returncode)
            has("is not sha256 =")
            check(steps.get("fetch") == "failed", "fetch failed (%s)" % steps.get("fetch"))
            check(steps.get("restore") is None, "nothing was restored (%s)" % steps.get("restore"))
        elif scenario == "dry":
            check(r.returncode == 0, "exit 0 (got %d)" % r.returncode)
            has("newest backup: %s%s.dump" % (PREFIX, newest))
            has("dry run: %s%s.dump read and checked (sha256 %s), not written" % (PREFIX, newest, m["sha256"]))
            has("would restore")
            has("would start")
            has("would drop %s" % DR_DB)
        else:
            raise RuntimeError("unknown scenario " + scenario)
    except Exception as e:  # a setup failure is a failure too
        check(False, "setup: %s" % e)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for d in pgs:
            subprocess.run([PG_SH, "stop", d], capture_output=True, timeout=90)
    if os.path.exists(run + "/inner.out") and failures:
        print("---- the runbook's output\n" + open(run + "/inner.out").read()[-4000:])
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    shutil.which("node") or sys.exit("backup_verify.py: node is missing")
    main()
