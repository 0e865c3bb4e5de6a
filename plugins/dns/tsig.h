/*
 * dns/tsig.h - TSIG (RFC 8945) with HMAC-SHA256 and HMAC-SHA512: signing a
 * request built with dns/wire.h, and verifying a response against the
 * request's MAC.  The HMAC is libcrypto's (drrun/libcrypto.h).
 */
#ifndef DRR_DNS_TSIG_H
#define DRR_DNS_TSIG_H

#include "dns/wire.h"

#define DRR_TSIG_SECRET_MAX 256
#define DRR_TSIG_MAC_MAX 64
#define DRR_TSIG_FUDGE 300

enum { /* TSIG error codes (RFC 8945 4.3) */
	DRR_TSIG_BADSIG = 16,
	DRR_TSIG_BADKEY = 17,
	DRR_TSIG_BADTIME = 18,
	DRR_TSIG_BADTRUNC = 22,
};

struct drr_tsig_key {
	uint8_t name[DRR_DNS_NAME_MAX]; /* canonical (lowercase) wire form */
	size_t nlen;
	uint8_t alg[DRR_DNS_NAME_MAX];
	size_t alen;
	size_t maclen; /* 32 or 64 */
	uint8_t secret[DRR_TSIG_SECRET_MAX];
	size_t slen;
};

/* The TSIG variables that go into the digest after the message. */
struct drr_tsig_vars {
	const uint8_t *name; /* owner (key) name, wire */
	size_t nlen;
	uint16_t rclass;
	uint32_t ttl;
	const uint8_t *alg; /* algorithm name, wire */
	size_t alen;
	uint64_t time_signed; /* 48 bits */
	uint16_t fudge, error;
	const uint8_t *other;
	uint16_t olen;
};

/* Set up a key: name and algorithm ("hmac-sha256" or "hmac-sha512", a final
 * dot optional), the secret's base64 text.  Returns 0, or -1 with err
 * naming what is wrong (never the secret). */
int drr_tsig_key_init(struct drr_tsig_key *k, const char *name, const char *alg,
		      const char *secret_b64, char *err, size_t errlen);
/* Decode base64 (whitespace ignored) into out; returns the length or -1. */
int drr_tsig_base64(const char *s, uint8_t *out, size_t cap);

/* The exact bytes HMAC covers (RFC 8945 4.3.3): the request MAC as a uint16
 * length and its bytes when reqmac is not NULL, then msg[0..len) with its
 * ID replaced by orig_id (the caller gives the message without the TSIG RR,
 * ARCOUNT not counting it), then the variables, names lowercased.  Returns
 * the length written to out, or 0 if cap is too small. */
size_t drr_tsig_digest_input(const uint8_t *msg, size_t len, uint16_t orig_id,
			     const uint8_t *reqmac, size_t reqmaclen, const struct drr_tsig_vars *v,
			     uint8_t *out, size_t cap);
/* HMAC of in[0..n) under the key's algorithm into mac (key->maclen bytes).
 * Returns 0, or -1 when libcrypto fails. */
int drr_tsig_hmac(const struct drr_tsig_key *k, const uint8_t *in, size_t n, uint8_t *mac);

/* Sign the message in b (complete but for TSIG): append the TSIG RR, count
 * it in ARCOUNT.  The MAC goes to mac (key->maclen bytes), for verifying
 * the answer.  Returns 0, or -1 with err (no room, libcrypto). */
int drr_tsig_sign(struct drr_dns_builder *b, const struct drr_tsig_key *k, uint64_t now,
		  uint16_t fudge, const uint8_t *reqmac, size_t reqmaclen, uint8_t *mac,
		  char *err, size_t errlen);

enum {
	DRR_TSIG_OK = 0,
	DRR_TSIG_UNSIGNED,   /* the message has no TSIG */
	DRR_TSIG_FORMERR,    /* its TSIG record is malformed */
	DRR_TSIG_WRONG_KEY,  /* signed with another key name or algorithm (BADKEY) */
	DRR_TSIG_BAD_MAC,    /* the MAC does not verify (BADSIG) */
	DRR_TSIG_TRUNCATED,  /* the MAC is shorter than allowed (BADTRUNC) */
	DRR_TSIG_BAD_TIME,   /* the MAC verifies, the time is outside the fudge (BADTIME) */
	DRR_TSIG_PEER_ERROR, /* the peer's TSIG reports an error on our request */
};

struct drr_tsig_verdict {
	int result;		/* DRR_TSIG_* */
	uint16_t error;		/* the TSIG's error field (the peer's verdict) */
	uint64_t time_signed;	/* as the TSIG says */
	uint64_t other_time;	/* with BADTIME: the peer's clock, from Other Data */
	uint16_t fudge, orig_id;
	uint8_t mac[DRR_TSIG_MAC_MAX];
	size_t maclen;
	char why[160];
};

/* Verify the TSIG of a parsed message: key name and algorithm first
 * (WRONG_KEY), then an unsigned error answer (PEER_ERROR: BADSIG or BADKEY
 * from the peer carry no MAC), then the MAC (BAD_MAC, TRUNCATED), then the
 * time against now (BAD_TIME), then the error field (PEER_ERROR).
 * reqmac is the request's MAC when msg is a response, else NULL.  Returns
 * the result, also in v->result, with v->why saying it in words. */
int drr_tsig_verify(const struct drr_dns_msg *msg, const struct drr_tsig_key *k,
		    const uint8_t *reqmac, size_t reqmaclen, uint64_t now,
		    struct drr_tsig_verdict *v);

#endif
