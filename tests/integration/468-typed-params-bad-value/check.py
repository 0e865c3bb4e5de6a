"""Each type refuses what is not one of its values, naming the param."""
import os
import subprocess
import sys

rundir = sys.argv[2]
drrun = os.environ["DRRUN"]
bad = []
cases = [
    ("port=2.5", "runbook.lua:5: param 'port' must be an integer, got '2.5'"),
    ("port=", "runbook.lua:5: param 'port' must be an integer, got ''"),
    ("wait=10 minutes", "runbook.lua:6: param 'wait' must be a duration like \"30s\" or \"5m\", got '10 minutes'"),
    ("wait=-5s", "runbook.lua:6: param 'wait' must be a duration"),
    ("api=ftp//x", "runbook.lua:7: param 'api' must be a URL like \"https://host/path\", got 'ftp//x'"),
    ("api=https:///path", "runbook.lua:7: param 'api' must be a URL"),
    ("api=https://a b", "runbook.lua:7: param 'api' must be a URL"),
    ("dry=maybe", "runbook.lua:8: param 'dry' must be true or false, got 'maybe'"),
]
for kv, want in cases:
    for verb in ("check", "plan"):
        p = subprocess.run([drrun, verb, "runbook.lua", "--param", kv], cwd=rundir,
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
        if p.returncode != 65 or want not in p.stderr:
            bad.append(f"{verb} --param {kv!r}: exit {p.returncode}, want 65 and {want!r}: {p.stderr!r}")
good = ["port=0x10", "port=3.0", "wait=0s", "wait=1h30m", "api=postgres://db:5432/orders",
        "dry=no", "note="]
p = subprocess.run([drrun, "check", "runbook.lua"] + sum((["-p", kv] for kv in good), []),
                   cwd=rundir, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
if p.returncode != 0:
    bad.append(f"check {good}: exit {p.returncode}: {p.stderr!r}")
if bad:
    sys.exit("\n".join(bad))
