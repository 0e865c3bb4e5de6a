"""aws.py - a fake of the AWS APIs drrun calls (api-contracts.md section 1):
STS, EC2 and RDS (query protocols) and Route 53 (rest-xml), stateful, with
the documented transitions on a fast clock (config transition_ms).

One process serves every service: the service is the one named in the
request's SigV4 credential scope, as AWS's endpoints each know their own.
Every request must carry a valid SigV4 signature.  The signature is
recomputed with botocore's own signer (SigV4Auth, from Debian's
python3-botocore), an implementation independent of drrun's, so a request
drrun signs wrongly is refused here as AWS would refuse it:
  - no or malformed Authorization: 403 MissingAuthenticationToken
  - an unknown access key id: 403 InvalidClientTokenId
  - X-Amz-Date more than 15 minutes off: 403 SignatureDoesNotMatch
    ("Signature expired")
  - a session key whose X-Amz-Security-Token is missing or wrong: 403
    InvalidClientTokenId
  - any other difference: 403 SignatureDoesNotMatch
Needs python3-botocore, so it runs under /usr/bin/python3 (not -S).

Credentials it knows (KEYS below): AKIDDRRUN / drrun-test-secret (a user),
and the temporary keys its STS AssumeRole hands out.
"""
import datetime
import hmac
import re
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from fakebase import Fake, Response

ACCOUNT = "123456789012"
KEYS = {"AKIDDRRUN": {"secret": "drrun-test-secret", "token": None,
                      "arn": "arn:aws:iam::%s:user/drrun-test" % ACCOUNT}}
AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                     r" ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$")
SKEW = 15 * 60

XMLNS = {
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "ec2": "http://ec2.amazonaws.com/doc/2016-11-15/",
    "rds": "http://rds.amazonaws.com/doc/2014-10-31/",
    "route53": "https://route53.amazonaws.com/doc/2013-04-01/",
}
VERSIONS = {"sts": "2011-06-15", "ec2": "2016-11-15", "rds": "2014-10-31"}


def xml(name, value):
    """<name>value</name>; value a str, a dict (ordered), or a list of
    (name, value) pairs for repeated children."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "<%s>%s</%s>" % (name, "true" if value else "false", name)
    if isinstance(value, dict):
        return "<%s>%s</%s>" % (name, "".join(xml(k, v) for k, v in value.items()), name)
    if isinstance(value, list):
        return "<%s>%s</%s>" % (name, "".join(xml(k, v) for k, v in value), name)
    return "<%s>%s</%s>" % (name, escape(str(value)), name)


class AwsError(Exception):
    def __init__(self, status, code, message):
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")


class Aws(Fake):
    NAME = "aws"
    CONFIG = {
        # how long each documented transition takes (pending -> running, creating
        # -> backing-up -> available, PENDING -> INSYNC, ...), in milliseconds
        "transition_ms": (300, int),
        # {"service": "rds", "action": "DescribeDBInstances", "code": "Throttling",
        #  "count": 2}: fail the next matching calls with that error
        "throttle": (None, (dict, type(None))),
    }

    def seed(self):
        self.state = {"assumed": {}, "calls": [], "regions": {}, "zones": {}, "changes": {},
                      "launch_templates": {"web": {"image": "ami-0web00001", "type": "t3.small"}},
                      "external_ids": {"arn:aws:iam::123456789012:role/dr-admin": "ext-1"}}
        self.keys = dict(KEYS)
        self.counter = 0
        long_ago = time.time() - 30 * 86400
        for region in ("us-east-1", "us-west-2"):
            reg = self.region(region)
            for n, role in enumerate(("web", "web", "worker")):
                i = self.new_instance(reg, region + "ab"[n % 2], "subnet-%d" % n, "ami-0web00001",
                                      "t3.small", {"role": role, "Name": "%s-%d" % (role, n)},
                                      "running")
                i["launched"] = long_ago
        east = self.region("us-east-1")
        db = self.new_db(east, "us-east-1", "db1", {"DBInstanceClass": "db.r6g.large",
                                                    "MultiAZ": "true"}, status="available")
        db["created"] = long_ago
        for days in (3, 2, 1):
            sid = "rds:db1-2026-11-%02d-04-00" % (30 - days)
            t = time.time() - days * 86400
            east["dbsnapshots"][sid] = {"id": sid, "db": "db1", "created": t, "t": t,
                                        "status": "available", "type": "automated",
                                        "region": "us-east-1", "tags": {}}
        west = self.region("us-west-2")
        rep = self.new_db(west, "us-west-2", "db1-replica", {"DBInstanceClass": "db.r6g.large"},
                          status="available", source="arn:aws:rds:us-east-1:%s:db:db1" % ACCOUNT)
        rep["created"] = long_ago
        # db1's automated backups, replicated to us-west-2 (cross-Region
        # automated backups): a point-in-time restore there needs no primary
        west["auto_backups"] = {"db1": {
            "arn": "arn:aws:rds:us-west-2:%s:auto-backup:ab-db1west0000000000000000" % ACCOUNT,
            "source_region": "us-east-1", "earliest": long_ago}}
        self.state["zones"]["Z0EXAMPLE1"] = {"name": "example.com.", "records": {
            self.r53_key("example.com.", "NS"): {"name": "example.com.", "type": "NS", "ttl": 172800,
                                                 "values": ["ns-1.awsdns-1.com.", "ns-2.awsdns-2.net."]},
            self.r53_key("www.example.com.", "A"): {"name": "www.example.com.", "type": "A",
                                                    "ttl": 300, "values": ["192.0.2.10"]},
            self.r53_key("api.example.com.", "CNAME"): {"name": "api.example.com.", "type": "CNAME",
                                                        "ttl": 60, "values": ["lb.example.com."]},
        }}

    # ---- signatures ----------------------------------------------------

    def verify(self, req):
        """The (service, region, key) of a correctly signed request, or
        raise AwsError as AWS would."""
        m = AUTH_RE.match(req.header("authorization") or "")
        if not m:
            raise AwsError(403, "MissingAuthenticationToken",
                           "Request is missing Authentication Token")
        ak, day, region, service, signed, sig = m.groups()
        key = self.keys.get(ak)
        if not key:
            raise AwsError(403, "InvalidClientTokenId",
                           "The security token included in the request is invalid.")
        amz = req.header("x-amz-date") or ""
        try:
            when = datetime.datetime.strptime(amz, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            raise AwsError(403, "IncompleteSignature", "X-Amz-Date is missing or malformed")
        if amz[:8] != day or abs(time.time() - when) > SKEW:
            raise AwsError(403, "SignatureDoesNotMatch",
                           "Signature expired: %s is now earlier than %s" % (amz, amz))
        names = signed.split(";")
        if "host" not in names:
            raise AwsError(403, "SignatureDoesNotMatch", "host must be a signed header")
        headers = {h: req.header(h, "") for h in names}
        url = "http://" + (req.header("host") or "") + req.path
        if req.raw_query:
            url += "?" + req.raw_query
        areq = AWSRequest(method=req.method, url=url, headers=headers, data=req.body)
        areq.context["timestamp"] = amz
        auth = SigV4Auth(Credentials(ak, key["secret"], key["token"]), service, region)
        # botocore's signer skips some headers unless told which to sign
        auth.headers_to_sign = lambda r, _names=names: _headers(r, _names)
        cr = auth.canonical_request(areq)
        want = auth.signature(auth.string_to_sign(areq, cr), areq)
        if not hmac.compare_digest(want, sig):
            raise AwsError(403, "SignatureDoesNotMatch",
                           "The request signature we calculated does not match the "
                           "signature you provided.")
        if key["token"] is not None:
            tok = req.header("x-amz-security-token")
            if tok != key["token"]:
                raise AwsError(403, "InvalidClientTokenId",
                               "The security token included in the request is invalid.")
            if key.get("expires") and key["expires"] < time.time():
                raise AwsError(403, "ExpiredToken",
                               "The security token included in the request is expired")
        return service, region, ak

    # ---- dispatch ------------------------------------------------------

    def error(self, status, message, code="InvalidRequest", service="sts", **extra):
        rid = str(uuid.uuid4())
        if service == "ec2":
            body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>"
                    "<Code>%s</Code><Message>%s</Message></Error></Errors>"
                    "<RequestID>%s</RequestID></Response>" % (code, escape(message), rid))
        else:
            body = ("<ErrorResponse xmlns=\"%s\"><Error><Type>%s</Type><Code>%s</Code>"
                    "<Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>"
                    % (XMLNS.get(service, XMLNS["sts"]), "Sender" if status < 500 else "Receiver",
                       code, escape(message), rid))
        return Response(status, body, "text/xml", {"x-amzn-RequestId": rid})

    def rate_limited(self):
        return self.error(400, "Rate exceeded", "Throttling")

    # ---- the instance metadata service (IMDSv2), for the credential chain --

    IMDS_ROLE = "drrun-instance-role"

    def imds(self, req):
        """IMDSv2 as an instance sees it: PUT /latest/api/token (with the TTL
        header) gives a token; every GET must carry it, or gets 401."""
        if req.path == "/latest/api/token":
            ttl = req.header("x-aws-ec2-metadata-token-ttl-seconds")
            if req.method != "PUT" or not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return Response(400, "", "text/plain")
            tok = "imds-" + uuid.uuid4().hex
            self.state.setdefault("imds_tokens", []).append(tok)
            return Response(200, tok, "text/plain")
        if req.method != "GET" or req.header("x-aws-ec2-metadata-token") not in \
                self.state.get("imds_tokens", []):
            return Response(401, "", "text/plain")
        base = "/latest/meta-data/iam/security-credentials/"
        if req.path == base:
            return Response(200, self.IMDS_ROLE, "text/plain")
        if req.path == base + self.IMDS_ROLE:
            new_ak = "ASIA" + uuid.uuid4().hex[:16].upper()
            secret, token = uuid.uuid4().hex * 2, "IQoJ" + uuid.uuid4().hex * 3
            expires = time.time() + 6 * 3600
            self.keys[new_ak] = {"secret": secret, "token": token, "expires": expires,
                                 "arn": "arn:aws:sts::%s:assumed-role/%s/i-0instance"
                                 % (ACCOUNT, self.IMDS_ROLE)}
            import json as _json
            return Response(200, _json.dumps({"Code": "Success", "Type": "AWS-HMAC",
                                              "AccessKeyId": new_ak, "SecretAccessKey": secret,
                                              "Token": token, "Expiration": iso(expires)}),
                            "text/plain")
        return Response(404, "", "text/plain")

    def dispatch(self, req):
        if req.path.startswith("/latest/"):
            return self.imds(req)
        try:
            service, region, ak = self.verify(req)
        except AwsError as e:
            return self.error(e.status, e.message, e.code)
        try:
            if service in ("sts", "ec2", "rds"):
                if req.method != "POST" or req.media_type() != "application/x-www-form-urlencoded":
                    raise AwsError(400, "InvalidAction",
                                   "query APIs take a form-encoded POST")
                form = urllib.parse.parse_qs(req.text(), keep_blank_values=True)
                params = {k: v[-1] for k, v in form.items()}
                action = params.pop("Action", "")
                version = params.pop("Version", "")
                if version != VERSIONS[service]:
                    raise AwsError(400, "InvalidParameterValue" if version else
                                   "MissingParameter", "Version must be %s" % VERSIONS[service])
                self.throttle(service, action)
                fn = getattr(self, "%s_%s" % (service, action), None)
                if not fn:
                    raise AwsError(400, "InvalidAction",
                                   "The action %s is not valid for this web service." % action)
                self.state["calls"].append({"service": service, "action": action,
                                            "region": region, "params": params})
                body = fn(params, region, ak)
                root = action + "Response"
                rid = str(uuid.uuid4())
                if service == "ec2":
                    text = "<%s xmlns=\"%s\"><requestId>%s</requestId>%s</%s>" % (
                        root, XMLNS[service], rid, body, root)
                else:
                    text = ("<%s xmlns=\"%s\"><%sResult>%s</%sResult><ResponseMetadata>"
                            "<RequestId>%s</RequestId></ResponseMetadata></%s>" % (
                                root, XMLNS[service], action, body, action, rid, root))
                return Response(200, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + text,
                                "text/xml", {"x-amzn-RequestId": rid})
            if service == "route53":
                if region != "us-east-1":
                    raise AwsError(403, "SignatureDoesNotMatch",
                                   "Credential should be scoped to a valid region, not '%s'" % region)
                return self.route53(req)
            raise AwsError(400, "UnknownService", "no such service here: " + service)
        except AwsError as e:
            return self.error(e.status, e.message, e.code, service)

    def throttle(self, service, action):
        t = self.config.get("throttle")
        if not t or t.get("service", service) != service or t.get("action", action) != action:
            return
        if t.get("count", 1) <= 0:
            return
        t["count"] = t.get("count", 1) - 1
        code = t.get("code", "Throttling")
        status = 503 if code == "RequestLimitExceeded" else 400
        raise AwsError(status, code, "Rate exceeded")

    # ---- the fast clock --------------------------------------------------

    def age(self, obj):
        return (time.time() - obj["t"]) * 1000.0

    def settle(self):
        """Move every resource along its documented transitions, on the
        fast clock (config transition_ms per step)."""
        step = self.config["transition_ms"]
        for reg in self.state["regions"].values():
            for i in reg["instances"].values():
                nxt = {"pending": "running", "stopping": "stopped",
                       "shutting-down": "terminated"}.get(i["state"])
                if nxt and self.age(i) >= step:
                    i["state"], i["t"] = nxt, time.time()
            for sn in reg["snapshots"].values():
                if sn["state"] == "pending" and self.age(sn) >= step:
                    sn["state"], sn["progress"] = "completed", "100%"
            for db in list(reg["dbs"].values()):
                nxt = {"creating": "backing-up", "backing-up": "available",
                       "modifying": "available", "rebooting": "available"}.get(db["status"])
                if nxt and self.age(db) >= step:
                    db["status"], db["t"] = nxt, time.time()
                if db["status"] == "deleting" and self.age(db) >= step:
                    del reg["dbs"][db["id"]]
            for ds in reg["dbsnapshots"].values():
                if ds["status"] == "creating" and self.age(ds) >= step:
                    ds["status"] = "available"
        for ch in self.state["changes"].values():
            if ch["status"] == "PENDING" and self.age(ch) >= step:
                ch["status"] = "INSYNC"

    def region(self, name):
        r = self.state["regions"].get(name)
        if r is None:
            r = self.state["regions"][name] = {"instances": {}, "volumes": {}, "snapshots": {},
                                               "dbs": {}, "dbsnapshots": {}, "tokens": {}}
        return r

    # ---- EC2 -----------------------------------------------------------

    EC2_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
                 "stopping": 64, "stopped": 80}

    def ec2_instance_xml(self, i):
        return {"instanceId": i["id"], "imageId": i["image"],
                "instanceState": {"code": self.EC2_CODES[i["state"]], "name": i["state"]},
                "privateIpAddress": i["ip"], "instanceType": i["type"],
                "placement": {"availabilityZone": i["az"]}, "subnetId": i["subnet"],
                "launchTime": iso(i["launched"]),
                "blockDeviceMapping": [("item", {"deviceName": "/dev/xvda",
                                                 "ebs": {"volumeId": v, "status": "attached"}})
                                       for v in i["volumes"]],
                "tagSet": tags_xml(i["tags"])}

    def ec2_ids(self, reg, ids, kind="instances", code="InvalidInstanceID.NotFound"):
        for x in ids:
            if not re.match(r"^(i|snap|vol)-[0-9a-f]{8,17}$", x):
                raise AwsError(400, code.replace("NotFound", "Malformed"),
                               "Invalid id: \"%s\"" % x)
            if x not in reg[kind]:
                raise AwsError(400, code, "The ID '%s' does not exist" % x)
        return [reg[kind][x] for x in ids]

    def ec2_filter(self, objs, filters, fields):
        out = []
        for o in objs:
            ok = True
            for f in filters:
                name, values = f.get("Name"), f.get("Value", [])
                if name.startswith("tag:"):
                    have = o["tags"].get(name[4:])
                elif name == "tag-key":
                    ok = ok and any(v in o["tags"] for v in values)
                    continue
                elif name in fields:
                    have = fields[name](o)
                else:
                    raise AwsError(400, "InvalidParameterValue",
                                   "The filter '%s' is invalid" % name)
                ok = ok and have in values
            if ok:
                out.append(o)
        return out

    def ec2_DescribeInstances(self, p, region, ak):
        self.settle()
        reg = self.region(region)
        ids = plist(p, "InstanceId")
        objs = self.ec2_ids(reg, ids) if ids else list(reg["instances"].values())
        objs = self.ec2_filter(objs, pstructs(p, "Filter"), {
            "instance-state-name": lambda o: o["state"], "instance-id": lambda o: o["id"],
            "availability-zone": lambda o: o["az"], "subnet-id": lambda o: o["subnet"]})
        objs.sort(key=lambda o: o["id"])
        start = int(p.get("NextToken") or 0)
        size = int(p.get("MaxResults") or 1000)
        if ids and "MaxResults" in p:
            raise AwsError(400, "InvalidParameterCombination",
                           "The parameter instancesSet cannot be used with maxResults")
        page = objs[start:start + size]
        body = xml("reservationSet", [("item", {"reservationId": "r-" + o["id"][2:],
                                                "ownerId": ACCOUNT,
                                                "instancesSet": [("item", self.ec2_instance_xml(o))]})
                                      for o in page])
        if start + size < len(objs):
            body += xml("nextToken", str(start + size))
        return body

    def ec2_change_state(self, p, region, to, allowed):
        self.settle()
        reg = self.region(region)
        ids = plist(p, "InstanceId")
        if not ids:
            raise AwsError(400, "MissingParameter", "The request must contain the parameter InstanceId")
        objs = self.ec2_ids(reg, ids)
        items = []
        for o in objs:
            prev = o["state"]
            if prev == "terminated" and to != "shutting-down":
                raise AwsError(400, "IncorrectInstanceState",
                               "The instance '%s' is not in a state from which it can be %s"
                               % (o["id"], to))
            if prev not in allowed.get("noop", ()):
                o["state"], o["t"] = to, time.time()
            items.append(("item", {"instanceId": o["id"],
                                   "currentState": {"code": self.EC2_CODES[o["state"]],
                                                    "name": o["state"]},
                                   "previousState": {"code": self.EC2_CODES[prev], "name": prev}}))
        return xml("instancesSet", items)

    def ec2_StartInstances(self, p, region, ak):
        return self.ec2_change_state(p, region, "pending", {"noop": ("running", "pending")})

    def ec2_StopInstances(self, p, region, ak):
        return self.ec2_change_state(p, region, "stopping", {"noop": ("stopped", "stopping")})

    def ec2_TerminateInstances(self, p, region, ak):
        return self.ec2_change_state(p, region, "shutting-down",
                                     {"noop": ("terminated", "shutting-down")})

    def ec2_RebootInstances(self, p, region, ak):
        reg = self.region(region)
        ids = plist(p, "InstanceId")
        if not ids:
            raise AwsError(400, "MissingParameter", "The request must contain the parameter InstanceId")
        self.ec2_ids(reg, ids)
        return xml("return", True)

    def ec2_tags(self, p):
        out = {}
        pat = re.compile(r"^TagSpecification\.(\d+)\.Tag\.(\d+)\.(Key|Value)$")
        specs = {}
        for k, v in p.items():
            m = pat.match(k)
            if m:
                specs.setdefault((m.group(1), m.group(2)), {})[m.group(3)] = v
        for (_, _), kv in sorted(specs.items()):
            out[kv.get("Key")] = kv.get("Value", "")
        return out

    def ec2_RunInstances(self, p, region, ak):
        reg = self.region(region)
        token = p.get("ClientToken")
        if token and token in reg["tokens"]:
            prev = reg["tokens"][token]
            if prev["params"] != p:
                raise AwsError(400, "IdempotentParameterMismatch",
                               "The client token %s was used with other parameters" % token)
            return prev["body"]
        lt = p.get("LaunchTemplate.LaunchTemplateName") or p.get("LaunchTemplate.LaunchTemplateId")
        image = p.get("ImageId")
        if not lt and not image:
            raise AwsError(400, "MissingParameter", "The request must contain the parameter ImageId")
        if lt and lt not in self.state["launch_templates"]:
            raise AwsError(400, "InvalidLaunchTemplateName.NotFoundException",
                           "The specified launch template, with template name %s, does not exist" % lt)
        try:
            lo, hi = int(p["MinCount"]), int(p["MaxCount"])
        except (KeyError, ValueError):
            raise AwsError(400, "MissingParameter", "MinCount and MaxCount are required")
        if not 1 <= lo <= hi:
            raise AwsError(400, "InvalidParameterValue", "MinCount must be 1 to MaxCount")
        az = p.get("Placement.AvailabilityZone") or region + "a"
        if not az.startswith(region):
            raise AwsError(400, "InvalidParameterValue",
                           "Invalid availability zone: [%s]" % az)
        tpl = self.state["launch_templates"].get(lt, {}) if lt else {}
        made = []
        for _ in range(hi):
            i = self.new_instance(reg, az, p.get("SubnetId") or "subnet-" + az[-1] * 8,
                                  image or tpl.get("image", "ami-0abc1234"),
                                  p.get("InstanceType") or tpl.get("type", "t3.micro"),
                                  self.ec2_tags(p), "pending")
            made.append(i)
        body = xml("reservationId", "r-" + uuid.uuid4().hex[:17]) + xml("ownerId", ACCOUNT) + \
            xml("instancesSet", [("item", self.ec2_instance_xml(i)) for i in made])
        if token:
            reg["tokens"][token] = {"params": dict(p), "body": body}
        return body

    def new_instance(self, reg, az, subnet, image, itype, tags, state):
        n = self.next_id()
        iid = "i-%017x" % (0xa000 + n)
        vid = "vol-%017x" % (0xb000 + n)
        reg["volumes"][vid] = {"id": vid, "size": 8, "az": az, "instance": iid, "tags": {}}
        i = {"id": iid, "image": image, "type": itype, "state": state, "t": time.time(),
             "az": az, "subnet": subnet, "ip": "10.0.%d.%d" % (n // 250, n % 250 + 2),
             "launched": time.time(), "tags": dict(tags), "volumes": [vid]}
        reg["instances"][iid] = i
        return i

    def ec2_CreateTags(self, p, region, ak):
        reg = self.region(region)
        ids = plist(p, "ResourceId")
        tags = {t.get("Key"): t.get("Value", "") for t in pstructs(p, "Tag")}
        if not ids or not tags:
            raise AwsError(400, "MissingParameter", "ResourceId and Tag are required")
        for x in ids:
            kind = {"i": "instances", "snap": "snapshots", "vol": "volumes"}.get(x.split("-")[0])
            if not kind or x not in reg[kind]:
                raise AwsError(400, "InvalidID", "The ID '%s' is not valid" % x)
            reg[kind][x]["tags"].update(tags)
        return xml("return", True)

    def snapshot_xml(self, s):
        return {"snapshotId": s["id"], "volumeId": s["volume"], "status": s["state"],
                "startTime": iso(s["t"]), "progress": s["progress"], "ownerId": ACCOUNT,
                "volumeSize": s["size"], "description": s["description"],
                "tagSet": tags_xml(s["tags"])}

    def ec2_CreateSnapshot(self, p, region, ak):
        reg = self.region(region)
        vid = p.get("VolumeId")
        if not vid:
            raise AwsError(400, "MissingParameter", "The request must contain the parameter VolumeId")
        if vid not in reg["volumes"]:
            raise AwsError(400, "InvalidVolume.NotFound", "The volume '%s' does not exist." % vid)
        sid = "snap-%017x" % (0xc000 + self.next_id())
        s = {"id": sid, "volume": vid, "state": "pending", "progress": "0%", "t": time.time(),
             "size": reg["volumes"][vid]["size"], "description": p.get("Description", ""),
             "tags": self.ec2_tags(p)}
        reg["snapshots"][sid] = s
        x = self.snapshot_xml(s)
        return "".join(xml(k, v) for k, v in x.items())

    def ec2_DescribeSnapshots(self, p, region, ak):
        self.settle()
        reg = self.region(region)
        ids = plist(p, "SnapshotId")
        objs = self.ec2_ids(reg, ids, "snapshots", "InvalidSnapshot.NotFound") if ids \
            else list(reg["snapshots"].values())
        objs = self.ec2_filter(objs, pstructs(p, "Filter"), {
            "status": lambda o: o["state"], "volume-id": lambda o: o["volume"],
            "snapshot-id": lambda o: o["id"]})
        return xml("snapshotSet", [("item", self.snapshot_xml(s)) for s in
                                   sorted(objs, key=lambda o: o["id"])])

    def ec2_CopySnapshot(self, p, region, ak):
        src_region, sid = p.get("SourceRegion"), p.get("SourceSnapshotId")
        if not src_region or not sid:
            raise AwsError(400, "MissingParameter", "SourceRegion and SourceSnapshotId are required")
        self.settle()
        src = self.region(src_region)["snapshots"].get(sid)
        if not src:
            raise AwsError(400, "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist." % sid)
        if src["state"] != "completed":
            raise AwsError(400, "IncorrectState", "Snapshot is in invalid state - pending")
        reg = self.region(region)
        new = "snap-%017x" % (0xc000 + self.next_id())
        reg["snapshots"][new] = dict(src, id=new, state="pending", progress="0%", t=time.time(),
                                     description=p.get("Description", src["description"]),
                                     tags=self.ec2_tags(p) or dict(src["tags"]))
        return xml("snapshotId", new)

    def ec2_DescribeVolumes(self, p, region, ak):
        reg = self.region(region)
        objs = list(reg["volumes"].values())
        objs = self.ec2_filter(objs, pstructs(p, "Filter"), {
            "attachment.instance-id": lambda o: o["instance"], "volume-id": lambda o: o["id"]})
        return xml("volumeSet", [("item", {"volumeId": v["id"], "size": v["size"],
                                           "availabilityZone": v["az"], "status": "in-use",
                                           "attachmentSet": [("item", {"instanceId": v["instance"],
                                                                       "status": "attached"})],
                                           "tagSet": tags_xml(v["tags"])})
                                 for v in sorted(objs, key=lambda o: o["id"])])

    # ---- RDS -----------------------------------------------------------

    RDS_GONE = ("deleting",)

    def db_xml(self, db):
        d = {"DBInstanceIdentifier": db["id"], "DBInstanceClass": db["class"],
             "Engine": db["engine"], "DBInstanceStatus": db["status"],
             "MasterUsername": "postgres",
             "Endpoint": {"Address": "%s.c0ffee.%s.rds.amazonaws.com" % (db["id"], db["region"]),
                          "Port": 5432, "HostedZoneId": "Z2R2ITUGPM61AM"},
             "AvailabilityZone": db["az"], "MultiAZ": db["multi_az"],
             "DBInstanceArn": "arn:aws:rds:%s:%s:db:%s" % (db["region"], ACCOUNT, db["id"]),
             "LatestRestorableTime": iso(time.time() - 300),
             "InstanceCreateTime": iso(db["created"]),
             "TagList": [("Tag", {"Key": k, "Value": v}) for k, v in sorted(db["tags"].items())]}
        if db.get("source"):
            d["ReadReplicaSourceDBInstanceIdentifier"] = db["source"]
        return d

    def dbsnap_xml(self, s):
        return {"DBSnapshotIdentifier": s["id"], "DBInstanceIdentifier": s["db"],
                "SnapshotCreateTime": iso(s["created"]), "Engine": "postgres",
                "Status": s["status"], "SnapshotType": s["type"], "AllocatedStorage": 20,
                "DBSnapshotArn": "arn:aws:rds:%s:%s:snapshot:%s" % (s["region"], ACCOUNT, s["id"]),
                "TagList": [("Tag", {"Key": k, "Value": v}) for k, v in sorted(s["tags"].items())]}

    def rds_tags(self, p):
        return {t.get("Key"): t.get("Value", "") for t in pstructs(p, "Tags.Tag")}

    def rds_id(self, p, name, required=True):
        v = p.get(name)
        if not v and required:
            raise AwsError(400, "MissingParameter",
                           "The request must contain the parameter %s" % name)
        if v and not re.match(r"^[A-Za-z][A-Za-z0-9-]{0,62}$", v) or (v and ("--" in v or v.endswith("-"))):
            raise AwsError(400, "InvalidParameterValue",
                           "The parameter %s is not a valid identifier." % name)
        return v

    def new_db(self, reg, region, ident, p, status="creating", source=None):
        if ident in reg["dbs"]:
            raise AwsError(400, "DBInstanceAlreadyExists", "DB instance already exists")
        db = {"id": ident, "class": p.get("DBInstanceClass", "db.t3.micro"), "engine": "postgres",
              "status": status, "t": time.time(), "created": time.time(), "region": region,
              "az": p.get("AvailabilityZone") or region + "a",
              "multi_az": p.get("MultiAZ") == "true", "tags": self.rds_tags(p),
              "source": source}
        reg["dbs"][ident] = db
        return db

    def rds_DescribeDBInstances(self, p, region, ak):
        self.settle()
        reg = self.region(region)
        ident = p.get("DBInstanceIdentifier")
        if ident:
            if ident not in reg["dbs"]:
                raise AwsError(404, "DBInstanceNotFound", "DBInstance %s not found." % ident)
            objs = [reg["dbs"][ident]]
        else:
            objs = sorted(reg["dbs"].values(), key=lambda d: d["id"])
        for f in pstructs(p, "Filters.Filter"):
            vals = f.get("Values.Value", [])
            if f.get("Name") == "db-instance-id":
                objs = [o for o in objs if o["id"] in vals]
            else:
                raise AwsError(400, "InvalidParameterValue", "Unrecognized filter name: %s" % f.get("Name"))
        mr = int(p.get("MaxRecords") or 100)
        if not 20 <= mr <= 100:
            raise AwsError(400, "InvalidParameterValue", "MaxRecords must be 20 to 100")
        start = int(p.get("Marker") or 0)
        page = objs[start:start + mr]
        body = xml("DBInstances", [("DBInstance", self.db_xml(d)) for d in page])
        if start + mr < len(objs):
            body += xml("Marker", str(start + mr))
        return body

    def rds_DescribeDBSnapshots(self, p, region, ak):
        self.settle()
        reg = self.region(region)
        objs = sorted(reg["dbsnapshots"].values(), key=lambda s: s["created"])
        if p.get("DBSnapshotIdentifier"):
            objs = [o for o in objs if o["id"] == p["DBSnapshotIdentifier"]]
            if not objs:
                raise AwsError(404, "DBSnapshotNotFound",
                               "DBSnapshot %s not found." % p["DBSnapshotIdentifier"])
        if p.get("DBInstanceIdentifier"):
            objs = [o for o in objs if o["db"] == p["DBInstanceIdentifier"]]
        if p.get("SnapshotType"):
            objs = [o for o in objs if o["type"] == p["SnapshotType"]]
        return xml("DBSnapshots", [("DBSnapshot", self.dbsnap_xml(s)) for s in objs])

    def rds_CreateDBSnapshot(self, p, region, ak):
        reg = self.region(region)
        sid = self.rds_id(p, "DBSnapshotIdentifier")
        dbid = self.rds_id(p, "DBInstanceIdentifier")
        self.settle()
        db = reg["dbs"].get(dbid)
        if not db:
            raise AwsError(404, "DBInstanceNotFound", "DBInstance %s not found." % dbid)
        if db["status"] != "available":
            raise AwsError(400, "InvalidDBInstanceState",
                           "DBInstance %s is not in available state." % dbid)
        if sid in reg["dbsnapshots"]:
            raise AwsError(400, "DBSnapshotAlreadyExists",
                           "Cannot create the snapshot because a snapshot with the identifier %s already exists." % sid)
        s = {"id": sid, "db": dbid, "created": time.time(), "t": time.time(), "status": "creating",
             "type": "manual", "region": region, "tags": self.rds_tags(p)}
        reg["dbsnapshots"][sid] = s
        return xml("DBSnapshot", self.dbsnap_xml(s))

    def rds_RestoreDBInstanceFromDBSnapshot(self, p, region, ak):
        reg = self.region(region)
        target = self.rds_id(p, "DBInstanceIdentifier")
        sid = p.get("DBSnapshotIdentifier")
        if not sid:
            raise AwsError(400, "MissingParameter", "DBSnapshotIdentifier is required")
        self.settle()
        snap = reg["dbsnapshots"].get(sid.split(":snapshot:")[-1])
        if not snap:
            raise AwsError(404, "DBSnapshotNotFound", "DBSnapshot %s not found." % sid)
        if snap["status"] != "available":
            raise AwsError(400, "InvalidDBSnapshotState", "DBSnapshot %s is not available." % sid)
        db = self.new_db(reg, region, target, p)
        db["restored_from"] = {"snapshot": snap["id"], "time": snap["created"]}
        return xml("DBInstance", self.db_xml(db))

    def rds_DescribeDBInstanceAutomatedBackups(self, p, region, ak):
        reg = self.region(region)
        out = []
        for dbid, b in sorted(reg.get("auto_backups", {}).items()):
            if p.get("DBInstanceIdentifier") not in (None, dbid):
                continue
            out.append(("DBInstanceAutomatedBackup", {
                "DBInstanceAutomatedBackupsArn": b["arn"], "DBInstanceIdentifier": dbid,
                "Region": b["source_region"], "Status": "replicating", "Engine": "postgres",
                "RestoreWindow": {"EarliestTime": iso(b["earliest"]),
                                  "LatestTime": iso(time.time() - 300)}}))
        return xml("DBInstanceAutomatedBackups", out)

    def rds_RestoreDBInstanceToPointInTime(self, p, region, ak):
        reg = self.region(region)
        target = self.rds_id(p, "TargetDBInstanceIdentifier")
        src = p.get("SourceDBInstanceIdentifier")
        arn = p.get("SourceDBInstanceAutomatedBackupsArn")
        if arn:
            if src:
                raise AwsError(400, "InvalidParameterCombination",
                               "Give one of SourceDBInstanceIdentifier and SourceDBInstanceAutomatedBackupsArn")
            found = [k for k, b in reg.get("auto_backups", {}).items() if b["arn"] == arn]
            if not found:
                raise AwsError(404, "DBInstanceAutomatedBackupNotFound",
                               "Automated backup %s not found." % arn)
            latest = p.get("UseLatestRestorableTime") == "true"
            if latest == bool(p.get("RestoreTime")):
                raise AwsError(400, "InvalidParameterCombination",
                               "Exactly one of RestoreTime or UseLatestRestorableTime is required")
            db = self.new_db(reg, region, target, p)
            db["restored_from"] = {"automated_backup": arn}
            return xml("DBInstance", self.db_xml(db))
        if not src:
            raise AwsError(400, "MissingParameter", "SourceDBInstanceIdentifier is required")
        latest = p.get("UseLatestRestorableTime") == "true"
        rt = p.get("RestoreTime")
        if latest == bool(rt):
            raise AwsError(400, "InvalidParameterCombination",
                           "Exactly one of RestoreTime or UseLatestRestorableTime is required")
        self.settle()
        source = reg["dbs"].get(src)
        if not source:
            raise AwsError(404, "DBInstanceNotFound", "DBInstance %s not found." % src)
        if source.get("no_pitr"):
            raise AwsError(400, "PointInTimeRestoreNotEnabled",
                           "Source database instance doesn't have a backup.")
        if rt:
            try:
                t = datetime.datetime.strptime(rt, "%Y-%m-%dT%H:%M:%SZ").replace(
                    tzinfo=datetime.timezone.utc).timestamp()
            except ValueError:
                raise AwsError(400, "InvalidParameterValue", "RestoreTime is not an ISO 8601 UTC time")
            if t > time.time() - 300 or t < source["created"]:
                raise AwsError(400, "InvalidRestoreFault",
                               "Restore time %s is outside the restorable window" % rt)
        db = self.new_db(reg, region, target, p)
        db["restored_from"] = {"instance": src, "time": t if rt else time.time() - 300}
        return xml("DBInstance", self.db_xml(db))

    def rds_DeleteDBInstance(self, p, region, ak):
        reg = self.region(region)
        dbid = self.rds_id(p, "DBInstanceIdentifier")
        self.settle()
        db = reg["dbs"].get(dbid)
        if not db:
            raise AwsError(404, "DBInstanceNotFound", "DBInstance %s not found." % dbid)
        skip = p.get("SkipFinalSnapshot") == "true"
        final = p.get("FinalDBSnapshotIdentifier")
        if not skip and not final:
            raise AwsError(400, "InvalidParameterCombination",
                           "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.")
        if skip and final:
            raise AwsError(400, "InvalidParameterCombination",
                           "FinalDBSnapshotIdentifier can not be specified when deleting with SkipFinalSnapshot")
        if db["status"] == "deleting":
            raise AwsError(400, "InvalidDBInstanceState", "Instance %s is already being deleted." % dbid)
        if final:
            reg["dbsnapshots"][final] = {"id": final, "db": dbid, "created": time.time(),
                                         "t": time.time(), "status": "available", "type": "manual",
                                         "region": region, "tags": dict(db["tags"])}
        db["status"], db["t"] = "deleting", time.time()
        return xml("DBInstance", self.db_xml(db))

    def rds_PromoteReadReplica(self, p, region, ak):
        reg = self.region(region)
        dbid = self.rds_id(p, "DBInstanceIdentifier")
        self.settle()
        db = reg["dbs"].get(dbid)
        if not db:
            raise AwsError(404, "DBInstanceNotFound", "DBInstance %s not found." % dbid)
        if not db.get("source"):
            raise AwsError(400, "InvalidDBInstanceState",
                           "DB Instance is not a read replica.")
        db["source"], db["status"], db["t"] = None, "modifying", time.time()
        return xml("DBInstance", self.db_xml(db))

    def rds_CopyDBSnapshot(self, p, region, ak):
        src = p.get("SourceDBSnapshotIdentifier")
        target = self.rds_id(p, "TargetDBSnapshotIdentifier")
        if not src:
            raise AwsError(400, "MissingParameter", "SourceDBSnapshotIdentifier is required")
        m = re.match(r"^arn:aws:rds:([a-z0-9-]+):\d{12}:snapshot:(.+)$", src)
        src_region, sid = (m.group(1), m.group(2)) if m else (region, src)
        if src_region != region and not p.get("SourceRegion") and not m:
            raise AwsError(400, "InvalidParameterValue", "a cross-region copy needs the snapshot ARN")
        self.settle()
        snap = self.region(src_region)["dbsnapshots"].get(sid)
        if not snap:
            raise AwsError(404, "DBSnapshotNotFound", "DBSnapshot %s not found." % src)
        reg = self.region(region)
        if target in reg["dbsnapshots"]:
            raise AwsError(400, "DBSnapshotAlreadyExists", "DBSnapshot %s already exists." % target)
        new = dict(snap, id=target, region=region, status="creating", t=time.time(),
                   type="manual", tags=self.rds_tags(p) or dict(snap["tags"]))
        reg["dbsnapshots"][target] = new
        return xml("DBSnapshot", self.dbsnap_xml(new))

    # ---- Route 53 (rest-xml) ---------------------------------------------

    def r53_zone(self, zid):
        zid = zid.split("/")[-1]
        z = self.state["zones"].get(zid)
        if not z:
            raise AwsError(404, "NoSuchHostedZone", "No hosted zone found with ID: %s" % zid)
        return z

    @staticmethod
    def r53_key(name, rtype, set_id=None):
        return "%s|%s|%s" % (name.lower().rstrip(".") + ".", rtype, set_id or "")

    def r53_rrs_xml(self, rr):
        d = {"Name": rr["name"], "Type": rr["type"]}
        if rr.get("set_id"):
            d["SetIdentifier"] = rr["set_id"]
        if rr.get("weight") is not None:
            d["Weight"] = rr["weight"]
        if rr.get("failover"):
            d["Failover"] = rr["failover"]
        if rr.get("alias"):
            d["AliasTarget"] = rr["alias"]
        else:
            d["TTL"] = rr["ttl"]
            d["ResourceRecords"] = [("ResourceRecord", {"Value": v}) for v in rr["values"]]
        return d

    def r53_parse_rrs(self, el, zone):
        import xml.etree.ElementTree as ET  # noqa: F401 (el is an Element)
        ns = "{%s}" % XMLNS["route53"]

        def text(e, name):
            x = e.find(ns + name)
            return x.text.strip() if x is not None and x.text else None
        name, rtype = text(el, "Name"), text(el, "Type")
        if not name or not rtype:
            raise AwsError(400, "InvalidInput", "A ResourceRecordSet needs Name and Type")
        name = name.lower().rstrip(".") + "."
        if not (name == zone["name"] or name.endswith("." + zone["name"])):
            raise AwsError(400, "InvalidChangeBatch",
                           "RRSet with DNS name %s is not permitted in zone %s" % (name, zone["name"]))
        if rtype not in ("A", "AAAA", "CNAME", "TXT", "MX", "NS", "SOA", "SRV", "CAA", "PTR"):
            raise AwsError(400, "InvalidInput", "Invalid Type: %s" % rtype)
        rr = {"name": name, "type": rtype, "set_id": text(el, "SetIdentifier"),
              "failover": text(el, "Failover")}
        w = text(el, "Weight")
        rr["weight"] = int(w) if w is not None else None
        alias = el.find(ns + "AliasTarget")
        if alias is not None:
            rr["alias"] = {"HostedZoneId": text(alias, "HostedZoneId"),
                           "DNSName": text(alias, "DNSName"),
                           "EvaluateTargetHealth": (text(alias, "EvaluateTargetHealth") or "false")}
            if not rr["alias"]["HostedZoneId"] or not rr["alias"]["DNSName"]:
                raise AwsError(400, "InvalidInput", "AliasTarget needs HostedZoneId and DNSName")
        else:
            ttl = text(el, "TTL")
            rrs = el.find(ns + "ResourceRecords")
            values = [text(r, "Value") for r in rrs.findall(ns + "ResourceRecord")] if rrs is not None else []
            if ttl is None or not values or any(v is None for v in values):
                raise AwsError(400, "InvalidInput",
                               "A ResourceRecordSet needs TTL and ResourceRecords, or AliasTarget")
            if not ttl.isdigit() or int(ttl) > 2147483647:
                raise AwsError(400, "InvalidInput", "Invalid TTL: %s" % ttl)
            if rtype == "A":
                for v in values:
                    parts = v.split(".")
                    if len(parts) != 4 or not all(x.isdigit() and int(x) < 256 for x in parts):
                        raise AwsError(400, "InvalidChangeBatch",
                                       "Invalid Resource Record: FATAL problem: ARRDATAIllegalIPv4Address "
                                       "(Value is not a valid IPv4 address) encountered with '%s'" % v)
            rr["ttl"], rr["values"] = int(ttl), values
        return rr

    def r53_change(self, req, zid):
        import xml.etree.ElementTree as ET
        zone = self.r53_zone(zid)
        ns = "{%s}" % XMLNS["route53"]
        try:
            root = ET.fromstring(req.body)
        except ET.ParseError as e:
            raise AwsError(400, "InvalidInput", "Could not parse the request body: %s" % e)
        if root.tag != ns + "ChangeResourceRecordSetsRequest":
            raise AwsError(400, "InvalidInput", "Expected ChangeResourceRecordSetsRequest in %s"
                           % XMLNS["route53"])
        batch = root.find(ns + "ChangeBatch")
        changes = batch.find(ns + "Changes") if batch is not None else None
        items = changes.findall(ns + "Change") if changes is not None else []
        if not items:
            raise AwsError(400, "InvalidInput", "A ChangeBatch needs at least one Change")
        records = dict(zone["records"])
        errors = []
        for ch in items:
            action = (ch.find(ns + "Action").text or "") if ch.find(ns + "Action") is not None else ""
            el = ch.find(ns + "ResourceRecordSet")
            if action not in ("CREATE", "DELETE", "UPSERT") or el is None:
                raise AwsError(400, "InvalidInput", "Invalid Change: Action must be CREATE, DELETE or UPSERT")
            rr = self.r53_parse_rrs(el, zone)
            key = self.r53_key(rr["name"], rr["type"], rr["set_id"])
            desc = "[name='%s', type='%s']" % (rr["name"], rr["type"])
            if action == "CREATE" and key in records:
                errors.append("Tried to create resource record set %s but it already exists" % desc)
            elif action == "DELETE":
                cur = records.get(key)
                if not cur:
                    errors.append("Tried to delete resource record set %s but it was not found" % desc)
                elif self.r53_rrs_xml(cur) != self.r53_rrs_xml(rr):
                    errors.append("Tried to delete resource record set %s but the values provided "
                                  "do not match the current values" % desc)
                else:
                    del records[key]
            else:
                if rr["type"] == "CNAME" and any(k.split("|")[0] == rr["name"] and k != key
                                                 for k in records):
                    errors.append("RRSet of type CNAME with DNS name %s is not permitted as it "
                                  "conflicts with other records with the same DNS name" % rr["name"])
                records[key] = rr
        if errors:
            # Route 53's answer since 2024: the standard error shape, the
            # messages as one bracketed list (the older <InvalidChangeBatch>
            # root is no longer sent; drrun reads both)
            raise AwsError(400, "InvalidChangeBatch", "[" + ", ".join(errors) + "]")
        zone["records"] = records
        cid = "C" + uuid.uuid4().hex[:13].upper()
        comment = batch.find(ns + "Comment")
        self.state["changes"][cid] = {"status": "PENDING", "t": time.time(),
                                      "comment": comment.text if comment is not None else None}
        return self.r53_answer("ChangeResourceRecordSetsResponse", self.r53_changeinfo(cid))

    def r53_changeinfo(self, cid):
        ch = self.state["changes"][cid]
        return xml("ChangeInfo", {"Id": "/change/" + cid, "Status": ch["status"],
                                  "SubmittedAt": iso(ch["t"]), "Comment": ch["comment"]})

    def r53_answer(self, root, body):
        return Response(200, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<%s xmlns=\"%s\">%s</%s>"
                        % (root, XMLNS["route53"], body, root), "text/xml",
                        {"x-amzn-RequestId": str(uuid.uuid4())})

    @staticmethod
    def r53_order(rr):
        return (list(reversed(rr["name"].rstrip(".").split("."))), rr["type"], rr.get("set_id") or "")

    def r53_list(self, req, zid):
        zone = self.r53_zone(zid)
        q = req.query
        maxitems = int(q.get("maxitems") or 300)
        if not 1 <= maxitems <= 300:
            raise AwsError(400, "InvalidInput", "maxitems must be 1 to 300")
        if q.get("type") and not q.get("name"):
            raise AwsError(400, "InvalidInput", "The type parameter needs a name")
        rrs = sorted(zone["records"].values(), key=self.r53_order)
        if q.get("name"):
            start = {"name": q["name"].lower().rstrip(".") + ".", "type": q.get("type", "")}
            sk = self.r53_order(start)
            rrs = [r for r in rrs if self.r53_order(r)[:2] >= sk[:2]]
        page, rest = rrs[:maxitems], rrs[maxitems:]
        body = xml("ResourceRecordSets", [("ResourceRecordSet", self.r53_rrs_xml(r)) for r in page])
        body += xml("IsTruncated", bool(rest)) + xml("MaxItems", maxitems)
        if rest:
            body += xml("NextRecordName", rest[0]["name"]) + xml("NextRecordType", rest[0]["type"])
        return self.r53_answer("ListResourceRecordSetsResponse", body)

    def route53(self, req):
        self.settle()
        segs = req.segments
        if len(segs) < 2 or segs[0] != "2013-04-01":
            raise AwsError(404, "UnknownOperation", "no such operation: %s %s" % (req.method, req.path))
        self.throttle("route53", req.method + " " + "/".join(segs[1:2] + segs[3:4]))
        if segs[1] == "hostedzone" and len(segs) == 4 and segs[3] == "rrset":
            self.state["calls"].append({"service": "route53", "action": req.method + " rrset",
                                        "region": "us-east-1", "params": req.query})
            if req.method == "POST":
                return self.r53_change(req, segs[2])
            if req.method == "GET":
                return self.r53_list(req, segs[2])
        if segs[1] == "change" and len(segs) == 3 and req.method == "GET":
            cid = segs[2]
            if cid not in self.state["changes"]:
                raise AwsError(404, "NoSuchChange", "A change with the specified change ID does not exist.")
            return self.r53_answer("GetChangeResponse", self.r53_changeinfo(cid))
        if segs[1] == "hostedzone" and len(segs) == 2 and req.method == "GET":
            return self.r53_answer("ListHostedZonesResponse", xml("HostedZones", [
                ("HostedZone", {"Id": "/hostedzone/" + zid, "Name": z["name"],
                                "ResourceRecordSetCount": len(z["records"])})
                for zid, z in sorted(self.state["zones"].items())]) + xml("IsTruncated", False)
                + xml("MaxItems", 100))
        raise AwsError(404, "UnknownOperation", "no such operation: %s %s" % (req.method, req.path))

    # ---- STS -----------------------------------------------------------

    def sts_GetCallerIdentity(self, p, region, ak):
        key = self.keys[ak]
        return xml("Arn", key["arn"]) + xml("UserId", ak) + xml("Account", ACCOUNT)

    def sts_AssumeRole(self, p, region, ak):
        arn = p.get("RoleArn")
        name = p.get("RoleSessionName")
        if not arn or not name:
            raise AwsError(400, "MissingParameter",
                           "RoleArn and RoleSessionName are required")
        if not re.match(r"^arn:aws:iam::\d{12}:role/[\w+=,.@/-]+$", arn):
            raise AwsError(400, "ValidationError", "RoleArn is not a role ARN")
        if not re.match(r"^[\w+=,.@-]{2,64}$", name):
            raise AwsError(400, "ValidationError", "RoleSessionName is not valid")
        want = self.state.get("external_ids", {}).get(arn)
        if want is not None and p.get("ExternalId") != want:
            raise AwsError(403, "AccessDenied", "Not authorized to perform sts:AssumeRole")
        dur = int(p.get("DurationSeconds") or 3600)
        if not 900 <= dur <= 43200:
            raise AwsError(400, "ValidationError", "DurationSeconds must be 900 to 43200")
        new_ak = "ASIA" + uuid.uuid4().hex[:16].upper()
        secret = uuid.uuid4().hex + uuid.uuid4().hex
        token = "FQoG" + uuid.uuid4().hex * 4
        expires = time.time() + dur
        self.keys[new_ak] = {"secret": secret, "token": token, "expires": expires,
                             "arn": arn.replace(":role/", ":assumed-role/").replace(
                                 "arn:aws:iam:", "arn:aws:sts:") + "/" + name}
        self.state["assumed"][new_ak] = {"role": arn, "session": name,
                                         "external_id": p.get("ExternalId")}
        return xml("Credentials", {"AccessKeyId": new_ak, "SecretAccessKey": secret,
                                   "SessionToken": token, "Expiration": iso(expires)}) + \
            xml("AssumedRoleUser", {"Arn": self.keys[new_ak]["arn"],
                                    "AssumedRoleId": "AROA" + new_ak[4:] + ":" + name})


# ---- flattened parameters ----------------------------------------------------

def plist(p, prefix):
    """["a", "b"] from prefix.1=a&prefix.2=b (in index order)."""
    out = {}
    pat = re.compile(r"^%s\.(\d+)$" % re.escape(prefix))
    for k, v in p.items():
        m = pat.match(k)
        if m:
            out[int(m.group(1))] = v
    return [out[i] for i in sorted(out)]


def pstructs(p, prefix):
    """[{"Name": ..., "Value": [...]}] from prefix.N.Field and prefix.N.Field.M."""
    out = {}
    pat = re.compile(r"^%s\.(\d+)\.(.+)$" % re.escape(prefix))
    for k, v in p.items():
        m = pat.match(k)
        if m:
            out.setdefault(int(m.group(1)), {})[m.group(2)] = v
    res = []
    for i in sorted(out):
        d = {}
        for k, v in out[i].items():
            m = re.match(r"^(.+?)\.(\d+)$", k)
            if m:
                d.setdefault(m.group(1), {})[int(m.group(2))] = v
            else:
                d[k] = v
        for k, v in list(d.items()):
            if isinstance(v, dict):
                d[k] = [v[j] for j in sorted(v)]
        res.append(d)
    return res


def tags_xml(tags, member="item", key="key", value="value"):
    return [(member, {key: k, value: v}) for k, v in sorted(tags.items())]


def _headers(request, names):
    """botocore's HTTPHeaders for exactly the headers the client signed."""
    from botocore.compat import HTTPHeaders
    h = HTTPHeaders()
    for n in names:
        if n == "host":
            h["host"] = urllib.parse.urlsplit(request.url).netloc
        else:
            h[n] = request.headers.get(n, "")
    return h


FAKE = Aws
