"""`drrun log` and `drrun status` (the list and one run) print what the
journal holds, which came from the runbook and the world: no raw control
byte may reach the terminal, and the escaped forms must be there."""
import os
import re
import subprocess
import sys

state = sys.argv[3]
drrun = os.environ["DRRUN"]
run_id = os.listdir(os.path.join(state, "runs"))[0]
bad = []


def run(*args, want):
    p = subprocess.run([drrun, *args, "--state-dir", state], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    for name, data in (("stdout", p.stdout), ("stderr", p.stderr)):
        # \x9b etc. alone may be a UTF-8 continuation byte of a printable character
        text = data.decode("utf-8", "replace")
        if re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\ufffd]", text):
            bad.append(f"drrun {' '.join(args)}: raw control bytes in {name}: {data[:600]!r}")
    for w in want:
        if w not in p.stdout:
            bad.append(f"drrun {' '.join(args)}: stdout lacks {w!r}: {p.stdout[:600]!r}")
    return p


run("log", run_id, want=[rb"\r\x1b[2Kresult: completed", rb"two\nlines\nresult: completed",
                         rb"boom\r\x1b[2Kresult: completed"])
run("status", want=[run_id.encode()])
run("status", run_id, want=[rb"boom\r\x1b[2Kresult: completed"])
if bad:
    sys.exit("\n".join(bad))
