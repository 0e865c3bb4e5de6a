#!/usr/bin/env python3
"""The PagerDuty vectors against a running serve: the valid ones are
accepted (202) and start one run; a retry with the same X-Webhook-Id is
answered 200 and starts nothing; forged, re-serialized, old-secret-only
and non-v1 signatures get 403; a missing header 401; an empty body 400.
Rotation: DRRUN_PAGERDUTY_SECRET holds two secrets, either one verifies."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from serve import *  # noqa: E402,F403

V = os.path.join(vectors(), "webhooks", "pagerduty")
cases = json.load(open(os.path.join(V, "signature-vectors.json")))["cases"]
SECRET = cases[0]["secret"]
s = Serve(env={"DRRUN_PAGERDUTY_SECRET": "retired-secret-from-last-month," + SECRET,
               "LEDGER": os.path.join(RUN, "ledger.txt")})


def body_of(c):
    if c.get("body_file"):
        return open(os.path.join(V, c["body_file"]), "rb").read()
    return bytes.fromhex(c.get("body_bytes_hex", ""))


want_runs = 0
n403 = 0
for i, c in enumerate(cases):
    if c["secret"] != SECRET:
        continue
    h = {"X-Webhook-Id": f"wh-{i}"}
    if c["header"] is not None:
        h["X-PagerDuty-Signature"] = c["header"]
    st, ans = s.post("/hooks/pagerduty", body_of(c), h)
    e = c["expect"]
    want = (202 if e.startswith("valid") else 400 if e.startswith("malformed body")
            else 401 if c["header"] is None else 403)
    expect(st == want, f"{c['name']}: HTTP {st} {ans}, expected {want}")
    n403 += st == 403
    if st == 202:
        want_runs += 1
        # a retry of the same delivery: done already, nothing new
        st2, ans2 = s.post("/hooks/pagerduty", body_of(c), h)
        expect(st2 == 200 and ans2.get("status") == "duplicate",
               f"{c['name']}: retry answered {st2} {ans2}")

# the docs example, signed with its own secret (not configured here): refused
docs = [c for c in cases if c["secret"] != SECRET][0]
st, _ = s.post("/hooks/pagerduty", body_of(docs), {"X-PagerDuty-Signature": docs["header"]})
expect(st == 403, f"a signature under an unknown secret: {st}")
n403 += 1
# signed with the retired secret only: still accepted during rotation
body = open(os.path.join(V, "developer-docs-example-incident.priority_updated.json"), "rb").read()
st, ans = s.post("/hooks/pagerduty", body,
                 {"X-PagerDuty-Signature": pd_sig("retired-secret-from-last-month", body),
                  "X-Webhook-Id": "rotated-1"})
expect(st == 202, f"the retired secret during rotation: {st} {ans}")
# a tampered body under a good signature
bad = body.replace(b"P1", b"P2")
st, _ = s.post("/hooks/pagerduty", bad, {"X-PagerDuty-Signature": pd_sig(SECRET, body)})
expect(st == 403, f"tampered body: {st}")
n403 += 1

runs = s.wait_runs(lambda r: len(r) >= 1 and all(x["state"] == "ended" for x in r),
                   "the runs to end")
# the go-pagerduty body and the docs example are the same incident (PGR0VU2):
# one dedupe key, so whichever came second was absorbed while the first ran,
# or ran after it ended (no cooldown): either way no two at once
lines = ledger()
expect(len(lines) == len(runs), f"ledger {lines} vs runs {runs}")
for ln in lines:
    rule, src, fp, who = ln.split("|")
    expect(rule == "pd-incident" and src == "pagerduty" and fp == "PGR0VU2",
           f"ledger line {ln!r}")
    expect(who == "API Service", f"params.who from the service summary: {ln!r}")
m = s.metrics()
expect(m.get('drrun_webhooks_rejected_total{source="pagerduty",reason="signature"}') == n403 >= 6,
       f"signature rejections: {m}")
expect(m.get('drrun_webhooks_rejected_total{source="pagerduty",reason="unsigned"}') == 1,
       "unsigned rejection")
expect(m.get('drrun_webhooks_rejected_total{source="pagerduty",reason="malformed"}') == 1,
       "malformed rejection")
expect(m.get('drrun_webhooks_duplicate_total{source="pagerduty"}') == want_runs,
       "duplicates counted")
for r in runs:
    expect(r["result"] == "completed" and r["run_id"], f"run {r}")
    st, one = s.get(f"/runs/{r['id']}")
    expect(st == 200 and json.loads(one)["key"] == "PGR0VU2", f"/runs/{r['id']}: {one}")
    st, one = s.get(f"/runs/{r['run_id']}")
    expect(st == 200, f"/runs/RUN_ID: {st}")
    # the trigger reached the run's journal
    j = open(os.path.join(STATE, "runs", r["run_id"], "journal.jsonl")).readline()
    t = json.loads(j)["trigger"]
    expect(t["source"] == "pagerduty" and t["rule"] == "pd-incident"
           and t["labels"]["event_type"] == "incident.priority_updated"
           and t["startsAt"] and t["received_at"], f"run_start trigger {t}")
s.stop()
