#!/usr/bin/env python3
"""Restart after kill -9, from the events log alone."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from serve import *  # noqa: E402,F403

SECRET = "restart-case-generic-secret-55"
ENV = {"DRRUN_WEBHOOK_SECRET": SECRET}
EVENTS = os.path.join(STATE, "serve", "events.jsonl")


def alert(site, note=""):
    return json.dumps({"labels": {"alertname": "SiteDown", "site": site},
                       "annotations": {"note": note}, "fingerprint": "fp-" + site})


def send(s, body, want=202, sig=None):
    sig = sig or generic_sig(SECRET, body)
    st, ans = s.post("/hooks/generic", body, {"X-Drrun-Signature": sig})
    expect(st == want, f"POST: {st} {ans}, expected {want}")
    return sig


s = Serve(env=ENV)
b1 = alert("a")
sig1 = send(s, b1)
s.wait_runs(lambda r: len(r) == 1 and r[0]["state"] == "running", "site a's run")
s.kill9()  # the run goes on: it has a session of its own

s = Serve(env=ENV, name="serve2")
runs = s.runs()
expect(len(runs) == 1 and runs[0]["state"] == "running" and runs[0]["key"] == "a",
       f"after the restart: {runs}")
send(s, b1, 403, sig1)  # the same (t, signature): a replay, across the restart
send(s, alert("a", "again"))  # site a while its run lives: dedupe
wait_for(lambda: s.metric('drrun_dedupe_drops_total{rule="site-down"}') == 1, "dedupe after restart")
open(os.path.join(RUN, "release-a"), "w").close()
# not serve's child any more: its end is noticed (as "lost": no exit status)
runs = s.wait_runs(lambda r: r[0]["state"] != "running", "site a's run to end")
expect(runs[0]["state"] == "lost", f"an adopted run's end: {runs}")
send(s, alert("a", "after"))  # its key cools down for 1h, from the recorded end
wait_for(lambda: s.metric('drrun_cooldown_drops_total{rule="site-down"}') == 1, "cooldown")
expect(len(s.runs()) == 1, f"a second run for site a: {s.runs()}")
s.stop()

# an alert accepted (durable) whose decision never reached the log: copy the
# accepted record as a new alert for site b, as a crash right after the 202
# would leave it, plus a torn half line
ev = [json.loads(l) for l in open(EVENTS)]
acc = [e for e in ev if e["type"] == "accepted"][0]
acc["id"] = 99
acc.pop("replay", None)
acc["intents"][0]["key"] = "b"
acc["intents"][0]["params"] = {"who": "b"}
with open(EVENTS, "a") as f:
    f.write(json.dumps(acc) + "\n" + '{"type":"decided","id":99,"int')
s = Serve(env=ENV, name="serve3")
runs = s.wait_runs(lambda r: any(x["key"] == "b" for x in r), "the undecided alert to run")
open(os.path.join(RUN, "release-b"), "w").close()
runs = s.wait_runs(lambda r: all(x["state"] != "running" for x in r), "site b's run to end")
b = [x for x in runs if x["key"] == "b"]
expect(len(b) == 1 and b[0]["result"] == "completed", f"site b: {runs}")
s.stop()
# and once more: nothing new is decided or run
s = Serve(env=ENV, name="serve4")
import time
time.sleep(1)
expect(len(s.runs()) == 2, f"a restart decided something again: {s.runs()}")
s.stop()
expect(ledger() == ["site-down|generic|SiteDown|a", "site-down|generic|SiteDown|b"],
       f"ledger {ledger()}")
lines = open(EVENTS).read()
expect(lines.endswith("\n") and '"int\n' not in lines and '"int{' not in lines,
       "the torn line was not cut")
