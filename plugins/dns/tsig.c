/*
 * tsig.c - TSIG (RFC 8945): the digest input, HMAC-SHA256/512 through
 * libcrypto, signing and verifying (dns/tsig.h).  Check order on receipt,
 * as RFC 8945 5.2 and 5.3: key and algorithm, then the MAC, then the time.
 */
#include "dns/tsig.h"

#include "drrun/libcrypto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int drr_tsig_base64(const char *s, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	int bits = 0, pad = 0;
	size_t n = 0;
	for (; *s; s++) {
		int c = (unsigned char)*s, v;
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad)
			return -1; /* data after padding */
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == cap)
				return -1;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	if (pad > 2 || bits >= 6 || (acc & ((1u << bits) - 1)))
		return -1;
	return (int)n;
}

int drr_tsig_key_init(struct drr_tsig_key *k, const char *name, const char *alg,
		      const char *secret_b64, char *err, size_t errlen)
{
	char why[128];
	memset(k, 0, sizeof *k);
	if (drr_dns_name_parse(name, strlen(name), k->name, &k->nlen, why, sizeof why) < 0) {
		snprintf(err, errlen, "key name: %s", why);
		return -1;
	}
	drr_dns_name_lower(k->name, k->nlen);
	size_t al = strlen(alg);
	if (al && alg[al - 1] == '.')
		al--;
	if (al == 11 && !strncasecmp(alg, "hmac-sha256", 11))
		k->maclen = 32;
	else if (al == 11 && !strncasecmp(alg, "hmac-sha512", 11))
		k->maclen = 64;
	else {
		snprintf(err, errlen, "key algorithm '%.40s' is not hmac-sha256 or hmac-sha512",
			 alg);
		return -1;
	}
	drr_dns_name_parse(k->maclen == 32 ? "hmac-sha256." : "hmac-sha512.", 12, k->alg,
			   &k->alen, NULL, 0);
	int n = drr_tsig_base64(secret_b64, k->secret, sizeof k->secret);
	if (n <= 0) {
		snprintf(err, errlen, "key secret is not base64 (or is empty, or over %d bytes)",
			 DRR_TSIG_SECRET_MAX);
		memset(k->secret, 0, sizeof k->secret);
		return -1;
	}
	k->slen = (size_t)n;
	return 0;
}

size_t drr_tsig_digest_input(const uint8_t *msg, size_t len, uint16_t orig_id,
			     const uint8_t *reqmac, size_t reqmaclen, const struct drr_tsig_vars *v,
			     uint8_t *out, size_t cap)
{
	size_t need = (reqmac ? 2 + reqmaclen : 0) + len + v->nlen + 2 + 4 + v->alen + 6 + 2 + 2 +
		      2 + v->olen;
	if (need > cap || len < 12)
		return 0;
	size_t o = 0;
	if (reqmac) {
		put16(out, (uint16_t)reqmaclen);
		memcpy(out + 2, reqmac, reqmaclen);
		o = 2 + reqmaclen;
	}
	memcpy(out + o, msg, len);
	put16(out + o, orig_id);
	o += len;
	memcpy(out + o, v->name, v->nlen);
	drr_dns_name_lower(out + o, v->nlen);
	o += v->nlen;
	put16(out + o, v->rclass);
	out[o + 2] = (uint8_t)(v->ttl >> 24), out[o + 3] = (uint8_t)(v->ttl >> 16);
	out[o + 4] = (uint8_t)(v->ttl >> 8), out[o + 5] = (uint8_t)v->ttl;
	o += 6;
	memcpy(out + o, v->alg, v->alen);
	drr_dns_name_lower(out + o, v->alen);
	o += v->alen;
	for (int i = 5; i >= 0; i--)
		out[o++] = (uint8_t)(v->time_signed >> (8 * i));
	put16(out + o, v->fudge);
	put16(out + o + 2, v->error);
	put16(out + o + 4, v->olen);
	o += 6;
	if (v->olen)
		memcpy(out + o, v->other, v->olen);
	o += v->olen;
	return o;
}

int drr_tsig_hmac(const struct drr_tsig_key *k, const uint8_t *in, size_t n, uint8_t *mac)
{
	unsigned int ml = 0;
	const EVP_MD *md = k->maclen == 64 ? EVP_sha512() : EVP_sha256();
	if (!HMAC(md, k->secret, (int)k->slen, in, n, mac, &ml) || ml != k->maclen)
		return -1;
	return 0;
}

/* room for a 64 KiB message, a request MAC and the variables */
#define DIGEST_CAP (DRR_DNS_MSG_MAX + 2 * DRR_DNS_NAME_MAX + 128 + DRR_TSIG_MAC_MAX)

int drr_tsig_sign(struct drr_dns_builder *b, const struct drr_tsig_key *k, uint64_t now,
		  uint16_t fudge, const uint8_t *reqmac, size_t reqmaclen, uint8_t *mac,
		  char *err, size_t errlen)
{
	static uint8_t in[DIGEST_CAP]; /* the loop's thread only */
	if (b->failed || b->len < 12) {
		snprintf(err, errlen, "the message does not fit");
		return -1;
	}
	uint16_t id = get16(b->buf);
	struct drr_tsig_vars v = { k->name, k->nlen, DRR_DNS_C_ANY, 0, k->alg, k->alen,
				   now & 0xffffffffffffULL, fudge, 0, NULL, 0 };
	size_t n = drr_tsig_digest_input(b->buf, b->len, id, reqmac, reqmaclen, &v, in, sizeof in);
	if (!n || drr_tsig_hmac(k, in, n, mac) < 0) {
		snprintf(err, errlen, n ? "HMAC failed (libcrypto)" : "the message does not fit");
		return -1;
	}
	drr_dns_build_name(b, k->name, k->nlen, 0);
	drr_dns_build_u16(b, DRR_DNS_T_TSIG);
	drr_dns_build_u16(b, DRR_DNS_C_ANY);
	drr_dns_build_u32(b, 0);
	drr_dns_build_u16(b, (uint16_t)(k->alen + 10 + k->maclen + 6));
	drr_dns_build_bytes(b, k->alg, k->alen);
	drr_dns_build_u16(b, (uint16_t)(v.time_signed >> 32));
	drr_dns_build_u32(b, (uint32_t)v.time_signed);
	drr_dns_build_u16(b, fudge);
	drr_dns_build_u16(b, (uint16_t)k->maclen);
	drr_dns_build_bytes(b, mac, k->maclen);
	drr_dns_build_u16(b, id);
	drr_dns_build_u16(b, 0); /* error */
	drr_dns_build_u16(b, 0); /* other len */
	drr_dns_build_count(b, DRR_DNS_S_ADDITIONAL);
	if (b->failed) {
		snprintf(err, errlen, "the signed message does not fit");
		return -1;
	}
	return 0;
}

static int verdict(struct drr_tsig_verdict *v, int result, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int verdict(struct drr_tsig_verdict *v, int result, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof v->why, fmt, ap);
	va_end(ap);
	v->result = result;
	return result;
}

int drr_tsig_verify(const struct drr_dns_msg *msg, const struct drr_tsig_key *k,
		    const uint8_t *reqmac, size_t reqmaclen, uint64_t now,
		    struct drr_tsig_verdict *v)
{
	static uint8_t in[DIGEST_CAP];
	memset(v, 0, sizeof *v);
	if (msg->tsig < 0)
		return verdict(v, DRR_TSIG_UNSIGNED, "the answer is not signed");
	const struct drr_dns_rr *t = &msg->rr[msg->tsig];
	const uint8_t *m = msg->m;
	uint8_t owner[DRR_DNS_NAME_MAX], alg[DRR_DNS_NAME_MAX];
	size_t olen, alen, pos = t->rdata_off, end = (size_t)t->rdata_off + t->rdlen;
	if (drr_dns_name_read(m, msg->len, t->name_off, owner, &olen, NULL, NULL, 0) < 0 ||
	    drr_dns_name_read(m, end, pos, alg, &alen, &pos, NULL, 0) < 0 || pos + 10 > end)
		return verdict(v, DRR_TSIG_FORMERR, "the TSIG record is malformed");
	v->time_signed = (uint64_t)get16(m + pos) << 32 | (uint64_t)get16(m + pos + 2) << 16 |
			 get16(m + pos + 4);
	v->fudge = get16(m + pos + 6);
	size_t macsize = get16(m + pos + 8);
	pos += 10;
	if (pos + macsize + 6 > end)
		return verdict(v, DRR_TSIG_FORMERR, "the TSIG record is malformed");
	const uint8_t *mac = m + pos;
	pos += macsize;
	v->orig_id = get16(m + pos);
	v->error = get16(m + pos + 2);
	uint16_t other_len = get16(m + pos + 4);
	pos += 6;
	if (pos + other_len != end)
		return verdict(v, DRR_TSIG_FORMERR, "the TSIG record is malformed");
	const uint8_t *other = m + pos;
	if (other_len == 6)
		v->other_time = (uint64_t)get16(other) << 32 | (uint64_t)get16(other + 2) << 16 |
				get16(other + 4);
	if (!drr_dns_name_equal(owner, olen, k->name, k->nlen) ||
	    !drr_dns_name_equal(alg, alen, k->alg, k->alen))
		return verdict(v, DRR_TSIG_WRONG_KEY, "signed with another key or algorithm");
	if (v->error && macsize == 0) {
		char b[16];
		return verdict(v, DRR_TSIG_PEER_ERROR, "the server says %s",
			       drr_dns_rcode_name(v->error, b));
	}
	if (macsize > k->maclen)
		return verdict(v, DRR_TSIG_FORMERR, "the MAC is longer than the algorithm's");
	size_t least = k->maclen / 2 > 10 ? k->maclen / 2 : 10;
	if (macsize < least)
		return verdict(v, DRR_TSIG_TRUNCATED, "the MAC is truncated to %zu bytes", macsize);
	/* the message as it was signed: without the TSIG RR, ARCOUNT one less */
	struct drr_tsig_vars tv = { owner, olen, t->rclass, t->ttl, alg, alen, v->time_signed,
				    v->fudge, v->error, other, other_len };
	size_t n = drr_tsig_digest_input(m, t->start, v->orig_id, reqmac, reqmaclen, &tv, in,
					 sizeof in);
	if (!n)
		return verdict(v, DRR_TSIG_FORMERR, "the message does not fit");
	size_t ac = (size_t)(reqmac ? 2 + reqmaclen : 0) + 10;
	put16(in + ac, (uint16_t)(msg->count[3] - 1));
	uint8_t want[DRR_TSIG_MAC_MAX];
	if (drr_tsig_hmac(k, in, n, want) < 0)
		return verdict(v, DRR_TSIG_BAD_MAC, "HMAC failed (libcrypto)");
	memcpy(v->mac, mac, macsize);
	v->maclen = macsize;
	if (CRYPTO_memcmp(want, mac, macsize) != 0)
		return verdict(v, DRR_TSIG_BAD_MAC, "the MAC does not verify");
	uint64_t d = now > v->time_signed ? now - v->time_signed : v->time_signed - now;
	if (d > v->fudge)
		return verdict(v, DRR_TSIG_BAD_TIME,
			       "signed at %llu, %llu seconds from this host's clock (fudge %u)",
			       (unsigned long long)v->time_signed, (unsigned long long)d, v->fudge);
	if (v->error) {
		char b[16];
		return verdict(v, DRR_TSIG_PEER_ERROR, "the server says %s",
			       drr_dns_rcode_name(v->error, b));
	}
	return verdict(v, DRR_TSIG_OK, "verified");
}
