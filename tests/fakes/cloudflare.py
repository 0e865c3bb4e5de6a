"""cloudflare.py - a fake Cloudflare API v4, DNS records only (api-contracts.md
section 8, the cloudflare-go fixtures), under /client/v4.

One zone, example.com (id d56084adb405e0b7e32c52321bf07be6), seeded with
the fixture's records plus www A 203.0.113.10 (TTL 300) and www AAAA.  Zone
lookup by name; record lists filtered by type, name and content, paged with
page/per_page and result_info; create, PATCH, PUT and DELETE by id; the
envelope {success, errors[{code, message}], messages, result, result_info}
on every answer; Bearer tokens only (403 code 10000 otherwise); a duplicate
record is 400 code 81057; an unknown record 404 code 81044; names must be
ASCII (punycode) and inside the zone; 429 with Retry-After past the burst.
Where the contract marks a code unverified, the fake uses it anyway but the
client must only rely on success:false and the status.  Uses fakebase only.
"""
import ipaddress

from fakebase import Fake, HTTPError, json_response

TOKEN = "test-cloudflare-token"
ZONE_ID = "d56084adb405e0b7e32c52321bf07be6"
ZONE = "example.com"
TYPES = {"A", "AAAA", "CNAME", "MX", "NS", "TXT", "SRV", "CAA", "PTR"}

SEED = [  # the fixtures' records (list page 1 and 2), then two of our own
    ("372e67954025e0ba6aaa6d586b9e0b59", "A", "example.com", "198.51.100.4", 120, True),
    ("97e1dc2d19204b448b6ee04724f005ba", "A", "sub3.example.com", "198.51.100.7", 120, False),
    ("5bafaa7059d3480da9f6e2ecd8468c33", "A", "sub4.example.com", "198.51.100.8", 120, False),
    ("0f1e2d3c4b5a69788796a5b4c3d2e1f0", "A", "www.example.com", "203.0.113.10", 300, False),
    ("a1b2c3d4e5f60718293a4b5c6d7e8f90", "AAAA", "www.example.com", "2001:db8::10", 300, False),
]


def envelope(result, status=200, info=None, errors=None):
    body = {"success": not errors, "errors": errors or [], "messages": [], "result": result}
    if info is not None:
        body["result_info"] = info
    return json_response(status, body)


class Cloudflare(Fake):
    NAME = "cloudflare"
    ROUTES = [
        ("GET", "/client/v4/zones", "zones"),
        ("GET", "/client/v4/zones/{zone}/dns_records", "list"),
        ("POST", "/client/v4/zones/{zone}/dns_records", "create"),
        ("GET", "/client/v4/zones/{zone}/dns_records/{rid}", "get"),
        ("PATCH", "/client/v4/zones/{zone}/dns_records/{rid}", "patch"),
        ("PUT", "/client/v4/zones/{zone}/dns_records/{rid}", "put"),
        ("DELETE", "/client/v4/zones/{zone}/dns_records/{rid}", "delete"),
    ]

    def seed(self):
        self.state = {"records": [self.record(rid, t, n, c, ttl, px)
                                  for rid, t, n, c, ttl, px in SEED], "next": 1}

    def record(self, rid, rtype, name, content, ttl, proxied, **extra):
        r = {"id": rid, "type": rtype, "name": name, "content": content,
             "proxiable": rtype in ("A", "AAAA", "CNAME"), "proxied": proxied, "ttl": ttl,
             "locked": False, "zone_id": ZONE_ID, "zone_name": ZONE,
             "created_on": "2014-01-01T05:20:00Z", "modified_on": "2014-01-01T05:20:00Z",
             "data": {}, "meta": {"auto_added": False, "source": "primary"},
             "comment": None, "tags": []}
        r.update(extra)
        return r

    # ---- the service's shapes -------------------------------------------

    def error(self, status, message, code=1000, **extra):
        return envelope(None, status, errors=[{"code": code, "message": message}])

    def rate_limited(self):
        return self.error(429, "Rate limited: please wait and consider throttling your "
                          "request speed", code=971)

    def not_found(self, req, wrong_method):
        if wrong_method:
            return self.error(405, "Method not allowed", code=10405)
        return self.error(404, "Could not route to %s, perhaps your object identifier is "
                          "invalid?" % req.path, code=7003)

    def extra_headers(self, req, resp):
        left = self.burst_remaining()
        resp.headers["Ratelimit"] = "default;r=%d;t=300" % (1200 if left is None else left)
        resp.headers["Ratelimit-Policy"] = "default;q=1200;w=300"
        resp.headers["Cf-Ray"] = "8c1f0e2d3b4a5968-AMS"

    def public_state(self):
        return self.state

    # ---- checks ------------------------------------------------------------

    def auth(self, req):
        h = req.header("authorization", "")
        if h != "Bearer " + TOKEN:
            raise HTTPError(self.error(403, "Authentication error", code=10000))

    def zone(self, req, zone):
        self.auth(req)
        if zone != ZONE_ID:
            raise HTTPError(self.error(404, "Could not route to /zones/%s, perhaps your object "
                                       "identifier is invalid?" % zone, code=7003))

    def body(self, req):
        if req.media_type() != "application/json":
            raise HTTPError(self.error(400, "Content-Type must be application/json",
                                       code=6003))
        doc = self.parse_json_body(req)
        if not isinstance(doc, dict):
            raise HTTPError(self.error(400, "Invalid request body", code=6003))
        return doc

    def check_fields(self, doc, full):
        """The record fields of a create/PUT (full) or PATCH: 400 for a bad one."""
        def bad(msg, code=9000):
            raise HTTPError(self.error(400, msg, code=code))
        if full:
            for k in ("type", "name", "content"):
                if not isinstance(doc.get(k), str) or not doc[k]:
                    bad("DNS record %s is required" % k, code=9005 if k == "type" else 9007)
        if "type" in doc and doc["type"] not in TYPES:
            bad("Invalid DNS record type", code=9004)
        if "name" in doc:
            name = doc["name"]
            if not isinstance(name, str) or not name.isascii() or " " in name:
                bad("DNS name is invalid (names must be ASCII: punycode)", code=9005)
            name = name.rstrip(".").lower()
            if name != ZONE and not name.endswith("." + ZONE):
                bad("DNS record name is not in the zone", code=9005)
            doc["name"] = name
        if "ttl" in doc:
            ttl = doc["ttl"]
            if isinstance(ttl, bool) or not isinstance(ttl, int) or not (
                    ttl == 1 or 30 <= ttl <= 86400):
                bad("TTL must be between 60 and 86400 seconds, or 1 for Automatic",
                    code=9021)
        if "proxied" in doc and not isinstance(doc["proxied"], bool):
            bad("proxied must be a boolean", code=9003)
        if "content" in doc and isinstance(doc.get("content"), str):
            t = doc.get("type")
            try:
                if t == "A":
                    ipaddress.IPv4Address(doc["content"])
                elif t == "AAAA":
                    ipaddress.IPv6Address(doc["content"])
            except ValueError:
                bad("Content for %s record is invalid." % t, code=9006)

    def find(self, rid):
        for r in self.state["records"]:
            if r["id"] == rid:
                return r
        raise HTTPError(self.error(404, "Record does not exist.", code=81044))

    def duplicate(self, rec, skip=None):
        for r in self.state["records"]:
            if r is not skip and (r["type"], r["name"], r["content"]) == (
                    rec["type"], rec["name"], rec["content"]):
                raise HTTPError(self.error(400, "An identical record already exists.",
                                           code=81057))

    # ---- routes -------------------------------------------------------------

    def zones(self, req):
        self.auth(req)
        name = req.query.get("name")
        zones = [{"id": ZONE_ID, "name": ZONE, "status": "active"}]
        if name is not None:
            zones = [z for z in zones if z["name"] == name]
        return envelope(zones, info={"page": 1, "per_page": 20, "count": len(zones),
                                     "total_count": len(zones), "total_pages": 1})

    def list(self, req, zone):
        self.zone(req, zone)
        q = req.query
        try:
            page = int(q.get("page", "1"))
            per_page = int(q.get("per_page", "100"))
        except ValueError:
            return self.error(400, "page and per_page must be integers", code=1004)
        if page < 1 or not 5 <= per_page <= 5000:
            return self.error(400, "per_page must be between 5 and 5000, page at least 1",
                              code=1004)
        recs = self.state["records"]
        for k in ("type", "name", "content"):
            if k in q:
                want = q[k].rstrip(".").lower() if k == "name" else q[k]
                recs = [r for r in recs if r[k] == want]
        total = len(recs)
        pages = max(1, (total + per_page - 1) // per_page)
        chunk = recs[(page - 1) * per_page:page * per_page]
        return envelope(chunk, info={"page": page, "per_page": per_page, "count": len(chunk),
                                     "total_count": total, "total_pages": pages})

    def get(self, req, zone, rid):
        self.zone(req, zone)
        return envelope(self.find(rid))

    def create(self, req, zone):
        self.zone(req, zone)
        doc = self.body(req)
        self.check_fields(doc, True)
        rid = "%032x" % (0xd0d0 << 100 | self.state["next"])
        self.state["next"] += 1
        rec = self.record(rid, doc["type"], doc["name"], doc["content"], doc.get("ttl", 1),
                          doc.get("proxied", False))
        if "comment" in doc:
            rec["comment"] = doc["comment"]
        if "priority" in doc:
            rec["priority"] = doc["priority"]
        self.duplicate(rec)
        self.state["records"].append(rec)
        return envelope(rec)

    def update(self, req, zone, rid, full):
        self.zone(req, zone)
        rec = self.find(rid)
        doc = self.body(req)
        if full and "type" not in doc:
            doc["type"] = rec["type"]
        self.check_fields(dict(doc, type=doc.get("type", rec["type"])), full)
        new = dict(rec)
        for k in ("type", "name", "content", "ttl", "proxied", "comment", "tags", "priority"):
            if k in doc:
                new[k] = doc[k].rstrip(".").lower() if k == "name" else doc[k]
        self.duplicate(new, skip=rec)
        new["modified_on"] = "2026-01-01T00:00:00Z"
        rec.clear()
        rec.update(new)
        return envelope(rec)

    def patch(self, req, zone, rid):
        return self.update(req, zone, rid, False)

    def put(self, req, zone, rid):
        return self.update(req, zone, rid, True)

    def delete(self, req, zone, rid):
        self.zone(req, zone)
        rec = self.find(rid)
        self.state["records"].remove(rec)
        return envelope({"id": rid})


FAKE = Cloudflare
