#!/usr/bin/env python3
"""The generic hook against a running serve, then a serve with no secrets
at all: every hook answers 401 and nothing runs."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from serve import *  # noqa: E402,F403

SECRET = "generic-hook-secret-0123456789"
OLD = "generic-hook-secret-retired-42"
s = Serve(env={"DRRUN_WEBHOOK_SECRET": f"{SECRET},{OLD}", "LEDGER": os.path.join(RUN, "ledger.txt")})
body = json.dumps({"status": "firing", "labels": {"alertname": "SiteDown", "site": "a"},
                   "annotations": {"summary": "site a is down"}, "fingerprint": "f-site-a"})
H = "X-Drrun-Signature"

sig = generic_sig(SECRET, body)
st, ans = s.post("/hooks/generic", body, {H: sig})
expect(st == 202 and ans["intents"] == 1, f"signed: {st} {ans}")
# replay of one (t, signature): refused
st, ans = s.post("/hooks/generic", body, {H: sig})
expect(st == 403 and ans.get("error") == "replay", f"replay: {st} {ans}")
# stale and future t, outside 5 minutes
now = int(time.time())
for t in (now - 301, now + 301):
    st, ans = s.post("/hooks/generic", body, {H: generic_sig(SECRET, body, t)})
    expect(st == 403 and ans["error"] == "stale", f"t={t - now:+d}: {st} {ans}")
# the retired secret still verifies; a wrong one does not; nor no header
other = body.replace('"a"', '"b"')
st, ans = s.post("/hooks/generic", other, {H: generic_sig(OLD, other)})
expect(st == 202, f"rotated secret: {st} {ans}")
st, ans = s.post("/hooks/generic", other, {H: generic_sig("not-the-secret", other)})
expect(st == 403 and ans["error"] == "signature", f"wrong secret: {st} {ans}")
st, ans = s.post("/hooks/generic", other)
expect(st == 401 and ans["error"] == "unsigned", f"unsigned: {st} {ans}")
st, ans = s.post("/hooks/generic", other, {H: "v1=abc"})
expect(st == 400 and ans["error"] == "malformed", f"malformed: {st} {ans}")
# a body changed under its signature
st, ans = s.post("/hooks/generic", other.replace("b", "c"), {H: generic_sig(SECRET, other)})
expect(st == 403, f"tampered: {st}")

runs = s.wait_runs(lambda r: len(r) == 2 and all(x["state"] == "ended" for x in r),
                   "two runs (sites a and b) to end")
expect(sorted(ledger()) == ["generic-down|generic|f-site-a|a", "generic-down|generic|f-site-a|b"],
       f"ledger {ledger()}")
# site a again, properly signed and fresh: its key is cooling down (1h)
body2 = body.replace("site a is down", "site a is still down")
st, ans = s.post("/hooks/generic", body2, {H: generic_sig(SECRET, body2)})
expect(st == 202, f"fresh delivery: {st} {ans}")
wait_for(lambda: s.metric('drrun_cooldown_drops_total{rule="generic-down"}') == 1,
         "the cooldown drop")
expect(len(s.runs()) == 2, "no run in the cooldown")
# the secrets never reach the run's environment
for r in s.runs():
    j = open(os.path.join(STATE, "runs", r["run_id"], "journal.jsonl")).read()
    expect(SECRET not in j and OLD not in j, "a hook secret in a run journal")
s.stop()

# fail closed: no secrets set
s = Serve(name="closed", state=os.path.join(RUN, "state-closed"))
for path, h in (("/hooks/generic", {H: generic_sig(SECRET, body)}),
                ("/hooks/pagerduty", {"X-PagerDuty-Signature": pd_sig(SECRET, body)}),
                ("/hooks/alertmanager", {"Authorization": "Bearer anything"})):
    st, ans = s.post(path, body, h)
    expect(st == 401 and ans["error"] == "not_configured", f"{path} unset: {st} {ans}")
expect(s.runs() == [], "a run with no secrets set")
s.stop()
