"""fakebase.py - what every SaaS fake in tests/fakes/ shares.

A fake is a subclass of Fake: it seeds its state (seed), answers the real
API's paths (route) and shapes errors the way its service does (error,
rate_limited).  This module gives it the HTTP server (ThreadingHTTPServer on
127.0.0.1, HTTP/1.1 keep-alive, every response with Content-Length), a
request log, a burst limiter, injected failures and the control API under
/_fake/ (README.md in this folder documents it).  Python 3 standard library
only; one lock per fake serialises state changes.
"""
import copy
import datetime
import json
import os
import re
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG_CAP = 10000  # requests kept in the log (the oldest go first)


def now_iso(ms=False):
    """The current UTC time as 2024-05-14T09:30:12Z (or .123Z with ms)."""
    t = datetime.datetime.now(datetime.timezone.utc)
    if ms:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Response:
    def __init__(self, status, body=b"", ctype=None, headers=None):
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = dict(headers or {})
        if ctype and self.body:
            self.headers.setdefault("Content-Type", ctype)


def json_response(status, obj, headers=None):
    return Response(status, json.dumps(obj, indent=None), "application/json; charset=utf-8",
                    headers)


def text_response(status, text, headers=None):
    return Response(status, text, "text/plain; charset=utf-8", headers)


class HTTPError(Exception):
    """Raised by a route to answer with this response at once."""

    def __init__(self, response):
        super().__init__(response.status)
        self.response = response


class Request:
    def __init__(self, method, target, headers, body):
        self.method = method
        parts = urllib.parse.urlsplit(target)
        self.path = parts.path or "/"
        self.raw_query = parts.query
        self.query_multi = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        self.query = {k: v[-1] for k, v in self.query_multi.items()}
        self.headers = {}
        for k, v in headers:
            k = k.lower()
            self.headers[k] = self.headers[k] + ", " + v if k in self.headers else v
        self.body = body
        self.segments = [urllib.parse.unquote(s) for s in self.path.strip("/").split("/")]
        if self.segments == [""]:
            self.segments = []

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def media_type(self):
        """The Content-Type without parameters, lowercased ("" if none)."""
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    def text(self):
        return self.body.decode("utf-8", "replace")

    def base_url(self):
        return "http://" + (self.header("host") or "127.0.0.1")

    def log_entry(self):
        return {"method": self.method, "path": self.path, "query": self.query,
                "raw_query": self.raw_query, "headers": dict(self.headers),
                "body": self.text()}


def match(pattern, segments):
    """"/apps/{app}/releases" against the request's segments: a dict of the
    {names} (unquoted) when it matches, else None."""
    pat = pattern.strip("/").split("/")
    if len(pat) != len(segments):
        return None
    out = {}
    for p, s in zip(pat, segments):
        if p.startswith("{") and p.endswith("}"):
            if s == "":
                return None
            out[p[1:-1]] = s
        elif p != s:
            return None
    return out


class Fake:
    """One fake service.  Subclasses set NAME, ROUTES, CONFIG (their own
    config keys and defaults) and implement seed, error and rate_limited."""
    NAME = "fake"
    # (method, pattern, method name); the first matching pattern wins
    ROUTES = []
    # service-specific config: key -> (default, type or tuple of types)
    CONFIG = {}
    COMMON_CONFIG = {
        "burst": (None, (int, type(None))),        # N requests per window, then 429
        "burst_window": (1.0, (int, float)),       # seconds
        "burst_status": (429, int),                # Statuspage may use 420
        "retry_after": (1, int),                   # Retry-After on burst answers
        "fail_next": (None, (dict, type(None))),   # {"status","count","body","retry_after"}
        "delay_ms": (0, int),                      # sleep before every real answer
    }

    def __init__(self, state_file=None):
        self.lock = threading.RLock()
        self.state_file = state_file
        self.dirty = threading.Event()
        self.reset()
        self.flush()
        if state_file:
            threading.Thread(target=self.writer, daemon=True).start()

    # ---- to override ---------------------------------------------------

    def seed(self):
        """Set self.state to the seeded state."""
        self.state = {}

    def error(self, status, message, **extra):
        """A response in the service's error shape."""
        return json_response(status, dict({"message": message}, **extra))

    def rate_limited(self):
        return self.error(self.config["burst_status"], "rate limited")

    def not_found(self, req, wrong_method):
        return self.error(404, "not found")

    def extra_headers(self, req, resp):
        """Headers the real service puts on every answer (Request-Id, ...)."""

    def exempt_from_burst(self, req):
        return False

    def public_state(self):
        return self.state

    # ---- machinery -----------------------------------------------------

    def reset(self):
        with self.lock:
            self.config = {k: copy.deepcopy(v[0])
                           for k, v in dict(self.COMMON_CONFIG, **self.CONFIG).items()}
            self.log = []
            self.seq = 0
            self.burst_times = []
            self.counter = 0
            self.seed()
            self.save()

    def next_id(self):
        self.counter += 1
        return self.counter

    def set_config(self, changes):
        allowed = dict(self.COMMON_CONFIG, **self.CONFIG)
        if not isinstance(changes, dict):
            raise ValueError("config must be a JSON object")
        for k, v in changes.items():
            if k not in allowed:
                raise ValueError("unknown config key %r (known: %s)"
                                 % (k, ", ".join(sorted(allowed))))
            default, types = allowed[k]
            if v is None:
                continue
            tuple_types = types if isinstance(types, tuple) else (types,)
            if isinstance(v, bool) and bool not in tuple_types:
                raise ValueError("config %s: wrong type" % k)
            if not isinstance(v, tuple_types):
                raise ValueError("config %s: wrong type" % k)
        if "fail_next" in changes and changes["fail_next"] is not None:
            fn = changes["fail_next"]
            if not isinstance(fn.get("status"), int) or not 100 <= fn["status"] <= 599:
                raise ValueError("fail_next.status must be an HTTP status code")
            if not isinstance(fn.get("count", 1), int) or fn.get("count", 1) < 1:
                raise ValueError("fail_next.count must be a positive integer")
        with self.lock:
            for k, v in changes.items():
                self.config[k] = copy.deepcopy(allowed[k][0]) if v is None else v
            if "fail_next" in changes and self.config["fail_next"] is not None:
                self.config["fail_next"] = dict({"count": 1}, **self.config["fail_next"])
            if "burst" in changes or "burst_window" in changes:
                self.burst_times = []
            self.save()
            return dict(self.config)

    def save(self):
        """Note a change: the writer thread updates --state FILE soon."""
        self.dirty.set()

    def writer(self):
        while True:
            self.dirty.wait()
            time.sleep(0.2)  # at most five writes a second
            self.flush()

    def flush(self):
        """Write state, config and the log's tail to --state FILE, if given."""
        if not self.state_file:
            return
        with self.lock:
            self.dirty.clear()
            snap = json.dumps({"service": self.NAME, "config": self.config,
                               "state": self.public_state(), "requests": self.log[-200:],
                               "requests_total": self.seq}, indent=1, default=str)
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(snap)
        os.replace(tmp, self.state_file)

    def handle(self, req):
        if req.path == "/_fake" or req.path.startswith("/_fake/"):
            return self.control(req)
        delay = self.config["delay_ms"]
        if delay:
            time.sleep(delay / 1000.0)
        with self.lock:
            entry = req.log_entry()
            self.seq += 1
            entry["seq"] = self.seq
            entry["time"] = now_iso(ms=True)
            self.log.append(entry)
            if len(self.log) > LOG_CAP:
                del self.log[0]
            try:
                resp = self.answer(req)
            except Exception:  # a bug in the fake: say so, loudly, as a 500
                traceback.print_exc()
                resp = self.error(500, "the fake crashed (see its stderr): "
                                  + traceback.format_exc().strip().splitlines()[-1])
            self.extra_headers(req, resp)
            entry["status"] = resp.status
            self.save()
            return resp

    def answer(self, req):
        fn = self.config["fail_next"]
        if fn:
            fn["count"] -= 1
            if fn["count"] <= 0:
                self.config["fail_next"] = None
            if "body" in fn:
                body = fn["body"]
                resp = (json_response(fn["status"], body) if not isinstance(body, str)
                        else text_response(fn["status"], body))
            else:
                resp = self.error(fn["status"], "injected failure (fail_next)")
            if "retry_after" in fn:
                resp.headers["Retry-After"] = str(fn["retry_after"])
            return resp
        if self.config["burst"] and not self.exempt_from_burst(req):
            t = time.monotonic()
            window = float(self.config["burst_window"])
            self.burst_times = [x for x in self.burst_times if t - x < window]
            if len(self.burst_times) >= self.config["burst"]:
                resp = self.rate_limited()
                resp.headers["Retry-After"] = str(self.config["retry_after"])
                return resp
            self.burst_times.append(t)
        try:
            return self.dispatch(req)
        except HTTPError as e:
            return e.response

    def burst_remaining(self):
        """Requests left in the current burst window (None when off)."""
        if not self.config["burst"]:
            return None
        t = time.monotonic()
        used = len([x for x in self.burst_times if t - x < float(self.config["burst_window"])])
        return max(0, self.config["burst"] - used)

    def dispatch(self, req):
        path_matched = False
        for method, pattern, name in self.ROUTES:
            params = match(pattern, req.segments)
            if params is None:
                continue
            path_matched = True
            if method == req.method:
                return getattr(self, name)(req, **params)
        return self.not_found(req, path_matched)

    # ---- the control API -------------------------------------------------

    def control(self, req):
        def bad(msg, status=400):
            return json_response(status, {"ok": False, "error": msg})

        what = req.path[len("/_fake/"):].strip("/") if req.path != "/_fake" else ""
        if what == "requests" and req.method == "GET":
            try:
                since = int(req.query.get("since", "0"))
            except ValueError:
                return bad("since must be an integer (a seq)")
            with self.lock:
                return json_response(200, [e for e in self.log if e["seq"] > since])
        if what == "requests" and req.method == "DELETE":
            with self.lock:
                self.log = []
                self.save()
            return json_response(200, {"ok": True})
        if what == "reset" and req.method == "POST":
            self.reset()
            return json_response(200, {"ok": True})
        if what == "state" and req.method == "GET":
            with self.lock:
                return json_response(200, json.loads(json.dumps(self.public_state(), default=str)))
        if what == "config" and req.method == "GET":
            with self.lock:
                return json_response(200, dict(self.config))
        if what == "config" and req.method == "POST":
            try:
                changes = json.loads(req.text() or "{}")
                return json_response(200, {"ok": True, "config": self.set_config(changes)})
            except ValueError as e:
                return bad(str(e))
        if what == "health" and req.method == "GET":
            return text_response(200, "ok\n")
        return bad("unknown control endpoint %s %s (see tests/fakes/README.md)"
                   % (req.method, req.path), 404)

    # ---- helpers for routes ----------------------------------------------

    def parse_json_body(self, req, required=True):
        """The body as JSON.  Raises HTTPError with the service's 400 when it
        is not JSON; returns None for an empty body when not required."""
        if not req.body.strip():
            if required:
                raise HTTPError(self.error(400, "request body is empty"))
            return None
        try:
            return json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise HTTPError(self.error(400, "request body is not valid JSON"))


def request_id():
    return str(uuid.uuid4())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    def version_string(self):
        return "drrun-fake"

    fake = None      # set by make_server
    verbose = False

    def log_message(self, fmt, *args):
        if self.verbose:
            super().log_message(fmt, *args)

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        n = self.headers.get("Content-Length")
        if n is None:
            return b""
        n = int(n)
        if n < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(n)

    def handle_any(self):
        try:
            body = self.read_body()
        except ValueError:
            self.send(Response(400, "bad request framing\n", "text/plain"))
            self.close_connection = True
            return
        req = Request(self.command, self.path, self.headers.items(), body)
        self.send(self.fake.handle(req), head=self.command == "HEAD")

    def send(self, resp, head=False):
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if resp.status != 204 and resp.status >= 200:
            self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if resp.body and not head and resp.status != 204:
            self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def make_server(fake, port, verbose=False):
    handler = type("BoundHandler", (Handler,), {"fake": fake, "verbose": verbose})
    return Server(("127.0.0.1", port), handler)


# ---- validation helpers shared by the fakes --------------------------------

def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
