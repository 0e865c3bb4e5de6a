"""heroku_netlify_check.py: what the check.py hooks of the heroku-netlify
cases (050-052) share: the fakes' seeded ids, and reading the inner run's
journal and what each fake received (saved by heroku_netlify_driver.lua).
A check.py does: sys.path.insert(0, <case>/../lib); from heroku_netlify_check import *
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
