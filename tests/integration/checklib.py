"""checklib.py - helpers for a case's check.py (python3 stdlib only).

A check.py is run as `check.py CASE_DIR RUN_DIR STATE_DIR` and fails the
case by exiting non-zero with a message; sys.exit("message") does both.
"""
import os
import signal
import sys
import time


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")  # a zombie is dead, only not yet reaped
    except FileNotFoundError:
        return False


def assert_killed(pid_file, why, grace=1.0):
    """The process whose pid is in RUN_DIR/pid_file must be gone (after a short
    grace for the kill to land).  If it is not, kill it and fail."""
    path = os.path.join(sys.argv[2], pid_file)
    try:
        with open(path) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError) as e:
        sys.exit(f"cannot read {pid_file}: {e}")
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = "?"
        os.kill(pid, signal.SIGKILL)
        sys.exit(f"pid {pid} ({cmd}) still running after drrun exited: {why}")
