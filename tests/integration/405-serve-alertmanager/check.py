#!/usr/bin/env python3
"""Alertmanager (prometheus-alertmanager, its amtool) -> drrun serve."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from serve import *  # noqa: E402,F403

TOKEN = "alertmanager-bearer-token-for-serve-0417"
s = Serve(env={"DRRUN_ALERTMANAGER_TOKEN": TOKEN})
AP = freeport()
A = f"http://127.0.0.1:{AP}"
hook = f"http://127.0.0.1:{s.port}/hooks/alertmanager"
with open(os.path.join(RUN, "am.yml"), "w") as f:
    f.write(f"""route:
  receiver: drrun
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
  routes:
    - receiver: wrong
      matchers: ['alertname="WrongToken"']
receivers:
  - name: drrun
    webhook_configs:
      - url: {hook}
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials: {TOKEN}}}
  - name: wrong
    webhook_configs:
      - url: {hook}
        http_config:
          authorization: {{type: Bearer, credentials: not-the-token}}
""")
subprocess.run(["amtool", "check-config", "am.yml"], cwd=RUN, check=True,
               stdout=subprocess.DEVNULL)
amlog = open(os.path.join(RUN, "am.log"), "ab")
am = subprocess.Popen(["/usr/bin/prometheus-alertmanager", "--config.file=am.yml",
                       "--storage.path=am-data", f"--web.listen-address=127.0.0.1:{AP}",
                       f"--web.external-url={A}", "--cluster.listen-address="],
                      cwd=RUN, stdout=amlog, stderr=amlog, stdin=subprocess.DEVNULL)
import serve as lib  # noqa: E402
lib._procs.append(am)


def amtool(*args):
    subprocess.run(["amtool", f"--alertmanager.url={A}", "alert", "add"] + list(args),
                   cwd=RUN, check=True, stdout=subprocess.DEVNULL, timeout=30)


def ready():
    try:
        import urllib.request
        return urllib.request.urlopen(A + "/-/ready", timeout=2).status == 200
    except OSError:
        return False


wait_for(ready, "Alertmanager ready", 30)
amtool("alertname=DbDown", "instance=db-1", "severity=critical", "--annotation=summary=db-1 down")
amtool("alertname=DbDown", "instance=db-2", "severity=critical", "--annotation=summary=db-2 down")
runs = s.wait_runs(lambda r: len(r) >= 1, "Alertmanager's first notification to start a run", 30)
# repeats (repeat_interval 2s) and the group change arrive while the run holds
wait_for(lambda: s.metric('drrun_dedupe_drops_total{rule="db-down"}') >= 2,
         "two repeated notifications absorbed by dedupe", 30)
runs = s.runs()
expect(len(runs) == 1 and runs[0]["key"] == "DbDown" and runs[0]["state"] == "running",
       f"one run for the group: {runs}")
expect(s.metric('drrun_activations_total{rule="db-down"}') == 1, "one activation")
# the wrong token is refused, and starts nothing
amtool("alertname=WrongToken", "instance=x")
wait_for(lambda: s.metric('drrun_webhooks_rejected_total{source="alertmanager",reason="auth"}')
         >= 1, "the wrong token's refusal", 30)
# resolve both: recorded, no run
end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
for inst in ("db-1", "db-2"):
    amtool("alertname=DbDown", f"instance={inst}", "severity=critical", f"--end={end}")
wait_for(lambda: s.metric('drrun_alerts_resolved_total{source="alertmanager"}') >= 2,
         "the resolve to be recorded", 30)
open(os.path.join(RUN, "release-DbDown"), "w").close()
runs = s.wait_runs(lambda r: all(x["state"] == "ended" for x in r), "the run to end", 30)
expect(len(runs) == 1 and runs[0]["result"] == "completed", f"runs {runs}")
expect(ledger() == ["db-down|alertmanager|DbDown|DbDown"], f"ledger {ledger()}")
# what Alertmanager sent, as serve recorded it
ev = [json.loads(l) for l in open(os.path.join(STATE, "serve", "events.jsonl"))]
acc = [e for e in ev if e["type"] == "accepted"]
expect(all(e["source"] == "alertmanager" and "alertname=\"DbDown\"" in e["group_key"]
           for e in acc), "group keys")
res = [a for e in acc for a in e.get("resolved_alerts", [])]
expect({a["labels"]["instance"] for a in res} == {"db-1", "db-2"}, f"resolved {res}")
expect(all(len(a["fingerprint"]) == 16 for a in res), "fingerprints")
t = json.loads(open(os.path.join(STATE, "runs", runs[0]["run_id"], "journal.jsonl")).readline())
t = t["trigger"]
expect(t["source"] == "alertmanager" and t["labels"]["instance"] in ("db-1", "db-2")
       and t["startsAt"] and len(t["fingerprint"]) == 16 and t["rule"] == "db-down",
       f"trigger {t}")
expect(s.metric('drrun_activations_total{rule="wrong-token"}') == 0, "wrong token ran")
am.terminate()
am.wait(timeout=10)
s.stop()
