import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from approvals import *  # noqa: E402,F403

run = Run("run", "runbook.lua")
first = waiting("promote")
rc, out, err = approve("last", "--deny", "--as", "alice")
expect(rc == 0, f"deny: {rc} {out} {err}")
rc = run.wait()
expect(rc == 3, f"exit {rc}, want 3:\n{run.text()}")
end = journal()[-1]
expect(end["status"] == "aborted" and end.get("resumable") is True, f"run_end: {end}")
expect(os.path.exists(os.path.join(RUN, "prepared")), "prepare was rolled back or never ran")
rc, out, err = approve("last", "--as", "alice")
expect(rc == 65 and "waits for no approval" in err, f"approve an ended run: {rc} {err}")

again = Run("resume", "last")
wait_record(lambda r: r["type"] == "approval" and r["status"] == "waiting" and
            r["gate"] != first["gate"], "the resumed run's new gate")
rc, out, err = approve("last", "--as", "alice")
expect(rc == 0 and "approved by alice (1 of 1)" in out, f"approve: {rc} {out} {err}")
rc = again.wait()
expect(rc == 0, f"resume exit {rc}:\n{again.text()}")
expect(os.path.exists(os.path.join(RUN, "promoted")), "promote did not run after the resume")
