#!/usr/bin/env python3
"""check.py CASE_DIR RUN_DIR STATE_DIR: runbooks/heroku-netlify.lua against
the fakes with the database restore failing: the step fails, the completed
steps are rolled back in reverse order, the site is published back, the app
leaves maintenance mode, nothing touches the releases, and the incident (still
open) and Slack say the recovery was rolled back.  Reads the inner run's
journal (STATE_DIR/inner) and the fakes' records (RUN_DIR/fakes/, saved by
the driver); exits with a message at the first thing that is wrong.
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
start, end = recs[0], recs[-1]
need(end["type"] == "run_end" and end["status"] == "rolled-back" and end["exit"] == 1
     and end["reason"] == "step 'restore_database' failed", "inner run_end: %s" % json.dumps(end))
ends = {r["step"]: r for r in recs if r["type"] == "step_end"}
failed = ends.get("restore_database")
need(failed and failed["status"] == "failed", "restore_database: %s" % failed)
for part in ("heroku: restore of a005 into postgresql-curved-12345 failed: "
             "pg_restore: error: could not execute query", "the backup taken just before is b007"):
    need(part in failed["error"], "the error lacks %r: %s" % (part, failed["error"]))
for s in ("rollback_app", "maintenance_off", "verify_app", "resolve_incident", "notify_team"):
    need(s not in ends, "step %s must not have run" % s)
rolled = [r["step"] for r in recs if r["type"] == "rollback_end" and r["status"] == "completed"]
# in reverse order of completion (restore_site and maintenance_on run side by side)
completed = [r["step"] for r in recs if r["type"] == "step_end" and r["status"] == "completed"
             and r["step"] in ("open_incident", "maintenance_on", "restore_site")]
need(rolled == completed[::-1] and sorted(rolled) == ["maintenance_on", "open_incident", "restore_site"],
     "rollbacks: %s (completed: %s)" % (rolled, completed))
need(not any(r["type"] == "rollback_end" and r["status"] != "completed" for r in recs),
     "a rollback failed")

# ---- Heroku: maintenance on and off again, no release touched -------------------

for r in reqs("heroku"):
    need(r["headers"].get("authorization") == "Bearer " + TOKENS["heroku"], "Heroku Authorization")
    need(r["headers"].get("accept") == "application/vnd.heroku+json; version=3", "Heroku Accept")
m = [json.loads(r["body"]) for r in reqs("heroku", "PATCH", "/apps/myapp")]
need(m == [{"maintenance": True}, {"maintenance": False}], "maintenance on, then off: %s" % m)
need(reqs("heroku", "POST", "/apps/myapp/releases") == [], "no rollback of the app")
need(reqs("heroku", "DELETE") == [], "no restart")
rs = reqs("heroku", "POST", "/client/v11/databases/%s/restores" % ADDON)
need(len(rs) == 1 and json.loads(rs[0]["body"]) == {"backup_url": A005_URL}, "one restore: %s" % rs)
st = load("heroku.state.json")
need([r["version"] for r in st["releases"] if r["current"]] == [41], "v41 is still current")
need(st["database"]["restores_completed"] == 0, "no restore completed")
need(st["app"]["maintenance"] is False, "maintenance is off again")
failed_t = [t for t in st["transfers"] if t["to_type"] == "pg_restore" and t["num"] == 8]
need(failed_t and failed_t[0]["succeeded"] is False, "the fake's restore r008 failed")

# ---- Netlify: published back, unlocked ------------------------------------------

LIVE = "6650e2a4c2f1a10008b3c001"
posts = [(r["path"], r["status"]) for r in reqs("netlify", "POST")]
need(posts == [("/api/v1/sites/%s/deploys/%s/restore" % (SITE, GOOD), 201),
               ("/api/v1/deploys/%s/lock" % GOOD, 200),
               ("/api/v1/deploys/%s/unlock" % GOOD, 200),
               ("/api/v1/sites/%s/deploys/%s/restore" % (SITE, LIVE), 201)],
     "Netlify: restore, lock, then unlock and the previous deploy again: %s" % posts)
st = load("netlify.state.json")
need(st["site"]["published_deploy"]["id"] == LIVE, "the previous deploy is live again")
good = [d for d in st["deploys"] if d["id"] == GOOD][0]
need(good["locked"] is False, "the restored deploy is unlocked")

# ---- Statuspage: open, and it says so -------------------------------------------

posts = reqs("statuspage", "POST", "/v1/pages/kctbh9vrtdwd/incidents")
need(len(posts) == 1, "one incident created")
st = load("statuspage.state.json")
mine = [i for i in st["incidents"] if i["metadata"].get("drrun", {}).get("run_id") == start["run"]]
need(len(mine) == 1, "one incident of this run")
inc = mine[0]
need(inc["status"] == "identified", "still open: %s" % inc["status"])
ups = [u["body"] for u in reversed(inc["incident_updates"])]
need(len(ups) == 2 and ups[0].startswith("We're currently experiencing downtime of myapp"),
     "updates: %s" % ups)
need(ups[1].startswith("The automated recovery of myapp did not complete and was rolled back."),
     "the rollback update: %s" % ups[1])
comps = {c["id"]: c["status"] for c in st["components"]}
need(comps[CHECKOUT] == "major_outage" and comps[WEBSITE] == "major_outage",
     "the components are still down: %s" % comps)

# ---- Slack ----------------------------------------------------------------------

msgs = load("slack.state.json")["messages"]
need(len(msgs) == 1, "one Slack message: %s" % msgs)
need(msgs[0]["text"].startswith(":x: Recovery of *myapp* failed and was rolled back"),
     "Slack: %s" % msgs[0]["text"])
need(reqs("pagerduty") == [], "PagerDuty is not part of this runbook")
