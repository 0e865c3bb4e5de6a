#!/usr/bin/env python3
"""tagged_app.py - the application the backup-verification cases deploy: it
runs "tag" $APP_TAG against the database libpq's PG* variables name.  GET
/healthz answers 200 "ok tag=TAG orders=N customers=M" when it can read its
database (through psql), 503 otherwise.  Listens on 127.0.0.1:$PORT.
Standard library only."""
import http.server
import os
import subprocess


def counts():
    out = subprocess.run(["psql", "-XtAq", "-F", " ", "-c",
                          "select (select count(*) from orders), (select count(*) from customers)"],
                         capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    o, c = out.stdout.split()
    return int(o), int(c)


class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/healthz":
            self.send_response(404)
            self.end_headers()
            return
        try:
            o, c = counts()
            body, code = ("ok tag=%s orders=%d customers=%d\n" % (os.environ["APP_TAG"], o, c)).encode(), 200
        except Exception as e:  # the database is not there: unhealthy
            body, code = ("unhealthy: %s\n" % e).encode(), 503
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
