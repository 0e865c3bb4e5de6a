"""heroku.py - a fake Heroku Platform API plus the Heroku Postgres Data API
(api-contracts.md section 2), both path families on one port.

Platform API: releases (list with Range paging, get, rollback), dynos
(list, restart all/one/type), formation (list, get, batch and single
update), the app (get, maintenance), add-on attachment resolve, account
rate limits, and the release output streams.  Data API (/client/v11/...):
transfers (list, get by uuid or num, cancel, public-url), backups capture and
restores that finish after a few polls.  Seeded from the shared API
fixtures (vectors/fixtures/heroku: the CLI's app "myapp"); README.md in this
folder lists the seeded ids.  Uses fakebase only.
"""
import copy
import datetime
import re

from fakebase import (Fake, HTTPError, Response, is_int, json_response, now_iso,
                      request_id, UUID_RE)

TOKEN = "test-heroku-token"
APP = "myapp"
APP_ID = "2e4c0d8a-7b5f-4c1e-9a3d-6f1b2c3d4e5f"
USER = {"id": "0b7d8f4e-1a2c-4d3e-9f5a-6b7c8d9e0f1a", "email": "oncall@example.com"}
ADDON_ID = "6f2e1c1a-9d3b-4a5e-8c7f-0a1b2c3d4e5f"
ADDON_NAME = "postgresql-curved-12345"
PLAN = {"id": "3d4e5f60-7a8b-4c9d-8e0f-1a2b3c4d5e6f", "name": "heroku-postgresql:standard-0"}
ATTACHMENTS = [  # (attachment id, name): both name the app's primary database
    ("a1c2e3f4-0000-4000-8000-00000000d1b1", "DATABASE"),
    ("a1c2e3f4-0000-4000-8000-00000000d1b2", "HEROKU_POSTGRESQL_IVORY"),
]
SCHEDULE_UUID = "5e5d5bc9-6aed-4ede-81b5-edf9341ee6d2"
RATE_LIMIT = 4500
DYNO_SIZES = ["eco", "basic", "standard-1X", "standard-2X", "performance-M", "performance-L",
              "performance-L-RAM", "performance-XL", "performance-2XL", "private-S",
              "private-M", "private-L", "shield-S", "shield-M", "shield-L"]

NO_VERSION = ("Please specify a version along with Heroku's API MIME type. For example, "
              "`Accept: application/vnd.heroku+json; version=3`.\n")
NO_CREDENTIALS = ("There were no credentials in your `Authorization` header. Try "
                  "`Authorization: Bearer <OAuth access token>` or `Authorization: Basic "
                  "<base64-encoded email + \":\" + password>`.")
NO_ENDPOINT = ("The requested API endpoint was not found. Are you using the right HTTP verb "
               "(i.e. `GET` vs. `POST`), and did you specify your intended version with the "
               "`Accept` header?")
ACCEPT_RE = re.compile(r"^application/vnd\.heroku\+json\s*;\s*version=3(\.[a-z0-9_-]+)?$")


def release_id(version):
    return "9c1a5e2f-6b7d-4e8a-9f01-%012d" % version


def transfer_uuid(num):
    return "b1e5d0a4-3c2f-4e1d-8a7b-%012d" % num


def size_id(name):
    return "5a1e0000-0000-4000-8000-%012d" % (DYNO_SIZES.index(name) + 1)


def pg_time(iso):
    """2024-05-14T09:30:12Z -> 2024-05-14 09:30:12 +0000 (the Data API's format)."""
    return iso.replace("T", " ").replace("Z", " +0000") if iso else None


def pg_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S +0000")


# version, status, eligible, description, created_at; v41 is current
SEED_RELEASES = [
    (30, "expired", False, "Deploy 3f1c2a9", "2024-04-02T10:11:00Z"),
    (31, "expired", False, "Set FEATURE_CART config vars", "2024-04-03T08:40:00Z"),
    (32, "succeeded", True, "Deploy 7d8e9f0", "2024-04-10T14:02:00Z"),
    (33, "succeeded", True, "Update DATABASE by heroku-postgresql", "2024-04-15T09:30:00Z"),
    (34, "succeeded", True, "Deploy 0b1c2d3", "2024-04-22T16:45:00Z"),
    (35, "succeeded", True, "Set LOG_LEVEL config vars", "2024-04-29T11:05:00Z"),
    (36, "succeeded", True, "Deploy 4e5f6a7", "2024-05-02T13:20:00Z"),
    (37, "succeeded", True, "Deploy 8b9c0d1", "2024-05-07T15:55:00Z"),
    (38, "failed", False, "Deploy 2e3f4a5", "2024-05-09T10:00:00Z"),
    (39, "succeeded", True, "Deploy 6b7c8d9", "2024-05-10T12:34:00Z"),
    (40, "failed", False, "Deploy a1b2c3d", "2024-05-14T09:02:00Z"),
    (41, "succeeded", True, "Deploy e4f5a6b", "2024-05-14T09:30:00Z"),
]

# num, kind (backup|scheduled|restore), succeeded, created, finished, warnings
SEED_TRANSFERS = [
    (1, "backup", True, "2024-05-10T03:00:00Z", "2024-05-10T03:01:10Z", 0),
    (2, "scheduled", True, "2024-05-11T02:00:00Z", "2024-05-11T02:01:05Z", 0),
    (3, "restore", True, "2024-05-11T15:00:00Z", "2024-05-11T15:04:40Z", 0),
    (4, "backup", True, "2024-05-12T09:00:00Z", "2024-05-12T09:01:20Z", 2),
    (5, "scheduled", True, "2024-05-13T02:00:00Z", "2024-05-13T02:01:12Z", 0),
    (6, "backup", False, "2024-05-14T09:10:00Z", "2024-05-14T09:10:40Z", 0),
]


class Heroku(Fake):
    NAME = "heroku"
    CONFIG = {
        "transfer_polls": (3, int),         # GETs of a new transfer until it finishes
        "fail_next_restore": (False, bool),  # the next restore finishes with succeeded=false
        "fail_next_backup": (False, bool),   # the next capture finishes with succeeded=false
    }
    ROUTES = [
        ("GET", "/account/rate-limits", "rate_limits"),
        ("GET", "/apps/{app}", "app_get"),
        ("PATCH", "/apps/{app}", "app_patch"),
        ("GET", "/apps/{app}/releases", "releases_list"),
        ("POST", "/apps/{app}/releases", "release_create"),
        ("GET", "/apps/{app}/releases/{rel}", "release_get"),
        ("GET", "/apps/{app}/dynos", "dynos_list"),
        ("DELETE", "/apps/{app}/dynos", "dynos_restart_all"),
        ("GET", "/apps/{app}/dynos/{dyno}", "dyno_get"),
        ("DELETE", "/apps/{app}/dynos/{dyno}", "dyno_restart"),
        ("DELETE", "/apps/{app}/formations/{type}", "formation_restart"),
        ("GET", "/apps/{app}/formation", "formation_list"),
        ("PATCH", "/apps/{app}/formation", "formation_batch"),
        ("GET", "/apps/{app}/formation/{type}", "formation_get"),
        ("PATCH", "/apps/{app}/formation/{type}", "formation_update"),
        ("POST", "/actions/addon-attachments/resolve", "attachment_resolve"),
        ("GET", "/streams/{id}", "stream"),
        # Data API (api.data.heroku.com)
        ("GET", "/client/v11/apps/{app}/transfers", "transfers_list"),
        ("GET", "/client/v11/apps/{app}/transfers/{t}", "transfer_get"),
        ("POST", "/client/v11/apps/{app}/transfers/{t}/actions/cancel", "transfer_cancel"),
        ("POST", "/client/v11/apps/{app}/transfers/{t}/actions/public-url", "transfer_public_url"),
        ("POST", "/client/v11/databases/{db}/backups", "backup_capture"),
        ("POST", "/client/v11/databases/{db}/restores", "restore_create"),
    ]

    # ---- seed -------------------------------------------------------------

    def seed(self):
        releases = []
        slug = None
        for v, status, eligible, desc, at in SEED_RELEASES:
            if desc.startswith("Deploy") or slug is None:
                slug = "51a90000-0000-4000-8000-%012d" % v
            releases.append({
                "addon_plan_names": [PLAN["name"]],
                "artifacts": [{"type": "slug", "id": slug}],
                "app": {"name": APP, "id": APP_ID},
                "created_at": at, "description": desc, "id": release_id(v),
                "updated_at": at, "slug": {"id": slug}, "status": status,
                "user": dict(USER), "version": v, "current": v == 41,
                "output_stream_url": "/streams/" + release_id(v),
                "eligible_for_rollback": eligible,
            })
        formation = []
        for i, (ptype, qty, size, cmd) in enumerate([
                ("web", 2, "standard-1X", "bundle exec puma -C config/puma.rb"),
                ("worker", 1, "standard-1X", "bundle exec sidekiq")]):
            formation.append({
                "app": {"name": APP, "id": APP_ID}, "command": cmd,
                "created_at": "2024-04-01T10:00:00Z",
                "dyno_size": {"id": size_id(size), "name": size},
                "id": "f0a10000-0000-4000-8000-%012d" % (i + 1), "quantity": qty,
                "size": size, "type": ptype, "updated_at": "2024-04-01T10:00:00Z",
            })
        transfers = []
        for num, kind, ok, created, finished, warnings in SEED_TRANSFERS:
            t = self.new_transfer(num, kind, created)
            t.update({"started_at": pg_time(created), "finished_at": pg_time(finished),
                      "updated_at": pg_time(finished), "succeeded": ok, "warnings": warnings,
                      "processed_bytes": t["source_bytes"] if ok else 0})
            if kind == "restore":
                t["from_url"] = transfers[0]["to_url"]
            t["_logs"] = [{"created_at": pg_time(finished), "level": "info",
                           "message": "transfer %s" % ("completed" if ok else "failed")}]
            transfers.append(t)
        self.state = {
            "app": {
                "acm": False, "archived_at": None, "build_stack": {"name": "heroku-22"},
                "buildpack_provided_description": "Ruby", "created_at": "2024-01-02T10:00:00Z",
                "git_url": "https://git.heroku.com/%s.git" % APP, "id": APP_ID,
                "internal_routing": None, "maintenance": False, "name": APP,
                "owner": dict(USER), "organization": None, "team": None, "space": None,
                "region": {"id": "59accabd-516d-4f0e-83e6-6e3757701145", "name": "us"},
                "released_at": "2024-05-14T09:30:00Z", "repo_size": None,
                "slug_size": 51200000, "stack": {"name": "heroku-22"},
                "updated_at": "2024-05-14T09:30:00Z",
                "web_url": "https://%s-1a2b3c4d5e6f.herokuapp.com/" % APP,
            },
            "releases": releases,
            "formation": formation,
            "dynos": [],
            "restarts": [],
            "transfers": transfers,
            "database": {"addon_id": ADDON_ID, "restored_from": None, "restores_completed": 0,
                         "backups_completed": 0},
            "rate_used": 0,
        }
        for f in formation:
            self.make_dynos(f)

    def new_transfer(self, num, kind, created_iso):
        uid = transfer_uuid(num)
        backup = kind in ("backup", "scheduled")
        return {
            "uuid": uid, "num": num,
            "from_name": "DATABASE" if backup else "BACKUP",
            "from_type": "pg_dump" if backup else "gof3r",
            "from_url": ("postgres://ec2-10-0-0-1.compute-1.amazonaws.com:5432/d8f2a1b3c4"
                         if backup else None),
            "to_name": "BACKUP" if backup else "DATABASE",
            "to_type": "gof3r" if backup else "pg_restore",
            "to_url": ("https://xfrtu.s3.amazonaws.com/%s/%s/backup.dump" % (ADDON_ID, uid)
                       if backup else
                       "postgres://ec2-10-0-0-1.compute-1.amazonaws.com:5432/d8f2a1b3c4"),
            "created_at": pg_time(created_iso), "started_at": None, "finished_at": None,
            "canceled_at": None, "deleted_at": None, "updated_at": pg_time(created_iso),
            "succeeded": False, "processed_bytes": 0, "source_bytes": 48213337,
            "warnings": 0, "options": {},
            "schedule": {"uuid": SCHEDULE_UUID} if kind == "scheduled" else None,
        }

    def make_dynos(self, f):
        self.state["dynos"] = [d for d in self.state["dynos"] if d["type"] != f["type"]]
        cur = self.current_release()
        type_n = {"web": 1, "worker": 2}.get(f["type"], 9)
        for n in range(1, f["quantity"] + 1):
            self.state["dynos"].append({
                "attach_url": None, "command": f["command"], "created_at": f["updated_at"],
                "id": "d7e00000-0000-4000-8000-%06d%06d" % (type_n, n),
                "name": "%s.%d" % (f["type"], n),
                "release": {"id": cur["id"], "version": cur["version"]},
                "app": {"name": APP, "id": APP_ID}, "size": f["size"], "state": "up",
                "type": f["type"], "updated_at": f["updated_at"],
            })
        self.state["dynos"].sort(key=lambda d: (d["type"], int(d["name"].split(".")[1])))

    def public_state(self):
        return self.state

    # ---- service shape ------------------------------------------------------

    def error(self, status, message, id=None, **extra):
        ids = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               409: "conflict", 422: "invalid_params", 429: "rate_limit", 503: "unavailable"}
        body = {"id": id or ids.get(status, "unavailable" if status >= 500 else "bad_request"),
                "message": message}
        body.update(extra)
        return json_response(status, body)

    def rate_limited(self):
        return self.error(self.config["burst_status"], "Your account reached the API rate limit\n"
                          "Please wait a few minutes before making new requests", id="rate_limit")

    def not_found(self, req, wrong_method):
        return self.error(404, NO_ENDPOINT)

    def exempt_from_burst(self, req):
        return req.path == "/account/rate-limits"

    def extra_headers(self, req, resp):
        resp.headers["Request-Id"] = request_id()
        rem = self.burst_remaining()
        if rem is None:
            rem = max(0, RATE_LIMIT - self.state["rate_used"])
        resp.headers["RateLimit-Remaining"] = str(rem)

    def dispatch(self, req):
        data_api = req.path.startswith("/client/")
        if req.path.startswith("/streams/"):
            return Fake.dispatch(self, req)  # a capability URL, like release-output.heroku.com
        if not data_api:
            accept = (req.header("accept") or "").strip()
            if not any(ACCEPT_RE.match(a.strip()) for a in accept.split(",")):
                return self.error(400, NO_VERSION, id="missing_version", error=NO_VERSION)
        auth = req.header("authorization")
        if not auth:
            return self.error(401, NO_CREDENTIALS)
        if auth != "Bearer " + TOKEN:
            return self.error(401, "Invalid credentials provided.")
        if req.path != "/account/rate-limits":
            self.state["rate_used"] += 1
        if req.body and req.method in ("POST", "PATCH", "PUT", "DELETE"):
            if req.media_type() != "application/json":
                return self.error(400, "Content-Type must be application/json when a body is sent"
                                  " (got %r)." % (req.header("content-type") or ""))
        return Fake.dispatch(self, req)

    def body(self, req):
        """The JSON object body ({} when empty)."""
        v = self.parse_json_body(req, required=False)
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise HTTPError(self.error(400, "Request body must be a JSON object."))
        return v

    def app(self, name):
        a = self.state["app"]
        if name not in (a["name"], a["id"]):
            raise HTTPError(self.error(404, "Couldn't find that app.", resource="app"))
        return a

    # ---- app, rate limits -------------------------------------------------

    def rate_limits(self, req):
        return json_response(200, {"remaining": max(0, RATE_LIMIT - self.state["rate_used"])})

    def app_get(self, req, app):
        return json_response(200, self.app(app))

    def app_patch(self, req, app):
        a = self.app(app)
        b = self.body(req)
        known = [k for k in ("maintenance", "name", "build_stack") if k in b]
        if not known:
            return self.error(422, "Missing required params: maintenance, name or build_stack.")
        if "maintenance" in b and not isinstance(b["maintenance"], bool):
            return self.error(422, "Invalid params: maintenance must be a boolean.")
        if "name" in b and b["name"] != a["name"]:
            return self.error(422, "The fake does not rename apps.")
        if "build_stack" in b and not isinstance(b["build_stack"], str):
            return self.error(422, "Invalid params: build_stack must be a string.")
        if "maintenance" in b:
            a["maintenance"] = b["maintenance"]
        a["updated_at"] = now_iso()
        return json_response(200, a)

    # ---- releases ---------------------------------------------------------

    def current_release(self):
        return next(r for r in self.state["releases"] if r["current"])

    def render_release(self, req, r):
        r = copy.deepcopy(r)
        if r["output_stream_url"] and r["output_stream_url"].startswith("/"):
            r["output_stream_url"] = req.base_url() + r["output_stream_url"]
        return r

    def find_release(self, ident):
        for r in self.state["releases"]:
            if ident == r["id"] or (is_int(ident) and ident == r["version"]) or \
                    (isinstance(ident, str) and ident.isdigit() and int(ident) == r["version"]):
                return r
        return None

    def parse_range(self, value):
        """Range: version ]41..; max=10, order=desc -> (start, excl, end, max, order)."""
        head, _, opts = value.partition(";")
        m = re.match(r"^\s*(id|version)\s+(\]?)([^.\s]*)\.\.([^\s\[]*)\s*$", head)
        if not m:
            raise HTTPError(self.error(400, "Invalid Range header %r: expected e.g. "
                                       "`version ..; max=10, order=desc`." % value))
        field, excl, start, end = m.groups()
        max_n, order = 200, "asc"
        for opt in filter(None, (o.strip() for o in opts.split(","))):
            k, _, v = opt.partition("=")
            if k == "max" and v.isdigit() and 1 <= int(v) <= 1000:
                max_n = int(v)
            elif k == "order" and v in ("asc", "desc"):
                order = v
            else:
                raise HTTPError(self.error(400, "Invalid Range header option %r." % opt))

        def to_version(x):
            if x == "":
                return None
            if field == "version" and x.isdigit():
                return int(x)
            r = self.find_release(x) if field == "id" else None
            if r is None:
                raise HTTPError(self.error(400, "Invalid Range header value %r." % x))
            return r["version"]
        return to_version(start), bool(excl), to_version(end), max_n, order, field

    def releases_list(self, req, app):
        self.app(app)
        rels = sorted(self.state["releases"], key=lambda r: r["version"])
        rng = req.header("range")
        start, excl, end, max_n, order, field = (None, False, None, 200, "asc", "version")
        if rng:
            start, excl, end, max_n, order, field = self.parse_range(rng)
        if order == "desc":
            rels.reverse()
        out = []
        for r in rels:
            v = r["version"]
            if start is not None:
                if order == "asc" and (v < start or (excl and v == start)):
                    continue
                if order == "desc" and (v > start or (excl and v == start)):
                    continue
            if end is not None and ((order == "asc" and v > end) or (order == "desc" and v < end)):
                continue
            out.append(r)
        page, more = out[:max_n], len(out) > max_n
        headers = {"Accept-Ranges": "id, version"}
        if page:
            first, last = page[0], page[-1]
            key = "version" if field == "version" else "id"
            headers["Content-Range"] = "%s %s..%s" % (key, first[key], last[key])
            if more:
                headers["Next-Range"] = "%s ]%s..; max=%d, order=%s" % (
                    key, last[key], max_n, order)
        return json_response(206 if more else 200, [self.render_release(req, r) for r in page],
                             headers)

    def release_get(self, req, app, rel):
        self.app(app)
        r = self.find_release(rel)
        if r is None:
            return self.error(404, "Couldn't find that release.", resource="release")
        return json_response(200, self.render_release(req, r))

    def release_create(self, req, app):
        self.app(app)
        b = self.body(req)
        if "release" not in b:
            if "slug" in b:
                return self.error(422, "The fake only creates releases by rollback "
                                  "(body {\"release\": \"<id>\"}).")
            return self.error(422, "Missing required params: release.")
        ident = b["release"]
        if not (isinstance(ident, str) or is_int(ident)) or isinstance(ident, bool):
            return self.error(422, "Invalid params: release must be a release id or version.")
        if isinstance(ident, str) and not UUID_RE.match(ident):
            return self.error(404, "Couldn't find that release.", resource="release")
        target = self.find_release(ident) if not isinstance(ident, str) else next(
            (r for r in self.state["releases"] if r["id"] == ident), None)
        if target is None:
            return self.error(404, "Couldn't find that release.", resource="release")
        if not target["eligible_for_rollback"]:
            return self.error(422, "Release v%d is not eligible for rollback (status %s)."
                              % (target["version"], target["status"]))
        version = max(r["version"] for r in self.state["releases"]) + 1
        for r in self.state["releases"]:
            r["current"] = False
        at = now_iso()
        new = copy.deepcopy(target)
        new.update({"id": release_id(version), "version": version, "current": True,
                    "status": "succeeded", "eligible_for_rollback": True,
                    "description": "Rollback to v%d" % target["version"],
                    "created_at": at, "updated_at": at, "user": dict(USER),
                    "output_stream_url": "/streams/" + release_id(version)})
        self.state["releases"].append(new)
        self.state["app"]["released_at"] = at
        for d in self.state["dynos"]:
            d["release"] = {"id": new["id"], "version": version}
        return json_response(201, self.render_release(req, new))

    def stream(self, req, id):
        r = next((r for r in self.state["releases"] if r["id"] == id), None)
        if r is None:
            return Response(404, "no such stream\n", "text/plain")
        return Response(200, "Running release command...\nv%d: %s\nDone: %s\n"
                        % (r["version"], r["description"], r["status"]), "text/plain")

    # ---- dynos and formation ------------------------------------------------

    def dynos_list(self, req, app):
        self.app(app)
        return json_response(200, self.state["dynos"])

    def find_dyno(self, ident):
        d = next((d for d in self.state["dynos"] if ident in (d["name"], d["id"])), None)
        if d is None:
            raise HTTPError(self.error(404, "Couldn't find that dyno.", resource="dyno"))
        return d

    def restart(self, target, dynos):
        at = now_iso()
        for d in dynos:
            d["created_at"] = d["updated_at"] = at
            d["state"] = "up"
        self.state["restarts"].append({"target": target, "at": at,
                                       "dynos": [d["name"] for d in dynos]})
        return json_response(202, {})

    def dynos_restart_all(self, req, app):
        self.app(app)
        return self.restart("all", self.state["dynos"])

    def dyno_get(self, req, app, dyno):
        self.app(app)
        return json_response(200, self.find_dyno(dyno))

    def dyno_restart(self, req, app, dyno):
        self.app(app)
        d = self.find_dyno(dyno)
        return self.restart(d["name"], [d])

    def find_formation(self, ptype):
        f = next((f for f in self.state["formation"] if ptype in (f["type"], f["id"])), None)
        if f is None:
            raise HTTPError(self.error(404, "Couldn't find that formation.", resource="formation"))
        return f

    def formation_restart(self, req, app, type):
        self.app(app)
        f = self.find_formation(type)
        return self.restart(f["type"], [d for d in self.state["dynos"] if d["type"] == f["type"]])

    def formation_list(self, req, app):
        self.app(app)
        return json_response(200, self.state["formation"])

    def formation_get(self, req, app, type):
        self.app(app)
        return json_response(200, self.find_formation(type))

    def check_update(self, u, where):
        """Validate one formation update; returns (quantity|None, size|None)."""
        if not isinstance(u, dict):
            raise HTTPError(self.error(422, "Invalid params: %s must be an object." % where))
        qty = u.get("quantity")
        if "quantity" in u and (not is_int(qty) or qty < 0):
            raise HTTPError(self.error(422, "Invalid params: %s.quantity must be a "
                                       "non-negative integer." % where))
        sizes = [u[k] for k in ("dyno_size", "size") if k in u]
        size = None
        for s in sizes:
            if not isinstance(s, str):
                raise HTTPError(self.error(422, "Invalid params: %s dyno_size/size must be a "
                                           "string." % where))
            canon = next((n for n in DYNO_SIZES if n.lower() == s.lower()), None)
            if canon is None:
                raise HTTPError(self.error(422, "No such dyno size as %r." % s))
            if size is not None and canon != size:
                raise HTTPError(self.error(422, "Invalid params: %s has size and dyno_size "
                                           "that differ." % where))
            size = canon
        if "quantity" not in u and size is None:
            raise HTTPError(self.error(422, "Missing required params: quantity or dyno_size (%s)."
                                       % where))
        return (qty if "quantity" in u else None), size

    def apply_update(self, f, qty, size):
        if qty is not None:
            f["quantity"] = qty
        if size is not None:
            f["size"] = size
            f["dyno_size"] = {"id": size_id(size), "name": size}
        f["updated_at"] = now_iso()
        self.make_dynos(f)

    def formation_batch(self, req, app):
        self.app(app)
        b = self.body(req)
        ups = b.get("updates")
        if "updates" not in b:
            return self.error(422, "Missing required params: updates.")
        if not isinstance(ups, list) or not ups:
            return self.error(422, "Invalid params: updates must be a non-empty array.")
        plan = []
        for i, u in enumerate(ups):
            where = "updates[%d]" % i
            if not isinstance(u, dict) or not isinstance(u.get("type"), str):
                return self.error(422, "Missing required params: %s.type." % where)
            f = next((f for f in self.state["formation"] if f["type"] == u["type"]), None)
            if f is None:
                return self.error(404, "Couldn't find that process type (%s)." % u["type"],
                                  resource="formation")
            plan.append((f,) + self.check_update(u, where))
        for f, qty, size in plan:  # all valid: apply together
            self.apply_update(f, qty, size)
        return json_response(200, [p[0] for p in plan])

    def formation_update(self, req, app, type):
        self.app(app)
        f = self.find_formation(type)
        qty, size = self.check_update(self.body(req), "body")
        self.apply_update(f, qty, size)
        return json_response(200, f)

    # ---- add-on attachments -------------------------------------------------

    def attachment_resolve(self, req):
        b = self.body(req)
        name = b.get("addon_attachment")
        if not isinstance(name, str) or not name:
            return self.error(422, "Missing required params: addon_attachment.")
        app = b.get("app")
        if "::" in name:
            app, name = name.split("::", 1)
        if app is not None:
            if not isinstance(app, str):
                return self.error(422, "Invalid params: app must be a string.")
            self.app(app)
        svc = b.get("addon_service")
        if svc is not None and svc != "heroku-postgresql":
            return self.error(404, "Couldn't find that add-on attachment.",
                              resource="addon_attachment")
        wanted = name.upper()
        found = [(aid, n) for aid, n in ATTACHMENTS
                 if wanted in (n, n + "_URL") or name == ADDON_NAME]
        if app is None and name != ADDON_NAME:
            found = []  # a bare attachment name needs an app
        if not found:
            return self.error(404, "Couldn't find that add-on attachment.",
                              resource="addon_attachment")
        out = []
        for aid, n in found[:1] if name != ADDON_NAME else found:
            out.append({
                "id": aid, "name": n, "namespace": None,
                "addon": {"id": ADDON_ID, "name": ADDON_NAME,
                          "app": {"id": APP_ID, "name": APP}, "plan": dict(PLAN)},
                "app": {"id": APP_ID, "name": APP},
                "created_at": "2024-01-02T10:05:00Z", "updated_at": "2024-01-02T10:05:00Z",
                "web_url": "https://data.heroku.com/datastores/" + ADDON_ID,
                "log_input_url": None,
            })
        return json_response(200, out)

    # ---- Data API: transfers ------------------------------------------------

    def render_transfer(self, t, verbose=False):
        out = {k: v for k, v in t.items() if not k.startswith("_")}
        if verbose:
            out["logs"] = list(t.get("_logs", []))
        return out

    def poll(self, t):
        """One GET of an unfinished transfer moves it along."""
        if t["finished_at"] or "_polls_needed" not in t:
            return
        t["_polls"] += 1
        n, k = t["_polls_needed"], t["_polls"]
        at = pg_now()
        t["updated_at"] = at
        if t["started_at"] is None:
            t["started_at"] = at
            t["_logs"].append({"created_at": at, "level": "info", "message": "starting transfer"})
        t["processed_bytes"] = min(t["source_bytes"], t["source_bytes"] * k // max(n, 1))
        if k < n:
            return
        t["finished_at"] = at
        if t["_fail"]:
            t["succeeded"] = False
            msg = ("pg_restore: error: could not execute query" if t["to_type"] == "pg_restore"
                   else "pg_dump: error: connection lost")
            t["_logs"].append({"created_at": at, "level": "error", "message": msg})
            return
        t["succeeded"] = True
        t["processed_bytes"] = t["source_bytes"]
        t["_logs"].append({"created_at": at, "level": "info", "message": "transfer completed"})
        db = self.state["database"]
        if t["to_type"] == "pg_restore":
            db["restored_from"] = t["from_url"]
            db["restores_completed"] += 1
        else:
            db["backups_completed"] += 1

    def find_transfer(self, ident):
        for t in self.state["transfers"]:
            if ident == t["uuid"] or (ident.isdigit() and int(ident) == t["num"]):
                return t
        raise HTTPError(self.error(404, "Couldn't find that transfer.", resource="transfer"))

    def transfers_list(self, req, app):
        self.app(app)
        for t in self.state["transfers"]:
            self.poll(t)
        return json_response(200, [self.render_transfer(t) for t in
                                   sorted(self.state["transfers"], key=lambda t: t["num"])])

    def transfer_get(self, req, app, t):
        self.app(app)
        tr = self.find_transfer(t)
        self.poll(tr)
        return json_response(200, self.render_transfer(tr, req.query.get("verbose") == "true"))

    def transfer_cancel(self, req, app, t):
        self.app(app)
        tr = self.find_transfer(t)
        if not tr["finished_at"]:
            at = pg_now()
            tr.update({"canceled_at": at, "finished_at": at, "updated_at": at,
                       "succeeded": False})
            tr["_logs"].append({"created_at": at, "level": "info", "message": "canceled"})
        return json_response(200, self.render_transfer(tr))

    def transfer_public_url(self, req, app, t):
        self.app(app)
        tr = self.find_transfer(t)
        if tr["to_type"] != "gof3r" or not tr["succeeded"]:
            return self.error(404, "That transfer has no backup to download.",
                              resource="transfer")
        expires = (datetime.datetime.now(datetime.timezone.utc)
                   + datetime.timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M:%S +0000")
        return json_response(200, {"url": tr["to_url"] + "?X-Amz-Signature=fake&X-Amz-Expires=600",
                                   "expires_at": expires})

    def database(self, db):
        if db not in (ADDON_ID, ADDON_NAME):
            raise HTTPError(self.error(404, "Couldn't find that database.", resource="addon"))

    def start_transfer(self, kind, fail):
        num = max([t["num"] for t in self.state["transfers"]] or [0]) + 1
        t = self.new_transfer(num, kind, now_iso())
        t["created_at"] = t["updated_at"] = pg_now()
        t.update({"_polls": 0, "_polls_needed": max(1, self.config["transfer_polls"]),
                  "_fail": fail, "_logs": []})
        self.state["transfers"].append(t)
        return t

    def backup_capture(self, req, db):
        self.database(db)
        self.body(req)  # optional; must be a JSON object when present
        fail = self.config["fail_next_backup"]
        self.config["fail_next_backup"] = False
        t = self.start_transfer("backup", fail)
        return json_response(200, self.render_transfer(t))

    def restore_create(self, req, db):
        self.database(db)
        b = self.body(req)
        url = b.get("backup_url")
        if "backup_url" not in b:
            return self.error(422, "Missing required params: backup_url.")
        if not isinstance(url, str) or not re.match(r"^https?://\S+$", url):
            return self.error(422, "Invalid params: backup_url must be an http(s) URL.")
        exts = b.get("extensions")
        if "extensions" in b:
            if not isinstance(exts, list) or not all(isinstance(e, str) and e for e in exts):
                return self.error(422, "Invalid params: extensions must be an array of strings.")
            if exts != sorted(exts) or any(e != e.lower() for e in exts):
                return self.error(422, "Invalid params: extensions must be lowercase and sorted "
                                  "(as the CLI sends them).")
        fail = self.config["fail_next_restore"]
        self.config["fail_next_restore"] = False
        t = self.start_transfer("restore", fail)
        src = next((s for s in self.state["transfers"] if s["to_url"] == url), None)
        t["from_url"] = url
        t["from_type"] = "gof3r" if src else "htcat"
        t["from_name"] = src["from_name"] if src else "URL"
        if exts:
            t["options"] = {"extensions": exts}
        return json_response(200, self.render_transfer(t))


FAKE = Heroku
