import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from serve import Serve, generic_sig, wait_for  # noqa: E402
from approvals import *  # noqa: E402,F403

SECRET = "confirm-case-secret-91"
s = Serve(env={"DRRUN_WEBHOOK_SECRET": SECRET})


def fire(alertname, site):
    body = json.dumps({"labels": {"alertname": alertname, "site": site}})
    st, _ = s.post("/hooks/generic", body, {"X-Drrun-Signature": generic_sig(SECRET, body)})
    expect(st == 202, f"POST {alertname}: {st}")


fire("SiteDown", "eu")
s.wait_runs(lambda r: len(r) == 1 and r[0]["state"] == "running", "the run")
w = wait_record(lambda x: x["type"] == "approval" and x["status"] == "waiting", "the confirmation")
expect(w["step"] == "(activation)" and w["approvers"] == ["alice", "bob"] and
       w["question"] == "Start runbook failover.lua for rule site-down?", f"waiting: {w}")
expect(not os.path.exists(os.path.join(RUN, "switched")), "a step ran before the confirmation")

def waits():
    runs = s.get_json("/runs")["runs"]
    return runs and runs[0].get("awaiting_approval")


wait_for(waits, "/runs to show the confirmation")
r = s.get_json("/runs")["runs"][0]
expect(r["run_id"] == w["run"], f"/runs names the run while it runs: {r}")
aw = waits()[0]
expect(aw["step"] == "(activation)" and aw["approved_by"] == [] and aw["quorum"] == 1, f"{aw}")

rc, out, err = approve(r["run_id"], "--as", "alice")
expect(rc == 0 and "approved by alice (1 of 1)" in out, f"confirm: {rc} {out} {err}")
s.wait_runs(lambda x: x[0]["state"] == "ended", "the run to end")
runs = s.get_json("/runs")["runs"]
expect(runs[0]["exit"] == 0 and "awaiting_approval" not in runs[0], f"/runs: {runs}")
expect(runs[0]["result"] == "completed", f"/runs: {runs}")
expect(open(os.path.join(RUN, "switched")).read() == "eu\n", "switch did not run once for eu")

# nobody confirms within the timeout: default = "skip"
fire("Quiet", "us")
def quiet(runs):
    return [x for x in runs if x["rule"] == "quiet-hours" and x["state"] == "ended"]


q = quiet(s.wait_runs(quiet, "the unconfirmed run to end", timeout=30))[0]
expect(q["exit"] == 3, f"unconfirmed: {q}")
recs = journal(q["run_id"])
end = recs[-1]
expect(end["type"] == "run_end" and end["status"] == "aborted" and
       "not confirmed (no answer before the timeout)" in end["reason"] and
       not end.get("resumable"), f"run_end: {end}")
expect(not any(x["type"] == "step_start" for x in recs), "a step started without confirmation")
expect(open(os.path.join(RUN, "switched")).read() == "eu\n", "switch ran for the unconfirmed run")
s.stop()
