#!/usr/bin/env python3
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from serve import *  # noqa: E402,F403

ev = os.path.join(STATE, "serve", "events.jsonl")
os.makedirs(os.path.dirname(ev), exist_ok=True)
# the last firing serve recorded: 10 minutes ago, on a minute boundary
last = (int(time.time()) // 60 - 10) * 60
with open(ev, "w") as f:
    f.write(json.dumps({"type": "fired", "schedule": "every-minute", "at": last}) + "\n")
    f.write(json.dumps({"type": "fired", "schedule": "yearly", "at": last}) + "\n")
s = Serve()
m = s.metric('drrun_schedule_missed_total{schedule="every-minute"}')
expect(m in (9, 10), f"missed firings: {m}")
expect(s.metric('drrun_schedule_missed_total{schedule="yearly"}') == 0, "yearly missed?")
t = s.text()
expect('msg="schedule firings missed while serve was down (not replayed)" '
       'schedule=every-minute missed=' in t, f"log:\n{t}")
time.sleep(0.5)
expect(s.runs() == [] or all(r["source"] == "schedule" for r in s.runs()) and len(s.runs()) <= 1,
       f"missed firings were replayed: {s.runs()}")
s.stop()
recs = [json.loads(l) for l in open(ev)]
expect(any(r.get("missed") == m for r in recs), "the missed count is not in the events log")
