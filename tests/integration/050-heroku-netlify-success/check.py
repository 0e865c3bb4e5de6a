#!/usr/bin/env python3
"""check.py CASE_DIR RUN_DIR STATE_DIR: runbooks/heroku-netlify.lua succeeded
against the fakes.  Reads the inner run's journal (STATE_DIR/inner) and what
each fake received and holds (RUN_DIR/fakes/SERVICE.{requests,state}.json,
saved by the driver); exits with a message at the first thing that is wrong.
"""
import glob
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from heroku_netlify_check import *  # noqa: E402,F401,F403 (the shared ids and readers)


# ---- the inner journal ---------------------------------------------------------

text, recs = inner_journal()
for svc, tok in TOKENS.items():
    need(tok not in text, "the %s token is in the inner journal" % svc)
need("XXXXXXXXXXXXXXXX" not in text, "the Slack webhook's secret path is in the inner journal")
end = recs[-1]
need(end["type"] == "run_end" and end["status"] == "completed" and end["exit"] == 0,
     "inner run_end: %s" % json.dumps(end))
start = recs[0]
need(start["dry_run"] is False, "not a dry run")
done = {r["step"]: r for r in recs if r["type"] == "step_end"}
for s in ("check_platform", "open_incident", "maintenance_on", "restore_database", "rollback_app",
          "maintenance_off", "restore_site", "verify_app", "verify_site", "resolve_incident",
          "notify_team"):
    need(s in done and done[s]["status"] == "completed", "step %s: %s" % (s, done.get(s)))
out = done["restore_database"]["output"]
need(out["backup"] == "a005" and out["safety"] == "b007" and out["restored"] == "r008",
     "restore_database output: %s" % out)
out = done["rollback_app"]["output"]
need(out["release"] == 42 and out["from"] == 41 and out["to"] == 39,
     "rollback_app output: %s" % out)
out = done["restore_site"]["output"]
need(out["deploy"] == GOOD and out["previous"] == "6650e2a4c2f1a10008b3c001",
     "restore_site output: %s" % out)
need(not any(r["type"].startswith("rollback") for r in recs), "nothing rolled back")
approvals = [r for r in recs if r["type"] == "approval"]
need(len(approvals) == 1 and approvals[0]["step"] == "restore_database"
     and approvals[0]["status"] == "approved", "the restore asks first: %s" % approvals)

# ---- Heroku ------------------------------------------------------------------

every = reqs("heroku")
need(every, "the Heroku fake received nothing")
for r in every:
    h = r["headers"]
    need(h.get("authorization") == "Bearer " + TOKENS["heroku"], "Authorization: %s %s" % (r["method"], r["path"]))
    need(h.get("user-agent") == "drrun/" + VERSION, "User-Agent: %s" % h.get("user-agent"))
    need(h.get("accept") == "application/vnd.heroku+json; version=3", "Accept on %s" % r["path"])
    if r["body"]:
        need(h.get("content-type") == "application/json", "Content-Type on %s" % r["path"])
    need(r["status"] < 300, "Heroku answered %d to %s %s" % (r["status"], r["method"], r["path"]))
rb = reqs("heroku", "POST", "/apps/myapp/releases")
need(len(rb) == 1 and json.loads(rb[0]["body"]) == {"release": V39}, "rollback POST: %s" % rb)
need(len(reqs("heroku", "DELETE", "/apps/myapp/dynos")) == 1, "one restart of every dyno")
m = [json.loads(r["body"]) for r in reqs("heroku", "PATCH", "/apps/myapp")]
need(m == [{"maintenance": True}, {"maintenance": False}], "maintenance on, then off: %s" % m)
need(len(reqs("heroku", "POST", "/client/v11/databases/%s/backups" % ADDON)) == 1, "one safety backup")
rs = reqs("heroku", "POST", "/client/v11/databases/%s/restores" % ADDON)
need(len(rs) == 1 and json.loads(rs[0]["body"]) == {"backup_url": A005_URL},
     "one restore of a005: %s" % rs)
st = load("heroku.state.json")
cur = [r for r in st["releases"] if r["current"]]
need(len(cur) == 1 and cur[0]["version"] == 42 and cur[0]["description"] == "Rollback to v39",
     "current release: %s" % cur)
need(st["database"]["restored_from"] == A005_URL and st["database"]["restores_completed"] == 1,
     "the fake's database: %s" % st["database"])
need(st["app"]["maintenance"] is False, "maintenance is off")

# ---- Netlify -----------------------------------------------------------------

for r in reqs("netlify"):
    need(r["headers"].get("authorization") == "Bearer " + TOKENS["netlify"], "Netlify Authorization")
    need(r["headers"].get("user-agent") == "drrun/" + VERSION, "Netlify User-Agent")
need(len(reqs("netlify", "POST", "/api/v1/sites/%s/deploys/%s/restore" % (SITE, GOOD))) == 1,
     "one restore of the good deploy")
need(len(reqs("netlify", "POST", "/api/v1/deploys/%s/lock" % GOOD)) == 1, "the deploy is locked")
st = load("netlify.state.json")
need(st["site"]["published_deploy"]["id"] == GOOD, "published: %s" % st["site"]["published_deploy"]["id"])
need(st["site"]["published_deploy"]["locked"] is True, "locked")

# ---- Statuspage --------------------------------------------------------------

for r in reqs("statuspage"):
    need(r["headers"].get("authorization") == "OAuth " + TOKENS["statuspage"], "Statuspage Authorization")
    need(r["raw_query"] == "", "no api_key in a query")
posts = reqs("statuspage", "POST", "/v1/pages/kctbh9vrtdwd/incidents")
need(len(posts) == 1, "one incident created: %d" % len(posts))
sent = json.loads(posts[0]["body"])["incident"]
need(sent["name"] == "Outage of myapp" and sent["status"] == "identified", "incident: %s" % sent)
need(sent["body"].startswith("We're currently experiencing downtime of myapp due to a failed release."),
     "the templated body: %s" % sent["body"])
need(sent["components"] == {CHECKOUT: "major_outage", WEBSITE: "major_outage"}, "components: %s" % sent)
need(sent["metadata"]["drrun"]["run_id"] == start["run"], "metadata: the run id")
st = load("statuspage.state.json")
mine = [i for i in st["incidents"] if i["metadata"].get("drrun", {}).get("run_id") == start["run"]]
need(len(mine) == 1, "one incident of this run")
inc = mine[0]
need(inc["status"] == "resolved", "resolved: %s" % inc["status"])
ups = [(u["status"], u["body"]) for u in reversed(inc["incident_updates"])]
need([s for s, _ in ups] == ["identified", "monitoring", "resolved"], "updates: %s" % ups)
need(ups[2][1].startswith("This incident has been resolved"), "resolved text: %s" % ups[2][1])
comps = {c["id"]: c["status"] for c in st["components"]}
need(comps[CHECKOUT] == "operational" and comps[WEBSITE] == "operational",
     "components back to operational: %s" % comps)

# ---- Slack, PagerDuty -------------------------------------------------------

msgs = load("slack.state.json")["messages"]
need(len(msgs) == 1, "one Slack message: %s" % msgs)
txt = json.dumps(msgs[0])
for part in ("Recovery of *myapp* done", "release v42", "database from a005", "site deploy " + GOOD):
    need(part in txt, "Slack message lacks %r: %s" % (part, txt))
need(reqs("pagerduty") == [], "PagerDuty is not part of this runbook")
