#!/usr/bin/env python3
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from etcdlock import *  # noqa: E402,F403

TTL = 2
etcd = Etcd()
A = os.path.join(RUN, "machine-a")
lock = ["--lock", etcd.lock, "--lock-ttl", f"{TTL}s"]

a = Bg("run", "runbook.lua", "--param", "nap=5", *lock, state=A, name="a")
wait_for(lambda: "two-start" in ledger(), "step two", 20)
etcd.stop()
rc = a.wait(timeout=30)
err = a.stderr()
expect(rc == 3, f"the run exited {rc}, not 3:\n{err}")
expect(ledger() == ["one", "two-start", "two-end"], f"ledger: {ledger()}")
expect("drrun: lock lost: etcd did not confirm the lease within its TTL (2s)" in err and
       "stopping before the next step (drrun resume carries on)" in err, err)
(rid,) = run_ids(A)
recs = journal(A, rid)
end = recs[-1]
expect(end["type"] == "run_end" and end["status"] == "aborted" and end["resumable"] is True,
       f"run_end: {end}")
expect(end["reason"].startswith("lock lost: etcd did not confirm the lease"), f"{end}")
starts = [r["step"] for r in recs if r["type"] == "step_start"]
expect(starts == ["one", "two"], f"steps started: {starts}")
rc, out, _ = drrun("status", state=A)
expect("aborted (resumable)" in out, out)

# etcd still down: resume refuses (fail closed) and appends nothing
rc, out, err = drrun("resume", rid, *lock, state=A)
expect(rc == 75 and "did not grant a lease" in err, f"resume with etcd down: {rc}\n{err}")
expect(journal(A, rid) == recs, "the refused resume wrote to the journal")

# etcd back on its data: the dead run's lease comes back with it, for one
# TTL more; then resume takes the lock and runs step three
etcd.start()
deadline = time.monotonic() + TTL + 6
while True:
    rc, out, err = drrun("resume", rid, *lock, state=A)
    if rc != 75 or time.monotonic() > deadline:
        break
    expect(f"already running: run {rid} " in err, err)
    time.sleep(0.3)
expect(rc == 0, f"resume exited {rc}:\n{out}\n{err}")
expect(ledger() == ["one", "two-start", "two-end", "three"], f"ledger: {ledger()}")
end = journal(A, rid)[-1]
expect(end["type"] == "run_end" and end["status"] == "completed", f"{end}")
expect(etcd.holder() == ("", None), "resume left its key behind")
