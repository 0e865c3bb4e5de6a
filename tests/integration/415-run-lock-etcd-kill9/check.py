#!/usr/bin/env python3
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from etcdlock import *  # noqa: E402,F403

TTL = 4
etcd = Etcd()
A, B = os.path.join(RUN, "machine-a"), os.path.join(RUN, "machine-b")
lock = ["--lock", etcd.lock, "--lock-ttl", f"{TTL}s"]

a = Bg("run", "runbook.lua", "--param", "nap=60", *lock, state=A, name="a")
wait_for(lambda: "two-start" in ledger(), "run A's step two", 20)
held, lease = etcd.holder()
expect(lease and etcd.lease_ttl(lease) == TTL, f"the key is not under a {TTL} s lease")
time.sleep(1.5)  # a keepalive or two: the lease is kept, not just granted
expect(etcd.holder()[0] == held, "the key changed while run A lived")
a.kill9()
t0 = time.monotonic()

refusals = 0
while True:
    rc, out, err = drrun("run", "runbook.lua", *lock, state=B)
    took = time.monotonic() - t0
    if rc == 0:
        break
    expect(rc == 75, f"exit {rc} after the kill:\n{err}")
    expect(f"already running: run {held.split()[0]} (pid {a.p.pid} on " in err,
           f"the refusal does not name the dead holder:\n{err}")
    refusals += 1
    expect(took < TTL + 4, f"still refused {took:.1f} s after the kill (TTL {TTL} s)")
    time.sleep(0.2)
expect(refusals >= 1, "the run right after the kill was not refused")
# the last keepalive was at most TTL/3 before the kill: the key outlives it
# by at least TTL - TTL/3 (less a little for the clocks)
expect(took >= TTL - TTL / 3 - 0.5, f"a new run started {took:.1f} s after the kill, "
       f"before the {TTL} s lease could lapse")
expect(ledger().count("three") == 1, f"ledger: {ledger()}")
