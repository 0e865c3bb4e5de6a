"""status marks the dry run: list, details, and both JSON forms."""
import json
import os
import subprocess
import sys

rundir, state = sys.argv[2], sys.argv[3]
drrun = os.environ["DRRUN"]
bad = []


def st(*args):
    p = subprocess.run([drrun, "status", *args, "--state-dir", state], cwd=rundir,
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
    if p.returncode != 0:
        bad.append(f"status {args}: exit {p.returncode}: {p.stderr!r}")
    return p.stdout


if "completed (dry run)" not in st():
    bad.append(f"the list does not mark it: {st()!r}")
if "  mode:    dry run (side effects were described, not made)" not in st("last"):
    bad.append(f"the details do not mark it: {st('last')!r}")
if json.loads(st("--json"))[0].get("dry_run") is not True:
    bad.append(f"status --json: {st('--json')!r}")
if json.loads(st("last", "--json")).get("dry_run") is not True:
    bad.append(f"status last --json: {st('last', '--json')!r}")
if bad:
    sys.exit("\n".join(bad))
