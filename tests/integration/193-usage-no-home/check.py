"""The same with HOME truly unset; check and plan, which never touch the
state directory, still work."""
import os
import subprocess
import sys

rundir = sys.argv[2]
drrun = os.environ["DRRUN"]
env = {k: v for k, v in os.environ.items()
       if k not in ("HOME", "XDG_STATE_HOME", "DRRUN_STATE_DIR")}
bad = []


def run(*args):
    return subprocess.run([drrun, *args], cwd=rundir, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=30)


for args in (["run", "runbook.lua"], ["status"], ["log", "x"], ["resume", "x"]):
    p = run(*args)
    if p.returncode != 64 or "no state directory" not in p.stderr:
        bad.append(f"drrun {' '.join(args)} without HOME: exit {p.returncode}, want 64: "
                   f"{(p.stdout + p.stderr)[:300]!r}")
for args in (["check", "runbook.lua"], ["plan", "runbook.lua"]):
    p = run(*args)
    if p.returncode != 0:
        bad.append(f"drrun {' '.join(args)} without HOME: exit {p.returncode}, want 0: "
                   f"{(p.stdout + p.stderr)[:300]!r}")
if os.path.exists(os.path.join(rundir, ".local")):
    bad.append("a state directory was made under the working directory")
if bad:
    sys.exit("\n".join(bad))
