"""slack.py - a fake Slack incoming webhook (api-contracts.md section 7).

The URL path is the credential: POST /services/T0000/B0000/XXXXXXXXXXXXXXXX
is the one hook.  Plain-text answers as Slack gives them: 200 "ok", 400
invalid_payload / no_text / too_many_attachments / invalid_blocks, 403
invalid_token (right team and bot ids, wrong secret), 404 no_service (any
other path), 429 rate_limited.  Takes a JSON body, or form encoding with the
JSON in a `payload` field, as Slack does.  Keeps the posted messages (GET
/_fake/state) so a test can assert what was posted, and how often.  Uses
fakebase only.
"""
import json
import urllib.parse

from fakebase import Fake, text_response, now_iso

HOOK_PATH = "/services/T0000/B0000/XXXXXXXXXXXXXXXX"
MAX_ATTACHMENTS = 100
MAX_BLOCKS = 50


class Slack(Fake):
    NAME = "slack"

    def seed(self):
        self.state = {"messages": []}

    def error(self, status, message, **extra):
        return text_response(status, message)

    def rate_limited(self):
        return text_response(self.config["burst_status"], "rate_limited")

    def dispatch(self, req):
        if req.path != HOOK_PATH:
            team, bot = HOOK_PATH.split("/")[2:4]
            segs = req.path.strip("/").split("/")
            if len(segs) == 4 and segs[:3] == ["services", team, bot]:
                return text_response(403, "invalid_token")
            return text_response(404, "no_service")
        if req.method != "POST":
            return text_response(405, "invalid_method")
        mt = req.media_type()
        raw = req.text()
        if mt == "application/x-www-form-urlencoded":
            raw = urllib.parse.parse_qs(raw).get("payload", [""])[-1]
        elif mt != "application/json":
            return text_response(400, "invalid_payload")
        try:
            msg = json.loads(raw)
        except ValueError:
            return text_response(400, "invalid_payload")
        if not isinstance(msg, dict):
            return text_response(400, "invalid_payload")
        text, blocks, atts = msg.get("text"), msg.get("blocks"), msg.get("attachments")
        if text is not None and not isinstance(text, str):
            return text_response(400, "invalid_payload")
        if blocks is not None:
            if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS or not all(
                    isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks):
                return text_response(400, "invalid_blocks")
        if atts is not None:
            if not isinstance(atts, list) or not all(isinstance(a, dict) for a in atts):
                return text_response(400, "invalid_payload")
            if len(atts) > MAX_ATTACHMENTS:
                return text_response(400, "too_many_attachments")
        if not (text and text.strip()) and not blocks:
            return text_response(400, "no_text")
        self.state["messages"].append({"received_at": now_iso(), "text": text,
                                       "message": msg})
        return text_response(200, "ok")


FAKE = Slack
