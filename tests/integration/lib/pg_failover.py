"""pg_failover.py - drives runbooks/examples/postgres-failover.lua against a
real primary and streaming replica (tests/pg.sh start DIR --replica), for
cases 233 and 234.  Every failure raises Fail with a one-line reason; the
servers are stopped by PID (tests/pg.sh stop) whatever happens.

    with Pair(run_dir) as p:
        p.seed(1000)
        p.service_file(p.port)        # clients point at the primary
        p.crash_primary()
        r = p.failover(drrun, state_dir, ...)
"""
import json
import os
import subprocess

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
PG_SH = os.path.join(ROOT, "tests", "pg.sh")
RUNBOOK = os.path.join(ROOT, "runbooks", "examples", "postgres-failover.lua")


class Fail(Exception):
    pass


def sh(argv, env=None, check=True, timeout=60, input=None):
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                       input=input, stdin=None if input is not None else subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise Fail("%s exited %d: %s" % (" ".join(argv), p.returncode, (p.stderr or p.stdout).strip()[-600:]))
    return p


class Pair:
    def __init__(self, run_dir):
        self.dir = os.path.join(run_dir, "pg")
        self.run_dir = run_dir

    def __enter__(self):
        sh([PG_SH, "start", self.dir, "--replica"], timeout=90)
        out = sh(["bash", "-c", '. "$1/env" && env', "sh", self.dir]).stdout
        self.env = dict(l.split("=", 1) for l in out.splitlines() if l.startswith("DRRUN_TEST_PG_"))
        self.port = int(self.env["DRRUN_TEST_PG_PORT"])
        self.rport = int(self.env["DRRUN_TEST_PG_REPLICA_PORT"])
        return self

    def __exit__(self, *exc):
        sh([PG_SH, "stop", self.dir], check=False, timeout=90)
        return False

    def conninfo(self, port, user="postgres"):
        return "host=127.0.0.1 port=%d user=%s dbname=postgres" % (port, user)

    def psql(self, port, sql, check=True, env=None):
        e = dict(os.environ, PGCONNECT_TIMEOUT="5", **(env or {}))
        return sh(["psql", "-X", "-qtA", "-v", "ON_ERROR_STOP=1", "-d", self.conninfo(port), "-c", sql],
                  env=e, check=check)

    def seed(self, rows):
        self.psql(self.port, "create table orders (id serial primary key, note text);"
                  "insert into orders (note) select 'order ' || g from generate_series(1, %d) g" % rows)
        for _ in range(200):
            r = self.psql(self.rport, "select count(*) from orders", check=False)
            if r.returncode == 0 and r.stdout.strip() == str(rows):
                return
            subprocess.run(["sleep", "0.1"])
        raise Fail("the replica never had the %d rows" % rows)

    def service_path(self):
        return os.path.join(self.run_dir, "pg_service.conf")

    def service_file(self, port):
        with open(self.service_path(), "w") as f:
            f.write("[app]\nhost=127.0.0.1\nport=%d\ndbname=postgres\n" % port)

    def via_service(self, sql):
        env = dict(os.environ, PGSERVICEFILE=self.service_path(), PGUSER="postgres", PGCONNECT_TIMEOUT="5")
        return sh(["psql", "-X", "-qtA", "-v", "ON_ERROR_STOP=1", "-d", "service=app", "-c", sql], env=env).stdout.strip()

    def crash_primary(self):
        """pg_ctl stop -m immediate: the postmaster and its children go at once, as in a crash"""
        prefix = self.env.get("DRRUN_TEST_PG_AS", "").split()
        sh(prefix + [os.path.join(self.env["DRRUN_TEST_PG_BIN"], "pg_ctl"), "-D", self.env["DRRUN_TEST_PG_DATA"],
                     "-m", "immediate", "-w", "stop"])

    def up(self, port):
        return sh(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)], check=False).returncode == 0

    def in_recovery(self, port):
        return self.psql(port, "select pg_is_in_recovery()").stdout.strip() == "t"

    def failover(self, drrun, state, replica_user="postgres", extra=(), env=None):
        params = {
            "primary": self.conninfo(self.port),
            "replica": self.conninfo(self.rport, replica_user),
            "primary_data": self.env["DRRUN_TEST_PG_DATA"],
            "pg_bin": self.env["DRRUN_TEST_PG_BIN"],
            "os_user": "postgres" if os.getuid() == 0 else "",
            "service_file": self.service_path(),
        }
        argv = [drrun, "run", "--no-color", "--yes", "--state-dir", state, RUNBOOK]
        for k, v in params.items():
            argv += ["--param", "%s=%s" % (k, v)]
        argv += list(extra)
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.run_dir,
             "LANG": os.environ.get("LANG", "C.UTF-8")}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            if k in os.environ:
                e[k] = os.environ[k]
        e.update(env or {})
        p = subprocess.run(argv, env=e, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL, cwd=self.run_dir)
        with open(os.path.join(self.run_dir, "failover.out"), "w") as f:
            f.write(p.stdout + p.stderr)
        return p


def journal(state):
    runs = os.path.join(state, "runs")
    ids = sorted(os.listdir(runs))
    if len(ids) != 1:
        raise Fail("want one run in %s, found %s" % (runs, ids))
    with open(os.path.join(runs, ids[0], "journal.jsonl")) as f:
        return [json.loads(l) for l in f if l.strip()]


def step_status(records):
    """step -> the status of its last step_end / rollback_end"""
    out = {}
    for r in records:
        if r["type"] in ("step_end", "rollback_end") and "step" in r:
            out[(r["type"], r["step"])] = r.get("status")
    return out
