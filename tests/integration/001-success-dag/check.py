"""ctx.run_id is the journal's run id."""
import json
import os
import sys

journal = os.environ.get("DRRUN_JOURNAL")
if not journal:
    sys.exit("no journal")
recs = [json.loads(l) for l in open(journal, encoding="utf-8")]
a = [r for r in recs if r.get("type") == "step_end" and r.get("step") == "a"]
if not a or not isinstance(a[0].get("output"), dict):
    sys.exit("no output for step a")
if a[0]["output"].get("run_id") != recs[0]["run"]:
    sys.exit(f"ctx.run_id {a[0]['output'].get('run_id')!r} != run {recs[0]['run']!r}")
