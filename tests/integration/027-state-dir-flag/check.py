"""Exactly one run, with a complete journal, under RUN_DIR/custom-state/runs/."""
import json
import os
import sys

runs = os.path.join(sys.argv[2], "custom-state", "runs")
if not os.path.isdir(runs):
    sys.exit("custom-state/runs was not created")
dirs = os.listdir(runs)
if len(dirs) != 1:
    sys.exit(f"{len(dirs)} runs under custom-state/runs, want 1")
path = os.path.join(runs, dirs[0], "journal.jsonl")
recs = [json.loads(l) for l in open(path, encoding="utf-8")]
if recs[0].get("type") != "run_start" or recs[-1].get("type") != "run_end":
    sys.exit("journal does not go from run_start to run_end")
if recs[-1].get("status") != "completed":
    sys.exit(f"run_end status {recs[-1].get('status')!r}")
