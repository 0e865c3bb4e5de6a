#!/usr/bin/env python3
"""A planned switchover whose promotion fails: pg_promote is refused to the
replica's role.  The old primary, fenced with pg_ctl stop, is started again
by the fence step's rollback and takes writes; the replica is still a
standby; the service file still names the primary; the password the role
logs in with (PGPASSWORD) is nowhere in the state dir."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from pg_failover import Fail, Pair, journal, step_status  # noqa: E402

case, run_dir, _ = sys.argv[1:4]
drrun = os.environ["DRRUN"]
state = os.path.join(run_dir, "failover-state")
try:
    with Pair(run_dir) as p:
        p.seed(100)
        p.service_file(p.port)
        with open(p.service_path()) as f:
            before = f.read()
        pw = p.env["DRRUN_TEST_PG_PASSWORD"]
        r = p.failover(drrun, state, replica_user=p.env["DRRUN_TEST_PG_PW_USER"],
                       extra=["--param", "switchover=true"], env={"PGPASSWORD": pw})
        out = r.stdout + r.stderr
        if r.returncode != 1:
            raise Fail("failover exited %d, want 1:\n%s" % (r.returncode, out[-3000:]))
        for want in ("primary up: planned switchover", "old primary stopped",
                     "auth: postgres.promote", "permission denied for function pg_promote",
                     "old primary started again"):
            if want not in out:
                raise Fail("the failover's output lacks %r:\n%s" % (want, out[-3000:]))
        if not p.up(p.port) or p.in_recovery(p.port):
            raise Fail("the old primary is not back as a primary")
        p.psql(p.port, "insert into orders (note) values ('after the rollback')")
        if not p.in_recovery(p.rport):
            raise Fail("the replica was promoted")
        with open(p.service_path()) as f:
            if f.read() != before:
                raise Fail("the service file changed")
        st = step_status(journal(state))
        if st.get(("step_end", "promote")) != "failed":
            raise Fail("promote: %s" % st.get(("step_end", "promote")))
        if st.get(("rollback_end", "fence")) != "completed":
            raise Fail("fence's rollback: %s" % st.get(("rollback_end", "fence")))
        for s in ("wait_writable", "repoint", "verify"):
            if ("step_end", s) in st:
                raise Fail("step %s ran" % s)
        g = subprocess.run(["grep", "-rlF", pw, state], capture_output=True, text=True)
        if g.returncode != 1:
            raise Fail("the password is in %s" % g.stdout.strip())
except Fail as e:
    print(e)
    sys.exit(1)
