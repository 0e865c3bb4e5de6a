"""netlify.py - a fake Netlify API (api-contracts.md section 3) under /api/v1.

One site with a published deploy and ten deploys (the three of the fixture
constructed-deploys.json first); deploy lists with page/per_page, filters and
a Link header; restore (publish) of ready deploys only; site rollback; builds
that start a deploy which goes enqueued -> building -> ready (or error) over a
few GETs and then auto-publishes unless the live deploy is locked; lock,
unlock, cancel.  README.md in this folder lists the seeded ids.  Uses
fakebase only.
"""
import copy
import datetime
import hashlib
import time
import urllib.parse

from fakebase import Fake, HTTPError, json_response, now_iso, request_id, Response

TOKEN = "test-netlify-token"
SITE_ID = "3970e0fe-8564-4903-9a55-c5f8de49fb8b"
SITE_NAME = "drrun-demo"
USER_ID = "5b3a2d9f1f0c4a0001a1b2c3"
RATE_LIMIT = 500
DEPLOY_STATES = ["new", "pending_review", "accepted", "rejected", "enqueued", "building",
                 "uploading", "uploaded", "preparing", "prepared", "processing", "processed",
                 "ready", "error", "retrying"]
UNFINISHED = {"new", "enqueued", "building", "uploading", "uploaded", "preparing", "prepared",
              "processing", "processed", "retrying"}

FIXTURE_COMMITS = {
    "6650e2a4c2f1a10008b3c001": "9f2c1e7b44d0a3c5e6f7a8b9c0d1e2f3a4b5c6d7",
    "6650d1f0c2f1a10008b3bff2": "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
    "664f8a11b7e2c500083a9d7e": "0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d",
}

# id, state, context, branch, title, created, published?, error_message
SEED_DEPLOYS = [
    ("6650e2a4c2f1a10008b3c001", "ready", "production", "main", "Bad release: breaks checkout",
     "2024-05-14T09:30:12.118Z", True, None),
    ("6650d1f0c2f1a10008b3bff2", "error", "production", "main", "WIP build",
     "2024-05-14T08:10:03.004Z", False, "Build script returned non-zero exit code: 2"),
    ("664f8a11b7e2c500083a9d7e", "ready", "production", "main", "Known good release",
     "2024-05-13T16:02:45.870Z", True, None),
    ("664f2c03b7e2c500083a9c41", "ready", "deploy-preview", "feature/checkout",
     "Checkout redesign", "2024-05-13T11:20:10.000Z", False, None),
    ("664e9b7fa4c3d10008e2b7aa", "ready", "production", "main", "Tune caching",
     "2024-05-12T14:05:33.000Z", True, None),
    ("664e51c2a4c3d10008e2b701", "ready", "branch-deploy", "staging", "Staging refresh",
     "2024-05-12T09:40:00.000Z", False, None),
    ("664d0e88f1b2a70008c1d3e9", "ready", "production", "main", "Upgrade dependencies",
     "2024-05-11T10:15:20.000Z", True, None),
    ("664c7a15f1b2a70008c1d2b4", "error", "production", "main", "Broken image pipeline",
     "2024-05-10T17:44:02.000Z", False, "Failed during stage 'building site': Build script "
     "returned non-zero exit code: 1"),
    ("664b3f20e9d8c60008a0b1c5", "ready", "production", "main", "Add status banner",
     "2024-05-09T08:30:00.000Z", True, None),
    ("664a1e9de9d8c60008a0b0f2", "ready", "production", "main", "Initial launch",
     "2024-05-08T12:00:00.000Z", True, None),
]


def plus(iso, seconds):
    """2024-05-14T09:30:12.118Z plus some seconds, same format."""
    t = datetime.datetime.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S") + datetime.timedelta(
        seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + iso[19:]


def commit_ref(did):
    """The fixture's commit for its three deploys, else a stable 40-hex one."""
    return FIXTURE_COMMITS.get(did) or hashlib.sha1(did.encode()).hexdigest()


class Netlify(Fake):
    NAME = "netlify"
    CONFIG = {
        "build_polls": (3, int),          # GETs of a new deploy until it is ready/error
        "fail_next_build": (False, bool),  # the next build ends in state error
    }
    ROUTES = [
        ("GET", "/api/v1/sites", "sites_list"),
        ("GET", "/api/v1/sites/{site}", "site_get"),
        ("GET", "/api/v1/sites/{site}/deploys", "deploys_list"),
        ("GET", "/api/v1/sites/{site}/deploys/{deploy}", "site_deploy_get"),
        ("POST", "/api/v1/sites/{site}/deploys/{deploy}/restore", "deploy_restore"),
        ("PUT", "/api/v1/sites/{site}/rollback", "site_rollback"),
        ("POST", "/api/v1/sites/{site}/builds", "build_create"),
        ("GET", "/api/v1/builds/{build}", "build_get"),
        ("GET", "/api/v1/deploys/{deploy}", "deploy_get"),
        ("POST", "/api/v1/deploys/{deploy}/lock", "deploy_lock"),
        ("POST", "/api/v1/deploys/{deploy}/unlock", "deploy_unlock"),
        ("POST", "/api/v1/deploys/{deploy}/cancel", "deploy_cancel"),
    ]

    def seed(self):
        deploys = [self.make_deploy(*d) for d in SEED_DEPLOYS]
        published = [d["id"] for d in reversed(deploys) if d["published_at"]]
        self.state = {
            "site": {
                "id": SITE_ID, "site_id": SITE_ID, "name": SITE_NAME, "state": "current",
                "account_slug": "drrun-team", "custom_domain": None,
                "url": "https://%s.netlify.app" % SITE_NAME,
                "ssl_url": "https://%s.netlify.app" % SITE_NAME,
                "admin_url": "https://app.netlify.com/projects/%s" % SITE_NAME,
                "build_settings": {"repo_url": "https://github.com/example/drrun-demo",
                                   "repo_branch": "main", "cmd": "npm run build",
                                   "dir": "dist", "stop_builds": False},
                "created_at": "2024-05-01T10:00:00.000Z", "updated_at": "2024-05-14T09:31:40.552Z",
                "published_deploy_id": published[-1],
            },
            "deploys": deploys,             # newest first
            "publish_history": published,   # oldest first; the last is live
            "builds": [],
        }

    def make_deploy(self, did, state, context, branch, title, created, published, err):
        done = plus(created, 88) if state in ("ready", "error") else created
        return {
            "id": did, "site_id": SITE_ID, "user_id": USER_ID,
            "build_id": "65f0" + did[4:], "state": state, "name": SITE_NAME,
            "url": "http://%s.netlify.app" % SITE_NAME,
            "ssl_url": "https://%s.netlify.app" % SITE_NAME,
            "admin_url": "https://app.netlify.com/projects/%s" % SITE_NAME,
            "deploy_url": "http://%s--%s.netlify.app" % (did, SITE_NAME),
            "deploy_ssl_url": "https://%s--%s.netlify.app" % (did, SITE_NAME),
            "screenshot_url": None,
            "review_id": 42 if context == "deploy-preview" else None,
            "draft": False, "required": [], "required_functions": [],
            "error_message": err, "branch": branch,
            "commit_ref": commit_ref(did),
            "commit_url": "https://github.com/example/drrun-demo/commit/" + commit_ref(did),
            "skipped": None, "created_at": created, "updated_at": done,
            "published_at": done if published else None, "title": title, "context": context,
            "locked": None, "review_url": None, "framework": "unknown",
            "function_schedules": [],
        }

    def public_state(self):
        return {"site": self.site_json(), "deploys": self.state["deploys"],
                "publish_history": self.state["publish_history"],
                "builds": [self.build_json(b) for b in self.state["builds"]]}

    # ---- service shape ------------------------------------------------------

    def error(self, status, message, **extra):
        return json_response(status, dict({"code": status, "message": message}, **extra))

    def rate_limited(self):
        return self.error(self.config["burst_status"], "Rate limit exceeded")

    def not_found(self, req, wrong_method):
        if wrong_method:
            return self.error(405, "Method Not Allowed")
        return self.error(404, "Not Found")

    def extra_headers(self, req, resp):
        resp.headers["X-Request-Id"] = request_id().replace("-", "")[:26].upper()
        limit = self.config["burst"] or RATE_LIMIT
        rem = self.burst_remaining()
        if rem is None:  # the real limit: requests of the last 60 s
            t = time.time()
            self.minute = [x for x in getattr(self, "minute", []) if t - x < 60] + [t]
            rem = max(0, RATE_LIMIT - len(self.minute))
        resp.headers["X-RateLimit-Limit"] = str(limit)
        resp.headers["X-RateLimit-Remaining"] = str(rem)
        resp.headers["X-RateLimit-Reset"] = str(int(time.time()) +
                                                int(self.config["burst_window"] if
                                                    self.config["burst"] else 60))

    def dispatch(self, req):
        auth = req.header("authorization") or ""
        if auth != "Bearer " + TOKEN:
            return self.error(401, "Access Denied")
        return Fake.dispatch(self, req)

    # ---- lookups ------------------------------------------------------------

    def site(self, ident):
        s = self.state["site"]
        if ident not in (s["id"], "%s.netlify.app" % SITE_NAME):
            raise HTTPError(self.error(404, "Not Found"))
        return s

    def deploy(self, did, site=None):
        d = next((d for d in self.state["deploys"] if d["id"] == did), None)
        if d is None or (site is not None and d["site_id"] != site["id"]):
            raise HTTPError(self.error(404, "Not Found"))
        return d

    def published(self):
        return self.deploy(self.state["site"]["published_deploy_id"])

    def site_json(self):
        s = {k: v for k, v in self.state["site"].items() if k != "published_deploy_id"}
        s["published_deploy"] = copy.deepcopy(self.published())
        return s

    # ---- deploy life cycle ----------------------------------------------------

    def internal(self, did):
        return next((b for b in self.state["builds"] if b["deploy_id"] == did), None)

    def poll(self, d):
        b = self.internal(d["id"])
        if b is None or d["state"] not in UNFINISHED:
            return
        b["_polls"] += 1
        at = now_iso(ms=True)
        d["updated_at"] = at
        if b["_polls"] < b["_polls_needed"]:
            d["state"] = "building"
            return
        if b["_fail"]:
            d["state"] = "error"
            d["error_message"] = "Build script returned non-zero exit code: 2"
            return
        d["state"] = "ready"
        live = self.published()
        if d["context"] == "production" and not live.get("locked"):
            self.publish(d, at)

    def publish(self, d, at):
        d["published_at"] = at
        d["updated_at"] = at
        self.state["site"]["published_deploy_id"] = d["id"]
        self.state["site"]["updated_at"] = at
        self.state["publish_history"].append(d["id"])

    def build_json(self, b):
        d = self.deploy(b["deploy_id"])
        out = {k: v for k, v in b.items() if not k.startswith("_")}
        out["done"] = d["state"] in ("ready", "error")
        out["error"] = d["error_message"] if d["state"] == "error" else None
        out["sha"] = d["commit_ref"] if out["done"] else None
        out["deploy_state"] = d["state"]
        return out

    # ---- routes ---------------------------------------------------------------

    def sites_list(self, req):
        return json_response(200, [self.site_json()])

    def site_get(self, req, site):
        self.site(site)
        return json_response(200, self.site_json())

    def deploys_list(self, req, site):
        self.site(site)
        q = req.query
        try:
            page = int(q.get("page", "1"))
            per_page = int(q.get("per_page", "100"))
        except ValueError:
            return self.error(400, "page and per_page must be integers")
        if page < 1 or per_page < 1:
            return self.error(400, "page and per_page must be positive")
        per_page = min(per_page, 100)
        items = self.state["deploys"]
        for d in items:
            self.poll(d)
        if "state" in q:
            if q["state"] not in DEPLOY_STATES:
                return self.error(422, "Invalid state %r" % q["state"])
            items = [d for d in items if d["state"] == q["state"]]
        if "branch" in q:
            items = [d for d in items if d["branch"] == q["branch"]]
        if q.get("production") == "true":
            items = [d for d in items if d["context"] == "production"]
        if q.get("deploy-previews") == "true":
            items = [d for d in items if d["context"] == "deploy-preview"]
        if q.get("latest-published") == "true":
            items = [d for d in items if d["id"] == self.state["site"]["published_deploy_id"]]
        last = max(1, (len(items) + per_page - 1) // per_page)
        chunk = items[(page - 1) * per_page: page * per_page]

        def link(p):
            qs = dict(q, page=str(p), per_page=str(per_page))
            return "<%s%s?%s>" % (req.base_url(), req.path, urllib.parse.urlencode(qs))
        links = []
        if page < last:
            links.append(link(page + 1) + '; rel="next"')
        if page > 1:
            links.append(link(min(page - 1, last)) + '; rel="prev"')
        links.append(link(last) + '; rel="last"')
        links.append(link(1) + '; rel="first"')
        return json_response(200, chunk, {"Link": ", ".join(links)})

    def site_deploy_get(self, req, site, deploy):
        s = self.site(site)
        d = self.deploy(deploy, s)
        self.poll(d)
        return json_response(200, d)

    def deploy_get(self, req, deploy):
        d = self.deploy(deploy)
        self.poll(d)
        return json_response(200, d)

    def deploy_restore(self, req, site, deploy):
        s = self.site(site)
        d = self.deploy(deploy, s)
        if d["state"] != "ready":
            return self.error(422, "Deploy %s is in state %s; only ready deploys can be "
                              "published" % (d["id"], d["state"]))
        if s["published_deploy_id"] != d["id"]:
            self.publish(d, now_iso(ms=True))
        return json_response(201, d)

    def site_rollback(self, req, site):
        s = self.site(site)
        hist = self.state["publish_history"]
        prev = next((h for h in reversed(hist) if h != s["published_deploy_id"]), None)
        if prev is None:
            return self.error(422, "No previous deploy to roll back to")
        self.publish(self.deploy(prev), now_iso(ms=True))
        return Response(204)

    def build_create(self, req, site):
        s = self.site(site)
        n = self.next_id()
        did = "66520000a1b2c3000000%04x" % n
        bid = "66520000b1b2c3000000%04x" % n
        branch = req.query.get("branch") or s["build_settings"]["repo_branch"]
        at = now_iso(ms=True)
        d = self.make_deploy(did, "enqueued", "production" if branch == "main" else "branch-deploy",
                             branch, req.query.get("title"), at, False, None)
        d["build_id"] = bid
        d["created_at"] = d["updated_at"] = at
        self.state["deploys"].insert(0, d)
        fail = self.config["fail_next_build"]
        self.config["fail_next_build"] = False
        b = {"id": bid, "deploy_id": did, "sha": None, "done": False, "error": None,
             "created_at": at, "_polls": 0, "_polls_needed": max(1, self.config["build_polls"]),
             "_fail": fail, "_query": dict(req.query)}
        self.state["builds"].append(b)
        return json_response(200, {k: v for k, v in self.build_json(b).items()
                                   if k != "deploy_state"})

    def build_get(self, req, build):
        b = next((b for b in self.state["builds"] if b["id"] == build), None)
        if b is None:
            return self.error(404, "Not Found")
        self.poll(self.deploy(b["deploy_id"]))
        return json_response(200, {k: v for k, v in self.build_json(b).items()
                                   if k != "deploy_state"})

    def deploy_lock(self, req, deploy):
        d = self.deploy(deploy)
        d["locked"] = True
        d["updated_at"] = now_iso(ms=True)
        return json_response(200, d)

    def deploy_unlock(self, req, deploy):
        d = self.deploy(deploy)
        d["locked"] = False
        d["updated_at"] = now_iso(ms=True)
        return json_response(200, d)

    def deploy_cancel(self, req, deploy):
        d = self.deploy(deploy)
        if d["state"] not in UNFINISHED:
            return self.error(422, "Deploy %s is %s and cannot be canceled" % (d["id"], d["state"]))
        d["state"] = "error"
        d["error_message"] = "Canceled build"
        d["updated_at"] = now_iso(ms=True)
        return json_response(200, d)


FAKE = Netlify
