#!/usr/bin/env python3
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import serve as lib  # noqa: E402
from serve import *  # noqa: E402,F403

P, Q = freeport(), freeport()
E = f"http://127.0.0.1:{P}"
data = os.path.join(RUN, "etcd-data")
shutil.rmtree(data, ignore_errors=True)
elog = open(os.path.join(RUN, "etcd.log"), "ab")
etcd = subprocess.Popen(["etcd", "--name", "drrun", "--data-dir", data, "--logger=zap",
                         "--log-outputs=stderr", "--listen-client-urls", E,
                         "--advertise-client-urls", E, "--listen-peer-urls",
                         f"http://127.0.0.1:{Q}", "--initial-advertise-peer-urls",
                         f"http://127.0.0.1:{Q}", "--initial-cluster",
                         f"drrun=http://127.0.0.1:{Q}"], cwd=RUN, stdout=elog, stderr=elog,
                        stdin=subprocess.DEVNULL)
lib._procs.append(etcd)


def healthy():
    try:
        return b'"health":"true"' in urllib.request.urlopen(E + "/health", timeout=1).read()
    except OSError:
        return False


wait_for(healthy, "etcd", 30)
SECRET = "etcd-case-generic-secret-8080"
TTL = 3
env = {"DRRUN_WEBHOOK_SECRET": SECRET}
args = ["--lock", f"etcd://127.0.0.1:{P}", "--lock-ttl", f"{TTL}s"]
a = Serve(env=env, args=args, state=os.path.join(RUN, "state-a"), name="serve-a")
b = Serve(env=env, args=args, state=os.path.join(RUN, "state-b"), name="serve-b")
wait_for(lambda: a.metric("drrun_lock_up") == 1 and b.metric("drrun_lock_up") == 1,
         "both leases", 10)


def body(site, n):
    return json.dumps({"labels": {"alertname": "SiteDown", "site": site},
                       "annotations": {"copy": str(n)}})


def send(s, site, n, out):
    bd = body(site, n)
    st, ans = s.post("/hooks/generic", bd, {"X-Drrun-Signature": generic_sig(SECRET, bd)})
    out.append(st)


# 100 copies, 50 to each, 10 senders at once
codes = []
threads = [threading.Thread(target=lambda i=i: [send(a if (i + k) % 2 else b, "x", i * 10 + k,
                                                     codes) for k in range(10)])
           for i in range(10)]
for t in threads:
    t.start()
for t in threads:
    t.join()
expect(codes.count(202) == 100, f"answers: {sorted(set(codes))} {len(codes)}")


def decided(s):
    return s.metric('drrun_activations_total{rule="site-down"}') + \
        s.metric('drrun_dedupe_drops_total{rule="site-down"}')


wait_for(lambda: decided(a) + decided(b) == 100, "100 decisions", 30)
ra, rb = a.runs(), b.runs()
expect(len(ra) + len(rb) == 1, f"runs: a {ra}, b {rb}")
runner, other = (a, b) if ra else (b, a)
expect(runner.runs()[0]["state"] == "running", "the run")
# the instance running it dies; the run goes on (its own session); its key
# stays in etcd until the lease lapses
runner.kill9()
t_kill = time.monotonic()
codes = []
before = other.metric('drrun_dedupe_drops_total{rule="site-down"}')
send(other, "x", 1000, codes)
wait_for(lambda: other.metric('drrun_dedupe_drops_total{rule="site-down"}') == before + 1,
         "the refusal right after kill -9", 5)
expect(time.monotonic() - t_kill < TTL, "too slow to test the refusal within the TTL")
expect(other.runs() == [], f"the key was taken before the lease TTL: {other.runs()}")
ev = [json.loads(l) for l in open(os.path.join(other.state, "serve", "events.jsonl"))]
expect(any(e.get("where") == "etcd" and e.get("result") == "dedupe" for e in ev),
       "the refusal is not recorded as etcd's")
# keep trying until the other instance takes it: not before the TTL
while time.monotonic() - t_kill < TTL + 8:
    send(other, "x", int(time.time() * 1000), codes)
    time.sleep(0.25)
    if other.runs():
        break
dt = time.monotonic() - t_kill
expect(other.runs(), f"the other instance never took the key ({dt:.1f}s after kill -9)")
expect(dt >= TTL - 0.5, f"the key was taken {dt:.2f}s after kill -9, before the {TTL}s TTL")
# etcd down: fail closed
etcd.terminate()
etcd.wait(timeout=10)
wait_for(lambda: other.get("/healthz")[0] == 503, "/healthz to say the lock is down", 15)
st, h = other.get("/healthz")
expect(b"etcd down" in h, f"healthz: {h}")
expect(other.metric("drrun_lock_up") == 0, "drrun_lock_up")
n = len(other.runs())
send(other, "y", 1, codes)
wait_for(lambda: other.metric('drrun_lock_refusals_total{rule="site-down"}') >= 1,
         "the refusal", 15)
expect(len(other.runs()) == n, "a run started with etcd down")
for site in ("x",):
    open(os.path.join(RUN, "release-" + site), "w").close()
other.wait_runs(lambda r: all(x["state"] != "running" for x in r), "the runs to end", 20)
other.stop()
ledger_lines = ledger()
expect(ledger_lines.count("site-down|generic|SiteDown|x") == 2,
       f"one run per instance that held the key: {ledger_lines}")
