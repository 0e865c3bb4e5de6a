"""etcdlock.py - helpers for the check.py of the `--lock etcd://` cases
(414-417): a real etcd on free loopback ports, drrun runs against it in
state dirs of their own (one state dir stands for one machine, so only the
etcd lock can keep two runs apart), and the lock key read straight from
etcd's JSON gateway.  Every process started here is killed when the check
ends; every drrun's stderr is checked for sanitizer reports.
"""
import atexit
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

DRRUN = os.environ.get("DRRUN", "drrun")
CASE, RUN, STATE = sys.argv[1], sys.argv[2], sys.argv[3]
SANITIZER = ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:")
_procs = []


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                p.kill()
            p.wait()


atexit.register(_cleanup)


def fail(msg):
    sys.exit(msg)


def expect(cond, msg):
    if not cond:
        fail(msg)


def wait_for(pred, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    fail(f"timed out waiting for {what}")


class Etcd:
    """etcd 3.4 on two free ports; start() again reuses its data dir."""

    def __init__(self):
        self.port, self.peer = freeport(), freeport()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = f"etcd://127.0.0.1:{self.port}"
        self.data = os.path.join(RUN, "etcd-data")
        shutil.rmtree(self.data, ignore_errors=True)
        self.p = None
        self.start()

    def start(self):
        pu = f"http://127.0.0.1:{self.peer}"
        log = open(os.path.join(RUN, "etcd.log"), "ab")
        self.p = subprocess.Popen(
            ["etcd", "--name", "drrun", "--data-dir", self.data, "--logger=zap",
             "--log-outputs=stderr", "--listen-client-urls", self.url,
             "--advertise-client-urls", self.url, "--listen-peer-urls", pu,
             "--initial-advertise-peer-urls", pu, "--initial-cluster", f"drrun={pu}"],
            cwd=RUN, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        _procs.append(self.p)
        wait_for(self.healthy, "etcd", 30)

    def healthy(self):
        try:
            return b'"health":"true"' in urllib.request.urlopen(self.url + "/health",
                                                               timeout=1).read()
        except OSError:
            return False

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=10)

    def post(self, path, body):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode())
        return json.load(urllib.request.urlopen(req, timeout=5))

    def holder(self, name="locky"):
        """The lock key's value and lease ("" and None when it is absent)."""
        k = base64.b64encode(f"/drrun/lock/{name}".encode()).decode()
        kvs = self.post("/v3/kv/range", {"key": k}).get("kvs") or []
        if not kvs:
            return "", None
        return base64.b64decode(kvs[0]["value"]).decode(), kvs[0].get("lease")

    def lease_ttl(self, lease):
        return int(self.post("/v3/lease/timetolive", {"ID": lease}).get("grantedTTL", 0))

    def delete(self, name="locky"):
        k = base64.b64encode(f"/drrun/lock/{name}".encode()).decode()
        self.post("/v3/kv/deleterange", {"key": k})


def _env():
    e = {k: v for k, v in os.environ.items()
         if k in ("PATH", "LANG", "ASAN_OPTIONS", "UBSAN_OPTIONS", "TZ")}
    e["HOME"] = RUN
    return e


def _sanitized(text, what):
    for bad in SANITIZER:
        if bad in text:
            fail(f"sanitizer report in {what}:\n{text}")


def drrun(*args, state, timeout=30):
    """Run drrun to its end: (exit, stdout, stderr)."""
    p = subprocess.run([DRRUN] + list(args) + ["--state-dir", state], cwd=RUN, env=_env(),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    _sanitized(p.stderr, "drrun " + " ".join(args))
    return p.returncode, p.stdout, p.stderr


class Bg:
    """A drrun run in the background, in a process group of its own."""

    def __init__(self, *args, state, name):
        self.out = os.path.join(RUN, name + ".out")
        self.err = os.path.join(RUN, name + ".err")
        self.p = subprocess.Popen([DRRUN] + list(args) + ["--state-dir", state], cwd=RUN,
                                  env=_env(), stdin=subprocess.DEVNULL,
                                  stdout=open(self.out, "wb"), stderr=open(self.err, "wb"),
                                  start_new_session=True)
        _procs.append(self.p)

    def wait(self, timeout=30):
        rc = self.p.wait(timeout=timeout)
        _sanitized(self.stderr(), "a background drrun")
        return rc

    def kill9(self):
        os.killpg(self.p.pid, signal.SIGKILL)
        self.p.wait()

    def stderr(self):
        with open(self.err, errors="replace") as f:
            return f.read()


def run_ids(state):
    d = os.path.join(state, "runs")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def journal(state, run_id):
    with open(os.path.join(state, "runs", run_id, "journal.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def ledger():
    try:
        with open(os.path.join(RUN, "ledger.txt")) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []
