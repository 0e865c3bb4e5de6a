/*
 * fuzz/dns.c - libFuzzer harness: the DNS message parser and the TSIG
 * verifier (plugins/dns).  Any input must parse or be refused with a
 * message; a parsed message's names and record data must print, and the
 * data of the known types must read back from its text to the same text;
 * its TSIG (if any) is verified under a fixed key, as an answer with and
 * without a request MAC, without crashing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"

static struct drr_dns_rr rr[DRR_DNS_MSG_MAX / 5 + 1];

static void round_trip(const struct drr_dns_msg *msg, const struct drr_dns_rr *r,
		       const char *text)
{
	switch (r->type) {
	case DRR_DNS_T_A:
	case DRR_DNS_T_AAAA:
	case DRR_DNS_T_NS:
	case DRR_DNS_T_CNAME:
	case DRR_DNS_T_MX:
	case DRR_DNS_T_TXT:
	case DRR_DNS_T_SOA:
	case DRR_DNS_T_SRV:
	case DRR_DNS_T_CAA:
		break;
	default:
		return;
	}
	static uint8_t buf[DRR_DNS_MSG_MAX];
	static char again[DRR_DNS_RDATA_TEXT_MAX];
	struct drr_dns_builder b;
	char err[200];
	uint8_t root = 0;
	drr_dns_build_init(&b, buf, sizeof buf, 0, 0);
	if (drr_dns_build_rr(&b, DRR_DNS_S_ANSWER, &root, 1, r->type, DRR_DNS_C_IN, 0, text, err,
			     sizeof err) < 0 || b.failed)
		abort(); /* what we print, we must read */
	static struct drr_dns_rr rr2[2];
	struct drr_dns_msg m2;
	if (drr_dns_parse(buf, b.len, &m2, rr2, 2, err, sizeof err) < 0)
		abort();
	if (drr_dns_rdata_text(&m2, &rr2[0], again, sizeof again, err, sizeof err) < 0 ||
	    strcmp(again, text))
		abort();
	(void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct drr_dns_msg msg;
	char err[200];
	static char text[DRR_DNS_RDATA_TEXT_MAX];
	if (drr_dns_parse(data, size, &msg, rr, sizeof rr / sizeof rr[0], err, sizeof err) < 0) {
		if (!err[0])
			abort();
		return 0;
	}
	for (size_t i = 0; i < msg.nrr; i++) {
		const struct drr_dns_rr *r = &msg.rr[i];
		uint8_t wire[DRR_DNS_NAME_MAX];
		size_t wlen;
		char name[DRR_DNS_NAME_TEXT_MAX];
		if (drr_dns_name_read(msg.m, msg.len, r->name_off, wire, &wlen, NULL, err,
				      sizeof err) < 0)
			abort(); /* the parse checked it */
		drr_dns_name_text(wire, wlen, name);
		uint8_t back[DRR_DNS_NAME_MAX];
		size_t blen;
		if (drr_dns_name_parse(name, strlen(name), back, &blen, err, sizeof err) < 0 ||
		    blen != wlen || memcmp(back, wire, wlen))
			abort(); /* names print and read back */
		if (r->section == DRR_DNS_S_QUESTION || r->rclass == DRR_DNS_C_ANY ||
		    (r->rclass == DRR_DNS_C_NONE && !r->rdlen))
			continue;
		int n = drr_dns_rdata_text(&msg, r, text, sizeof text, err, sizeof err);
		if (n >= 0 && (int)i != msg.opt)
			round_trip(&msg, r, text);
		drr_dns_soa_serial(&msg, r);
	}
	static struct drr_tsig_key key;
	static int have_key;
	if (!have_key) {
		if (drr_tsig_key_init(&key, "drrun-key.", "hmac-sha256",
				      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", err,
				      sizeof err) < 0)
			abort();
		have_key = 1;
	}
	static const uint8_t reqmac[32] = { 1, 2, 3 };
	struct drr_tsig_verdict v;
	drr_tsig_verify(&msg, &key, NULL, 0, 1700000000, &v);
	drr_tsig_verify(&msg, &key, reqmac, sizeof reqmac, 1700000000, &v);
	return 0;
}
