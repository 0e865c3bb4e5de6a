"""approvals.py - helpers for the check.py of the approval-gate cases.

A case's `case` file checks its runbook (`args check runbook.lua`); its
check.py then starts `drrun run` in the background (no terminal, as under
serve or nohup), answers the gate with `drrun approve` as other operators
would, and checks the journal.  Every run started here is killed when the
check ends; outputs are checked for sanitizer reports.
"""
import atexit
import json
import os
import subprocess
import sys
import time

DRRUN = os.environ.get("DRRUN", "drrun")
CASE, RUN, STATE = sys.argv[1], sys.argv[2], sys.argv[3]
SANITIZER = ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:")
_procs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_cleanup)


def fail(msg):
    sys.exit(msg)


def expect(cond, msg):
    if not cond:
        fail(msg)


def _env(extra=None):
    e = {k: v for k, v in os.environ.items()
         if k in ("PATH", "LANG", "ASAN_OPTIONS", "UBSAN_OPTIONS", "HOME", "TZ")}
    e["USER"] = "oncall"
    e.update(extra or {})
    return e


def _san(text, what):
    for pat in SANITIZER:
        if pat in text:
            fail(f"sanitizer report from {what}:\n{text}")


class Run:
    """drrun ARGS in the background, stdin /dev/null, the case's state dir."""

    def __init__(self, *args, env=None):
        self.out = os.path.join(RUN, f"run-{len(_procs)}.out")
        with open(self.out, "wb") as o:
            self.p = subprocess.Popen([DRRUN, *args, "--state-dir", STATE], cwd=RUN,
                                      stdin=subprocess.DEVNULL, stdout=o,
                                      stderr=subprocess.STDOUT, env=_env(env))
        _procs.append(self.p)

    def wait(self, timeout=30):
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            fail(f"drrun did not finish within {timeout}s:\n{self.text()}")
        _san(self.text(), "drrun run")
        return rc

    def text(self):
        with open(self.out, encoding="utf-8", errors="replace") as f:
            return f.read()


def drrun(*args, env=None):
    """drrun ARGS to its end: (exit, stdout, stderr)."""
    p = subprocess.run([DRRUN, *args], cwd=RUN, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, env=_env(env), timeout=30)
    _san(p.stderr, "drrun " + " ".join(args))
    return p.returncode, p.stdout, p.stderr


def approve(*args, env=None):
    return drrun("approve", *args, "--state-dir", STATE, env=env)


def journal(run_id=None):
    runs = os.path.join(STATE, "runs")
    names = sorted(os.listdir(runs)) if os.path.isdir(runs) else []
    if run_id:
        names = [n for n in names if run_id in n]
    if not names:
        return []
    p = os.path.join(runs, names[-1], "journal.jsonl")
    if not os.path.exists(p):
        return []
    with open(p, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.endswith("\n")]


def wait_record(pred, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in journal():
            if pred(r):
                return r
        time.sleep(0.05)
    fail(f"timed out waiting for {what}; journal:\n" +
         "\n".join(json.dumps(r) for r in journal()))


def waiting(step):
    return wait_record(lambda r: r["type"] == "approval" and r.get("step") == step and
                       r["status"] == "waiting", f"step {step}'s gate to open")


def approvals(step=None):
    return [r for r in journal() if r["type"] == "approval" and
            (step is None or r.get("step") == step)]
