import json, os, subprocess, sys

case, rundir, state = sys.argv[1:4]
drrun = os.path.abspath(os.environ["DRRUN"])
p = subprocess.run([drrun, "report", "--history", "report-history", "--format", "json",
                    "--state-dir", state], capture_output=True, text=True, timeout=30)
h = json.loads(p.stdout)
runs = h["runs"]
assert h["runs_total"] == 3 and h["completed"] == 2, h
assert [r["result"] for r in runs] == ["completed", "rolled-back", "completed"], runs
assert [r["checks_passed"] for r in runs] == [True, False, True], [r["checks"] for r in runs]
assert [r["rpo"]["met"] for r in runs] == [True, True, False], [r["rpo"] for r in runs]
assert [r["rto"]["met"] for r in runs] == [True, False, True], [r["rto"] for r in runs]
# the restore phase's duration is its step's, which sleeps 20ms: libuv's timers
# count whole milliseconds from the loop's cached time, so the sleep can end up
# to 1ms before 20ms have passed by the journal's clock
assert all(r["restore_s"] >= 0.019 for r in runs), [r["restore_s"] for r in runs]
assert all(r["journal_ok"] for r in runs)
md = subprocess.run([drrun, "report", "--history", "--state-dir", state], capture_output=True,
                    text=True, timeout=30).stdout
assert "3 runs, 2 completed: success rate 67%" in md, md
assert md.count("| drill |") == 3 and "FAILED" in md, md
html = subprocess.run([drrun, "report", "--history", "report-history", "--format", "html",
                       "--state-dir", state], capture_output=True, text=True, timeout=30).stdout
assert html.count('<circle class="pt rto"') == 2, "two recovered runs have an RTO point"
assert html.count('<circle class="pt rpo"') == 3, "every run has an RPO point"
assert 'class="target rto"' in html and 'class="target rpo"' in html
none = subprocess.run([drrun, "report", "--history", "no-such-runbook", "--state-dir", state],
                      capture_output=True, text=True, timeout=30)
assert none.returncode == 66 and "no runs of runbook no-such-runbook" in none.stderr, none.stderr
