// s3-signed.js DIR [PORT] - s3rver (npm, 3.7.1) behind an independent SigV4 check.
//
// s3rver checks only the outer parts of a SigV4 request (key id, date); it never
// compares the signature.  This front server recomputes every signature with
// the AWS SDK's own signer (@smithy/signature-v4), header auth and presigned
// URLs alike, checks the body against x-amz-content-sha256 (unless
// UNSIGNED-PAYLOAD), and only then passes the request to s3rver, which listens
// on a second loopback port.  Refused requests get S3's error XML with 403
// (400 for XAmzContentSHA256Mismatch) and never reach s3rver.
//
// s3rver 3.7.1 has no AbortMultipartUpload or ListMultipartUploads and takes
// parts for any upload id; the front adds both calls (over s3rver's own
// upload directories) and answers 404 NoSuchUpload, as S3 does, for a part,
// a completion or an abort of an upload that does not exist (or was
// aborted).  An abort that comes while parts of its upload are still being
// written waits for them (S3: "part uploads in progress might or might not
// succeed"), then removes the upload.  Fault on demand: an UploadPart whose key contains
// "fail-part-N" gets 500 InternalError for part N, every time.  Virtual-hosted
// requests (Host: BUCKET.s3.localhost:PORT) are S3's other addressing style.
//
// With --tls CERT KEY, the same front also listens for HTTPS on a second free
// port, for S3's UNSIGNED-PAYLOAD (a client may leave the body unsigned only
// because TLS protects it).  GET /_fake/stats (unsigned; "_fake" is no valid
// bucket name) answers JSON counts of the requests checked, by transport:
// { requests: { plain, tls }, unsigned_payload: { plain, tls } }, where
// unsigned_payload counts header-signed requests that sent UNSIGNED-PAYLOAD.
//
// Prints "ready PORT" (or "ready PORT TLSPORT" with --tls) when all listen
// (PORT 0 or absent: a free one).
// The key pair it accepts: AKIDDRRUN / drrun-test-secret.
'use strict';
const http = require('http');
const https = require('https');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const S3rver = require('s3rver');
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');
const { SignatureV4 } = require('@smithy/signature-v4');
const { HttpRequest } = require('@smithy/protocol-http');
const { Sha256 } = require('@aws-crypto/sha256-js');

const SECRETS = { AKIDDRRUN: 'drrun-test-secret' };
const SKEW_MS = 15 * 60e3;
const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;
const CRED = /^([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request$/;

function amzTime(s) {
  const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(s || '');
  return m ? new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`) : new Date(NaN);
}

function same(a, b) {
  return a.length === b.length && crypto.timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

// The path as on the wire, and the query as smithy wants it (repeated keys as arrays).
function parse(req, drop) {
  const u = new URL(req.url, 'http://x');
  const query = {};
  for (const [k, v] of u.searchParams) {
    if (drop && drop.has(k)) continue;
    query[k] = k in query ? [].concat(query[k], v) : v;
  }
  return { path: u.pathname, query, params: u.searchParams };
}

function signer(service, region, ak) {
  return new SignatureV4({ service, region, sha256: Sha256, applyChecksum: false,
    credentials: { accessKeyId: ak, secretAccessKey: SECRETS[ak] },
    uriEscapePath: service !== 's3' });
}

// null when the request is signed right, else an S3 error code
async function verify(req, body) {
  const authz = req.headers.authorization;
  const u = new URL(req.url, 'http://x');
  if (!authz && u.searchParams.has('X-Amz-Signature')) return verifyPresigned(req);
  const m = AUTH.exec(authz || '');
  if (!m) return 'AccessDenied';
  const [, ak, day, region, service, signed, sig] = m;
  if (!SECRETS[ak]) return 'InvalidAccessKeyId';
  const amz = req.headers['x-amz-date'];
  const when = amzTime(amz);
  if (isNaN(when) || amz.slice(0, 8) !== day || Math.abs(Date.now() - when) > SKEW_MS) {
    return 'RequestTimeTooSkewed';
  }
  const names = signed.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date')) return 'AccessDenied';
  const payload = req.headers['x-amz-content-sha256'];
  if (!payload) return 'InvalidRequest';
  if (payload !== 'UNSIGNED-PAYLOAD' &&
      payload !== crypto.createHash('sha256').update(body).digest('hex')) {
    return 'XAmzContentSHA256Mismatch';
  }
  const headers = {};
  for (const h of names) headers[h] = req.headers[h] ?? '';
  const { path, query } = parse(req);
  const out = await signer(service, region, ak).sign(
    new HttpRequest({ method: req.method, hostname: 'x', path, query, headers }),
    { signingDate: when, signableHeaders: new Set(names) });
  const want = /Signature=([0-9a-f]{64})/.exec(out.headers.authorization)[1];
  return same(want, sig) ? null : 'SignatureDoesNotMatch';
}

const PRESIGN_PARAMS = new Set(['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date',
  'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature', 'X-Amz-Security-Token']);

async function verifyPresigned(req) {
  const { path, query, params } = parse(req, PRESIGN_PARAMS);
  if (params.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') return 'AuthorizationQueryParametersError';
  const m = CRED.exec(params.get('X-Amz-Credential') || '');
  if (!m) return 'AuthorizationQueryParametersError';
  const [, ak, day, region, service] = m;
  if (!SECRETS[ak]) return 'InvalidAccessKeyId';
  const amz = params.get('X-Amz-Date') || '';
  const when = amzTime(amz);
  const expires = Number(params.get('X-Amz-Expires'));
  if (isNaN(when) || amz.slice(0, 8) !== day || !(expires >= 1 && expires <= 604800)) {
    return 'AuthorizationQueryParametersError';
  }
  if (when - Date.now() > SKEW_MS) return 'RequestTimeTooSkewed';
  if (Date.now() > +when + expires * 1000) return 'AccessDenied'; // "Request has expired"
  const names = (params.get('X-Amz-SignedHeaders') || '').split(';');
  if (!names.includes('host')) return 'AccessDenied';
  const headers = {};
  for (const h of names) headers[h] = req.headers[h] ?? '';
  // S3's presigned URLs sign UNSIGNED-PAYLOAD; the header itself is not signed
  headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
  const out = await signer(service, region, ak).presign(
    new HttpRequest({ method: req.method, hostname: 'x', path, query, headers }),
    { signingDate: when, expiresIn: expires, signableHeaders: new Set(names),
      unsignableHeaders: new Set(['x-amz-content-sha256']),
      unhoistableHeaders: new Set(['x-amz-content-sha256']) });
  return same(out.query['X-Amz-Signature'], params.get('X-Amz-Signature'))
    ? null : 'SignatureDoesNotMatch';
}

function refuse(res, code, method) {
  const status = code === 'XAmzContentSHA256Mismatch' || code === 'InvalidRequest' ||
    code === 'AuthorizationQueryParametersError' ? 400 : 403;
  const rid = crypto.randomBytes(8).toString('hex').toUpperCase();
  const body = method === 'HEAD' ? '' : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>refused by the signature check</Message><RequestId>${rid}</RequestId></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'x-amz-request-id': rid,
    'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function s3error(res, status, code, message) {
  const rid = crypto.randomBytes(8).toString('hex').toUpperCase();
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>${message}</Message><RequestId>${rid}</RequestId></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'x-amz-request-id': rid,
    'content-length': Buffer.byteLength(body) });
  res.end(body);
}

// Virtual-hosted requests: BUCKET.s3.localhost[:PORT] (curl and the SDKs
// resolve *.localhost to loopback), which s3rver maps to /BUCKET/... too.
const VHOST = /^(.+)\.s3\.localhost$/;

const xmlText = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

// Parts being written by s3rver, by upload id: { n, drained: [callbacks] }.
// An abort must not remove an upload's folder under a part s3rver is still
// writing into it (its write stream then fails, and s3rver has no handler).
const writing = new Map();
function partStarted(id) {
  const w = writing.get(id) || { n: 0, drained: [] };
  w.n++;
  writing.set(id, w);
  let ended = false;
  return () => {
    if (ended) return;
    ended = true;
    if (--w.n > 0) return;
    writing.delete(id);
    for (const f of w.drained) f();
  };
}
function whenNoParts(id, f) {
  const w = writing.get(id);
  if (w) w.drained.push(f);
  else f();
}

// The multipart calls s3rver lacks, and its missing upload-id check.
// True when the request was answered here; a part passed on to s3rver
// gets req.partDone, to call when s3rver has answered it.
function multipart(store, req, res) {
  const u = new URL(req.url, 'http://x');
  const vhost = VHOST.exec((req.headers.host || '').replace(/:\d+$/, ''));
  const p = vhost ? `/${vhost[1]}${u.pathname}` : u.pathname;
  const obj = /^\/([^/]+)\/(.+)$/.exec(p);
  const id = u.searchParams.get('uploadId');
  if (obj && id !== null) {
    const dir = path.join(store.getResourcePath(obj[1], undefined, 'uploads'), id);
    if (!/^[0-9a-f]{32}$/.test(id) || !fs.existsSync(path.join(dir, 'key'))) {
      s3error(res, 404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID ' +
        'may be invalid, or the upload may have been aborted or completed.');
      return true;
    }
    if (req.method === 'DELETE') {
      whenNoParts(id, () => {
        fs.rmSync(dir, { recursive: true, force: true });
        res.writeHead(204);
        res.end();
      });
      return true;
    }
    const fail = /fail-part-(\d+)/.exec(decodeURIComponent(obj[2]));
    if (req.method === 'PUT' && fail && u.searchParams.get('partNumber') === fail[1]) {
      s3error(res, 500, 'InternalError', 'We encountered an internal error. Please try again.');
      return true;
    }
    if (req.method === 'PUT') req.partDone = partStarted(id);
    return false;
  }
  const bucket = /^\/([^/]+)\/?$/.exec(p);
  if (bucket && req.method === 'GET' && u.searchParams.has('uploads')) {
    const root = store.getResourcePath(bucket[1], undefined, 'uploads');
    let ids = [];
    try { ids = fs.readdirSync(root); } catch (e) { /* none yet */ }
    const ups = ids.filter((i) => fs.existsSync(path.join(root, i, 'key'))).map((i) =>
      `<Upload><Key>${xmlText(fs.readFileSync(path.join(root, i, 'key')))}</Key>` +
      `<UploadId>${i}</UploadId></Upload>`);
    const body = '<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult ' +
      `xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${xmlText(bucket[1])}</Bucket>` +
      `<IsTruncated>false</IsTruncated>${ups.join('')}</ListMultipartUploadsResult>`;
    res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return true;
  }
  return false;
}

function usage() {
  console.error('usage: node s3-signed.js DIR [PORT] [--tls CERT KEY]');
  process.exit(64);
}

async function main() {
  const args = process.argv.slice(2);
  let tls = null;
  const at = args.indexOf('--tls');
  if (at >= 0) {
    if (args.length < at + 3) usage();
    tls = { cert: fs.readFileSync(args[at + 1]), key: fs.readFileSync(args[at + 2]) };
    args.splice(at, 3);
  }
  const dir = args[0];
  if (!dir || args.length > 2) usage();
  const stats = { requests: { plain: 0, tls: 0 }, unsigned_payload: { plain: 0, tls: 0 } };
  for (const [id, secret] of Object.entries(SECRETS)) DUMMY_ACCOUNT.createKeyPair(id, secret);
  const s3 = new S3rver({ address: '127.0.0.1', port: 0, directory: dir, silent: true,
    serviceEndpoint: 'localhost' });
  const inner = await s3.run();
  const innerPort = inner.port;
  const handle = (req, res) => {
    if (req.method === 'GET' && req.url === '/_fake/stats') {
      const body = JSON.stringify(stats);
      res.writeHead(200, { 'content-type': 'application/json',
        'content-length': Buffer.byteLength(body) });
      return res.end(body);
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      let err;
      try {
        err = await verify(req, body);
      } catch (e) {
        console.error(e);
        err = 'AccessDenied';
      }
      if (err) return refuse(res, err, req.method);
      const via = req.socket.encrypted ? 'tls' : 'plain';
      stats.requests[via]++;
      if (req.headers.authorization && req.headers['x-amz-content-sha256'] === 'UNSIGNED-PAYLOAD') {
        stats.unsigned_payload[via]++;
      }
      if (multipart(s3.store, req, res)) return;
      const done = req.partDone || (() => {});
      const up = http.request({ host: '127.0.0.1', port: innerPort, method: req.method,
        path: req.url, headers: req.headers }, (r) => {
        r.on('close', done); // after its end, or when it failed
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      up.on('error', (e) => {
        done();
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(String(e));
      });
      up.end(body);
    });
  };
  const listen = (server, port) => new Promise((resolve, reject) => {
    server.keepAliveTimeout = 30e3;
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server.address().port));
  });
  const front = http.createServer(handle);
  const secure = tls && https.createServer(tls, handle);
  const ports = [await listen(front, +(args[1] || 0))];
  if (secure) ports.push(await listen(secure, 0));
  console.log(`ready ${ports.join(' ')}`);
  const stop = () => {
    front.close();
    if (secure) secure.close();
    s3.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
