#!/usr/bin/env python3
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from etcdlock import *  # noqa: E402,F403

etcd = Etcd()
A = os.path.join(RUN, "machine-a")
lock = ["--lock", etcd.lock, "--lock-ttl", "3s"]

a = Bg("run", "runbook.lua", "--param", "nap=4", *lock, state=A, name="a")
wait_for(lambda: "two-start" in ledger(), "step two", 20)
etcd.delete()
rc = a.wait(timeout=30)
err = a.stderr()
expect(rc == 3, f"the run exited {rc}, not 3:\n{err}")
expect("lock lost: the key /drrun/lock/locky in etcd is gone or no longer this run's" in err,
       err)
expect(ledger() == ["one", "two-start", "two-end"], f"ledger: {ledger()}")
(rid,) = run_ids(A)
rc, out, err = drrun("resume", rid, *lock, state=A)
expect(rc == 0, f"resume exited {rc}:\n{err}")
expect(ledger()[-1] == "three", f"ledger: {ledger()}")
