import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from approvals import *  # noqa: E402,F403

run = Run("run", "--yes", "runbook.lua")  # --yes is one operator: not a quorum of two
w = waiting("promote")
expect(w["question"] == "Promote db-2?", f"the question the function asked: {w}")
expect(w["quorum"] == 2 and w["approvers"] == ["alice", "bob", "carol"], f"waiting: {w}")
expect(w["by"] is None and "expires" in w and w["default"] == "deny", f"waiting: {w}")
expect(not os.path.exists(os.path.join(RUN, "promoted.txt")), "promote ran before approval")

rc, out, err = approve("last", "--as", "alice", "--comment", "lag is 0 bytes")
expect(rc == 0 and "approved by alice (1 of 2)" in out, f"alice: {rc} {out} {err}")
rc, out, err = approve("last", "promote", "--as", "alice")
expect(rc == 65 and "alice has answered this approval already" in err, f"alice again: {rc} {err}")
rc, out, err = approve("last", "--as", "mallory")
expect(rc == 65 and "mallory is not one of step 'promote''s approvers" in err,
       f"mallory: {rc} {err}")
rc, out, err = approve("last", "nosuchstep", "--as", "bob")
expect(rc == 65 and "waits for no approval" in err, f"wrong step: {rc} {err}")

rc, out, err = drrun("status", "--state-dir", STATE, "last")
expect(rc == 0 and "awaiting approval" in out and "1 of 2 approved (alice)" in out and
       "drrun approve" in out, f"status while waiting:\n{out}{err}")
rc, out, err = drrun("status", "--json", "--state-dir", STATE, "last")
st = {s["step"]: s for s in json.loads(out)["steps"]}
expect(st["promote"]["state"] == "awaiting approval" and
       st["promote"]["approval"]["approved_by"] == ["alice"] and
       st["promote"]["approval"]["quorum"] == 2, f"status --json: {out}")

rc, out, err = approve("last", "--as", "bob")
expect(rc == 0 and "approved by bob (2 of 2)" in out, f"bob: {rc} {out} {err}")
rc = run.wait()
expect(rc == 0, f"the run exit {rc}:\n{run.text()}")
expect(os.path.exists(os.path.join(RUN, "promoted.txt")), "promote did not run")

recs = journal()
gate = [r for r in recs if r["type"] == "approval"]
expect([r["status"] for r in gate] == ["waiting", "answered", "answered", "approved"],
       f"approval records: {gate}")
a = gate[1]
expect(a["as"] == "alice" and a["by"] == "drrun approve" and a["answer"] == "approve" and
       a["comment"] == "lag is 0 bytes" and a["who"] == "oncall" and a["host"] and
       a["count"] == 1 and a["quorum"] == 2, f"alice's answer: {a}")
expect(gate[3]["by"] == "quorum" and gate[3]["approvers"] == ["alice", "bob"], f"{gate[3]}")
types = [(r["type"], r.get("step")) for r in recs]
expect(types.index(("approval", "promote")) < types.index(("step_start", "promote")),
       "promote started before its approval")
expect(all("mallory" not in json.dumps(r) for r in recs), "a refused answer reached the journal")
