"""plan warns like check and exits 0; run refuses (65) and nothing runs."""
import os
import subprocess
import sys

rundir, state = sys.argv[2], sys.argv[3]
drrun = os.environ["DRRUN"]
env = {k: v for k, v in os.environ.items() if k not in ("API_TOKEN", "DB_URL")}
bad = []
p = subprocess.run([drrun, "plan", "runbook.lua", "--state-dir", state], cwd=rundir, env=env,
                   capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
if p.returncode != 0 or "wave 1:" not in p.stdout or p.stderr.count("warning: secret") != 2:
    bad.append(f"plan: exit {p.returncode}: {p.stdout + p.stderr!r}")
p = subprocess.run([drrun, "run", "runbook.lua", "--state-dir", state], cwd=rundir, env=env,
                   capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
if p.returncode != 65 or "secret 'API_TOKEN' is declared but not set" not in p.stderr \
        or "warning" in p.stderr:
    bad.append(f"run: exit {p.returncode}, want 65: {p.stderr!r}")
if os.path.exists(os.path.join(rundir, "side-effect.txt")) or \
        os.path.exists(os.path.join(state, "runs")):
    bad.append("something ran")
if bad:
    sys.exit("\n".join(bad))
