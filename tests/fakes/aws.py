"""aws.py - a fake of the AWS query-protocol APIs drrun calls (api-contracts.md
section 1): STS and, added service by service, EC2, RDS and Route 53.

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
        # {"service": "rds", "action": "DescribeDBInstances", "code": "Throttling",
        #  "count": 2}: fail the next matching calls with that error
        "throttle": (None, (dict, type(None))),
    }

    def seed(self):
        self.state = {"assumed": {}, "calls": []}
        self.keys = dict(KEYS)

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

    def dispatch(self, req):
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
