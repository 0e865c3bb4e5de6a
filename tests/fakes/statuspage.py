"""statuspage.py - a fake Atlassian Statuspage Manage API (api-contracts.md
section 4) under /v1.

One page with five components (one a group) and two incidents (one
unresolved, one resolved).  Incidents: create, update (PATCH or PUT; each
update with a body or a new status adds an incident_update), get, list,
unresolved; components: list, get, update.  Enforces the {"incident":...} /
{"component":...} wrappers, the status and impact enums, the name/body
limits and object-valued metadata.  JSON bodies, or form encoding with
Rails-style keys (incident[name]=...), as the real API takes.  README.md in
this folder lists the seeded ids.  Uses fakebase only.
"""
import copy
import json
import urllib.parse

from fakebase import Fake, HTTPError, json_response, now_iso

KEY = "test-statuspage-key"
PAGE_ID = "kctbh9vrtdwd"
REALTIME = ["investigating", "identified", "monitoring", "resolved"]
SCHEDULED = ["scheduled", "in_progress", "verifying", "completed"]
IMPACTS = ["none", "maintenance", "minor", "major", "critical"]
COMPONENT_STATUSES = ["operational", "under_maintenance", "degraded_performance",
                      "partial_outage", "major_outage"]
NAME_MAX, BODY_MAX = 255, 25000
GROUP_ID = "gr0up1cmp7x8"
# id, name, group?, group_id, position
SEED_COMPONENTS = [
    ("8kbf7d35c070", "API", False, None, 1),
    ("ftgks51sfs2d", "Website", False, None, 2),
    ("b13yz5g2cw10", "Checkout", False, None, 3),
    (GROUP_ID, "Backend", True, None, 4),
    ("vx3zq9m2d1p7", "Database", False, GROUP_ID, 5),
]
SEED_AT = "2024-05-01T10:00:00.000Z"


def parse_form(text):
    """Rails-style form keys to nested objects: a[b][c]=1, a[list][]=x."""
    out = {}
    for key, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = out
        for i, p in enumerate(parts):
            last = i == len(parts) - 1
            nxt_list = not last and parts[i + 1] == ""
            if last:
                if isinstance(node, list):
                    node.append(value)
                else:
                    node[p] = value
                break
            if isinstance(node, list):
                break  # a[][b] is not supported; drop it
            if p not in node or not isinstance(node[p], (list if nxt_list else dict)):
                node[p] = [] if nxt_list else {}
            node = node[p]
            if nxt_list:
                if i + 1 == len(parts) - 1:
                    node.append(value)
                break
    return out


def as_bool(v):
    if isinstance(v, str) and v in ("true", "false", "1", "0"):
        return v in ("true", "1")
    return v


class Statuspage(Fake):
    NAME = "statuspage"
    ROUTES = [
        ("GET", "/v1/pages/{page}/incidents", "incidents_list"),
        ("POST", "/v1/pages/{page}/incidents", "incident_create"),
        ("GET", "/v1/pages/{page}/incidents/unresolved", "incidents_unresolved"),
        ("GET", "/v1/pages/{page}/incidents/{id}", "incident_get"),
        ("PATCH", "/v1/pages/{page}/incidents/{id}", "incident_update"),
        ("PUT", "/v1/pages/{page}/incidents/{id}", "incident_update"),
        ("GET", "/v1/pages/{page}/components", "components_list"),
        ("GET", "/v1/pages/{page}/components/{id}", "component_get"),
        ("PATCH", "/v1/pages/{page}/components/{id}", "component_update"),
        ("PUT", "/v1/pages/{page}/components/{id}", "component_update"),
    ]

    def seed(self):
        comps = []
        for cid, name, group, group_id, pos in SEED_COMPONENTS:
            comps.append({
                "id": cid, "page_id": PAGE_ID, "group_id": group_id, "name": name,
                "description": None, "position": pos, "status": "operational",
                "showcase": not group, "only_show_if_degraded": False, "group": group,
                "automation_email": "component+%s@notifications.statuspage.io" % cid,
                "start_date": "2024-05-01", "created_at": SEED_AT, "updated_at": SEED_AT,
                "components": ["vx3zq9m2d1p7"] if group else None,
            })
        for c in comps:
            if not c["group"]:
                del c["components"]
        self.state = {"page": {"id": PAGE_ID, "name": "drrun demo status"},
                      "components": comps, "incidents": []}
        self.upd_n = 0
        old = self.new_incident("Elevated error rates on search", "resolved", "minor",
                                "2024-05-02T08:00:00.000Z", {}, ["ftgks51sfs2d"],
                                "We are investigating elevated error rates.", id="p8xl0m2v3c4d")
        old["resolved_at"] = "2024-05-02T09:10:00.000Z"
        old["incident_updates"][0]["status"] = "investigating"
        self.add_update(old, "resolved", "This incident has been resolved.", [],
                        "2024-05-02T09:10:00.000Z", True)
        open_ = self.new_incident("Delayed email notifications", "monitoring", "minor",
                                  "2024-05-14T07:45:00.000Z", {}, [],
                                  "A fix has been implemented and we are monitoring the results.",
                                  id="q1w2e3r4t5y6")
        open_["monitoring_at"] = "2024-05-14T07:45:00.000Z"
        self.state["incidents"] = [open_, old]  # newest first

    # ---- service shape ------------------------------------------------------

    def error(self, status, message, **extra):
        return json_response(status, dict({"message": message}, **extra))

    def rate_limited(self):
        return self.error(self.config["burst_status"], "Rate limit exceeded. Please retry later.")

    def not_found(self, req, wrong_method):
        if wrong_method:
            return self.error(405, "Method not allowed")
        return self.error(404, "Not found")

    def dispatch(self, req):
        auth = req.header("authorization")
        if auth is not None:
            ok = auth == "OAuth " + KEY
        else:
            ok = req.query.get("api_key") == KEY
        if not ok:
            return self.error(401, "Could not authenticate")
        # a .json suffix on the last segment is optional
        if req.segments and req.segments[-1].endswith(".json"):
            req.segments[-1] = req.segments[-1][:-5]
        return Fake.dispatch(self, req)

    def page(self, page):
        if page != PAGE_ID:
            raise HTTPError(self.error(404, "Page not found"))

    def wrapped(self, req, wrapper):
        """The object inside {"<wrapper>": {...}}, from JSON or form encoding."""
        mt = req.media_type()
        if not req.body.strip():
            data = {}
        elif mt == "application/json":
            try:
                data = json.loads(req.body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise HTTPError(self.error(400, "Invalid JSON in request body"))
        elif mt == "application/x-www-form-urlencoded":
            data = parse_form(req.text())
            inner = data.get(wrapper)
            if isinstance(inner, dict) and "deliver_notifications" in inner:
                inner["deliver_notifications"] = as_bool(inner["deliver_notifications"])
        else:
            raise HTTPError(self.error(400, "Content-Type %r does not match a JSON or form "
                                       "body" % (req.header("content-type") or "")))
        if not isinstance(data, dict) or not isinstance(data.get(wrapper), dict):
            raise HTTPError(self.error(400, "param is missing or the value is empty: %s"
                                       % wrapper))
        return data[wrapper]

    # ---- components -------------------------------------------------------------

    def component(self, cid):
        c = next((c for c in self.state["components"] if c["id"] == cid), None)
        if c is None:
            raise HTTPError(self.error(404, "Component not found"))
        return c

    def components_list(self, req, page):
        self.page(page)
        return json_response(200, self.state["components"])

    def component_get(self, req, page, id):
        self.page(page)
        return json_response(200, self.component(id))

    def component_update(self, req, page, id):
        self.page(page)
        c = self.component(id)
        body = self.wrapped(req, "component")
        if "status" in body and body["status"] not in COMPONENT_STATUSES:
            return self.error(422, "Status must be one of: " + ", ".join(COMPONENT_STATUSES))
        for k in ("name", "description"):
            if k in body and body[k] is not None and not isinstance(body[k], str):
                return self.error(422, "%s must be a string" % k)
        if isinstance(body.get("name"), str) and not 0 < len(body["name"]) <= NAME_MAX:
            return self.error(422, "Name must be 1 to %d characters" % NAME_MAX)
        for k in ("status", "name", "description", "only_show_if_degraded", "showcase"):
            if k in body:
                c[k] = body[k]
        c["updated_at"] = now_iso(ms=True)
        return json_response(200, c)

    # ---- incidents ------------------------------------------------------------

    def new_incident(self, name, status, impact_override, at, comps, component_ids, body,
                     id=None, metadata=None, deliver=True):
        inc = {
            "id": id or "inc%09d" % self.next_id(), "name": name, "status": status,
            "impact": impact_override or "none", "impact_override": impact_override,
            "shortlink": "https://stspg.io/%s" % (id or "x%04d" % self.counter)[-5:],
            "page_id": PAGE_ID, "created_at": at, "updated_at": at, "started_at": at,
            "monitoring_at": at if status == "monitoring" else None,
            "resolved_at": at if status in ("resolved", "completed") else None,
            "scheduled_for": None, "scheduled_until": None, "postmortem_body": None,
            "postmortem_published_at": None, "reminder_intervals": None, "backfilled": False,
            "metadata": metadata or {}, "components": [], "incident_updates": [],
        }
        affected = self.apply_components(inc, comps, component_ids, at)
        self.add_update(inc, status, body, affected, at, deliver)
        if not impact_override:
            inc["impact"] = self.derive_impact(inc)
        return inc

    def derive_impact(self, inc):
        order = {"major_outage": "critical", "partial_outage": "major",
                 "degraded_performance": "minor", "under_maintenance": "maintenance"}
        worst = "none"
        for c in inc["components"]:
            i = order.get(c["status"], "none")
            if IMPACTS.index(i) > IMPACTS.index(worst):
                worst = i
        return worst

    def apply_components(self, inc, comps, component_ids, at):
        """Set component statuses; the affected list for the incident update."""
        affected = []
        ids = list(component_ids or [])
        for cid in (comps or {}):
            if cid not in ids:
                ids.append(cid)
        for cid in ids:
            c = self.component(cid)
            new = (comps or {}).get(cid, c["status"])
            affected.append({"code": cid, "name": c["name"], "old_status": c["status"],
                             "new_status": new})
            if new != c["status"]:
                c["status"] = new
                c["updated_at"] = at
            if cid not in [x["id"] for x in inc["components"]]:
                inc["components"].append(c)
        # keep the incident's copies current
        inc["components"] = [copy.deepcopy(self.component(x["id"])) for x in inc["components"]]
        return affected

    def add_update(self, inc, status, body, affected, at, deliver):
        self.upd_n += 1
        inc["incident_updates"].insert(0, {  # newest first, as the real API lists them
            "id": "upd%09d" % self.upd_n, "incident_id": inc["id"], "status": status,
            "body": body or "", "created_at": at, "updated_at": at, "display_at": at,
            "affected_components": affected, "deliver_notifications": bool(deliver),
            "custom_tweet": None, "tweet_id": None, "twitter_updated_at": None,
            "wants_twitter_update": False,
        })

    def validate(self, b, creating):
        """422 for the first thing the real API refuses in an incident body."""
        def fail(msg):
            raise HTTPError(self.error(422, msg))
        if creating and (not isinstance(b.get("name"), str) or not b["name"].strip()):
            fail("Name can't be blank")
        if "name" in b:
            if not isinstance(b["name"], str) or not b["name"].strip():
                fail("Name can't be blank")
            if len(b["name"]) > NAME_MAX:
                fail("Name is too long (maximum is %d characters)" % NAME_MAX)
        if "status" in b and b["status"] not in REALTIME + SCHEDULED:
            fail("Status must be one of: " + ", ".join(REALTIME + SCHEDULED))
        if "impact_override" in b and b["impact_override"] is not None and \
                b["impact_override"] not in IMPACTS:
            fail("Impact override must be one of: " + ", ".join(IMPACTS))
        if "body" in b and b["body"] is not None:
            if not isinstance(b["body"], str):
                fail("Body must be a string")
            if len(b["body"]) > BODY_MAX:
                fail("Body is too long (maximum is %d characters)" % BODY_MAX)
        if "component_ids" in b:
            ids = b["component_ids"]
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                fail("component_ids must be an array of component ids")
            for i in ids:
                if not any(c["id"] == i for c in self.state["components"]):
                    fail("Component %s not found" % i)
        if "components" in b:
            comps = b["components"]
            if not isinstance(comps, dict):
                fail("components must be an object of component id to status")
            for cid, st in comps.items():
                if not any(c["id"] == cid for c in self.state["components"]):
                    fail("Component %s not found" % cid)
                if st not in COMPONENT_STATUSES:
                    fail("Component status must be one of: " + ", ".join(COMPONENT_STATUSES))
        if "deliver_notifications" in b and not isinstance(b["deliver_notifications"], bool):
            fail("deliver_notifications must be true or false")
        if "metadata" in b:
            md = b["metadata"]
            if not isinstance(md, dict):
                fail("metadata must be an object")
            for k, v in md.items():
                if not isinstance(v, dict):
                    fail("metadata values must be objects (metadata.%s is not)" % k)

    def incident(self, iid):
        i = next((i for i in self.state["incidents"] if i["id"] == iid), None)
        if i is None:
            raise HTTPError(self.error(404, "Incident not found"))
        return i

    def incident_create(self, req, page):
        self.page(page)
        b = self.wrapped(req, "incident")
        self.validate(b, True)
        status = b.get("status") or "investigating"
        if status in SCHEDULED and not b.get("scheduled_for"):
            return self.error(422, "A scheduled status needs scheduled_for and scheduled_until")
        inc = self.new_incident(b["name"], status, b.get("impact_override"),
                                now_iso(ms=True), b.get("components"), b.get("component_ids"),
                                b.get("body"), metadata=b.get("metadata"),
                                deliver=b.get("deliver_notifications", True))
        if status in SCHEDULED:
            inc["scheduled_for"] = b.get("scheduled_for")
            inc["scheduled_until"] = b.get("scheduled_until")
        self.state["incidents"].insert(0, inc)
        return json_response(201, inc)

    def incident_update(self, req, page, id):
        self.page(page)
        inc = self.incident(id)
        b = self.wrapped(req, "incident")
        self.validate(b, False)
        at = now_iso(ms=True)
        old_status = inc["status"]
        status = b.get("status", old_status)
        if (old_status in SCHEDULED) != (status in SCHEDULED):
            return self.error(422, "Status %s does not apply to this incident" % status)
        affected = self.apply_components(inc, b.get("components"), b.get("component_ids"), at)
        if "name" in b:
            inc["name"] = b["name"]
        if "impact_override" in b:
            inc["impact_override"] = b["impact_override"]
        if "metadata" in b:
            inc["metadata"] = b["metadata"]
        inc["status"] = status
        if status == "monitoring" and old_status != "monitoring":
            inc["monitoring_at"] = at
        if status in ("resolved", "completed") and old_status != status:
            inc["resolved_at"] = at
        inc["impact"] = inc["impact_override"] or self.derive_impact(inc)
        if b.get("body") or status != old_status:
            self.add_update(inc, status, b.get("body"), affected, at,
                            b.get("deliver_notifications", True))
        inc["updated_at"] = at
        return json_response(200, inc)

    def incident_get(self, req, page, id):
        self.page(page)
        return json_response(200, self.incident(id))

    def incidents_list(self, req, page):
        self.page(page)
        items = self.state["incidents"]
        q = req.query.get("q")
        if q:
            items = [i for i in items if q.lower() in i["name"].lower()]
        try:
            limit = int(req.query.get("limit", "100"))
            pg = int(req.query.get("page", "1"))
        except ValueError:
            return self.error(400, "limit and page must be integers")
        limit, pg = max(1, min(limit, 100)), max(1, pg)
        return json_response(200, items[(pg - 1) * limit: pg * limit])

    def incidents_unresolved(self, req, page):
        self.page(page)
        return json_response(200, [i for i in self.state["incidents"]
                                   if i["status"] not in ("resolved", "completed")
                                   and i["status"] not in SCHEDULED[:1]])


FAKE = Statuspage
