"""serve.py - helpers for the check.py of the `drrun serve` cases (400-449).

A serve case's `case` file checks the rules file (`args check rules.lua`);
its check.py then starts `drrun serve` on a free loopback port with the
case's state dir, drives it with real clients (urllib, Alertmanager, curl),
and stops it by PID.  Every serve started here is stopped (SIGKILL as a
last resort) when the check ends, and its stderr is checked for sanitizer
reports and for secrets.
"""
import atexit
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

DRRUN = os.environ.get("DRRUN", "drrun")
CASE, RUN, STATE = sys.argv[1], sys.argv[2], sys.argv[3]
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
            p.kill()
            p.wait()


atexit.register(_cleanup)


def fail(msg):
    sys.exit(msg)


class Serve:
    def __init__(self, rules="rules.lua", env=None, args=(), state=None, name="serve",
                 port=None, tls=None):
        self.port = port or freeport()
        self.state = state or STATE
        self.log = os.path.join(RUN, name + ".log")
        self.tls = tls
        e = {k: v for k, v in os.environ.items()
             if k in ("PATH", "LANG", "ASAN_OPTIONS", "UBSAN_OPTIONS", "HOME", "TZ")}
        e.update(env or {})
        self.env = e
        cmd = [DRRUN, "serve", "--rules", rules, "--listen", f"127.0.0.1:{self.port}",
               "--state-dir", self.state] + list(args)
        self.err = open(self.log, "ab")
        self.p = subprocess.Popen(cmd, cwd=RUN, env=e, stdin=subprocess.DEVNULL,
                                  stdout=self.err, stderr=self.err)
        _procs.append(self.p)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                fail(f"serve exited {self.p.returncode} at start:\n{self.text()}")
            try:
                st, _ = self.get("/healthz")
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        fail("serve did not answer /healthz within 20 s")

    def conn(self, timeout=10):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls)
            ctx.check_hostname = False
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None):
        c = self.conn()
        try:
            try:
                c.request(method, path, body=body, headers=headers or {})
            except (BrokenPipeError, ConnectionResetError):
                # answered (413) and closed before the whole body went: read the answer,
                # unless the socket is gone, which is a listener closing, not an answer
                if c.sock is None:
                    raise
            r = c.getresponse()
            data = r.read()
            return r.status, data
        finally:
            c.close()

    def get(self, path):
        return self.request("GET", path)

    def get_json(self, path):
        st, data = self.get(path)
        if st != 200:
            fail(f"GET {path}: {st} {data!r}")
        return json.loads(data)

    def post(self, path, body, headers=None):
        if isinstance(body, str):
            body = body.encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        st, data = self.request("POST", path, body, h)
        try:
            return st, json.loads(data)
        except ValueError:
            return st, data

    def metrics(self):
        st, data = self.get("/metrics")
        if st != 200:
            fail(f"/metrics: {st}")
        out = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def metric(self, key):
        return self.metrics().get(key, 0.0)

    def runs(self):
        return self.get_json("/runs")["runs"]

    def wait_runs(self, pred, what, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.runs()
            if pred(r):
                return r
            time.sleep(0.05)
        fail(f"timed out waiting for {what}; runs: {json.dumps(self.runs(), indent=1)}"
             f"\nserve log:\n{self.text()}")

    def text(self):
        self.err.flush()
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, expect=0, timeout=30):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            fail(f"serve did not stop within {timeout} s of signal {sig}:\n{self.text()}")
        self.check_log()
        if expect is not None and rc != expect:
            fail(f"serve exited {rc}, expected {expect}:\n{self.text()}")
        return rc

    def kill9(self):
        self.p.kill()
        self.p.wait()

    def check_log(self):
        t = self.text()
        for bad in ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:"):
            if bad in t:
                fail(f"sanitizer report in serve's stderr:\n{t}")
        # the runs serve started: their output is under state/serve/runs/
        d = os.path.join(self.state, "serve", "runs")
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            with open(os.path.join(d, name), "rb") as f:
                out = f.read().decode(errors="replace")
            for bad in ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:"):
                if bad in out:
                    fail(f"sanitizer report in the run {name}:\n{out}")
        for k, v in self.env.items():
            if k.startswith("DRRUN_") and ("TOKEN" in k or "SECRET" in k) and v:
                for part in v.split(","):
                    if len(part) >= 8 and part in t:
                        fail(f"a secret of {k} appears in serve's log")


def generic_sig(secret, body, t=None):
    t = int(time.time()) if t is None else t
    if isinstance(body, str):
        body = body.encode()
    mac = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def pd_sig(secret, body):
    if isinstance(body, str):
        body = body.encode()
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def vectors():
    v = os.environ.get("DRRUN_VECTORS")
    if v:
        return v
    # the repository's tests run from its root: ../shared/vectors
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "..", "..", "shared", "vectors"))


def ledger(name="ledger.txt"):
    try:
        with open(os.path.join(RUN, name)) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def wait_for(pred, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    fail(f"timed out waiting for {what}")


def expect(cond, msg):
    if not cond:
        fail(msg)
