import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from serve import Serve, freeport  # noqa: E402
from approvals import *  # noqa: E402,F403

SECRET = "approval-link-secret-4242"
s = Serve(env={"DRRUN_APPROVAL_SECRET": SECRET})
base = f"http://127.0.0.1:{s.port}"
run = Run("run", "runbook.lua", env={"DRRUN_APPROVAL_SECRET": SECRET, "DRRUN_APPROVAL_URL": base + "/"})
waiting("promote")


def read(name, timeout=20):
    p = os.path.join(RUN, name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(p) and os.path.getsize(p):
            time.sleep(0.05)
            return open(p).read()
        time.sleep(0.05)
    fail(f"{name} never written:\n{run.text()}")


links = {n: read("link-" + n) for n in ("alice", "bob")}
step, question, command = read("notified").split("|")
expect(step == "promote" and question == "Promote the replica?" and
       command.startswith("drrun approve ") and "--as NAME" in command, f"notified: {command}")
for n, url in links.items():
    expect(url.startswith(base + "/approve/"), f"{n}'s link: {url}")
path = {n: url[len(base):] for n, url in links.items()}
tok = {n: p[len("/approve/"):] for n, p in path.items()}

# GET changes nothing (chat previews fetch links)
st, body = s.request("GET", path["alice"])
expect(st == 200 and b"Approval of step promote" in body and b"answering as alice" in body,
       f"GET: {st} {body[:300]!r}")
expect(not [r for r in approvals("promote") if r["status"] == "answered"], "a GET answered")

# forged: a changed signature, a changed payload
payload, mac = tok["alice"].split(".")
bad = "0" * 64 if mac != "0" * 64 else "1" * 64
st, body = s.request("POST", f"/approve/{payload}.{bad}")
expect(st == 403 and b"forged" in body, f"forged mac: {st} {body!r}")
other = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
other["as"] = "bob"
p2 = base64.urlsafe_b64encode(json.dumps(other, separators=(",", ":")).encode()).decode().rstrip("=")
st, body = s.request("POST", f"/approve/{p2}.{mac}")
expect(st == 403 and b"forged" in body, f"forged payload: {st} {body!r}")
# expired, though signed right
other = dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
other["exp"] = int(time.time()) - 5
p3 = base64.urlsafe_b64encode(json.dumps(other, sort_keys=True, separators=(",", ":")).encode()).decode().rstrip("=")
m3 = hmac.new(SECRET.encode(), ("drrun-approve-v1." + p3).encode(), hashlib.sha256).hexdigest()
st, body = s.request("POST", f"/approve/{p3}.{m3}")
expect(st == 403 and b"expired" in body, f"expired: {st} {body!r}")
st, body = s.request("POST", "/approve/not-a-token")
expect(st == 403, f"garbage: {st} {body!r}")

# alice approves from the form, with a comment; a second click is a duplicate
form = urllib.parse.urlencode({"answer": "approve", "comment": "lag 0 <ok>"})
st, body = s.request("POST", path["alice"], form,
                     {"Content-Type": "application/x-www-form-urlencoded"})
expect(st == 202 and b"Answer recorded" in body, f"alice: {st} {body!r}")
st, body = s.request("POST", path["alice"], form,
                     {"Content-Type": "application/x-www-form-urlencoded"})
expect(st == 409, f"alice twice: {st} {body!r}")
wait_record(lambda r: r["type"] == "approval" and r["status"] == "answered" and
            r.get("as") == "alice", "alice's answer in the journal")
st, body = s.request("POST", path["bob"], json.dumps({"answer": "approve"}),
                     {"Content-Type": "application/json"})
expect(st == 202 and json.loads(body)["recorded"] is True, f"bob: {st} {body!r}")
rc = run.wait()
expect(rc == 0, f"run exit {rc}:\n{run.text()}")
expect(os.path.exists(os.path.join(RUN, "promoted")), "promote did not run")

# the gate is closed now: a link still in date is refused
st, body = s.request("POST", path["bob"], "", {"Content-Type": "application/json"})
expect(st in (409, 410), f"after the gate closed: {st} {body!r}")

gate = approvals("promote")
alice = [r for r in gate if r["status"] == "answered" and r["as"] == "alice"][0]
expect(alice["by"] == "link" and alice["comment"] == "lag 0 <ok>" and
       alice["from"].startswith("127.0.0.1:"), f"alice's record: {alice}")
expect(gate[-1]["status"] == "approved" and gate[-1]["approvers"] == ["alice", "bob"],
       f"{gate[-1]}")

st, body = s.get("/metrics")
m = body.decode()
expect('drrun_approvals_total{result="recorded"} 2' in m and
       'drrun_approvals_total{result="forged"} 2' in m and
       'drrun_approvals_total{result="expired"} 1' in m, f"metrics:\n{m}")
s.stop()

# tokens and the secret are credentials: nowhere in the journal, serve's log, the run's output
runs = os.path.join(STATE, "runs")
jtext = "".join(open(os.path.join(runs, d, "journal.jsonl")).read() for d in os.listdir(runs))
for secret in [SECRET] + list(tok.values()):
    for where, text in (("journal", jtext), ("serve log", s.text()), ("run output", run.text())):
        expect(secret not in text, f"a credential in the {where}")

# no secret: every link is refused, fail closed
s2 = Serve(name="serve2", state=STATE)
st, body = s2.request("POST", path["alice"])
expect(st == 401, f"no DRRUN_APPROVAL_SECRET: {st} {body!r}")
s2.stop()
