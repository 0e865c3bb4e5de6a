#!/usr/bin/env python3
"""serve_reqs.py - the requests of bench/serve.sh, for bench/loadgen.c.

    serve_reqs.py N DISTINCT SECRET PATH OUT

N signed POSTs of one alert each to PATH, DISTINCT dedupe keys among them
(instance db-0 .. db-DISTINCT-1, each key N/DISTINCT times, shuffled with a
fixed seed; the first copy of each key comes early or late at random).
Every body is different (an annotation counts the copies), so every
signature is too, and each request carries both servers' signatures:
  X-Drrun-Signature: t=<now>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
  X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>  (webhook's)
OUT holds "<length>\\n<raw request>" for each.
"""
import hashlib
import hmac
import json
import random
import sys
import time


def main():
    n, distinct, secret, path, out = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode(),
                                      sys.argv[4], sys.argv[5])
    keys = [i % distinct for i in range(n)]
    random.Random(12).shuffle(keys)
    t = str(int(time.time()))
    with open(out, "wb") as f:
        for i, k in enumerate(keys):
            body = json.dumps({"labels": {"alertname": "BenchDown", "instance": f"db-{k}"},
                               "annotations": {"copy": str(i)}},
                              separators=(",", ":")).encode()
            drr = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
            hub = hmac.new(secret, body, hashlib.sha256).hexdigest()
            req = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                   f"X-Drrun-Signature: t={t},v1={drr}\r\n"
                   f"X-Hub-Signature-256: sha256={hub}\r\n\r\n").encode() + body
            f.write(b"%d\n" % len(req) + req)


if __name__ == "__main__":
    main()
