import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from approvals import *  # noqa: E402,F403

run = Run("run", "runbook.lua")
waiting("promote")
expect(os.path.exists(os.path.join(RUN, "maintenance")), "maintenance_on did not run")
rc, out, err = approve("last", "--deny", "--as", "bob", "--comment", "replica is 40 s behind")
expect(rc == 0 and "denied by bob" in out and "declined" in out, f"deny: {rc} {out} {err}")
rc = run.wait()
expect(rc == 3, f"exit {rc}, want 3:\n{run.text()}")
expect("rolled-back (exit 3): approval declined for step 'promote'" in run.text(), run.text())
expect(not os.path.exists(os.path.join(RUN, "maintenance")), "maintenance_on was not rolled back")
expect(not os.path.exists(os.path.join(RUN, "promoted")), "promote ran after a deny")
recs = journal()
gate = approvals("promote")
expect([r["status"] for r in gate] == ["waiting", "answered", "declined"], f"{gate}")
expect(gate[1]["answer"] == "deny" and gate[1]["comment"] == "replica is 40 s behind", f"{gate[1]}")
expect(gate[2]["by"] == "drrun approve" and gate[2]["as"] == "bob", f"{gate[2]}")
end = recs[-1]
expect(end["type"] == "run_end" and end["status"] == "rolled-back" and end["exit"] == 3 and
       not end.get("resumable"), f"run_end: {end}")
expect(any(r["type"] == "rollback_end" and r["step"] == "maintenance_on" and
           r["status"] == "completed" for r in recs), "no rollback_end for maintenance_on")
