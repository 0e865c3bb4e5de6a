"""A runbook that requires drrun.http opens libcurl then, and works."""
import os
import subprocess
import sys

rundir, state = sys.argv[2], sys.argv[3]
env = dict(os.environ, LD_DEBUG="files")
p = subprocess.run([os.environ["DRRUN"], "run", "http.lua", "--state-dir", state], cwd=rundir,
                   env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
bad = []
if p.returncode != 0:
    bad.append(f"run http.lua: exit {p.returncode}: {p.stdout[-600:]}")
if "file=libcurl.so.4" not in p.stderr:
    bad.append("run http.lua: libcurl.so.4 was not opened")
if "refused" not in p.stdout:
    bad.append(f"run http.lua: the request did not report 'refused': {p.stdout[-600:]}")
if bad:
    sys.exit("\n".join(bad))
