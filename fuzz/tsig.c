/*
 * fuzz/tsig.c - libFuzzer harness: TSIG signing and verification
 * (plugins/dns/tsig.c) on messages the parser accepts.  The first byte
 * picks the algorithm and whether a request MAC is chained in, the next two
 * where to flip a bit; the rest is a DNS message.  If it parses and has no
 * TSIG yet, it is signed; the signed message must parse and verify, and the
 * same message with one bit flipped must parse and be refused, or be
 * refused by the parser, never verify.  A message that has a TSIG already is
 * verified as it is, which must not crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"

static struct drr_dns_rr rr[DRR_DNS_MSG_MAX / 5 + 1];
static uint8_t buf[DRR_DNS_MSG_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3 + 12)
		return 0;
	int sha512 = data[0] & 1, chained = (data[0] >> 1) & 1;
	size_t flip = (size_t)(data[1] << 8 | data[2]);
	data += 3;
	size -= 3;
	struct drr_dns_msg msg;
	char err[200];
	static struct drr_tsig_key key;
	if (drr_tsig_key_init(&key, "fuzz-key.", sha512 ? "hmac-sha512" : "hmac-sha256",
			      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", err, sizeof err) < 0)
		abort();
	static const uint8_t reqmac[64] = { 9, 8, 7 };
	const uint8_t *rm = chained ? reqmac : NULL;
	size_t rml = chained ? key.maclen : 0;
	struct drr_tsig_verdict v;
	if (drr_dns_parse(data, size, &msg, rr, sizeof rr / sizeof rr[0], err, sizeof err) < 0)
		return 0;
	if (msg.tsig >= 0) {
		drr_tsig_verify(&msg, &key, rm, rml, 1700000000, &v);
		return 0;
	}
	if (size + 400 > sizeof buf)
		return 0;
	struct drr_dns_builder b;
	drr_dns_build_init(&b, buf, sizeof buf, 0, 0);
	memcpy(buf, data, size);
	b.len = size;
	uint8_t mac[DRR_TSIG_MAC_MAX];
	if (drr_tsig_sign(&b, &key, 1700000000, 300, rm, rml, mac, err, sizeof err) < 0)
		return 0; /* only when it does not fit */
	if (drr_dns_parse(buf, b.len, &msg, rr, sizeof rr / sizeof rr[0], err, sizeof err) < 0)
		abort(); /* we signed what parsed: it must still parse */
	if (drr_tsig_verify(&msg, &key, rm, rml, 1700000100, &v) != DRR_TSIG_OK)
		abort();
	if (memcmp(v.mac, mac, key.maclen))
		abort();
	/* one bit flipped anywhere: never verifies */
	size_t at = flip % b.len;
	buf[at] ^= (uint8_t)(1u << (flip % 8));
	if (drr_dns_parse(buf, b.len, &msg, rr, sizeof rr / sizeof rr[0], err, sizeof err) == 0 &&
	    drr_tsig_verify(&msg, &key, rm, rml, 1700000100, &v) == DRR_TSIG_OK) {
		/* two flips are allowed to verify: the header's ID (the MAC
		 * covers the Original ID instead, RFC 8945 4.3.1, so a
		 * forwarder may renumber), and a case bit in the TSIG's own
		 * names (the digest takes them lowercased); anything else
		 * verifying is a bug */
		uint8_t c = buf[at] ^ 0x20;
		int letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
		if (at >= 2 && !(letter && (flip % 8) == 5 && at >= msg.rr[msg.tsig].start))
			abort();
	}
	return 0;
}
