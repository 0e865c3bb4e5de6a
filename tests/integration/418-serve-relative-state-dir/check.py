#!/usr/bin/env python3
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from serve import *  # noqa: E402,F403

SECRET = "relative-state-secret-0123456789"
s = Serve(rules="site/rules.lua", env={"DRRUN_WEBHOOK_SECRET": SECRET}, state="rel-state")
body = json.dumps({"labels": {"alertname": "SiteDown", "site": "a"}})
st, ans = s.post("/hooks/generic", body, {"X-Drrun-Signature": generic_sig(SECRET, body)})
expect(st == 202, f"{st} {ans}")
runs = s.wait_runs(lambda r: len(r) == 1 and r[0]["state"] == "ended", "the run to end")
expect(runs[0]["result"] == "completed", f"run: {runs[0]}")
with open(os.path.join(RUN, "site", "ledger.txt")) as f:
    expect(f.read() == "a\n", "the run did not note site a")
journals = os.listdir(os.path.join(RUN, "rel-state", "runs"))
expect(len(journals) == 1 and journals[0] == runs[0]["run_id"],
       f"the run's journal is not under serve's state dir: {journals}")
s.stop()
