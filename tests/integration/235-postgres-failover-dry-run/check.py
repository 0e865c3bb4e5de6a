#!/usr/bin/env python3
"""A dry-run switchover on a real pair: the probes really run (the replica's
lag is read), pg_ctl and pg_promote are only described, the service file is
not written; afterwards the primary is still the primary, the replica still
a standby."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from pg_failover import Fail, Pair  # noqa: E402

case, run_dir, _ = sys.argv[1:4]
drrun = os.environ["DRRUN"]
try:
    with Pair(run_dir) as p:
        p.seed(10)
        p.service_file(p.port)
        with open(p.service_path()) as f:
            before = f.read()
        r = p.failover(drrun, os.path.join(run_dir, "dry-state"),
                       extra=["--dry-run", "--param", "switchover=true"])
        out = r.stdout + r.stderr
        if r.returncode != 0:
            raise Fail("dry run exited %d:\n%s" % (r.returncode, out[-3000:]))
        for want in ("primary up: planned switchover", "0 bytes behind the primary",
                     "would run: ", "/pg_ctl -D %s -m fast -w stop" % p.env["DRRUN_TEST_PG_DATA"],
                     "would write ", "bytes to %s (atomically, mode 0644)" % p.service_path(),
                     "dry run: nothing was changed"):
            if want not in out:
                raise Fail("the dry run's output lacks %r:\n%s" % (want, out[-3000:]))
        if not p.up(p.port) or p.in_recovery(p.port):
            raise Fail("the primary was touched")
        if not p.in_recovery(p.rport):
            raise Fail("the replica was promoted by a dry run")
        with open(p.service_path()) as f:
            if f.read() != before:
                raise Fail("the dry run wrote the service file")
except Fail as e:
    print(e)
    sys.exit(1)
