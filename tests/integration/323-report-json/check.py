import json, os, subprocess, sys

case, rundir, state = sys.argv[1:4]
drrun = os.path.abspath(os.environ["DRRUN"])
rid = os.listdir(os.path.join(state, "runs"))[0]
# the report needs no environment at all: the journal alone
env = {"PATH": os.environ["PATH"]}
p = subprocess.run([drrun, "report", rid[:22], "--format", "json", "--state-dir", state],
                   capture_output=True, text=True, env=env, timeout=30)
assert p.returncode == 0, f"exit {p.returncode}: {p.stderr}"
assert "tok-s3cr3t-value" not in p.stdout, "a secret in the report"
r = json.loads(p.stdout)
errs = []
def want(cond, msg):
    if not cond:
        errs.append(msg)
want(r["run"] == rid, f"run {r['run']}")
want(r["runbook"]["name"] == "report-json" and len(r["runbook"]["sha256"]) == 64, "runbook")
want(r["drill"] is True and r["result"] == "completed" and r["exit"] == 4, "drill/result/exit")
want(r["params"] == {"token": "***"}, f"params {r['params']}")
want(r["trigger"]["labels"]["alertname"] == "PrimaryDown", "trigger")
want(r["who"]["host"] and r["who"]["user"], f"who {r['who']}")
o = r["objectives"]
want(o["rto"]["target_s"] == 1200 and o["rto"]["met"] is False and o["rto"]["from"] == "trigger",
     f"rto {o['rto']}")  # counted from an alert that started days ago
want(o["rpo"]["target_s"] == 3600 and o["rpo"]["achieved_s"] == 1800 and o["rpo"]["met"] is True,
     f"rpo {o['rpo']}")
want(o["budgets"]["restore"]["target_s"] == 300 and o["budgets"]["restore"]["met"] is True,
     f"budgets {o['budgets']}")
want(o["tier"] == "dr" and r["verdict"] == "missed", "tier/verdict")
steps = {s["name"]: s for s in r["steps"]}
want(list(steps) == ["detect", "restore", "switch", "check_rows", "drop"], f"steps {list(steps)}")
rs = steps["restore"]
want(rs["phase"] == "restore" and rs["result"] == "completed", f"restore {rs}")
want([a["result"] for a in rs["attempts"]] == ["failed", "completed"], f"attempts {rs['attempts']}")
want(all(a["start"] and a["end"] and a.get("variant") == "drill" for a in rs["attempts"]), "attempt times")
want("snapshot not ready" in rs["attempts"][0].get("error", ""), "attempt error")
want(rs["logs"] == ["restored with ***"], f"logs {rs['logs']}")
want(steps["detect"]["logs"] == ["alert PrimaryDown"], "detect logs")
want(len(r["approvals"]) == 1 and r["approvals"][0]["step"] == "switch"
     and r["approvals"][0]["by"] == "--yes" and r["approvals"][0]["status"] == "approved",
     f"approvals {r['approvals']}")
want(r["rollbacks"] == [], "rollbacks")
want(r["recovery_points"][0]["at"] == "2026-11-30T09:30:00.000000Z", "recovery points")
t = r["teardown"]
want(t["ran"] is True and t["failed"] == [] and t["removed"] == ["db:orders-dr"]
     and t["left"] == ["snapshot:s-1"], f"teardown {t}")
a = r["audit"]
want(a["chain"] == "intact" and a["ok"] is True and a["hmac"] == "not keyed"
     and a["ledger"] == "matches", f"audit {a}")
want([p["phase"] for p in r["phases"]] == ["detect", "restore", "dns", "verify", "teardown"],
     f"phases {[p['phase'] for p in r['phases']]}")
# md is the same evidence, audit first
p = subprocess.run([drrun, "report", rid, "--state-dir", state], capture_output=True,
                   text=True, env=env, timeout=30)
want(p.returncode == 0 and p.stdout.startswith("> Audit: journal verified"), "md audit first")
want("| RPO | 1h00m00s | 30m00s | met |" in p.stdout, "md objectives")
want("- drop: completed; removed [\"db:orders-dr\"]; could not remove [\"snapshot:s-1\"]" in p.stdout,
     "md teardown")
if errs:
    print("\n".join(errs))
    sys.exit(1)
