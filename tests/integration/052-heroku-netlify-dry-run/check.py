#!/usr/bin/env python3
"""check.py CASE_DIR RUN_DIR STATE_DIR: runbooks/heroku-netlify.lua with
--dry-run against the fakes: only GETs reached them (nothing changed), and the
inner journal has, for each change, the exact request it would send: method,
URL, headers with the credentials as ***, and the JSON body.  Reads the inner
run's journal (STATE_DIR/inner) and the fakes' records (RUN_DIR/fakes/, saved
by the driver); exits with a message at the first thing that is wrong.
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
need(start["dry_run"] is True, "run_start.dry_run")
need(end["type"] == "run_end" and end["status"] == "completed" and end["exit"] == 0,
     "inner run_end: %s" % json.dumps(end))
would = [r["msg"] for r in recs if r["type"] == "step_log" and ": would send: " in r["msg"]]


def sent(what, *parts):
    """The 'would send' line of what ("heroku: POST") that contains every part."""
    svc, method = what.split(": ")
    hits = [w for w in would if w.startswith("%s: would send: %s " % (svc, method))
            and all(p in w for p in parts)]
    need(hits, "no 'would send' line of %s with %s; have:\n  %s" % (what, parts, "\n  ".join(would)))
    return hits[0]


H = "Accept: application/vnd.heroku+json; version=3 | Authorization: *** | "
UA = "User-Agent: drrun/" + VERSION
sent("heroku: PATCH", "/apps/myapp | " + H + "Content-Type: application/json | " + UA
     + ' | body: {"maintenance":true}')
sent("heroku: PATCH", "/apps/myapp | " + H + "Content-Type: application/json | " + UA
     + ' | body: {"maintenance":false}')
sent("heroku: POST", "/client/v11/databases/DATABASE_URL/restores | " + H
     + "Content-Type: application/json | " + UA + ' | body: {"backup_url":"%s"}' % A005_URL)
sent("heroku: POST", "/apps/myapp/releases | " + H + "Content-Type: application/json | " + UA
     + ' | body: {"release":"%s"}' % V39)
sent("heroku: DELETE", "/apps/myapp/dynos | " + H + UA)
sent("netlify: POST", "/api/v1/sites/%s/deploys/%s/restore | Authorization: *** | %s" % (SITE, GOOD, UA))
sent("netlify: POST", "/api/v1/deploys/%s/lock | Authorization: *** | %s" % (GOOD, UA))
inc = sent("statuspage: POST", "/v1/pages/kctbh9vrtdwd/incidents | Authorization: *** | "
           "Content-Type: application/json | " + UA + ' | body: {"incident":{"body":"We\'re currently')
body = json.loads(inc.split(" | body: ", 1)[1])["incident"]
need(body["name"] == "Outage of myapp" and body["components"] == {CHECKOUT: "major_outage",
     WEBSITE: "major_outage"} and body["metadata"]["drrun"]["run_id"] == start["run"],
     "the incident body: %s" % body)
sent("statuspage: PATCH", '"status":"resolved"')
sl = sent("slack: POST", "/*** | Content-Type: application/json | " + UA + ' | body: {"text":')
need(":white_check_mark: Recovery of *myapp* done" in sl, "the Slack text: %s" % sl)
for w in would:
    need("Bearer" not in w and "OAuth" not in w, "a credential in: %s" % w)

# ---- the fakes: reads only ----------------------------------------------------

for svc in ("heroku", "netlify", "statuspage", "pagerduty", "slack"):
    changed = [(r["method"], r["path"]) for r in reqs(svc) if r["method"] != "GET"]
    need(changed == [], "%s received changes under --dry-run: %s" % (svc, changed))
need(len(reqs("heroku", "GET", "/apps/myapp/releases")) >= 1, "the releases were read")
need(len(reqs("netlify", "GET", "/api/v1/sites/%s/deploys" % SITE)) >= 1, "the deploys were read")
need(reqs("slack") == [], "Slack got nothing")
st = load("heroku.state.json")
need([r["version"] for r in st["releases"] if r["current"]] == [41], "v41 still current")
need(st["app"]["maintenance"] is False and st["database"]["restores_completed"] == 0, "nothing changed")
need(load("netlify.state.json")["site"]["published_deploy"]["id"] == "6650e2a4c2f1a10008b3c001",
     "the live deploy did not change")
need(len(load("statuspage.state.json")["incidents"]) == 2, "no new incident")
