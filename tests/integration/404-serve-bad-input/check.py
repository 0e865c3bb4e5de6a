#!/usr/bin/env python3
"""Oversized and deeply nested JSON, invalid UTF-8, a label that would
inject into a param, a runbook path in an alert, template expressions in a
label, oversized headers, a wrong method: each refused with its 4xx and
counted under drrun_webhooks_rejected_total; no run starts; serve lives on."""
import json
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from serve import *  # noqa: E402,F403

SECRET = "bad-input-generic-secret-9876"
TOKEN = "bad-input-alertmanager-token-1234"
s = Serve(env={"DRRUN_WEBHOOK_SECRET": SECRET, "DRRUN_ALERTMANAGER_TOKEN": TOKEN,
               "LEDGER": os.path.join(RUN, "ledger.txt")})


def alert(**labels):
    return json.dumps({"labels": dict({"alertname": "X"}, **labels), "fingerprint": "f"})


def generic(body, want, reason):
    if isinstance(body, str):
        body = body.encode()
    st, ans = s.post("/hooks/generic", body, {"X-Drrun-Signature": generic_sig(SECRET, body)})
    expect(st == want, f"{reason}: HTTP {st} {ans!r}, expected {want}")
    if isinstance(ans, dict):
        expect(ans.get("error") == reason, f"{reason}: answered {ans}")
    return st


am_base = json.load(open(os.path.join(vectors(), "webhooks", "alertmanager",
                                      "constructed-firing-two-alerts.json")))


def am(mutate, want, reason):
    b = json.loads(json.dumps(am_base))
    mutate(b)
    st, ans = s.post("/hooks/alertmanager", json.dumps(b), {"Authorization": "Bearer " + TOKEN})
    expect(st == want and ans.get("error") == reason, f"alertmanager {reason}: {st} {ans}")


generic(b"{" + b'"labels":{"alertname":"' + b"x" * (2 << 20) + b'"}}', 413, "too_large")
generic("[" * 5000 + "]" * 5000, 400, "depth")
generic('{"labels":{"alertname":"X"},"a":' + '{"b":' * 100 + "1" + "}" * 101, 400, "depth")
generic(b'{"labels":{"alertname":"X","instance":"db-\xff\xfe"}}', 400, "utf8")
generic(b'{"labels":{"alertname":"X","instance":"\xed\xa0\x80"}}', 400, "utf8")
generic("{not json", 400, "json")
# a label that would inject into the param (and a forged log line)
generic(alert(instance="db-1\n--param who=root"), 422, "label")
generic(alert(instance="db-1\r\nlevel=error"), 422, "label")
generic(alert(**{"instance; rm -rf /": "x"}), 422, "label")
# a runbook path in an alert
generic(alert(runbook="/etc/passwd.lua"), 422, "runbook_in_alert")
generic(json.dumps({"labels": {"alertname": "X"}, "annotations": {"runbook": "../../x.lua"}}),
        422, "runbook_in_alert")
# template expressions in a label
for t in ("{labels.alertname}", "{{ .CommonLabels }}", "${DRRUN_WEBHOOK_SECRET}", "{% raw %}"):
    generic(alert(instance=t), 422, "template")
am(lambda b: b["alerts"][0]["labels"].update(instance="{fingerprint}"), 422, "template")
am(lambda b: b["alerts"][1]["labels"].update(runbook="evil.lua"), 422, "runbook_in_alert")
am(lambda b: b["alerts"][0]["labels"].update(instance="a\u0007b"), 422, "label")
am(lambda b: b.update(alerts="none"), 422, "shape")
am(lambda b: b["alerts"].extend([b["alerts"][0]] * 1001), 413, "too_large")

# headers over the connection's memory: 431 from the listener, nothing run
c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
c.sendall(b"POST /hooks/generic HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 65536 + b"\r\n\r\n")
resp = c.recv(200)
c.close()
expect(b" 431 " in resp.split(b"\r\n")[0] or b" 413 " in resp.split(b"\r\n")[0],
       f"oversized headers: {resp[:80]!r}")
st, _ = s.get("/hooks/generic")
expect(st == 405, f"GET on a hook: {st}")
st, _ = s.get("/nothing-here")
expect(st == 404, f"unknown path: {st}")

m = s.metrics()
for reason, n in (("too_large", 1), ("depth", 2), ("utf8", 2), ("json", 1), ("label", 3),
                  ("runbook_in_alert", 2), ("template", 4), ("method", 1)):
    k = f'drrun_webhooks_rejected_total{{source="generic",reason="{reason}"}}'
    expect(m.get(k) == n, f"{k} = {m.get(k)}, expected {n}")
for reason, n in (("template", 1), ("runbook_in_alert", 1), ("label", 1), ("shape", 1),
                  ("too_large", 1)):
    k = f'drrun_webhooks_rejected_total{{source="alertmanager",reason="{reason}"}}'
    expect(m.get(k) == n, f"{k} = {m.get(k)}, expected {n}")
expect(s.runs() == [], f"a bad input started a run: {s.runs()}")
expect(not os.path.exists(os.path.join(STATE, "runs")), "a run directory exists")

# still alive, and a good alert runs
generic(alert(instance="db-7"), 202, None) if False else None
body = alert(instance="db-7")
st, ans = s.post("/hooks/generic", body, {"X-Drrun-Signature": generic_sig(SECRET, body)})
expect(st == 202, f"a good alert after the bad ones: {st} {ans}")
s.wait_runs(lambda r: len(r) == 1 and r[0]["state"] == "ended", "the good alert's run")
expect(ledger() == ["any-generic|generic|f|db-7"], f"ledger {ledger()}")
s.stop()
