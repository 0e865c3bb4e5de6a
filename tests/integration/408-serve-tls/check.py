#!/usr/bin/env python3
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from serve import *  # noqa: E402,F403

subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem",
                "-out", "cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1"], cwd=RUN, check=True,
               capture_output=True)
SECRET = "tls-case-generic-secret-31"
s = Serve(env={"DRRUN_WEBHOOK_SECRET": SECRET, "LEDGER": os.path.join(RUN, "ledger.txt")},
          args=["--tls-cert", "cert.pem", "--tls-key", "key.pem"],
          tls=os.path.join(RUN, "cert.pem"))
body = json.dumps({"labels": {"alertname": "X"}, "fingerprint": "tls"})
st, ans = s.post("/hooks/generic", body, {"X-Drrun-Signature": generic_sig(SECRET, body)})
expect(st == 202, f"over TLS: {st} {ans}")
s.wait_runs(lambda r: len(r) == 1 and r[0]["state"] == "ended", "the run")
expect(ledger() == ["tls|generic|tls|-"], f"ledger {ledger()}")
# curl verifies the certificate against the CA file too
out = subprocess.run(["curl", "-sS", "--cacert", "cert.pem", f"https://127.0.0.1:{s.port}/healthz"],
                     cwd=RUN, capture_output=True, text=True, timeout=20)
expect(out.returncode == 0 and '"status":"ok"' in out.stdout, f"curl: {out}")
# plain HTTP to the TLS port is not answered as HTTP
import http.client
c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
try:
    c.request("GET", "/healthz")
    r = c.getresponse()
    expect(r.status != 200, "plain HTTP answered 200 on the TLS port")
except (OSError, http.client.HTTPException):
    pass
s.stop()
# a key that is not a key, and a missing file
open(os.path.join(RUN, "bad.pem"), "w").write("not a key\n")
p = subprocess.run([DRRUN, "serve", "--rules", "rules.lua", "--listen", f"127.0.0.1:{freeport()}",
                    "--state-dir", STATE, "--tls-cert", "cert.pem", "--tls-key", "bad.pem"],
                   cwd=RUN, capture_output=True, text=True, timeout=20)
expect(p.returncode == 75 and "TLS key or certificate is invalid" in p.stderr,
       f"bad key: {p.returncode} {p.stderr}")
p = subprocess.run([DRRUN, "serve", "--rules", "rules.lua", "--state-dir", STATE,
                    "--tls-cert", "cert.pem", "--tls-key", "nowhere.pem"],
                   cwd=RUN, capture_output=True, text=True, timeout=20)
expect(p.returncode == 64 and "--tls-key" in p.stderr and "nowhere.pem" in p.stderr,
       f"missing key: {p.returncode} {p.stderr}")
p = subprocess.run([DRRUN, "serve", "--rules", "rules.lua", "--tls-cert", "cert.pem"],
                   cwd=RUN, capture_output=True, text=True, timeout=20)
expect(p.returncode == 64 and "go together" in p.stderr, f"cert alone: {p.returncode} {p.stderr}")
