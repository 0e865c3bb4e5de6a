#!/usr/bin/env python3
import http.client
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from serve import *  # noqa: E402,F403

SECRET = "sigterm-case-generic-secret-77"
s = Serve(env={"DRRUN_WEBHOOK_SECRET": SECRET}, args=["--log-format", "json"])
body = json.dumps({"labels": {"alertname": "SiteDown", "site": "a"}})
st, _ = s.post("/hooks/generic", body, {"X-Drrun-Signature": generic_sig(SECRET, body)})
expect(st == 202, f"POST {st}")
s.wait_runs(lambda r: len(r) == 1 and r[0]["state"] == "running", "the run")
s.p.send_signal(signal.SIGTERM)


def refused():
    try:
        s.get("/healthz")
        return False
    except (OSError, http.client.HTTPException):
        return True  # refused, reset or cut off mid-answer: the listener is closing


wait_for(refused, "serve to stop listening", 10)
time.sleep(0.5)
expect(s.p.poll() is None, f"serve exited while its run was going:\n{s.text()}")
open(os.path.join(RUN, "release-a"), "w").close()
rc = s.stop(timeout=30)
ev = [json.loads(l) for l in open(os.path.join(STATE, "serve", "events.jsonl"))]
ended = [e for e in ev if e["type"] == "ended"]
expect(len(ended) == 1 and ended[0]["exit"] == 0 and ended[0]["run_id"], f"ended: {ended}")
logs = [json.loads(l) for l in s.text().splitlines()]
expect(all({"ts", "level", "msg"} <= set(x) for x in logs), "log lines are JSON objects")
msgs = [x["msg"] for x in logs]
expect(msgs.index("stopping: no new webhooks; started runs finish") < msgs.index("run ended")
       < msgs.index("stopped"), f"order of the log: {msgs}")
