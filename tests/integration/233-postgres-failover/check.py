#!/usr/bin/env python3
"""The primary crashes; the failover promotes the replica, repoints the
service file and proves a write through it.  No row is lost."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from pg_failover import Fail, Pair, journal, step_status  # noqa: E402

case, run_dir, _ = sys.argv[1:4]
drrun = os.environ["DRRUN"]
state = os.path.join(run_dir, "failover-state")
try:
    with Pair(run_dir) as p:
        p.seed(1000)
        p.service_file(p.port)
        p.crash_primary()
        r = p.failover(drrun, state)
        if r.returncode != 0:
            raise Fail("failover exited %d:\n%s" % (r.returncode, (r.stdout + r.stderr)[-3000:]))
        out = r.stdout
        for want in ("primary down: failing over", "the old primary is down already",
                     "promoted in", "new primary takes writes", "verified: service app writes on port %d" % p.rport):
            if want not in out:
                raise Fail("the failover's output lacks %r:\n%s" % (want, out[-3000:]))
        if p.in_recovery(p.rport):
            raise Fail("the replica is still in recovery")
        if p.up(p.port):
            raise Fail("the old primary is up again")
        got = p.via_service("select inet_server_port() || ' ' || count(*) from orders")
        if got != "%d 1000" % p.rport:
            raise Fail("through the service: %r, want '%d 1000'" % (got, p.rport))
        p.via_service("insert into orders (note) values ('after the failover')")
        with open(p.service_path()) as f:
            text = f.read()
        if "port=%d" % p.rport not in text or "[app]" not in text:
            raise Fail("service file: %r" % text)
        st = step_status(journal(state))
        for s in ("detect", "check_replica", "fence", "promote", "wait_writable", "repoint", "verify"):
            if st.get(("step_end", s)) != "completed":
                raise Fail("step %s: %s" % (s, st.get(("step_end", s))))
except Fail as e:
    print(e)
    sys.exit(1)
