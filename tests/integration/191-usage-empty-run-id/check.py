"""Every verb that takes a RUN_ID refuses an empty one with exit 64 and
leaves the only run's journal byte-for-byte as it was."""
import os
import subprocess
import sys

rundir, state = sys.argv[2], sys.argv[3]
drrun = os.environ["DRRUN"]
journal = os.environ["DRRUN_JOURNAL"]
before = open(journal, "rb").read()
bad = []
for args in (["rollback", ""], ["resume", ""], ["status", ""], ["log", ""],
             ["audit", "verify", ""]):
    p = subprocess.run([drrun, *args, "--state-dir", state], cwd=rundir, capture_output=True,
                       text=True, stdin=subprocess.DEVNULL, timeout=30)
    if p.returncode != 64 or "is empty" not in p.stderr:
        bad.append(f"drrun {' '.join(args)!r}: exit {p.returncode}, want 64: "
                   f"{(p.stdout + p.stderr)[:300]!r}")
if open(journal, "rb").read() != before:
    bad.append(f"{journal} changed")
if os.path.exists(os.path.join(rundir, "ledger.txt")):
    bad.append("a rollback ran")
if bad:
    sys.exit("\n".join(bad))
