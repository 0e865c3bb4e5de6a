"""status, log and resume refuse an empty --state-dir too."""
import os
import subprocess
import sys

drrun = os.environ["DRRUN"]
bad = []
for args in (["status"], ["status", "x"], ["log", "x"], ["resume", "x"], ["rollback", "x"]):
    p = subprocess.run([drrun, *args, "--state-dir", ""], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    if p.returncode != 64 or "--state-dir is empty" not in p.stderr:
        bad.append(f"drrun {' '.join(args)} --state-dir '': exit {p.returncode}, want 64: "
                   f"{(p.stdout + p.stderr)[:300]!r}")
if bad:
    sys.exit("\n".join(bad))
