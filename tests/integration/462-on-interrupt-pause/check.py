"""The paused run resumes forward: b runs again, then c; and a bad
--on-interrupt value is a usage error (64) naming the flag."""
import json
import os
import subprocess
import sys

rundir, state = sys.argv[2], sys.argv[3]
drrun = os.environ["DRRUN"]
bad = []
open(os.path.join(rundir, "resumed"), "w").close()
rid = os.listdir(os.path.join(state, "runs"))[0]
p = subprocess.run([drrun, "resume", rid, "--on-interrupt", "rollback", "--state-dir", state],
                   cwd=rundir, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                   timeout=30)
ledger = open(os.path.join(rundir, "ledger.txt")).read()
if p.returncode != 0 or ledger != "a\nb\nb\nc\n":
    bad.append(f"resume: exit {p.returncode}, ledger {ledger!r}: {p.stderr!r}")
recs = [json.loads(l) for l in open(os.environ["DRRUN_JOURNAL"])]
if recs[-1].get("type") != "run_end" or recs[-1].get("status") != "completed":
    bad.append(f"the resumed run ends completed: {recs[-1]!r}")
for verb in ("run", "drill", "resume"):
    p = subprocess.run([drrun, verb, "--on-interrupt", "later", "runbook.lua", "--state-dir",
                        state], cwd=rundir, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    if p.returncode != 64 or "--on-interrupt wants rollback or pause, not 'later'" not in p.stderr:
        bad.append(f"{verb} --on-interrupt later: exit {p.returncode}: {p.stderr!r}")
if bad:
    sys.exit("\n".join(bad))
