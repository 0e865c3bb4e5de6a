"""check and plan bind typed params too: the same runbook checks with its
--param values, and without port (required: it has no default) refuses."""
import os
import subprocess
import sys

rundir = sys.argv[2]
drrun = os.environ["DRRUN"]
bad = []


def dr(*args):
    return subprocess.run([drrun, *args], cwd=rundir, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=30)


p = dr("check", "runbook.lua", "-p", "name=x", "-p", "port=1")
if p.returncode != 0:
    bad.append(f"check: exit {p.returncode}: {p.stderr!r}")
p = dr("plan", "runbook.lua", "-p", "name=x", "-p", "port=1", "-p", "dns=true")
if p.returncode != 0 or "switch_dns" not in p.stdout:
    bad.append(f"plan with dns=true shows switch_dns: exit {p.returncode}: {p.stdout!r}")
p = dr("plan", "runbook.lua", "-p", "name=x", "-p", "port=1")
if p.returncode != 0 or "switch_dns" in p.stdout:
    bad.append(f"plan without dns has no switch_dns: exit {p.returncode}: {p.stdout!r}")
p = dr("check", "runbook.lua", "-p", "name=x")
if p.returncode != 65 or "missing required param 'port'" not in p.stderr:
    bad.append(f"check without port: exit {p.returncode}: {p.stderr!r}")
if bad:
    sys.exit("\n".join(bad))
