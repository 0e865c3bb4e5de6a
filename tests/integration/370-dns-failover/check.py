#!/usr/bin/env python3
"""check.py CASE_DIR RUN_DIR STATE_DIR: the TSIG secret of the key file the
run used appears nowhere under the state dir, and the SRV record the switch
wrote pointed at the standby's port."""
import json
import os
import re
import sys

case, run, state = sys.argv[1:4]
key = open(os.path.join(run, "work", "knot", "drrun-key.conf")).read()
m = re.search(r'secret "([^"]+)"', key)
if not m:
    sys.exit("no secret in the key file")
secret = m.group(1).encode()
for root, _, files in os.walk(state):
    for f in files:
        with open(os.path.join(root, f), "rb") as fh:
            if secret in fh.read():
                sys.exit("the TSIG secret is in %s" % os.path.join(root, f))
recs = [json.loads(l) for l in open(os.environ["DRRUN_JOURNAL"])]
out = {r["step"]: r.get("output") for r in recs if r["type"] == "step_end"}
port = out["start_standby"]["port"]
if out["switch_dns"]["new"]["values"] != ["0 0 %d app.example.test." % port]:
    sys.exit("the switch wrote %r, not the standby's port %d" % (out["switch_dns"]["new"], port))
if not out["verify"]["url"].endswith(":%d/" % port):
    sys.exit("verify checked %r" % out["verify"]["url"])
