"""pagerduty.py - a fake PagerDuty Events API v2 (api-contracts.md section
5a): POST /v2/enqueue only.

Validates the event as the contract describes (routing_key of 32 characters
and known, event_action, dedup_key, the trigger payload, images/links, size)
and answers 202 or 400 "invalid event".  Keeps alerts by routing key and
dedup_key: a trigger on an open alert does not open a second one,
acknowledge and resolve change it, a trigger after a resolve opens a new
one; GET /_fake/state lists them, so a test can assert "paged once".  Uses
fakebase only.
"""
import json
import re
import uuid

from fakebase import Fake, json_response, now_iso

ROUTING_KEY = "d2a0e1f4c7b64a3e9f0d5c8b7a6e3f21"
ACTIONS = ["trigger", "acknowledge", "resolve"]
SEVERITIES = ["critical", "error", "warning", "info"]
MAX_BYTES = 512 * 1024
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?$")


class PagerDuty(Fake):
    NAME = "pagerduty"
    ROUTES = [("POST", "/v2/enqueue", "enqueue")]

    def seed(self):
        self.state = {"alerts": [], "events": []}

    # ---- service shape ------------------------------------------------------

    def error(self, status, message, **extra):
        if status == 400:
            return json_response(400, dict({"status": "invalid event",
                                            "message": "Event object is invalid",
                                            "errors": [message]}, **extra))
        if status == 429:
            return json_response(429, {"status": "throttle event", "message":
                                       "Requests for this service are arriving too quickly. "
                                       "Please retry later."})
        return json_response(status, dict({"status": "error", "message": message}, **extra))

    def rate_limited(self):
        return self.error(429, "rate limited")

    def not_found(self, req, wrong_method):
        if wrong_method:
            return self.error(405, "Method not allowed; POST events to /v2/enqueue")
        return self.error(404, "Not found")

    # ---- the one endpoint ------------------------------------------------------

    def validate(self, ev):
        """A list of error strings (empty when the event is valid)."""
        errs = []
        rk = ev.get("routing_key")
        if not isinstance(rk, str) or len(rk) != 32:
            errs.append("Length of 'routing_key' is incorrect (should be 32 characters)")
        elif rk != ROUTING_KEY:
            errs.append("Invalid routing key")
        action = ev.get("event_action")
        if action not in ACTIONS:
            errs.append("'event_action' is missing or invalid (must be trigger, acknowledge "
                        "or resolve)")
        dk = ev.get("dedup_key")
        if "dedup_key" in ev and dk is not None and (not isinstance(dk, str) or not dk):
            errs.append("'dedup_key' must be a non-empty string")
        elif isinstance(dk, str) and len(dk) > 255:
            errs.append("'dedup_key' is longer than 255 characters")
        if action in ("acknowledge", "resolve") and not (isinstance(dk, str) and dk):
            errs.append("'dedup_key' is required for %s events" % action)
        if action == "trigger":
            p = ev.get("payload")
            if not isinstance(p, dict):
                errs.append("'payload' is missing or not an object")
            else:
                s = p.get("summary")
                if not isinstance(s, str) or not s:
                    errs.append("'payload.summary' is missing or blank")
                elif len(s) > 1024:
                    errs.append("'payload.summary' is longer than 1024 characters")
                if not isinstance(p.get("source"), str) or not p.get("source"):
                    errs.append("'payload.source' is missing or blank")
                if p.get("severity") not in SEVERITIES:
                    errs.append("'payload.severity' is missing or invalid (must be critical, "
                                "error, warning or info)")
                ts = p.get("timestamp")
                if ts is not None and not (isinstance(ts, str) and ISO_RE.match(ts)):
                    errs.append("'payload.timestamp' is not an ISO 8601 timestamp")
                for k in ("component", "group", "class"):
                    if k in p and p[k] is not None and not isinstance(p[k], str):
                        errs.append("'payload.%s' must be a string" % k)
                if "custom_details" in p and p["custom_details"] is not None and \
                        not isinstance(p["custom_details"], dict):
                    errs.append("'payload.custom_details' must be an object")
        for k, need in (("images", "src"), ("links", "href")):
            if k in ev and ev[k] is not None:
                v = ev[k]
                if not isinstance(v, list) or not all(
                        isinstance(x, dict) and isinstance(x.get(need), str) for x in v):
                    errs.append("'%s' must be an array of objects with '%s'" % (k, need))
        for k in ("client", "client_url"):
            if k in ev and ev[k] is not None and not isinstance(ev[k], str):
                errs.append("'%s' must be a string" % k)
        return errs

    def enqueue(self, req):
        if req.media_type() != "application/json":
            return self.error(400, "Content-Type must be application/json")
        if len(req.body) > MAX_BYTES:
            return self.error(400, "Event object exceeds the maximum size of 512 KB")
        try:
            ev = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return self.error(400, "Malformed JSON: the body could not be parsed")
        if not isinstance(ev, dict):
            return self.error(400, "The event must be a JSON object")
        errs = self.validate(ev)
        if errs:
            return json_response(400, {"status": "invalid event",
                                       "message": "Event object is invalid", "errors": errs})
        action = ev["event_action"]
        dk = ev.get("dedup_key") or uuid.uuid4().hex
        at = now_iso()
        self.state["events"].append({"event_action": action, "dedup_key": dk,
                                     "received_at": at, "event": ev})
        alert = next((a for a in reversed(self.state["alerts"])
                      if a["routing_key"] == ev["routing_key"] and a["dedup_key"] == dk
                      and a["status"] != "resolved"), None)
        if action == "trigger":
            p = ev["payload"]
            if alert is None:
                self.state["alerts"].append({
                    "id": "Q%013d" % self.next_id(), "routing_key": ev["routing_key"],
                    "dedup_key": dk, "status": "triggered", "summary": p["summary"],
                    "source": p["source"], "severity": p["severity"],
                    "created_at": at, "acknowledged_at": None, "resolved_at": None,
                    "triggers": 1, "payload": p,
                })
            else:
                alert["triggers"] += 1
                alert["payload"] = p
                alert["summary"] = p["summary"]
                alert["severity"] = p["severity"]
        elif alert is not None and action == "acknowledge":
            alert["status"] = "acknowledged"
            alert["acknowledged_at"] = at
        elif alert is not None and action == "resolve":
            alert["status"] = "resolved"
            alert["resolved_at"] = at
        # acknowledge/resolve of an unknown or closed key: accepted, no effect
        return json_response(202, {"status": "success", "message": "Event processed",
                                   "dedup_key": dk})


FAKE = PagerDuty
