#!/usr/bin/env python3
"""check.py CASE_DIR RUN_DIR STATE_DIR: each restore step's recovery_point
record is the point its helper returned and restored to (the snapshot's
SnapshotCreateTime, the restore time sent), and run_end's RPO is measured
from the last one."""
import datetime
import json
import os
import sys


def need(ok, msg):
    if not ok:
        sys.exit(msg)


def epoch(s):
    s = s.replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(s).timestamp()


recs = [json.loads(line) for line in open(os.environ["DRRUN_JOURNAL"])]
points = {r["step"]: r for r in recs if r["type"] == "recovery_point"}
outs = {r["step"]: r.get("output") or {} for r in recs if r["type"] == "step_end"}
for step in ("restore_pg", "restore_snapshot", "restore_db"):
    need(step in points, "no recovery_point record of step %s" % step)
    p, out = points[step], outs[step]
    need(abs(p["epoch"] - out["recovery_point"]) < 1e-3,
         "%s: reported %s, the helper returned %s" % (step, p["epoch"], out["recovery_point"]))
    need(abs(epoch(p["at"]) - p["epoch"]) < 1e-3, "%s: at %s is not epoch %s" % (step, p["at"], p["epoch"]))
snap = outs["restore_snapshot"]["snapshot_time"]
need(abs(points["restore_snapshot"]["epoch"] - epoch(snap)) < 1,
     "restore_snapshot: reported %s, SnapshotCreateTime %s" % (points["restore_snapshot"]["at"], snap))
sent = outs["restore_db"]["restore_time"]
need(points["restore_db"]["epoch"] == epoch(sent),
     "restore_db: reported %s, RestoreTime %s" % (points["restore_db"]["at"], sent))
end = recs[-1]
rpo = end["objectives"]["rpo"]
need(rpo["recovery_point"] == points["restore_db"]["at"],
     "run_end's recovery point %s is not the last one reported, %s" % (rpo["recovery_point"],
                                                                      points["restore_db"]["at"]))
start = epoch(next(r for r in recs if r["type"] == "run_start")["ts"])
need(abs(rpo["achieved_s"] - (start - points["restore_db"]["epoch"])) < 0.01,
     "RPO achieved %s is not the run start minus the point" % rpo["achieved_s"])
