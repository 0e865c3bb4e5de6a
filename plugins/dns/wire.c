/*
 * wire.c - DNS messages on the wire: the bounds-checked parser, the
 * builder with name compression, and the text forms of names and types
 * (dns/wire.h).  Each record's data is rdata.c's, which the parser asks to
 * check every record it reads.  A length is never trusted before it is
 * checked against what is left of the message.
 */
#include "dns/rdata.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- names ------------------------------------------------------------------ */

/* A name may jump at most this often: more than any honest message needs
 * (each jump goes strictly backwards anyway, so this only bounds work). */
#define MAX_HOPS 128

int drr_dns_name_read(const uint8_t *m, size_t n, size_t off, uint8_t *wire, size_t *wlen,
		      size_t *next, char *err, size_t errlen)
{
	size_t len = 0, pos = off, end = 0;
	int jumped = 0, hops = 0;
	size_t limit = off; /* a pointer must point before where it was met */
	for (;;) {
		if (pos >= n)
			return fail(err, errlen, "name runs past the end of the message");
		uint8_t c = m[pos];
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= n)
				return fail(err, errlen, "compression pointer cut short");
			size_t to = (size_t)(c & 0x3f) << 8 | m[pos + 1];
			if (to >= n)
				return fail(err, errlen, "compression pointer past the end");
			if (to < 12) /* names live after the header */
				return fail(err, errlen, "compression pointer into the header");
			if (to >= limit)
				return fail(err, errlen, "compression pointer does not point backwards "
							 "(a loop)");
			if (++hops > MAX_HOPS)
				return fail(err, errlen, "too many compression pointers");
			if (!jumped)
				end = pos + 2;
			jumped = 1;
			limit = to;
			pos = to;
			continue;
		}
		if (c & 0xc0)
			return fail(err, errlen, "label type 0x%02x is not supported", c & 0xc0);
		if (pos + 1 + c > n)
			return fail(err, errlen, "label runs past the end of the message");
		if (len + 1 + c > DRR_DNS_NAME_MAX)
			return fail(err, errlen, "name is longer than 255 bytes");
		memcpy(wire + len, m + pos, (size_t)c + 1);
		len += (size_t)c + 1;
		pos += (size_t)c + 1;
		if (c == 0)
			break;
		/* labels written after a jump are before `limit` anyway: keep
		 * the backwards rule relative to the label we are reading */
		if (!jumped)
			limit = pos;
	}
	*wlen = len;
	if (next)
		*next = jumped ? end : pos;
	return 0;
}

size_t drr_dns_name_text(const uint8_t *wire, size_t wlen, char *out)
{
	size_t o = 0, i = 0;
	if (wlen == 0 || wire[0] == 0) {
		out[0] = '.';
		out[1] = 0;
		return 1;
	}
	while (i < wlen && wire[i]) {
		uint8_t l = wire[i++];
		for (uint8_t k = 0; k < l && i < wlen; k++, i++) {
			uint8_t c = wire[i];
			if (c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' ||
			    c == '@' || c == '$') {
				out[o++] = '\\';
				out[o++] = (char)c;
			} else if (c <= 0x20 || c >= 0x7f) {
				o += (size_t)snprintf(out + o, 5, "\\%03u", c);
			} else {
				out[o++] = (char)c;
			}
		}
		out[o++] = '.';
	}
	out[o] = 0;
	return o;
}

int drr_dns_name_parse(const char *s, size_t n, uint8_t *wire, size_t *wlen, char *err,
		       size_t errlen)
{
	size_t len = 0;
	if (n == 0)
		return fail(err, errlen, "empty name");
	if (n == 1 && s[0] == '.') {
		wire[0] = 0;
		*wlen = 1;
		return 0;
	}
	size_t i = 0;
	while (i < n) {
		size_t lstart = len++; /* the length byte */
		size_t l = 0;
		const char *ls = s + i;
		while (i < n && s[i] != '.') {
			uint8_t c;
			if (s[i] == '\\') {
				if (i + 1 >= n)
					return fail(err, errlen, "name ends with a lone backslash");
				if (isdigit((unsigned char)s[i + 1])) {
					if (i + 3 >= n || !isdigit((unsigned char)s[i + 2]) ||
					    !isdigit((unsigned char)s[i + 3]))
						return fail(err, errlen, "bad \\DDD escape in name");
					int v = (s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10 +
						(s[i + 3] - '0');
					if (v > 255)
						return fail(err, errlen, "\\DDD escape over 255 in name");
					c = (uint8_t)v;
					i += 4;
				} else {
					c = (uint8_t)s[i + 1];
					i += 2;
				}
			} else {
				c = (uint8_t)s[i++];
			}
			if (++l > DRR_DNS_LABEL_MAX)
				return fail(err, errlen, "label '%.20s...' is longer than 63 bytes",
					    ls);
			if (len + 1 >= DRR_DNS_NAME_MAX)
				return fail(err, errlen, "name is longer than 255 bytes");
			wire[len++] = c;
		}
		if (l == 0)
			return fail(err, errlen, "empty label in name");
		wire[lstart] = (uint8_t)l;
		if (i < n)
			i++; /* the dot; a final one ends the name */
	}
	if (len + 1 > DRR_DNS_NAME_MAX)
		return fail(err, errlen, "name is longer than 255 bytes");
	wire[len++] = 0;
	*wlen = len;
	return 0;
}

int drr_dns_name_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen)
		return 0;
	for (size_t i = 0; i < alen; i++) {
		uint8_t x = a[i], y = b[i];
		if (x >= 'A' && x <= 'Z')
			x += 32;
		if (y >= 'A' && y <= 'Z')
			y += 32;
		if (x != y)
			return 0;
	}
	return 1;
}

void drr_dns_name_lower(uint8_t *wire, size_t wlen)
{
	size_t i = 0;
	while (i < wlen && wire[i]) {
		uint8_t l = wire[i++];
		for (uint8_t k = 0; k < l && i < wlen; k++, i++)
			if (wire[i] >= 'A' && wire[i] <= 'Z')
				wire[i] += 32;
	}
}

/* ---- types and rcodes ------------------------------------------------------------ */

static const struct {
	uint16_t code;
	const char *name;
} types[] = {
	{ DRR_DNS_T_A, "A" },	      { DRR_DNS_T_NS, "NS" },	  { DRR_DNS_T_CNAME, "CNAME" },
	{ DRR_DNS_T_SOA, "SOA" },     { DRR_DNS_T_PTR, "PTR" },	  { DRR_DNS_T_MX, "MX" },
	{ DRR_DNS_T_TXT, "TXT" },     { DRR_DNS_T_AAAA, "AAAA" }, { DRR_DNS_T_SRV, "SRV" },
	{ DRR_DNS_T_OPT, "OPT" },     { DRR_DNS_T_TSIG, "TSIG" }, { DRR_DNS_T_IXFR, "IXFR" },
	{ DRR_DNS_T_AXFR, "AXFR" },   { DRR_DNS_T_ANY, "ANY" },	  { DRR_DNS_T_CAA, "CAA" },
	{ 43, "DS" },		      { 46, "RRSIG" },		  { 47, "NSEC" },
	{ 48, "DNSKEY" },	      { 50, "NSEC3" },		  { 51, "NSEC3PARAM" },
	{ 52, "TLSA" },		      { 64, "SVCB" },		  { 65, "HTTPS" },
	{ 99, "SPF" },		      { 13, "HINFO" },		  { 35, "NAPTR" },
	{ 44, "SSHFP" },
};

int drr_dns_type_code(const char *s)
{
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (!strcasecmp(s, types[i].name))
			return types[i].code;
	if (!strncasecmp(s, "TYPE", 4) && s[4]) {
		char *end;
		unsigned long v = strtoul(s + 4, &end, 10);
		if (!*end && v <= 65535 && isdigit((unsigned char)s[4]))
			return (int)v;
	}
	return -1;
}

const char *drr_dns_type_name(uint16_t t, char *buf)
{
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (types[i].code == t)
			return types[i].name;
	snprintf(buf, 16, "TYPE%u", t);
	return buf;
}

const char *drr_dns_rcode_name(uint16_t rc, char *buf)
{
	static const char *const names[] = { "NOERROR", "FORMERR",  "SERVFAIL", "NXDOMAIN",
					     "NOTIMP",	"REFUSED",  "YXDOMAIN", "YXRRSET",
					     "NXRRSET", "NOTAUTH",  "NOTZONE" };
	if (rc < sizeof names / sizeof names[0])
		return names[rc];
	switch (rc) {
	case 16:
		return "BADSIG";
	case 17:
		return "BADKEY";
	case 18:
		return "BADTIME";
	case 22:
		return "BADTRUNC";
	case 23:
		return "BADCOOKIE";
	}
	snprintf(buf, 16, "RCODE%u", rc);
	return buf;
}

const char *drr_dns_section_name(int section, int update)
{
	static const char *const q[] = { "question", "answer", "authority", "additional" };
	static const char *const u[] = { "zone", "prerequisite", "update", "additional" };
	if (section < 0 || section > 3)
		return "?";
	return update ? u[section] : q[section];
}

/* ---- the parser --------------------------------------------------------------- */

int drr_dns_parse(const uint8_t *m, size_t n, struct drr_dns_msg *msg, struct drr_dns_rr *rr,
		  size_t maxrr, char *err, size_t errlen)
{
	memset(msg, 0, sizeof *msg);
	msg->m = m;
	msg->len = n;
	msg->rr = rr;
	msg->opt = msg->tsig = -1;
	if (n < 12)
		return fail(err, errlen, "message of %zu bytes is shorter than its header", n);
	if (n > DRR_DNS_MSG_MAX)
		return fail(err, errlen, "message is longer than 65535 bytes");
	msg->id = get16(m);
	msg->flags = get16(m + 2);
	size_t total = 0;
	for (int s = 0; s < 4; s++) {
		msg->count[s] = get16(m + 4 + 2 * s);
		total += msg->count[s];
	}
	int update = ((msg->flags >> 11) & 0xf) == DRR_DNS_OP_UPDATE;
	if (total > maxrr)
		return fail(err, errlen, "header counts %zu records, more than %zu bytes can hold",
			    total, n);
	size_t pos = 12, k = 0;
	msg->rcode = msg->flags & 0xf;
	for (int s = 0; s < 4; s++) {
		for (unsigned i = 0; i < msg->count[s]; i++, k++) {
			struct drr_dns_rr *r = &rr[k];
			uint8_t wire[DRR_DNS_NAME_MAX];
			size_t wlen;
			char why[160];
			memset(r, 0, sizeof *r);
			r->section = (uint8_t)s;
			r->start = (uint16_t)pos;
			r->name_off = (uint16_t)pos;
			if (drr_dns_name_read(m, n, pos, wire, &wlen, &pos, why, sizeof why) < 0)
				return fail(err, errlen, "%s %u: name: %s",
					    drr_dns_section_name(s, update), i + 1, why);
			size_t fixed = s == 0 ? 4 : 10;
			if (pos + fixed > n)
				return fail(err, errlen, "%s %u: cut short",
					    drr_dns_section_name(s, update), i + 1);
			r->type = get16(m + pos);
			r->rclass = get16(m + pos + 2);
			pos += 4;
			if (s > 0) {
				r->ttl = get32(m + pos);
				r->rdlen = get16(m + pos + 4);
				pos += 6;
				r->rdata_off = (uint16_t)pos;
				if (pos + r->rdlen > n)
					return fail(err, errlen,
						    "%s %u: record data runs past the end",
						    drr_dns_section_name(s, update), i + 1);
				pos += r->rdlen;
				/* UPDATE's deletes carry no data: only check data that is there */
				if ((r->rdlen || (r->rclass != DRR_DNS_C_ANY &&
						   r->rclass != DRR_DNS_C_NONE &&
						   r->type != DRR_DNS_T_OPT)) &&
				    r->rclass != DRR_DNS_C_ANY &&
				    drr_dns_rdata_check(msg, r, why, sizeof why) < 0)
					return fail(err, errlen, "%s %u: %s",
						    drr_dns_section_name(s, update), i + 1, why);
			}
			r->end = (uint16_t)pos;
			if (r->type == DRR_DNS_T_OPT && s == 3) {
				if (msg->opt >= 0)
					return fail(err, errlen, "more than one OPT record");
				if (wlen != 1)
					return fail(err, errlen, "OPT record's owner is not the root");
				msg->opt = (int)k;
				msg->udp_size = r->rclass;
				msg->rcode |= (uint16_t)((r->ttl >> 24) << 4);
				msg->edns_version = (uint8_t)(r->ttl >> 16);
				msg->dnssec_ok = (r->ttl >> 15) & 1;
			}
			if (r->type == DRR_DNS_T_TSIG) {
				if (s != 3 || i + 1 != msg->count[3])
					return fail(err, errlen, "TSIG record is not the last "
								 "record of the message");
				msg->tsig = (int)k;
			}
		}
	}
	msg->nrr = k;
	if (pos != n)
		return fail(err, errlen, "%zu bytes after the last record", n - pos);
	return 0;
}

/* ---- the builder ------------------------------------------------------------------ */

void drr_dns_build_init(struct drr_dns_builder *b, uint8_t *buf, size_t cap, uint16_t id,
			uint16_t flags)
{
	memset(b, 0, sizeof *b);
	b->buf = buf;
	b->cap = cap > DRR_DNS_MSG_MAX ? DRR_DNS_MSG_MAX : cap;
	drr_dns_build_u16(b, id);
	drr_dns_build_u16(b, flags);
	for (int i = 0; i < 4; i++)
		drr_dns_build_u16(b, 0);
}

void drr_dns_build_bytes(struct drr_dns_builder *b, const void *p, size_t n)
{
	if (b->failed || b->len + n > b->cap) {
		b->failed = 1;
		return;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
}

void drr_dns_build_u8(struct drr_dns_builder *b, uint8_t v)
{
	drr_dns_build_bytes(b, &v, 1);
}

void drr_dns_build_u16(struct drr_dns_builder *b, uint16_t v)
{
	uint8_t p[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	drr_dns_build_bytes(b, p, 2);
}

void drr_dns_build_u32(struct drr_dns_builder *b, uint32_t v)
{
	uint8_t p[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	drr_dns_build_bytes(b, p, 4);
}

void drr_dns_build_count(struct drr_dns_builder *b, int section)
{
	if (b->failed || b->len < 12)
		return;
	uint8_t *p = b->buf + 4 + 2 * section;
	uint16_t v = (uint16_t)(get16(p) + 1);
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void drr_dns_build_name(struct drr_dns_builder *b, const uint8_t *wire, size_t wlen, int compress)
{
	size_t i = 0;
	while (i < wlen && wire[i]) {
		const uint8_t *suffix = wire + i;
		size_t slen = wlen - i;
		if (compress && !b->failed) {
			for (int c = 0; c < b->ncomp; c++) {
				uint8_t prev[DRR_DNS_NAME_MAX];
				size_t plen;
				if (drr_dns_name_read(b->buf, b->len, b->comp[c], prev, &plen, NULL,
						      NULL, 0) == 0 &&
				    drr_dns_name_equal(prev, plen, suffix, slen)) {
					drr_dns_build_u16(b, (uint16_t)(0xc000 | b->comp[c]));
					return;
				}
			}
		}
		/* remember where this suffix starts (pointers reach 14 bits) */
		if (!b->failed && b->len < 0x3fff && b->ncomp < DRR_DNS_COMP_MAX)
			b->comp[b->ncomp++] = (uint16_t)b->len;
		drr_dns_build_bytes(b, wire + i, (size_t)wire[i] + 1);
		i += (size_t)wire[i] + 1;
	}
	drr_dns_build_u8(b, 0);
}

void drr_dns_build_question(struct drr_dns_builder *b, const uint8_t *wire, size_t wlen,
			    uint16_t type, uint16_t rclass)
{
	drr_dns_build_name(b, wire, wlen, 1);
	drr_dns_build_u16(b, type);
	drr_dns_build_u16(b, rclass);
	drr_dns_build_count(b, DRR_DNS_S_QUESTION);
}

int drr_dns_build_rr(struct drr_dns_builder *b, int section, const uint8_t *wire, size_t wlen,
		     uint16_t type, uint16_t rclass, uint32_t ttl, const char *rdata, char *err,
		     size_t errlen)
{
	uint8_t rd[DRR_DNS_MSG_MAX];
	size_t rdlen = 0;
	if (rdata && *rdata &&
	    drr_dns_rdata_parse(type, rdata, rd, sizeof rd, &rdlen, err, errlen) < 0)
		return -1;
	drr_dns_build_name(b, wire, wlen, 1);
	drr_dns_build_u16(b, type);
	drr_dns_build_u16(b, rclass);
	drr_dns_build_u32(b, ttl);
	drr_dns_build_u16(b, (uint16_t)rdlen);
	drr_dns_build_bytes(b, rd, rdlen);
	drr_dns_build_count(b, section);
	return 0;
}

void drr_dns_build_opt(struct drr_dns_builder *b, uint16_t udp_size, int dnssec_ok)
{
	drr_dns_build_u8(b, 0);
	drr_dns_build_u16(b, DRR_DNS_T_OPT);
	drr_dns_build_u16(b, udp_size);
	drr_dns_build_u32(b, dnssec_ok ? 0x8000u : 0);
	drr_dns_build_u16(b, 0);
	drr_dns_build_count(b, DRR_DNS_S_ADDITIONAL);
}
