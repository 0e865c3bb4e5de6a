#!/usr/bin/env python3
import os
import re
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from etcdlock import *  # noqa: E402,F403

etcd = Etcd()
A, B = os.path.join(RUN, "machine-a"), os.path.join(RUN, "machine-b")
lock = ["--lock", etcd.lock, "--lock-ttl", "5s"]

a = Bg("run", "runbook.lua", "--param", "nap=6", *lock, state=A, name="a")
wait_for(lambda: "two-start" in ledger(), "run A's step two", 20)
value, lease = etcd.holder()
ids = run_ids(A)
expect(len(ids) == 1, f"machine A has runs {ids}")
expect(value.startswith(ids[0] + " "), f"the lock key names {value!r}, not run {ids[0]}")
expect(value.split()[1] == str(a.p.pid), f"the lock key names pid {value}, not {a.p.pid}")
expect(lease and etcd.lease_ttl(lease) == 5, "the key is not under a 5 s lease")

host = socket.gethostname()
want = (f"drrun: cannot start: runbook 'locky' is already running: run {ids[0]} "
        f"(pid {a.p.pid} on {host}; etcd lock at 127.0.0.1:{etcd.port})")
for verb in ("run", "drill"):
    rc, out, err = drrun(verb, "runbook.lua", *lock, state=B)
    expect(rc == 75, f"a second {verb} exited {rc}, not 75:\n{err}")
    expect(err.strip() == want, f"{verb} refused with:\n{err}\nnot:\n{want}")
    expect(run_ids(B) == [], f"the refused {verb} journalled a run")

# the flock is per state dir: without --lock machine B is not kept out
rc, out, err = drrun("run", "runbook.lua", state=B)
expect(rc == 0, f"a run without --lock exited {rc}:\n{err}")

rc = a.wait(timeout=30)
expect(rc == 0, f"run A exited {rc}:\n{a.stderr()}")
expect(etcd.holder() == ("", None), f"run A left its key: {etcd.holder()}")
rc, out, err = drrun("run", "runbook.lua", *lock, state=B)
expect(rc == 0, f"the run after A ended exited {rc}:\n{err}")
expect(etcd.holder() == ("", None), "that run left its key behind")

# etcd that does not answer: no start, one line, nothing journalled
C = os.path.join(RUN, "machine-c")
dead = f"etcd://127.0.0.1:{freeport()}"
rc, out, err = drrun("run", "runbook.lua", "--lock", dead, state=C)
expect(rc == 75, f"with etcd down the run exited {rc}, not 75:\n{err}")
expect(len(err.strip().splitlines()) == 1, f"not one line:\n{err}")
expect(re.match(r"drrun: cannot start: etcd at 127\.0\.0\.1:\d+ did not grant a lease: .+ "
                r"\(--lock: not starting without the lock\)$", err.strip()), err)
expect(run_ids(C) == [], "a run journalled with etcd down")

for bad in ("http://127.0.0.1:2379", "etcd://", "etcd://host", "etcd://h:p/x"):
    rc, out, err = drrun("run", "runbook.lua", "--lock", bad, state=C)
    expect(rc == 64, f"--lock {bad} exited {rc}, not 64:\n{err}")
    expect(f"--lock '{bad}': use etcd://HOST:PORT" in err, err)
rc, out, err = drrun("plan", "runbook.lua", "--lock", etcd.lock, state=C)
expect(rc == 64 and "--lock is for run, drill, resume and rollback" in err, err)
rc, out, err = drrun("run", "runbook.lua", "--lock", etcd.lock, "--lock-ttl", "1s", state=C)
expect(rc == 64 and "--lock-ttl '1s': give 2s..1h" in err, err)
