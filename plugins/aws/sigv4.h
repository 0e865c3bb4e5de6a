/*
 * aws/sigv4.h - AWS Signature Version 4, as pure functions over a request
 * description: canonical request, string to sign, signature, the
 * Authorization header and presigned query strings.  No I/O, no allocation
 * the caller must track beyond the one result buffer each call returns.
 *
 * The canonicalisation follows AWS's published rules and its two test
 * suites (botocore's aws4_testsuite and aws-c-auth's v4 suite), which
 * tests/unit/test_sigv4.c runs in full.
 */
#ifndef DRR_AWS_SIGV4_H
#define DRR_AWS_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "drrun/plugin.h"

struct drr_sigv4_header {
	const char *name;
	const char *value; /* as sent; folded lines may contain "\n " */
};

struct drr_sigv4_req {
	const char *method;
	/* The path as it is sent on the wire.  With double_encode (every
	 * service but S3) it is URI-encoded again for the canonical request;
	 * without it, only bytes that are neither unreserved, '/' nor an
	 * existing %XX escape are encoded. */
	const char *path;
	const char *query; /* as sent, without '?'; NULL or "" for none */
	const struct drr_sigv4_header *headers;
	int nheaders;
	/* Hex SHA-256 of the payload, or "UNSIGNED-PAYLOAD". */
	const char *payload_hash;
};

struct drr_sigv4_cfg {
	const char *access_key, *secret_key;
	const char *token; /* session token, or NULL */
	const char *region, *service;
	time_t when;
	int normalize_path; /* remove dot segments and empty segments */
	int double_encode;  /* see drr_sigv4_req.path */
	int sign_body;	    /* add and sign x-amz-content-sha256 */
	int omit_token;	    /* the token is added after signing, unsigned */
	long expires;	    /* presigned URLs: seconds, 1..604800 */
	/* The SHA-256 of secret_key, when the caller knows it (the signing
	 * key's cache is found by it), else NULL: the signer hashes it. */
	const unsigned char *secret_md;
};

/* The result of signing.  Every string lives in one block, mem, which the
 * result owns (or, from drr_sigv4_sign_in, the caller's buffer does). */
struct drr_sigv4_out {
	char *canonical; /* the canonical request */
	char *to_sign;	 /* the string to sign */
	char signature[65];
	char *authorization; /* header signing: the Authorization value */
	char *query;	     /* query signing: the whole new query string */
	char amz_date[17];   /* 20150830T123600Z */
	/* Headers the caller must send besides its own, as "name: value"
	 * pairs (x-amz-date, x-amz-security-token, x-amz-content-sha256). */
	const char *add_names[3];
	char *add_values[3];
	int nadd;
	char *mem;
};

/* Sign with an Authorization header.  Returns 0, or -1 with a one-line
 * reason in err (a missing field, a bad expiry). */
int drr_sigv4_sign_header(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r,
			  struct drr_sigv4_out *out, char *err, size_t errlen);
/* Sign in the query string (a presigned URL).  The result's query holds
 * the request's own parameters and the X-Amz-* ones. */
int drr_sigv4_sign_query(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r,
			 struct drr_sigv4_out *out, char *err, size_t errlen);
/* Either of the two (query: presigned), with every string of the result
 * in mem, a buffer the caller keeps and reuses: its old contents are
 * dropped, and the result is valid until mem changes.  Nothing else is
 * allocated.  The result needs no drr_sigv4_out_free. */
int drr_sigv4_sign_in(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r, int query,
		      struct drr_sigv4_out *out, struct drr_buf *mem, char *err, size_t errlen);
void drr_sigv4_out_free(struct drr_sigv4_out *out);

/* URI-encode per SigV4 (unreserved A-Z a-z 0-9 - _ . ~ kept); with
 * keep_slash, '/' is kept too.  Appends to b. */
void drr_sigv4_uri_encode(struct drr_buf *b, const char *s, size_t n, int keep_slash);
/* What drr_sigv4_cfg.secret_md holds: the SHA-256 of the secret. */
void drr_sigv4_secret_md(const char *secret, unsigned char md[32]);
/* The SigV4 signing key for a date (YYYYMMDD), region and service. */
void drr_sigv4_signing_key(const char *secret, const char *date, const char *region,
			   const char *service, unsigned char key[32]);
/* HMAC-SHA256 over OpenSSL's direct SHA-256 (no EVP). */
void drr_hmac_sha256(const void *key, size_t klen, const void *msg, size_t n,
		     unsigned char out[32]);

#endif
