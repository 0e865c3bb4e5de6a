"""Reading params before runbook{} raises, with its line."""
import os
import subprocess
import sys

rundir = sys.argv[2]
drrun = os.environ["DRRUN"]
with open(os.path.join(rundir, "early.lua"), "w") as f:
    f.write('local r = params.replicas\nrunbook { name = "early" }\nstep "a" { run = function() end }\n')
p = subprocess.run([drrun, "check", "early.lua"], cwd=rundir, capture_output=True, text=True,
                   stdin=subprocess.DEVNULL, timeout=30)
if p.returncode != 65 or "early.lua:1: params are known once runbook{} declares them" not in p.stderr:
    sys.exit(f"params before runbook{{}}: exit {p.returncode}: {p.stderr!r}")
