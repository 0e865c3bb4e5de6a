"""Run ids by `last`, by a unique part (not only a prefix), and an ambiguous
part refused (exit 66) with the candidates named."""
import os
import subprocess
import sys

rundir, state = sys.argv[2], sys.argv[3]
drrun = os.environ["DRRUN"]
ids = sorted(os.listdir(os.path.join(state, "runs")))
by_name = {i.split("-")[1]: i for i in ids}
bad = []


def status(rid):
    return subprocess.run([drrun, "status", rid, "--state-dir", state], cwd=rundir,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)


p = status("last")
if p.returncode != 0 or by_name["gamma"] not in p.stdout:
    bad.append(f"status last: exit {p.returncode}, want gamma's run: {p.stdout + p.stderr!r}")
for name in ("alpha", "beta"):
    p = status(f"{name}-")  # from the middle of the id, not its start
    if p.returncode != 0 or by_name[name] not in p.stdout:
        bad.append(f"status {name}-: exit {p.returncode}: {p.stdout + p.stderr!r}")
suffix = by_name["beta"][-4:]  # the random tail alone
p = status(suffix)
if sum(i.endswith(suffix) or suffix in i for i in ids) == 1 and \
        (p.returncode != 0 or by_name["beta"] not in p.stdout):
    bad.append(f"status {suffix}: exit {p.returncode}: {p.stdout + p.stderr!r}")
p = status("T")  # every id has it
if p.returncode != 66 or "ambiguous" not in p.stderr or \
        not all(i in p.stderr for i in ids) or p.stderr.count("\n") != 1:
    bad.append(f"status T: exit {p.returncode}, want 66 and one line naming all 3: {p.stderr!r}")
p = status("no-such-run")
if p.returncode != 66 or "no run 'no-such-run'" not in p.stderr:
    bad.append(f"status no-such-run: exit {p.returncode}: {p.stderr!r}")
if bad:
    sys.exit("\n".join(bad))
