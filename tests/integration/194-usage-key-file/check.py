"""A FIFO (which used to block), a directory and a file longer than an
audit key are refused too; a key file with a trailing newline still works."""
import os
import subprocess
import sys

rundir, state = sys.argv[2], sys.argv[3]
drrun = os.environ["DRRUN"]
fifo = os.path.join(rundir, "key.fifo")
os.mkfifo(fifo)
big = os.path.join(rundir, "big.key")
with open(big, "wb") as f:
    f.write(b"k" * 5000)
good = os.path.join(rundir, "good.key")
with open(good, "w") as f:
    f.write("s3cr3t-audit-key\n")
bad = []
for path, why in ((fifo, "not a regular file"), (rundir, "is a directory"),
                  (big, "larger than 4096 bytes"), (os.path.join(rundir, "nope"), "No such file")):
    try:
        p = subprocess.run([drrun, "check", "runbook.lua", "--key-file", path], cwd=rundir,
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=10)
    except subprocess.TimeoutExpired:
        bad.append(f"--key-file {path}: still running after 10 s")
        continue
    if p.returncode != 64 or why not in p.stderr:
        bad.append(f"--key-file {path}: exit {p.returncode}, want 64 and {why!r}: {p.stderr!r}")
p = subprocess.run([drrun, "run", "runbook.lua", "--key-file", good, "--state-dir", state],
                   cwd=rundir, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                   timeout=30)
if p.returncode != 0:
    bad.append(f"a good key file: exit {p.returncode}: {p.stderr!r}")
if bad:
    sys.exit("\n".join(bad))
