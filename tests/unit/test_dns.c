/*
 * test_dns.c - the DNS plugin's pure C: the wire format (names, compression
 * both ways, every record type's text, EDNS0, the parser's refusals) and
 * TSIG against every vector of $DRRUN_VECTORS/tsig (default
 * ../shared/vectors): dnspython's generated request and response, and
 * miekg/dns's verify and generate cases.  A missing vector file is a
 * failure, and the count of vectors run is printed and checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dns/dns.h"

static const char *vectors(void)
{
	const char *v = getenv("DRRUN_VECTORS");
	return v && *v ? v : "../shared/vectors";
}

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = strlen(h) / 2;
	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void assert_hex(const uint8_t *p, size_t n, const char *want)
{
	char *got = malloc(2 * n + 1);
	for (size_t i = 0; i < n; i++)
		snprintf(got + 2 * i, 3, "%02x", p[i]);
	got[2 * n] = 0;
	if (strcmp(got, want)) {
		fprintf(stderr, "got  %s\nwant %s\n", got, want);
		free(got);
		fail_msg("bytes differ");
	}
	free(got);
}

static struct drr_dns_rr rrs[20000];

static int parse(const uint8_t *m, size_t n, struct drr_dns_msg *msg, char *err)
{
	return drr_dns_parse(m, n, msg, rrs, sizeof rrs / sizeof rrs[0], err, 200);
}

/* ---- names ------------------------------------------------------------------------ */

static void names_parse_and_print(void **state)
{
	(void)state;
	uint8_t w[DRR_DNS_NAME_MAX];
	size_t wl;
	char err[200], text[DRR_DNS_NAME_TEXT_MAX];
	assert_int_equal(drr_dns_name_parse("www.Example.test", 16, w, &wl, err, sizeof err), 0);
	assert_int_equal(wl, 18);
	drr_dns_name_text(w, wl, text);
	assert_string_equal(text, "www.Example.test.");
	assert_int_equal(drr_dns_name_parse("a\\.b.c.", 7, w, &wl, err, sizeof err), 0);
	assert_int_equal(w[0], 3);
	drr_dns_name_text(w, wl, text);
	assert_string_equal(text, "a\\.b.c.");
	assert_int_equal(drr_dns_name_parse("\\065\\000.", 9, w, &wl, err, sizeof err), 0);
	drr_dns_name_text(w, wl, text);
	assert_string_equal(text, "A\\000.");
	assert_int_equal(drr_dns_name_parse(".", 1, w, &wl, err, sizeof err), 0);
	assert_int_equal(wl, 1);

	char big[400];
	memset(big, 'a', 64);
	big[64] = 0;
	assert_int_equal(drr_dns_name_parse(big, 64, w, &wl, err, sizeof err), -1);
	assert_non_null(strstr(err, "longer than 63"));
	memset(big, 'a', 63); /* 63 is fine */
	assert_int_equal(drr_dns_name_parse(big, 63, w, &wl, err, sizeof err), 0);
	/* 4 labels of 63 = 256 wire bytes with the root: one too many */
	for (int i = 0; i < 4; i++) {
		memset(big + 64 * i, 'b', 63);
		big[64 * i + 63] = '.';
	}
	assert_int_equal(drr_dns_name_parse(big, 256, w, &wl, err, sizeof err), -1);
	assert_non_null(strstr(err, "longer than 255"));
	/* 3 x 63 + 61 = 255 with the root: the most there can be */
	assert_int_equal(drr_dns_name_parse(big, 64 * 3 + 61, w, &wl, err, sizeof err), 0);
	assert_int_equal(wl, 255);
	assert_int_equal(drr_dns_name_parse("a..b", 4, w, &wl, err, sizeof err), -1);
	assert_int_equal(drr_dns_name_parse("a\\", 2, w, &wl, err, sizeof err), -1);
	assert_int_equal(drr_dns_name_parse("a\\25", 4, w, &wl, err, sizeof err), -1);
	assert_int_equal(drr_dns_name_parse("a\\256", 5, w, &wl, err, sizeof err), -1);
}

static void header(uint8_t *m, uint16_t qd, uint16_t an)
{
	memset(m, 0, 12);
	m[0] = 0x12, m[1] = 0x34, m[2] = 0x81, m[3] = 0x80;
	m[5] = (uint8_t)qd, m[7] = (uint8_t)an;
}

static void parser_refuses_bad_names(void **state)
{
	(void)state;
	uint8_t m[1024];
	struct drr_dns_msg msg;
	char err[200];
	/* a pointer to itself */
	header(m, 1, 0);
	m[12] = 0xc0, m[13] = 12, m[14] = 0, m[15] = 1, m[16] = 0, m[17] = 1;
	assert_int_equal(parse(m, 18, &msg, err), -1);
	assert_non_null(strstr(err, "loop"));
	/* two names pointing at each other, the second forwards */
	header(m, 2, 0);
	m[12] = 1, m[13] = 'a', m[14] = 0xc0, m[15] = 20; /* a -> offset 20 */
	m[16] = 0, m[17] = 1, m[18] = 0, m[19] = 1;
	m[20] = 1, m[21] = 'b', m[22] = 0xc0, m[23] = 12; /* b -> offset 12 */
	m[24] = 0, m[25] = 1, m[26] = 0, m[27] = 1;
	assert_int_equal(parse(m, 28, &msg, err), -1);
	assert_non_null(strstr(err, "backwards"));
	/* a label that jumps back to a label ending in a pointer to itself */
	header(m, 1, 0);
	m[12] = 1, m[13] = 'x', m[14] = 0xc0, m[15] = 12;
	m[16] = 0, m[17] = 1, m[18] = 0, m[19] = 1;
	assert_int_equal(parse(m, 20, &msg, err), -1);
	/* a pointer past the end */
	header(m, 1, 0);
	m[12] = 0xc1, m[13] = 0x00, m[14] = 0, m[15] = 1, m[16] = 0, m[17] = 1;
	assert_int_equal(parse(m, 18, &msg, err), -1);
	assert_non_null(strstr(err, "past the end"));
	/* a pointer into the header: no name lives there */
	header(m, 1, 0);
	m[12] = 0xc0, m[13] = 5, m[14] = 0, m[15] = 1, m[16] = 0, m[17] = 1;
	assert_int_equal(parse(m, 18, &msg, err), -1);
	assert_non_null(strstr(err, "into the header"));
	/* a pointer cut short */
	header(m, 1, 0);
	m[12] = 0xc0;
	assert_int_equal(parse(m, 13, &msg, err), -1);
	/* label types 01 and 10 */
	header(m, 1, 0);
	m[12] = 0x41, m[13] = 0, m[14] = 0, m[15] = 1, m[16] = 0, m[17] = 1;
	assert_int_equal(parse(m, 18, &msg, err), -1);
	assert_non_null(strstr(err, "label type"));
	/* 128 labels of one byte: 257 bytes */
	header(m, 1, 0);
	size_t p = 12;
	for (int i = 0; i < 128; i++)
		m[p++] = 1, m[p++] = 'z';
	m[p++] = 0;
	m[p++] = 0, m[p++] = 1, m[p++] = 0, m[p++] = 1;
	assert_int_equal(parse(m, p, &msg, err), -1);
	assert_non_null(strstr(err, "longer than 255"));
	/* a label running past the end */
	header(m, 1, 0);
	m[12] = 10, m[13] = 'a';
	assert_int_equal(parse(m, 14, &msg, err), -1);
	/* a header promising more records than there are bytes */
	header(m, 0, 0);
	m[6] = 0xff, m[7] = 0xff;
	assert_int_equal(drr_dns_parse(m, 12, &msg, rrs, 3, err, sizeof err), -1);
	/* trailing bytes */
	header(m, 0, 0);
	assert_int_equal(parse(m, 13, &msg, err), -1);
	assert_int_equal(parse(m, 11, &msg, err), -1);
}

/* ---- building and parsing records ---------------------------------------------------- */

static const struct {
	const char *type, *in, *out;
} records[] = {
	{ "A", "192.0.2.1", "192.0.2.1" },
	{ "AAAA", "2001:db8::1", "2001:db8::1" },
	{ "CNAME", "target.example.test.", "target.example.test." },
	{ "NS", "ns1.example.test", "ns1.example.test." },
	{ "MX", "10 mail.example.test.", "10 mail.example.test." },
	{ "TXT", "v=spf1 -all", "\"v=spf1 -all\"" },
	{ "TXT", "\"a b\" \"c\\\"d\"", "\"a b\" \"c\\\"d\"" },
	{ "SOA", "ns1.example.test. hostmaster.example.test. 7 3600 600 86400 60",
	  "ns1.example.test. hostmaster.example.test. 7 3600 600 86400 60" },
	{ "SRV", "0 5 5060 sip.example.test.", "0 5 5060 sip.example.test." },
	{ "CAA", "0 issue \"letsencrypt.org\"", "0 issue \"letsencrypt.org\"" },
	{ "TYPE65400", "\\# 3 abcdef", "\\# 3 abcdef" },
	{ "TYPE65401", "\\# 0", "\\# 0" },
	{ "PTR", "host.example.test.", "host.example.test." },
};

static void records_round_trip_with_compression(void **state)
{
	(void)state;
	static uint8_t buf[4096];
	struct drr_dns_builder b;
	char err[200], text[DRR_DNS_RDATA_TEXT_MAX];
	uint8_t w[DRR_DNS_NAME_MAX];
	size_t wl;
	drr_dns_build_init(&b, buf, sizeof buf, 0xbeef, 0x8580);
	drr_dns_name_parse("www.example.test.", 17, w, &wl, err, sizeof err);
	drr_dns_build_question(&b, w, wl, DRR_DNS_T_A, DRR_DNS_C_IN);
	size_t n = sizeof records / sizeof records[0];
	for (size_t i = 0; i < n; i++) {
		int t = drr_dns_type_code(records[i].type);
		assert_true(t > 0);
		if (drr_dns_build_rr(&b, DRR_DNS_S_ANSWER, w, wl, (uint16_t)t, DRR_DNS_C_IN,
				     (uint32_t)(60 + i), records[i].in, err, sizeof err) < 0)
			fail_msg("%s %s: %s", records[i].type, records[i].in, err);
	}
	drr_dns_build_opt(&b, 1232, 1);
	assert_false(b.failed);
	/* every owner after the question is a 2-byte pointer to it */
	size_t uncompressed = 12 + 17 + 1 + 4 + n * (19 + 10);
	(void)uncompressed;
	int pointers = 0;
	for (size_t i = 12; i + 1 < b.len; i++)
		if (b.buf[i] == 0xc0 && b.buf[i + 1] == 12)
			pointers++;
	assert_true(pointers >= (int)n);

	struct drr_dns_msg msg;
	if (parse(b.buf, b.len, &msg, err) < 0)
		fail_msg("%s", err);
	assert_int_equal(msg.id, 0xbeef);
	assert_int_equal(msg.count[1], n);
	assert_int_equal(msg.opt, (int)n + 1);
	assert_int_equal(msg.udp_size, 1232);
	assert_true(msg.dnssec_ok);
	for (size_t i = 0; i < n; i++) {
		const struct drr_dns_rr *r = &msg.rr[1 + i];
		assert_int_equal(r->ttl, 60 + i);
		uint8_t o[DRR_DNS_NAME_MAX];
		size_t ol;
		assert_int_equal(drr_dns_name_read(msg.m, msg.len, r->name_off, o, &ol, NULL, err,
						   sizeof err),
				 0);
		assert_true(drr_dns_name_equal(o, ol, w, wl));
		if (drr_dns_rdata_text(&msg, r, text, sizeof text, err, sizeof err) < 0)
			fail_msg("%s: %s", records[i].type, err);
		if (strcmp(text, records[i].out))
			fail_msg("%s: got '%s', want '%s'", records[i].type, text, records[i].out);
	}
	assert_int_equal(drr_dns_soa_serial(&msg, &msg.rr[8]), 7);
	assert_int_equal(drr_dns_soa_serial(&msg, &msg.rr[1]), -1);
}

/* Names inside record data come back decompressed, whatever they point at. */
static void rdata_names_are_decompressed(void **state)
{
	(void)state;
	/* question example.test. A; answer: CNAME www.<ptr 12> */
	uint8_t m[] = { 0,    1, 0x81, 0x80, 0,	   1,	 0,    1,    0, 0, 0, 0,
			7,    'e', 'x', 'a', 'm', 'p', 'l', 'e', 4,  't', 'e', 's', 't', 0,
			0,    1,   0,   1,   0xc0, 12,	 0,    5,    0, 1, 0, 0, 0, 60,
			0,    6,   3,   'w', 'w', 'w', 0xc0, 12 };
	struct drr_dns_msg msg;
	char err[200], text[256];
	assert_int_equal(parse(m, sizeof m, &msg, err), 0);
	assert_int_equal(drr_dns_rdata_text(&msg, &msg.rr[1], text, sizeof text, err, sizeof err),
			 17);
	assert_string_equal(text, "www.example.test.");
	/* the rdata's name may not run past its rdlength */
	m[sizeof m - 7] = 5;
	assert_int_equal(parse(m, sizeof m - 1, &msg, err), -1);
}

static void bad_record_data_is_refused(void **state)
{
	(void)state;
	uint8_t out[600];
	size_t len;
	char err[200];
	assert_int_equal(drr_dns_rdata_parse(DRR_DNS_T_A, "300.1.1.1", out, sizeof out, &len, err,
					     sizeof err),
			 -1);
	assert_non_null(strstr(err, "not an IPv4 address"));
	assert_int_equal(drr_dns_rdata_parse(DRR_DNS_T_AAAA, "192.0.2.1", out, sizeof out, &len,
					     err, sizeof err),
			 -1);
	assert_int_equal(drr_dns_rdata_parse(DRR_DNS_T_MX, "mail.example.", out, sizeof out, &len,
					     err, sizeof err),
			 -1);
	assert_int_equal(drr_dns_rdata_parse(DRR_DNS_T_MX, "70000 mail.example.", out, sizeof out,
					     &len, err, sizeof err),
			 -1);
	assert_int_equal(drr_dns_rdata_parse(DRR_DNS_T_CNAME, "a.b. extra", out, sizeof out, &len,
					     err, sizeof err),
			 -1);
	assert_int_equal(drr_dns_rdata_parse(DRR_DNS_T_SOA, "a. b. 1 2 3", out, sizeof out, &len,
					     err, sizeof err),
			 -1);
	assert_int_equal(drr_dns_rdata_parse(DRR_DNS_T_CAA, "0 is-sue \"x\"", out, sizeof out, &len,
					     err, sizeof err),
			 -1);
	assert_int_equal(drr_dns_rdata_parse(65400, "plain", out, sizeof out, &len, err,
					     sizeof err),
			 -1);
	assert_int_equal(drr_dns_rdata_parse(65400, "\\# 2 abcdef", out, sizeof out, &len, err,
					     sizeof err),
			 -1);
	/* the wire side: an A of 5 bytes, a TXT string past its rdata */
	uint8_t m[] = { 0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 5,
			1, 2, 3,    4,	  5 };
	struct drr_dns_msg msg;
	assert_int_equal(parse(m, sizeof m, &msg, err), -1);
	assert_non_null(strstr(err, "not 4"));
	m[16] = 16, m[22] = 2, m[23] = 5; /* TXT, rdlen 2, string of 5 */
	assert_int_equal(parse(m, sizeof m - 3, &msg, err), -1);
}

static void edns_extended_rcode(void **state)
{
	(void)state;
	uint8_t buf[512];
	struct drr_dns_builder b;
	drr_dns_build_init(&b, buf, sizeof buf, 7, 0x8000 | 0x0001);
	drr_dns_build_opt(&b, 4096, 0);
	buf[b.len - 6] = 0x01; /* extended rcode 1: 16 + 1 = 17 */
	struct drr_dns_msg msg;
	char err[200], nb[16];
	assert_int_equal(parse(buf, b.len, &msg, err), 0);
	assert_int_equal(msg.rcode, 17);
	assert_string_equal(drr_dns_rcode_name(msg.rcode, nb), "BADKEY");
	assert_int_equal(msg.udp_size, 4096);
	/* two OPTs are refused */
	drr_dns_build_opt(&b, 4096, 0);
	assert_int_equal(parse(buf, b.len, &msg, err), -1);
}

/* Every prefix of a good message fails cleanly (and never reads past it). */
static void every_prefix_is_refused(void **state)
{
	(void)state;
	static uint8_t buf[4096];
	struct drr_dns_builder b;
	char err[200];
	uint8_t w[DRR_DNS_NAME_MAX];
	size_t wl;
	drr_dns_build_init(&b, buf, sizeof buf, 1, 0x8180);
	drr_dns_name_parse("a.example.test", 14, w, &wl, err, sizeof err);
	drr_dns_build_question(&b, w, wl, DRR_DNS_T_MX, DRR_DNS_C_IN);
	drr_dns_build_rr(&b, 1, w, wl, DRR_DNS_T_MX, 1, 60, "5 mx.example.test.", err, sizeof err);
	drr_dns_build_rr(&b, 1, w, wl, DRR_DNS_T_TXT, 1, 60, "hello", err, sizeof err);
	struct drr_dns_msg msg;
	assert_int_equal(parse(buf, b.len, &msg, err), 0);
	for (size_t cut = 0; cut < b.len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		memcpy(copy, buf, cut);
		assert_int_equal(parse(copy, cut, &msg, err), -1);
		free(copy);
	}
}

static void builder_runs_out_of_room(void **state)
{
	(void)state;
	uint8_t buf[40];
	struct drr_dns_builder b;
	char err[200];
	uint8_t w[DRR_DNS_NAME_MAX];
	size_t wl;
	drr_dns_build_init(&b, buf, sizeof buf, 1, 0);
	drr_dns_name_parse("a-rather-long-name.example.test", 31, w, &wl, err, sizeof err);
	drr_dns_build_question(&b, w, wl, 1, 1);
	assert_true(b.failed);
}

/* ---- TSIG --------------------------------------------------------------------------- */

static int vectors_run;

static json_t *load(const char *file)
{
	char *path = drr_xasprintf("%s/tsig/%s", vectors(), file);
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (!j)
		fail_msg("cannot read the TSIG vectors %s: %s (is $DRRUN_VECTORS or "
			 "../shared/vectors there?)",
			 path, je.text);
	free(path);
	return j;
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	if (!s)
		fail_msg("vector has no string '%s'", k);
	return s;
}

static void key_of(json_t *doc, struct drr_tsig_key *k)
{
	json_t *key = json_object_get(doc, "key");
	char err[200];
	if (drr_tsig_key_init(k, str(key, "name"), str(key, "algorithm"),
			      str(key, "secret_base64"), err, sizeof err) < 0)
		fail_msg("%s", err);
}

static int verify_hex(const char *hex, const struct drr_tsig_key *k, const uint8_t *reqmac,
		      size_t rml, uint64_t now, struct drr_tsig_verdict *v, uint8_t *m, size_t *n)
{
	struct drr_dns_msg msg;
	char err[200];
	*n = unhex(hex, m, 4096);
	if (parse(m, *n, &msg, err) < 0)
		fail_msg("vector does not parse: %s", err);
	return drr_tsig_verify(&msg, k, reqmac, rml, now, v);
}

static void tsig_dnspython(void **state)
{
	(void)state;
	json_t *doc = load("dnspython-generated-vectors.json");
	struct drr_tsig_key k;
	key_of(doc, &k);
	json_t *cases = json_object_get(doc, "cases");
	assert_int_equal(json_array_size(cases), 2);
	uint8_t m[4096], reqmac[64], in[8192];
	size_t n, rml = 0;
	struct drr_tsig_verdict v;
	for (size_t i = 0; i < json_array_size(cases); i++) {
		json_t *c = json_array_get(cases, i);
		const char *name = str(c, "name");
		uint64_t now = (uint64_t)json_integer_value(json_object_get(c, "now"));
		if (!strcmp(name, "rfc2136-update-request")) {
			assert_int_equal(verify_hex(str(c, "wire_hex"), &k, NULL, 0, now, &v, m, &n),
					 DRR_TSIG_OK);
			assert_hex(v.mac, v.maclen, str(c, "mac_hex"));
			rml = unhex(str(c, "mac_hex"), reqmac, sizeof reqmac);
			/* the digest input, rebuilt from the parsed message */
			struct drr_dns_msg msg;
			char err[200];
			parse(m, n, &msg, err);
			const struct drr_dns_rr *t = &msg.rr[msg.tsig];
			struct drr_tsig_vars tv = { k.name, k.nlen, 255, 0, k.alg, k.alen,
						    v.time_signed, v.fudge, 0, NULL, 0 };
			size_t dn = drr_tsig_digest_input(m, t->start, v.orig_id, NULL, 0, &tv, in,
							  sizeof in);
			in[11] -= 1; /* ARCOUNT without the TSIG */
			assert_hex(in, dn, str(c, "digest_input_hex"));
			/* signing the same message at the same time gives the same MAC */
			static uint8_t buf[4096];
			struct drr_dns_builder b;
			drr_dns_build_init(&b, buf, sizeof buf, 0, 0);
			memcpy(buf, m, t->start);
			b.len = t->start;
			buf[11] -= 1;
			uint8_t mac[64];
			assert_int_equal(drr_tsig_sign(&b, &k, now, 300, NULL, 0, mac, err,
						       sizeof err),
					 0);
			assert_hex(mac, 32, str(c, "mac_hex"));
			assert_int_equal(b.len, n);
			assert_memory_equal(buf, m, n);
		} else {
			assert_int_equal(rml, 32);
			assert_int_equal(verify_hex(str(c, "wire_hex"), &k, reqmac, rml, now, &v, m,
						    &n),
					 DRR_TSIG_OK);
			assert_hex(v.mac, v.maclen, str(c, "mac_hex"));
			/* without the request MAC chained in, it must not verify */
			assert_int_equal(verify_hex(str(c, "wire_hex"), &k, NULL, 0, now, &v, m, &n),
					 DRR_TSIG_BAD_MAC);
		}
		vectors_run++;
	}
	json_decref(doc);
}

static void tsig_miekg_verify(void **state)
{
	(void)state;
	json_t *doc = load("miekg-dns-vectors.json");
	struct drr_tsig_key k;
	key_of(doc, &k);
	json_t *cases = json_object_get(doc, "verify_cases");
	assert_int_equal(json_array_size(cases), 5);
	const char *valid = NULL;
	uint8_t m[4096];
	size_t n;
	struct drr_tsig_verdict v;
	for (size_t i = 0; i < json_array_size(cases); i++) {
		json_t *c = json_array_get(cases, i);
		const char *name = str(c, "name"), *expect = str(c, "expect");
		uint64_t now = (uint64_t)json_integer_value(json_object_get(c, "now"));
		int want = !strcmp(expect, "valid")		  ? DRR_TSIG_OK
			   : !strncmp(expect, "BADTIME", 7)	  ? DRR_TSIG_BAD_TIME
			   : !strncmp(expect, "BADSIG", 6)	  ? DRR_TSIG_BAD_MAC
			   : !strncmp(expect, "BADKEY", 6)	  ? DRR_TSIG_WRONG_KEY
								  : -1;
		assert_int_not_equal(want, -1);
		int got;
		if (!strcmp(name, "signed-update/unknown-algorithm")) {
			/* "overwrite the 5 bytes at offset 67 with ASCII 'bogus'" */
			assert_non_null(valid);
			struct drr_dns_msg msg;
			char err[200];
			n = unhex(valid, m, sizeof m);
			memcpy(m + 67, "bogus", 5);
			assert_int_equal(parse(m, n, &msg, err), 0);
			got = drr_tsig_verify(&msg, &k, NULL, 0, now, &v);
		} else {
			const char *hex = str(c, "wire_hex");
			if (want == DRR_TSIG_OK)
				valid = hex;
			got = verify_hex(hex, &k, NULL, 0, now, &v, m, &n);
			if (want == DRR_TSIG_OK)
				assert_hex(v.mac, v.maclen, str(c, "mac_hex"));
		}
		if (got != want)
			fail_msg("%s: got result %d (%s), want %d", name, got, v.why, want);
		vectors_run++;
	}
	json_decref(doc);
}

static void tsig_miekg_generate(void **state)
{
	(void)state;
	json_t *doc = load("miekg-dns-vectors.json");
	struct drr_tsig_key k;
	key_of(doc, &k);
	json_t *cases = json_object_get(doc, "generate_cases");
	assert_int_equal(json_array_size(cases), 3);
	for (size_t i = 0; i < json_array_size(cases); i++) {
		json_t *c = json_array_get(cases, i), *t = json_object_get(c, "tsig");
		uint8_t m[512], rm[64], other[64], in[2048], mac[64];
		size_t n = unhex(str(c, "message_without_tsig_hex"), m, sizeof m);
		size_t rml = unhex(str(c, "request_mac_hex"), rm, sizeof rm);
		size_t ol = unhex(str(t, "other_data_hex"), other, sizeof other);
		struct drr_tsig_vars tv = {
			k.name,
			k.nlen,
			255,
			0,
			k.alg,
			k.alen,
			(uint64_t)json_integer_value(json_object_get(t, "time_signed")),
			(uint16_t)json_integer_value(json_object_get(t, "fudge")),
			(uint16_t)json_integer_value(json_object_get(t, "error")),
			other,
			(uint16_t)ol,
		};
		uint16_t orig = (uint16_t)json_integer_value(json_object_get(t, "original_id"));
		size_t dn = drr_tsig_digest_input(m, n, orig, rml ? rm : NULL, rml, &tv, in,
						  sizeof in);
		assert_hex(in, dn, str(c, "digest_input_hex"));
		assert_int_equal(drr_tsig_hmac(&k, in, dn, mac), 0);
		assert_hex(mac, 32, str(c, "expected_mac_hex"));
		vectors_run++;
	}
	json_decref(doc);
}

/* Our own signatures, both algorithms, verify; a flipped bit does not. */
static void tsig_sign_verify_both_algorithms(void **state)
{
	(void)state;
	static const char *const algs[] = { "hmac-sha256", "hmac-sha512." };
	for (int a = 0; a < 2; a++) {
		struct drr_tsig_key k;
		char err[200];
		assert_int_equal(drr_tsig_key_init(&k, "Drrun-Key", algs[a],
						   "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
						   err, sizeof err),
				 0);
		static uint8_t buf[1024];
		struct drr_dns_builder b;
		uint8_t w[DRR_DNS_NAME_MAX], mac[64];
		size_t wl;
		drr_dns_build_init(&b, buf, sizeof buf, 0x4242, DRR_DNS_OP_UPDATE << 11);
		drr_dns_name_parse("example.test", 12, w, &wl, err, sizeof err);
		drr_dns_build_question(&b, w, wl, DRR_DNS_T_SOA, 1);
		drr_dns_build_rr(&b, 2, w, wl, 1, 1, 60, "192.0.2.7", err, sizeof err);
		assert_int_equal(drr_tsig_sign(&b, &k, 1700000000, 300, NULL, 0, mac, err,
					       sizeof err),
				 0);
		struct drr_dns_msg msg;
		struct drr_tsig_verdict v;
		if (parse(buf, b.len, &msg, err) < 0)
			fail_msg("%s", err);
		assert_int_equal(drr_tsig_verify(&msg, &k, NULL, 0, 1700000100, &v), DRR_TSIG_OK);
		assert_int_equal(v.maclen, a ? 64 : 32);
		assert_int_equal(drr_tsig_verify(&msg, &k, NULL, 0, 1700000301, &v),
				 DRR_TSIG_BAD_TIME);
		buf[14] ^= 0x20; /* a letter of the zone name changes case */
		assert_int_equal(parse(buf, b.len, &msg, err), 0);
		assert_int_equal(drr_tsig_verify(&msg, &k, NULL, 0, 1700000000, &v),
				 DRR_TSIG_BAD_MAC);
	}
	struct drr_tsig_key k;
	char err[200];
	assert_int_equal(drr_tsig_key_init(&k, "k", "hmac-md5", "AAAA", err, sizeof err), -1);
	assert_int_equal(drr_tsig_key_init(&k, "k", "hmac-sha256", "not base64!", err, sizeof err),
			 -1);
	assert_null(strstr(err, "not base64!")); /* the secret is never echoed */
}

static void tsig_vector_count(void **state)
{
	(void)state;
	/* 2 dnspython + 5 miekg verify + 3 miekg generate */
	fprintf(stderr, "tsig: %d vectors run from %s/tsig\n", vectors_run, vectors());
	printf("# tsig: %d vectors run\n", vectors_run);
	assert_int_equal(vectors_run, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_parse_and_print),
		cmocka_unit_test(parser_refuses_bad_names),
		cmocka_unit_test(records_round_trip_with_compression),
		cmocka_unit_test(rdata_names_are_decompressed),
		cmocka_unit_test(bad_record_data_is_refused),
		cmocka_unit_test(edns_extended_rcode),
		cmocka_unit_test(every_prefix_is_refused),
		cmocka_unit_test(builder_runs_out_of_room),
		cmocka_unit_test(tsig_dnspython),
		cmocka_unit_test(tsig_miekg_verify),
		cmocka_unit_test(tsig_miekg_generate),
		cmocka_unit_test(tsig_sign_verify_both_algorithms),
		cmocka_unit_test(tsig_vector_count),
	};
	return cmocka_run_group_tests_name("dns", tests, NULL, NULL);
}
