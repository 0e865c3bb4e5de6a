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

case_dir, run_dir, state_dir = sys.argv[1:4]
VERSION = "0.1.0"
TOKENS = {"heroku": "test-heroku-token", "netlify": "test-netlify-token",
          "statuspage": "test-statuspage-key"}
ADDON = "6f2e1c1a-9d3b-4a5e-8c7f-0a1b2c3d4e5f"
A005_URL = "https://xfrtu.s3.amazonaws.com/%s/b1e5d0a4-3c2f-4e1d-8a7b-000000000005/backup.dump" % ADDON
V39 = "9c1a5e2f-6b7d-4e8a-9f01-000000000039"
SITE = "3970e0fe-8564-4903-9a55-c5f8de49fb8b"
GOOD = "664f8a11b7e2c500083a9d7e"
CHECKOUT, WEBSITE = "b13yz5g2cw10", "ftgks51sfs2d"


def fail(msg):
    sys.exit(msg)


def need(cond, msg):
    if not cond:
        fail(msg)


def load(name):
    with open(os.path.join(run_dir, "fakes", name)) as f:
        return json.load(f)


def inner_journal():
    paths = glob.glob(os.path.join(state_dir, "inner", "runs", "*", "journal.jsonl"))
    need(len(paths) == 1, "want one inner run, found %d" % len(paths))
    with open(paths[0]) as f:
        text = f.read()
    return text, [json.loads(line) for line in text.splitlines()]


def reqs(svc, method=None, path=None):
    return [r for r in load(svc + ".requests.json")
            if (method is None or r["method"] == method) and (path is None or r["path"] == path)]


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
