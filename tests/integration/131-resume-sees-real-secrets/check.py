#!/usr/bin/env python3
"""run_start's secrets stamp is a standard PBKDF2-HMAC-SHA256 of the value
(checked with Python's own), with a salt of its own, and not the value."""
import hashlib, json, os, sys

recs = [json.loads(l) for l in open(os.environ["DRRUN_JOURNAL"])]
start = recs[0]
stamp = start.get("secrets", {}).get("DB_PASSWORD")
if not stamp:
    sys.exit(f"run_start has no stamp for DB_PASSWORD: {start.get('secrets')}")
kind, iters, keyed, salt, h = stamp.split(":")
if kind != "pbkdf2-sha256" or keyed != "-" or len(salt) != 32:
    sys.exit(f"unexpected stamp {stamp}")
want = hashlib.pbkdf2_hmac("sha256", b"pw-7Hq2xZ", bytes.fromhex(salt), int(iters)).hex()
if want != h:
    sys.exit(f"stamp {h} is not PBKDF2 of the value ({want})")
red = start.get("redacted")
if red != [{"path": ["db_url"], "hits": [["DB_PASSWORD", 15]]}]:
    sys.exit(f"run_start redacted is {red}")
