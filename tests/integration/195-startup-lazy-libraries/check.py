"""A runbook that requires drrun.http, drrun.crypto and drrun.ssh opens
libcurl, libcrypto and libssh2 then, and they work."""
import os
import subprocess
import sys

rundir, state = sys.argv[2], sys.argv[3]
env = dict(os.environ, LD_DEBUG="files")
p = subprocess.run([os.environ["DRRUN"], "run", "uses.lua", "--state-dir", state], cwd=rundir,
                   env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
bad = []
if p.returncode != 0:
    bad.append(f"run uses.lua: exit {p.returncode}: {p.stdout[-600:]}")
for lib in ("libcurl.so.4", "libssh2.so.1", "libcrypto.so.3"):
    if f"file={lib}" not in p.stderr:
        bad.append(f"run uses.lua: {lib} was not opened")
for want in ("http: refused",
             "sha256: ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
             "ssh: true"):
    if want not in p.stdout:
        bad.append(f"run uses.lua: no {want!r} in: {p.stdout[-600:]}")
if bad:
    sys.exit("\n".join(bad))
