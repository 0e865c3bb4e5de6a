#!/usr/bin/env python3
"""selftest.py - check the SaaS fakes of tests/fakes/ against the contract.

Usage: python3 tests/fakes/selftest.py [FILTER...]
Starts its own six fakes (serve.py, port 0 on 127.0.0.1), then checks that
each refuses bad auth, missing headers and missing fields, enforces its burst
limit and injected failures, and that the stateful flows work (rollback,
restore and capture transfers, builds, incident updates, PagerDuty dedup,
Slack posts), and drives the aws fake with the real AWS CLI.  Prints "ok NAME" or "FAIL NAME: why" per check (a FILTER runs
only the checks whose name contains it); exits 1 when one failed.  Python 3
standard library only (urllib); the AWS checks need Debian's awscli.
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import heroku as H  # noqa: E402  (for the seeded ids)
import netlify as N  # noqa: E402
import pagerduty as P  # noqa: E402
import slack as S  # noqa: E402
import statuspage as SP  # noqa: E402

BASE = {}
CHECKS = []
HJSON = {"Accept": "application/vnd.heroku+json; version=3",
         "Authorization": "Bearer " + H.TOKEN}


class Fail(Exception):
    pass


def check(name):
    def deco(fn):
        CHECKS.append((name, fn))
        return fn
    return deco


def need(cond, why):
    if not cond:
        raise Fail(why)


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        self.text = body.decode("utf-8", "replace")
        try:
            self.json = json.loads(self.text) if self.text else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "%d %s" % (self.status, self.text[:300])


def call(svc, method, path, headers=None, body=None, ctype=None):
    """One request to a fake; body is an object (sent as JSON), bytes or str."""
    data = None
    headers = dict(headers or {})
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", ctype or "application/json")
        else:
            data = body.encode() if isinstance(body, str) else body
            if ctype:
                headers["Content-Type"] = ctype
    req = urllib.request.Request(BASE[svc] + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return Resp(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, dict(e.headers), e.read())


class NoCTHandler(urllib.request.HTTPHandler):
    """urllib sets Content-Type: application/x-www-form-urlencoded on every
    body; keep a request's own choice, including none at all."""

    def do_request_(self, request):
        had = request.has_header("Content-type")
        request = super().do_request_(request)
        if not had:
            request.unredirected_hdrs.pop("Content-type", None)
        return request


urllib.request.install_opener(urllib.request.build_opener(NoCTHandler))


def control(svc, method, what, body=None):
    return call(svc, method, "/_fake/" + what, body=body)


def reset(svc, **config):
    need(control(svc, "POST", "reset").status == 200, "reset failed")
    if config:
        r = control(svc, "POST", "config", config)
        need(r.status == 200, "config failed: %r" % r)


def hk(method, path, body=None, headers=None, **kw):
    h = dict(HJSON)
    h.update(headers or {})
    return call("heroku", method, path, h, body, **kw)


def nl(method, path, body=None, headers=None):
    h = {"Authorization": "Bearer " + N.TOKEN}
    h.update(headers or {})
    return call("netlify", method, "/api/v1" + path, h, body)


def sp(method, path, body=None, headers=None, ctype=None):
    h = {"Authorization": "OAuth " + SP.KEY}
    h.update(headers or {})
    return call("statuspage", method, "/v1/pages/%s%s" % (SP.PAGE_ID, path), h, body, ctype)


def pd(body, headers=None, ctype=None):
    return call("pagerduty", "POST", "/v2/enqueue", headers, body, ctype)


def trigger(dedup=None, **payload):
    ev = {"routing_key": P.ROUTING_KEY, "event_action": "trigger",
          "payload": dict({"summary": "db down", "source": "drrun", "severity": "critical"},
                          **payload)}
    if dedup:
        ev["dedup_key"] = dedup
    return ev


# ---- Heroku ------------------------------------------------------------------

@check("heroku/missing-accept-is-400-missing_version")
def _():
    reset("heroku")
    r = call("heroku", "GET", "/apps/myapp/releases", {"Authorization": "Bearer " + H.TOKEN})
    need(r.status == 400 and r.json["id"] == "missing_version", r)
    r = hk("GET", "/apps/myapp", headers={"Accept": "application/json"})
    need(r.status == 400 and r.json["id"] == "missing_version", r)
    r = hk("GET", "/apps/myapp", headers={"Accept": "application/vnd.heroku+json; version=3.sdk"})
    need(r.status == 200 and r.json["name"] == "myapp", r)


@check("heroku/bad-auth-is-401-unauthorized")
def _():
    for h in ({}, {"Authorization": "Bearer nope"}, {"Authorization": H.TOKEN},
              {"Authorization": "Basic OnRlc3QtaGVyb2t1LXRva2Vu"}):
        r = call("heroku", "GET", "/apps/myapp", dict({"Accept": HJSON["Accept"]}, **h))
        need(r.status == 401 and r.json["id"] == "unauthorized" and r.json["message"], (h, r))
    r = call("heroku", "GET", "/client/v11/apps/myapp/transfers")
    need(r.status == 401 and r.json["id"] == "unauthorized", "data API without auth: %r" % r)


@check("heroku/headers-request-id-and-ratelimit")
def _():
    for r in (hk("GET", "/apps/myapp"), hk("GET", "/apps/nope"),
              call("heroku", "GET", "/apps/myapp")):
        need(r.headers.get("request-id") and r.headers.get("ratelimit-remaining", "").isdigit(),
             "headers %r" % r.headers)
    r = hk("GET", "/apps/nope")
    need(r.status == 404 and r.json == {"id": "not_found", "message": "Couldn't find that app.",
                                        "resource": "app"}, r)


@check("heroku/releases-range-newest-first-206-next-range")
def _():
    reset("heroku")
    r = hk("GET", "/apps/myapp/releases", headers={"Range": "version ..; max=10, order=desc"})
    need(r.status == 206, r)
    vs = [x["version"] for x in r.json]
    need(vs == list(range(41, 31, -1)), vs)
    need(r.json[0]["current"] and not any(x["current"] for x in r.json[1:]), "current")
    nr = r.headers.get("next-range")
    need(nr == "version ]32..; max=10, order=desc", nr)
    r = hk("GET", "/apps/myapp/releases", headers={"Range": nr})
    need(r.status == 200 and [x["version"] for x in r.json] == [31, 30], r)
    r = hk("GET", "/apps/myapp/releases")
    need(r.status == 200 and [x["version"] for x in r.json] == list(range(30, 42)), r)
    need(r.json[-1]["output_stream_url"].startswith("http://127.0.0.1:"), "stream url")
    s = call("heroku", "GET", urllib.parse.urlsplit(r.json[-1]["output_stream_url"]).path)
    need(s.status == 200 and "v41" in s.text, s)
    need(hk("GET", "/apps/myapp/releases", headers={"Range": "bogus"}).status == 400, "range")


@check("heroku/release-get-by-id-or-version")
def _():
    r = hk("GET", "/apps/myapp/releases/39")
    need(r.status == 200 and r.json["id"] == H.release_id(39), r)
    r = hk("GET", "/apps/myapp/releases/" + H.release_id(40))
    need(r.status == 200 and r.json["status"] == "failed" and
         not r.json["eligible_for_rollback"], r)
    need(hk("GET", "/apps/myapp/releases/v39").status == 404, "v39 must be 404 (strip the v)")


@check("heroku/rollback-creates-a-new-current-release")
def _():
    reset("heroku")
    r = hk("POST", "/apps/myapp/releases", {"release": H.release_id(39)})
    need(r.status == 201, r)
    need(r.json["version"] == 42 and r.json["description"] == "Rollback to v39" and
         r.json["current"] and r.json["id"] != H.release_id(39) and
         r.json["slug"] == hk("GET", "/apps/myapp/releases/39").json["slug"], r)
    rels = hk("GET", "/apps/myapp/releases", headers={"Range": "version ..; max=3, order=desc"})
    need([(x["version"], x["current"]) for x in rels.json] ==
         [(42, True), (41, False), (40, False)], rels)
    r = hk("POST", "/apps/myapp/releases", {"release": H.release_id(39)})
    need(r.status == 201 and r.json["version"] == 43, "not idempotent: a second release")


@check("heroku/rollback-refusals")
def _():
    reset("heroku")
    r = hk("POST", "/apps/myapp/releases", {})
    need(r.status == 422 and r.json["id"] == "invalid_params" and "release" in r.json["message"], r)
    r = hk("POST", "/apps/myapp/releases", {"release": H.release_id(40)})
    need(r.status == 422 and r.json["id"] == "invalid_params", "failed release: %r" % r)
    r = hk("POST", "/apps/myapp/releases", {"release": "9c1a5e2f-6b7d-4e8a-9f01-000000000099"})
    need(r.status == 404 and r.json["id"] == "not_found", r)
    r = hk("POST", "/apps/myapp/releases", json.dumps({"release": H.release_id(39)}))
    need(r.status == 400 and r.json["id"] == "bad_request", "no Content-Type: %r" % r)
    r = hk("POST", "/apps/myapp/releases", "{nope", ctype="application/json")
    need(r.status == 400 and r.json["id"] == "bad_request", r)
    need(len(hk("GET", "/apps/myapp/releases").json) == 12, "a refused rollback added a release")


@check("heroku/dyno-restarts")
def _():
    reset("heroku")
    for path in ("/apps/myapp/dynos", "/apps/myapp/dynos/web.1", "/apps/myapp/formations/web"):
        r = hk("DELETE", path)
        need(r.status == 202 and r.json == {}, (path, r))
    need(hk("DELETE", "/apps/myapp/dynos/web.9").status == 404, "unknown dyno")
    r = hk("DELETE", "/apps/myapp/formation/web")
    need(r.status == 404 and r.json["id"] == "not_found", "singular formation: %r" % r)
    st = control("heroku", "GET", "state").json
    need([x["target"] for x in st["restarts"]] == ["all", "web.1", "web"], st["restarts"])


@check("heroku/formation-size-and-dyno_size")
def _():
    reset("heroku")
    r = hk("PATCH", "/apps/myapp/formation",
           {"updates": [{"type": "web", "quantity": 3, "size": "standard-2X"}]})
    need(r.status == 200 and r.json[0]["quantity"] == 3 and r.json[0]["size"] == "standard-2X"
         and r.json[0]["dyno_size"]["name"] == "standard-2X", r)
    r = hk("PATCH", "/apps/myapp/formation",
           {"updates": [{"type": "worker", "quantity": 2, "dyno_size": "performance-M"}]})
    need(r.status == 200 and r.json[0]["size"] == "performance-M", r)
    r = hk("PATCH", "/apps/myapp/formation/web", {"quantity": 1, "dyno_size": "standard-1X"})
    need(r.status == 200 and r.json["quantity"] == 1, r)
    need(len([d for d in hk("GET", "/apps/myapp/dynos").json if d["type"] == "web"]) == 1,
         "dynos follow the formation")
    for bad in ({}, {"updates": []}, {"updates": [{"type": "web", "quantity": -1}]},
                {"updates": [{"type": "web", "quantity": 1, "size": "huge"}]},
                {"updates": [{"quantity": 1}]}):
        r = hk("PATCH", "/apps/myapp/formation", bad)
        need(r.status == 422 and r.json["id"] == "invalid_params", (bad, r))
    r = hk("PATCH", "/apps/myapp/formation", {"updates": [{"type": "clock", "quantity": 1}]})
    need(r.status == 404, r)


@check("heroku/maintenance")
def _():
    reset("heroku")
    r = hk("PATCH", "/apps/myapp", {"maintenance": True})
    need(r.status == 200 and r.json["maintenance"] is True, r)
    need(hk("GET", "/apps/" + H.APP_ID).json["maintenance"] is True, "by uuid")
    r = hk("PATCH", "/apps/myapp", {"maintenance": "yes"})
    need(r.status == 422 and r.json["id"] == "invalid_params", r)
    need(hk("PATCH", "/apps/myapp", {}).status == 422, "empty patch")


@check("heroku/addon-attachment-resolve")
def _():
    r = hk("POST", "/actions/addon-attachments/resolve",
           {"addon_attachment": "DATABASE_URL", "app": "myapp"})
    need(r.status == 200 and r.json[0]["addon"]["id"] == H.ADDON_ID and
         r.json[0]["addon"]["plan"]["name"] == "heroku-postgresql:standard-0" and
         r.json[0]["addon"]["app"]["name"] == "myapp", r)
    r = hk("POST", "/actions/addon-attachments/resolve", {"app": "myapp"})
    need(r.status == 422 and r.json["id"] == "invalid_params", r)
    r = hk("POST", "/actions/addon-attachments/resolve",
           {"addon_attachment": "REDIS_URL", "app": "myapp"})
    need(r.status == 404 and r.json["id"] == "not_found", r)


@check("heroku/transfers-seeded")
def _():
    reset("heroku")
    r = hk("GET", "/client/v11/apps/myapp/transfers")
    need(r.status == 200 and [t["num"] for t in r.json] == [1, 2, 3, 4, 5, 6], r)
    ok = [t for t in r.json if t["from_type"] == "pg_dump" and t["to_type"] == "gof3r"
          and t["succeeded"]]
    latest = max(ok, key=lambda t: t["finished_at"])
    need(latest["num"] == 5 and latest["schedule"], "latest succeeded backup should be a005")
    need(not r.json[-1]["succeeded"] and r.json[-1]["finished_at"], "b006 failed")
    r = hk("GET", "/client/v11/apps/myapp/transfers/5?verbose=true")
    need(r.status == 200 and r.json["uuid"] == H.transfer_uuid(5) and "logs" in r.json, r)
    need("logs" not in hk("GET", "/client/v11/apps/myapp/transfers/5").json, "logs only verbose")
    need(hk("GET", "/client/v11/apps/myapp/transfers/b005").status == 404, "names are not ids")


def wait_transfer(ident, polls):
    seen = []
    for _ in range(polls):
        r = hk("GET", "/client/v11/apps/myapp/transfers/%s" % ident)
        need(r.status == 200, r)
        seen.append(r.json["finished_at"] is not None)
    return r.json, seen


@check("heroku/restore-finishes-after-polls")
def _():
    reset("heroku")
    url = hk("GET", "/client/v11/apps/myapp/transfers/5").json["to_url"]
    r = hk("POST", "/client/v11/databases/%s/restores" % H.ADDON_ID, {"backup_url": url})
    need(r.status == 200 and r.json["uuid"] and r.json["finished_at"] is None and
         r.json["to_type"] == "pg_restore" and r.json["num"] == 7, r)
    t, seen = wait_transfer(r.json["uuid"], 3)
    need(seen == [False, False, True] and t["succeeded"] is True, (seen, t))
    t2 = hk("GET", "/client/v11/apps/myapp/transfers/7").json
    need(t2["uuid"] == t["uuid"] and t2["succeeded"], "by num")
    st = control("heroku", "GET", "state").json["database"]
    need(st["restored_from"] == url and st["restores_completed"] == 1, st)


@check("heroku/restore-configured-to-fail")
def _():
    reset("heroku", fail_next_restore=True, transfer_polls=2)
    r = hk("POST", "/client/v11/databases/%s/restores" % H.ADDON_NAME,
           {"backup_url": "https://example.com/x.dump", "extensions": ["hstore", "pg_trgm"]})
    need(r.status == 200, r)
    t, seen = wait_transfer(r.json["num"], 2)
    need(seen == [False, True] and t["succeeded"] is False, (seen, t))
    r = hk("POST", "/client/v11/databases/%s/restores" % H.ADDON_ID,
           {"backup_url": "https://example.com/x.dump"})
    t, _ = wait_transfer(r.json["uuid"], 2)
    need(t["succeeded"] is True, "only the next restore fails")


@check("heroku/restore-refusals")
def _():
    reset("heroku")
    path = "/client/v11/databases/%s/restores" % H.ADDON_ID
    for bad in ({}, {"backup_url": 5}, {"backup_url": "ftp://x"},
                {"backup_url": "https://x/y", "extensions": ["pg_trgm", "hstore"]},
                {"backup_url": "https://x/y", "extensions": ["HSTORE"]}):
        r = hk("POST", path, bad)
        need(r.status == 422 and r.json["id"] == "invalid_params", (bad, r))
    need(hk("POST", "/client/v11/databases/nope/restores",
            {"backup_url": "https://x/y"}).status == 404, "unknown database")


@check("heroku/capture-backup-finishes-after-polls")
def _():
    reset("heroku", transfer_polls=3)
    r = hk("POST", "/client/v11/databases/%s/backups" % H.ADDON_ID)
    need(r.status == 200 and r.json["from_type"] == "pg_dump" and r.json["to_type"] == "gof3r"
         and r.json["finished_at"] is None, r)
    t, seen = wait_transfer(r.json["uuid"], 3)
    need(seen == [False, False, True] and t["succeeded"] and t["processed_bytes"] > 0, t)
    u = hk("POST", "/client/v11/apps/myapp/transfers/%d/actions/public-url" % t["num"])
    need(u.status == 200 and u.json["url"].startswith(t["to_url"]), u)


@check("heroku/burst-limit-429-rate_limit")
def _():
    reset("heroku", burst=3)
    got = [hk("GET", "/apps/myapp").status for _ in range(4)]
    need(got == [200, 200, 200, 429], got)
    r = hk("GET", "/apps/myapp")
    need(r.json["id"] == "rate_limit" and r.headers.get("retry-after") == "1", r)
    time.sleep(1.05)
    need(hk("GET", "/apps/myapp").status == 200, "after Retry-After")
    reset("heroku")
    need(all(hk("GET", "/apps/myapp").status == 200 for _ in range(10)), "burst off by default")


@check("heroku/fail-next-503-twice")
def _():
    reset("heroku", fail_next={"status": 503, "count": 2})
    got = [hk("GET", "/apps/myapp") for _ in range(3)]
    need([r.status for r in got] == [503, 503, 200], got)
    need(got[0].json["id"] == "unavailable", got[0])


# ---- Netlify -----------------------------------------------------------------

@check("netlify/bad-auth-is-401")
def _():
    reset("netlify")
    for h in ({}, {"Authorization": "Bearer nope"}, {"Authorization": N.TOKEN}):
        r = call("netlify", "GET", "/api/v1/sites/" + N.SITE_ID, h)
        need(r.status == 401 and r.json["code"] == 401 and
             r.json["message"].startswith("Access Denied"), (h, r))


@check("netlify/site-and-headers")
def _():
    r = nl("GET", "/sites/" + N.SITE_ID)
    need(r.status == 200 and r.json["published_deploy"]["id"] == "6650e2a4c2f1a10008b3c001", r)
    for k in ("x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        need(r.headers.get(k), "missing header " + k)
    r = nl("GET", "/sites/nope")
    need(r.status == 404 and r.json == {"code": 404, "message": "Not Found"}, r)


@check("netlify/deploys-pagination-link")
def _():
    reset("netlify")
    r = nl("GET", "/sites/%s/deploys?page=1&per_page=3" % N.SITE_ID)
    need(r.status == 200 and len(r.json) == 3 and r.json[0]["id"] == "6650e2a4c2f1a10008b3c001", r)
    link = r.headers.get("link", "")
    need('page=2&per_page=3>; rel="next"' in link and 'page=4&per_page=3>; rel="last"' in link,
         link)
    r = nl("GET", "/sites/%s/deploys?page=4&per_page=3" % N.SITE_ID)
    need(len(r.json) == 1 and 'rel="next"' not in r.headers["link"], r.headers)
    r = nl("GET", "/sites/%s/deploys?state=ready&production=true" % N.SITE_ID)
    need(all(d["state"] == "ready" and d["context"] == "production" for d in r.json) and
         len(r.json) == 6, r)


@check("netlify/restore-only-ready")
def _():
    reset("netlify")
    r = nl("POST", "/sites/%s/deploys/6650d1f0c2f1a10008b3bff2/restore" % N.SITE_ID)
    need(r.status == 422 and r.json["code"] == 422 and r.json["message"], r)
    r = nl("POST", "/sites/%s/deploys/664f8a11b7e2c500083a9d7e/restore" % N.SITE_ID)
    need(r.status == 201 and r.json["id"] == "664f8a11b7e2c500083a9d7e", r)
    need(nl("GET", "/sites/" + N.SITE_ID).json["published_deploy"]["id"] ==
         "664f8a11b7e2c500083a9d7e", "published moved")
    r = nl("POST", "/sites/%s/deploys/664f8a11b7e2c500083a9d7e/restore" % N.SITE_ID)
    need(r.status == 201, "restoring the live one is harmless")
    need(nl("POST", "/sites/%s/deploys/ffff/restore" % N.SITE_ID).status == 404, "unknown")


def poll_deploy(did, n):
    states = []
    for _ in range(n):
        r = nl("GET", "/deploys/" + did)
        need(r.status == 200, r)
        states.append(r.json["state"])
    return states


@check("netlify/build-becomes-ready-and-publishes")
def _():
    reset("netlify")
    r = nl("POST", "/sites/%s/builds?clear_cache=true" % N.SITE_ID)
    need(r.status == 200 and r.json["deploy_id"] and r.json["done"] is False and
         set(r.json) == {"id", "deploy_id", "sha", "done", "error", "created_at"}, r)
    did = r.json["deploy_id"]
    need(poll_deploy(did, 3) == ["building", "building", "ready"], "states")
    need(nl("GET", "/sites/" + N.SITE_ID).json["published_deploy"]["id"] == did, "published")
    b = nl("GET", "/builds/" + r.json["id"]).json
    need(b["done"] is True and b["error"] is None and b["sha"], b)


@check("netlify/build-configured-to-fail")
def _():
    reset("netlify", fail_next_build=True, build_polls=2)
    did = nl("POST", "/sites/%s/builds" % N.SITE_ID).json["deploy_id"]
    need(poll_deploy(did, 2) == ["building", "error"], "states")
    d = nl("GET", "/sites/%s/deploys/%s" % (N.SITE_ID, did)).json
    need(d["error_message"], d)
    need(nl("GET", "/sites/" + N.SITE_ID).json["published_deploy"]["id"] ==
         "6650e2a4c2f1a10008b3c001", "a failed build is not published")


@check("netlify/lock-stops-auto-publish")
def _():
    reset("netlify", build_polls=1)
    good = "664f8a11b7e2c500083a9d7e"
    need(nl("POST", "/sites/%s/deploys/%s/restore" % (N.SITE_ID, good)).status == 201, "restore")
    r = nl("POST", "/deploys/%s/lock" % good)
    need(r.status == 200 and r.json["locked"] is True, r)
    did = nl("POST", "/sites/%s/builds" % N.SITE_ID).json["deploy_id"]
    need(poll_deploy(did, 1) == ["ready"], "ready")
    need(nl("GET", "/sites/" + N.SITE_ID).json["published_deploy"]["id"] == good, "locked")
    r = nl("POST", "/deploys/%s/unlock" % good)
    need(r.status == 200 and r.json["locked"] is False, r)


@check("netlify/burst-limit-429")
def _():
    reset("netlify", burst=2)
    got = [nl("GET", "/sites/" + N.SITE_ID) for _ in range(3)]
    need([r.status for r in got] == [200, 200, 429], got)
    need(got[2].json["code"] == 429 and got[2].headers.get("retry-after") == "1", got[2])


# ---- Statuspage --------------------------------------------------------------

INC = {"incident": {"name": "Database failover in progress", "status": "investigating",
                    "impact_override": "major", "body": "First update text",
                    "component_ids": ["8kbf7d35c070"],
                    "components": {"8kbf7d35c070": "major_outage"},
                    "deliver_notifications": True, "metadata": {"drrun": {"run_id": "r1"}}}}


@check("statuspage/bad-auth-is-401")
def _():
    reset("statuspage")
    for h in ({}, {"Authorization": "OAuth nope"}, {"Authorization": "Bearer " + SP.KEY}):
        r = call("statuspage", "GET", "/v1/pages/%s/components" % SP.PAGE_ID, h)
        need(r.status == 401 and r.json["message"], (h, r))


@check("statuspage/wrapper-required")
def _():
    r = sp("POST", "/incidents", INC["incident"])
    need(r.status == 400 and "incident" in r.json["message"], r)
    r = sp("PATCH", "/components/8kbf7d35c070", {"status": "major_outage"})
    need(r.status == 400 and "component" in r.json["message"], r)
    r = sp("POST", "/incidents", json.dumps(INC), ctype="text/plain")
    need(r.status == 400, "Content-Type must match: %r" % r)


@check("statuspage/validation-422")
def _():
    def bad(**kw):
        return {"incident": dict(INC["incident"], **kw)}
    for body, why in ((bad(status="broken"), "status"), (bad(impact_override="huge"), "impact"),
                      (bad(name="x" * 256), "name length"), (bad(body="x" * 25001), "body"),
                      (bad(metadata={"drrun": "r1"}), "metadata"),
                      (bad(components={"8kbf7d35c070": "down"}), "component status"),
                      (bad(component_ids=["nope"]), "component id"),
                      ({"incident": {"status": "investigating"}}, "name missing")):
        r = sp("POST", "/incidents", body)
        need(r.status == 422 and r.json.get("message"), (why, r))
    need(len(sp("GET", "/incidents").json) == 2, "a refused create added an incident")
    r = sp("POST", "/incidents", bad(name="x" * 255, body="y" * 25000))
    need(r.status == 201, "limits are inclusive: %r" % r)


@check("statuspage/incident-create-update-resolve")
def _():
    reset("statuspage")
    r = sp("POST", "/incidents", INC)
    need(r.status == 201, r)
    inc = r.json
    need(inc["impact"] == "major" and inc["status"] == "investigating" and
         len(inc["incident_updates"]) == 1 and inc["metadata"] == {"drrun": {"run_id": "r1"}} and
         inc["components"][0]["status"] == "major_outage" and inc["shortlink"], inc)
    c = [c for c in sp("GET", "/components").json if c["id"] == "8kbf7d35c070"][0]
    need(c["status"] == "major_outage", "component status follows the incident")
    r = sp("PATCH", "/incidents/" + inc["id"],
           {"incident": {"status": "identified", "body": "Cause found"}})
    need(r.status == 200 and len(r.json["incident_updates"]) == 2 and
         r.json["incident_updates"][0]["body"] == "Cause found", r)
    un = [i["id"] for i in sp("GET", "/incidents/unresolved").json]
    need(inc["id"] in un and "q1w2e3r4t5y6" in un, un)
    r = sp("PATCH", "/incidents/" + inc["id"],
           {"incident": {"status": "resolved", "body": "Recovered",
                         "components": {"8kbf7d35c070": "operational"}}})
    need(r.status == 200 and r.json["resolved_at"] and len(r.json["incident_updates"]) == 3, r)
    need(inc["id"] not in [i["id"] for i in sp("GET", "/incidents/unresolved").json],
         "resolved still unresolved")
    r = sp("PATCH", "/incidents/" + inc["id"], {"incident": {"status": "fixed"}})
    need(r.status == 422, r)
    need(sp("GET", "/incidents/nope").status == 404, "unknown incident")


@check("statuspage/components-json-suffix-and-form")
def _():
    reset("statuspage")
    r = sp("PATCH", "/components/ftgks51sfs2d.json",
           {"component": {"status": "degraded_performance"}})
    need(r.status == 200 and r.json["status"] == "degraded_performance", r)
    r = sp("PATCH", "/components/ftgks51sfs2d", {"component": {"status": "sideways"}})
    need(r.status == 422 and r.json["message"], r)
    form = urllib.parse.urlencode([("incident[name]", "Form incident"),
                                   ("incident[status]", "identified"),
                                   ("incident[component_ids][]", "b13yz5g2cw10"),
                                   ("incident[components][b13yz5g2cw10]", "partial_outage"),
                                   ("incident[metadata][drrun][run_id]", "r2")])
    r = sp("POST", "/incidents", form, ctype="application/x-www-form-urlencoded")
    need(r.status == 201 and r.json["impact"] == "major" and
         r.json["metadata"] == {"drrun": {"run_id": "r2"}}, r)
    r = call("statuspage", "GET", "/v1/pages/%s/components?api_key=%s" % (SP.PAGE_ID, SP.KEY))
    need(r.status == 200, "?api_key is accepted like the real API: %r" % r)


@check("statuspage/burst-limit-429")
def _():
    reset("statuspage", burst=1)
    got = [sp("GET", "/components").status for _ in range(2)]
    need(got == [200, 429], got)
    r = sp("GET", "/components")
    need(r.json["message"] and r.headers.get("retry-after") == "1", r)


# ---- PagerDuty ---------------------------------------------------------------

@check("pagerduty/routing-key-refusals")
def _():
    reset("pagerduty")
    for key, msg in (("short", "Length of 'routing_key'"), ("x" * 32, "Invalid routing key")):
        r = pd(dict(trigger(), routing_key=key))
        need(r.status == 400 and r.json["status"] == "invalid event" and
             r.json["message"] == "Event object is invalid" and msg in r.json["errors"][0], r)
    r = pd({k: v for k, v in trigger().items() if k != "routing_key"})
    need(r.status == 400, r)


@check("pagerduty/event-refusals")
def _():
    bad = [dict(trigger(), event_action="escalate"),
           dict(trigger(), payload={"source": "x", "severity": "critical"}),
           dict(trigger(), payload={"summary": "s", "source": "x", "severity": "high"}),
           dict(trigger(), payload={"summary": "s", "severity": "info"}),
           dict(trigger(), payload={"summary": "s" * 1025, "source": "x", "severity": "info"}),
           {k: v for k, v in trigger().items() if k != "payload"},
           {"routing_key": P.ROUTING_KEY, "event_action": "resolve"},
           {"routing_key": P.ROUTING_KEY, "event_action": "acknowledge"},
           dict(trigger(custom_details="text")), dict(trigger("k" * 256))]
    for ev in bad:
        r = pd(ev)
        need(r.status == 400 and r.json["status"] == "invalid event" and r.json["errors"], (ev, r))
    need(pd(json.dumps(trigger())).status == 400, "no Content-Type")
    need(pd("{nope", ctype="application/json").status == 400, "bad JSON")
    need(control("pagerduty", "GET", "state").json["alerts"] == [], "a refused event made an alert")


@check("pagerduty/dedup-paged-once")
def _():
    reset("pagerduty")
    for _ in range(3):
        r = pd(trigger("drrun:failover:run1"))
        need(r.status == 202 and r.json == {"status": "success", "message": "Event processed",
                                            "dedup_key": "drrun:failover:run1"}, r)
    alerts = control("pagerduty", "GET", "state").json["alerts"]
    need(len(alerts) == 1 and alerts[0]["triggers"] == 3, alerts)
    r = pd({"routing_key": P.ROUTING_KEY, "event_action": "acknowledge",
            "dedup_key": "drrun:failover:run1"})
    need(r.status == 202, r)
    r = pd({"routing_key": P.ROUTING_KEY, "event_action": "resolve",
            "dedup_key": "drrun:failover:run1"})
    need(r.status == 202, r)
    alerts = control("pagerduty", "GET", "state").json["alerts"]
    need(alerts[0]["status"] == "resolved", alerts)
    pd(trigger("drrun:failover:run1"))
    alerts = control("pagerduty", "GET", "state").json["alerts"]
    need(len(alerts) == 2 and alerts[1]["status"] == "triggered", "a trigger after resolve")
    r = pd(trigger())
    need(r.status == 202 and len(r.json["dedup_key"]) >= 16, "generated dedup_key: %r" % r)
    need(pd(trigger()).json["dedup_key"] != r.json["dedup_key"], "no key: a new alert each time")


@check("pagerduty/burst-limit-429")
def _():
    reset("pagerduty", burst=2)
    got = [pd(trigger("b")) for _ in range(3)]
    need([r.status for r in got] == [202, 202, 429], got)
    need(got[2].headers.get("retry-after") == "1", got[2].headers)


# ---- Slack -------------------------------------------------------------------

@check("slack/path-is-the-credential")
def _():
    reset("slack")
    r = call("slack", "POST", "/services/T1111/B1111/nope", body={"text": "hi"})
    need(r.status == 404 and r.text == "no_service", r)
    r = call("slack", "POST", "/services/T0000/B0000/wrong", body={"text": "hi"})
    need(r.status == 403 and r.text == "invalid_token", r)
    need(call("slack", "POST", "/", body={"text": "hi"}).status == 404, "root")


@check("slack/payload-refusals")
def _():
    r = call("slack", "POST", S.HOOK_PATH, body="{nope", ctype="application/json")
    need(r.status == 400 and r.text == "invalid_payload", r)
    r = call("slack", "POST", S.HOOK_PATH, body={"username": "drrun"})
    need(r.status == 400 and r.text == "no_text", r)
    r = call("slack", "POST", S.HOOK_PATH, body={"text": ""})
    need(r.status == 400 and r.text == "no_text", r)
    r = call("slack", "POST", S.HOOK_PATH, body={"text": "x", "attachments": [{}] * 101})
    need(r.status == 400 and r.text == "too_many_attachments", r)
    need(control("slack", "GET", "state").json["messages"] == [], "refused posts were kept")


@check("slack/post-ok")
def _():
    reset("slack")
    r = call("slack", "POST", S.HOOK_PATH, body={"text": "Failover *started*"})
    need(r.status == 200 and r.text == "ok" and
         r.headers["content-type"].startswith("text/plain"), r)
    r = call("slack", "POST", S.HOOK_PATH,
             body={"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]})
    need(r.status == 200, r)
    form = urllib.parse.urlencode({"payload": json.dumps({"text": "form"})})
    r = call("slack", "POST", S.HOOK_PATH, body=form, ctype="application/x-www-form-urlencoded")
    need(r.status == 200, r)
    msgs = control("slack", "GET", "state").json["messages"]
    need([m["text"] for m in msgs] == ["Failover *started*", None, "form"], msgs)


@check("slack/burst-limit-429")
def _():
    reset("slack", burst=1)
    got = [call("slack", "POST", S.HOOK_PATH, body={"text": "x"}) for _ in range(2)]
    need([r.status for r in got] == [200, 429] and got[1].text == "rate_limited" and
         got[1].headers.get("retry-after") == "1", got)


# ---- the control API ---------------------------------------------------------

@check("control/request-log-config-reset")
def _():
    reset("heroku")
    hk("PATCH", "/apps/myapp", {"maintenance": True}, headers={"User-Agent": "drrun/test"})
    log = control("heroku", "GET", "requests").json
    need(len(log) == 1, log)
    e = log[0]
    need(e["method"] == "PATCH" and e["path"] == "/apps/myapp" and e["status"] == 200 and
         e["headers"]["user-agent"] == "drrun/test" and
         json.loads(e["body"]) == {"maintenance": True} and e["query"] == {}, e)
    r = control("heroku", "POST", "config", {"bursty": 1})
    need(r.status == 400 and "unknown config key" in r.json["error"], r)
    r = control("heroku", "POST", "config", {"burst": "3"})
    need(r.status == 400, r)
    reset("heroku")
    need(control("heroku", "GET", "requests").json == [] and
         hk("GET", "/apps/myapp").json["maintenance"] is False, "reset")
    need(control("heroku", "GET", "config").json["burst"] is None, "config reset")
    need(control("slack", "GET", "nope").status == 404, "unknown control endpoint")


@check("control/requests-since")
def _():
    reset("slack")
    for t in ("a", "b", "c"):
        call("slack", "POST", S.HOOK_PATH, body={"text": t})
    log = control("slack", "GET", "requests?since=1").json
    need([e["seq"] for e in log] == [2, 3] and json.loads(log[0]["body"]) == {"text": "b"}, log)


@check("control/servers-sh-credentials-match")
def _():
    with open(os.path.join(HERE, "..", "servers.sh")) as f:
        text = f.read()
    for var, val in (("DRRUN_TEST_HEROKU_TOKEN", H.TOKEN), ("DRRUN_TEST_NETLIFY_TOKEN", N.TOKEN),
                     ("DRRUN_TEST_STATUSPAGE_KEY", SP.KEY),
                     ("DRRUN_TEST_PAGERDUTY_KEY", P.ROUTING_KEY)):
        need("%s %s " % (var, val) in text, "servers.sh does not export %s=%s" % (var, val))
    need(S.HOOK_PATH in text, "servers.sh does not name the Slack hook path")


@check("control/delay-ms")
def _():
    reset("pagerduty", delay_ms=300)
    t = time.monotonic()
    pd(trigger("d"))
    need(time.monotonic() - t >= 0.3, "no delay")
    reset("pagerduty")


# ---- AWS: the real AWS CLI against the fake ------------------------------------

AWS_CLI = "/usr/bin/aws"  # Debian's awscli, not whatever else is on PATH


def aws_cli(*args, key="AKIDDRRUN", secret="drrun-test-secret", token=None):
    """Run the AWS CLI against the aws fake: (exit status, stdout, stderr)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "AWS_ACCESS_KEY_ID": key,
           "AWS_SECRET_ACCESS_KEY": secret, "AWS_CONFIG_FILE": "/nonexistent/config",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials", "AWS_PAGER": "",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "3"}
    if token:
        env["AWS_SESSION_TOKEN"] = token
    p = subprocess.run([AWS_CLI, "--endpoint-url", BASE["aws"], "--output", "json"] + list(args),
                       env=env, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


@check("aws/cli-signed-call")
def _():
    reset("aws")
    rc, out, err = aws_cli("sts", "get-caller-identity")
    need(rc == 0, "the AWS CLI's signed call was refused: " + err)
    need(json.loads(out)["Account"] == "123456789012", out)


@check("aws/cli-wrong-secret")
def _():
    rc, out, err = aws_cli("sts", "get-caller-identity", secret="wrong")
    need(rc != 0 and "SignatureDoesNotMatch" in err, "a wrong secret: %d %s" % (rc, err))


@check("aws/cli-unknown-key")
def _():
    rc, out, err = aws_cli("sts", "get-caller-identity", key="AKIDNOBODY")
    need(rc != 0 and "InvalidClientTokenId" in err, "an unknown key: %d %s" % (rc, err))


@check("aws/unsigned")
def _():
    r = call("aws", "POST", "/", body="Action=GetCallerIdentity&Version=2011-06-15",
             ctype="application/x-www-form-urlencoded")
    need(r.status == 403 and "MissingAuthenticationToken" in r.text, r)


@check("aws/cli-assume-role")
def _():
    rc, out, err = aws_cli("sts", "assume-role", "--role-arn", "arn:aws:iam::123456789012:role/dr",
                           "--role-session-name", "selftest")
    need(rc == 0, err)
    c = json.loads(out)["Credentials"]
    rc, out, err = aws_cli("sts", "get-caller-identity", key=c["AccessKeyId"],
                           secret=c["SecretAccessKey"], token=c["SessionToken"])
    need(rc == 0 and ":assumed-role/dr/selftest" in out, "the temporary keys: " + err)
    rc, out, err = aws_cli("sts", "get-caller-identity", key=c["AccessKeyId"],
                           secret=c["SecretAccessKey"])
    need(rc != 0 and "InvalidClientTokenId" in err, "no session token: %d %s" % (rc, err))
    rc, out, err = aws_cli("sts", "assume-role", "--role-arn", "arn:aws:s3:::not-a-role-bucket",
                           "--role-session-name", "selftest")
    need(rc != 0 and "ValidationError" in err, "a bad role ARN: " + err)


@check("aws/cli-throttled")
def _():
    reset("aws", throttle={"service": "sts", "action": "GetCallerIdentity", "count": 1})
    rc, out, err = aws_cli("sts", "get-caller-identity")
    need(rc == 0, "the CLI retries one throttle: " + err)
    reset("aws", throttle={"service": "sts", "action": "GetCallerIdentity", "count": 9})
    rc, out, err = aws_cli("sts", "get-caller-identity")
    need(rc != 0 and "Throttling" in err, "past its attempts: %d %s" % (rc, err))
    reset("aws")


def aws_json(*args):
    rc, out, err = aws_cli(*args)
    need(rc == 0, "aws %s: %s" % (" ".join(args[:2]), err.strip()[-300:]))
    return json.loads(out) if out.strip() else {}


def aws_err(code, *args):
    rc, out, err = aws_cli(*args)
    need(rc != 0 and "(%s)" % code in err, "aws %s: want %s, got %d %s"
         % (" ".join(args[:2]), code, rc, err.strip()[-300:]))


def settle():
    time.sleep(0.35)  # the fake's transition_ms is 300 by default


@check("aws/cli-ec2")
def _():
    reset("aws")
    r = aws_json("ec2", "describe-instances", "--filters", "Name=tag:role,Values=web",
                 "Name=instance-state-name,Values=running")
    ids = [i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]]
    need(len(ids) == 2, "two running web instances: %s" % ids)
    st = aws_json("ec2", "stop-instances", "--instance-ids", ids[0])
    need(st["StoppingInstances"][0]["CurrentState"]["Name"] == "stopping", st)
    need(st["StoppingInstances"][0]["PreviousState"]["Code"] == 16, st)
    settle()
    r = aws_json("ec2", "describe-instances", "--instance-ids", ids[0])
    need(r["Reservations"][0]["Instances"][0]["State"]["Name"] == "stopped", r)
    aws_json("ec2", "start-instances", "--instance-ids", ids[0])
    aws_json("ec2", "reboot-instances", "--instance-ids", ids[1])
    aws_err("InvalidInstanceID.NotFound", "ec2", "describe-instances", "--instance-ids",
            "i-0000000000000dead")
    run = ["ec2", "run-instances", "--launch-template", "LaunchTemplateName=web", "--count", "2",
           "--placement", "AvailabilityZone=us-east-1b", "--client-token", "selftest-1",
           "--tag-specifications", "ResourceType=instance,Tags=[{Key=drrun-run,Value=r1}]"]
    a = aws_json(*run)
    b = aws_json(*run)
    need([i["InstanceId"] for i in a["Instances"]] == [i["InstanceId"] for i in b["Instances"]],
         "RunInstances with one ClientToken twice: the same instances")
    need(a["Instances"][0]["Tags"] == [{"Key": "drrun-run", "Value": "r1"}], a["Instances"][0])
    aws_err("InvalidLaunchTemplateName.NotFoundException", "ec2", "run-instances",
            "--launch-template", "LaunchTemplateName=nope", "--count", "1")
    aws_json("ec2", "terminate-instances", "--instance-ids", a["Instances"][0]["InstanceId"])
    vol = aws_json("ec2", "describe-volumes", "--filters",
                   "Name=attachment.instance-id,Values=" + ids[1])["Volumes"][0]["VolumeId"]
    sn = aws_json("ec2", "create-snapshot", "--volume-id", vol, "--description", "pre-update",
                  "--tag-specifications", "ResourceType=snapshot,Tags=[{Key=drrun,Value=pre}]")
    need(sn["State"] == "pending", sn)
    settle()
    d = aws_json("ec2", "describe-snapshots", "--snapshot-ids", sn["SnapshotId"])
    need(d["Snapshots"][0]["State"] == "completed", d)
    c = aws_json("ec2", "copy-snapshot", "--source-region", "us-east-1", "--source-snapshot-id",
                 sn["SnapshotId"], "--region", "us-west-2")
    need(c["SnapshotId"].startswith("snap-"), c)


@check("aws/cli-rds")
def _():
    reset("aws")
    r = aws_json("rds", "describe-db-instances", "--db-instance-identifier", "db1")
    db = r["DBInstances"][0]
    need(db["DBInstanceStatus"] == "available" and db["Endpoint"]["Port"] == 5432, db)
    snaps = aws_json("rds", "describe-db-snapshots", "--db-instance-identifier", "db1",
                     "--snapshot-type", "automated")["DBSnapshots"]
    need(len(snaps) == 3 and snaps[-1]["Status"] == "available", snaps)
    m = aws_json("rds", "create-db-snapshot", "--db-instance-identifier", "db1",
                 "--db-snapshot-identifier", "pre-change", "--tags", "Key=drrun,Value=pre")
    need(m["DBSnapshot"]["Status"] == "creating", m)
    aws_err("DBSnapshotAlreadyExists", "rds", "create-db-snapshot", "--db-instance-identifier",
            "db1", "--db-snapshot-identifier", "pre-change")
    p = aws_json("rds", "restore-db-instance-to-point-in-time", "--source-db-instance-identifier",
                 "db1", "--target-db-instance-identifier", "db1-dr", "--use-latest-restorable-time")
    need(p["DBInstance"]["DBInstanceStatus"] == "creating", p)
    aws_err("DBInstanceAlreadyExists", "rds", "restore-db-instance-to-point-in-time",
            "--source-db-instance-identifier", "db1", "--target-db-instance-identifier", "db1-dr",
            "--use-latest-restorable-time")
    aws_err("InvalidParameterCombination", "rds", "restore-db-instance-to-point-in-time",
            "--source-db-instance-identifier", "db1", "--target-db-instance-identifier", "x2",
            "--use-latest-restorable-time", "--restore-time", "2026-11-30T22:00:00Z")
    settle()
    settle()
    r = aws_json("rds", "describe-db-instances", "--db-instance-identifier", "db1-dr")
    need(r["DBInstances"][0]["DBInstanceStatus"] == "available", r)
    s = aws_json("rds", "restore-db-instance-from-db-snapshot", "--db-instance-identifier",
                 "db1-snap", "--db-snapshot-identifier", snaps[-1]["DBSnapshotIdentifier"])
    need(s["DBInstance"]["DBInstanceIdentifier"] == "db1-snap", s)
    aws_err("InvalidParameterCombination", "rds", "delete-db-instance",
            "--db-instance-identifier", "db1-dr")
    d = aws_json("rds", "delete-db-instance", "--db-instance-identifier", "db1-dr",
                 "--skip-final-snapshot")
    need(d["DBInstance"]["DBInstanceStatus"] == "deleting", d)
    settle()
    aws_err("DBInstanceNotFound", "rds", "describe-db-instances", "--db-instance-identifier",
            "db1-dr")
    pr = aws_json("rds", "promote-read-replica", "--db-instance-identifier", "db1-replica",
                  "--region", "us-west-2")
    need(pr["DBInstance"]["DBInstanceStatus"] == "modifying", pr)
    aws_err("InvalidDBInstanceState", "rds", "promote-read-replica", "--db-instance-identifier",
            "db1")
    cp = aws_json("rds", "copy-db-snapshot", "--source-db-snapshot-identifier",
                  "arn:aws:rds:us-east-1:123456789012:snapshot:" + snaps[-1]["DBSnapshotIdentifier"],
                  "--target-db-snapshot-identifier", "db1-copy", "--region", "us-west-2")
    need(cp["DBSnapshot"]["DBSnapshotIdentifier"] == "db1-copy", cp)


@check("aws/cli-route53")
def _():
    reset("aws")
    batch = {"Comment": "drrun failover", "Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": "www.example.com.", "Type": "A", "TTL": 60,
        "ResourceRecords": [{"Value": "192.0.2.44"}]}}]}
    c = aws_json("route53", "change-resource-record-sets", "--hosted-zone-id", "Z0EXAMPLE1",
                 "--change-batch", json.dumps(batch))
    need(c["ChangeInfo"]["Status"] == "PENDING", c)
    settle()
    g = aws_json("route53", "get-change", "--id", c["ChangeInfo"]["Id"])
    need(g["ChangeInfo"]["Status"] == "INSYNC", g)
    rr = aws_json("route53", "list-resource-record-sets", "--hosted-zone-id",
                  "/hostedzone/Z0EXAMPLE1", "--start-record-name", "www.example.com.",
                  "--start-record-type", "A", "--max-items", "1")
    www = rr["ResourceRecordSets"][0]
    need(www["TTL"] == 60 and www["ResourceRecords"] == [{"Value": "192.0.2.44"}], rr)
    batch["Changes"][0]["Action"] = "CREATE"
    aws_err("InvalidChangeBatch", "route53", "change-resource-record-sets", "--hosted-zone-id",
            "Z0EXAMPLE1", "--change-batch", json.dumps(batch))
    batch["Changes"][0]["Action"] = "DELETE"
    batch["Changes"][0]["ResourceRecordSet"]["TTL"] = 300
    aws_err("InvalidChangeBatch", "route53", "change-resource-record-sets", "--hosted-zone-id",
            "Z0EXAMPLE1", "--change-batch", json.dumps(batch))
    # a batch is atomic: one bad change and nothing applies
    bad = {"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": "new.example.com.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.9"}]}},
        {"Action": "CREATE", "ResourceRecordSet": {"Name": "www.example.com.", "Type": "A",
                                                    "TTL": 60, "ResourceRecords": [{"Value": "1.2.3.4"}]}}]}
    aws_err("InvalidChangeBatch", "route53", "change-resource-record-sets", "--hosted-zone-id",
            "Z0EXAMPLE1", "--change-batch", json.dumps(bad))
    names = [r["Name"] for r in aws_json("route53", "list-resource-record-sets", "--hosted-zone-id",
                                         "Z0EXAMPLE1")["ResourceRecordSets"]]
    need("new.example.com." not in names, "half a batch applied: %s" % names)
    aws_err("NoSuchHostedZone", "route53", "list-resource-record-sets", "--hosted-zone-id", "ZNOPE")


# ---- runner ------------------------------------------------------------------

def start_fakes():
    procs = {}
    for svc in ("heroku", "netlify", "statuspage", "pagerduty", "slack", "aws"):
        # the aws fake checks signatures with Debian's python3-botocore
        py = ["/usr/bin/python3", "-u"] if svc == "aws" else [sys.executable, "-S", "-u"]
        procs[svc] = subprocess.Popen(py + [os.path.join(HERE, "serve.py"), svc, "0"],
                                      stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    for svc, p in procs.items():
        line = p.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "ready":
            raise SystemExit("FAIL start/%s: the fake did not start" % svc)
        BASE[svc] = "http://127.0.0.1:%s" % line[1]
    return procs


def main(filters):
    procs = start_fakes()
    failed = 0
    try:
        for name, fn in CHECKS:
            if filters and not any(f in name for f in filters):
                continue
            try:
                fn()
                print("ok " + name, flush=True)
            except Fail as e:
                failed += 1
                print("FAIL %s: %s" % (name, str(e)[:600]), flush=True)
            except Exception as e:  # a crash in the check or the fake
                failed += 1
                print("FAIL %s: %s: %s" % (name, type(e).__name__, str(e)[:600]), flush=True)
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
