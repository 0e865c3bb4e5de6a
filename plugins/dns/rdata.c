/*
 * rdata.c - the record data of each DNS type (A, AAAA, NS, CNAME, PTR, MX,
 * SRV, SOA, TXT, CAA, and RFC 3597's generic form for the others): checked
 * against the message it lies in, as text (zone-file form), and from text
 * to the wire.  One walk over the data serves the check and the text.
 * Names and the message framing are wire.c's (dns/rdata.h is what the two
 * share).
 */
#include "dns/rdata.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- record data: checking and text ------------------------------------------- */

struct out {
	char *p;
	size_t len, cap;
	int over;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		o->over = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = 0;
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		put(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Bytes as a quoted string: " and \\ escaped, others outside printable
 * ASCII as \\DDD. */
static void put_quoted(struct out *o, const uint8_t *p, size_t n)
{
	put(o, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			put(o, e, 2);
		} else if (c < 0x20 || c >= 0x7f) {
			putf(o, "\\%03u", c);
		} else {
			char ch = (char)c;
			put(o, &ch, 1);
		}
	}
	put(o, "\"", 1);
}

/* A name inside rdata at *pos (rdata ends at end): decompressed against the
 * message, its text appended to o (when o is not NULL).  The name must not
 * run past the rdata where it is written. */
static int rd_name(const struct drr_dns_msg *msg, size_t *pos, size_t end, struct out *o,
		   char *err, size_t errlen)
{
	uint8_t wire[DRR_DNS_NAME_MAX];
	size_t wlen, next;
	/* the name's own bytes must lie within the rdata: read it against a
	 * message cut at the rdata's end, pointers still reach back */
	if (drr_dns_name_read(msg->m, end, *pos, wire, &wlen, &next, err, errlen) < 0)
		return -1;
	*pos = next;
	if (o) {
		char text[DRR_DNS_NAME_TEXT_MAX];
		size_t n = drr_dns_name_text(wire, wlen, text);
		put(o, text, n);
	}
	return 0;
}

/* A <character-string> at *pos, quoted with escapes. */
static int rd_string(const uint8_t *m, size_t *pos, size_t end, struct out *o, char *err,
		     size_t errlen)
{
	if (*pos >= end)
		return fail(err, errlen, "character-string missing");
	size_t l = m[*pos];
	if (*pos + 1 + l > end)
		return fail(err, errlen, "character-string runs past the record data");
	if (o)
		put_quoted(o, m + *pos + 1, l);
	*pos += 1 + l;
	return 0;
}

static void rd_hex(struct out *o, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		putf(o, "%02x", p[i]);
}

/* Check the rdata of rr for its type, writing its text to o if not NULL. */
static int rdata_walk(const struct drr_dns_msg *msg, const struct drr_dns_rr *rr, struct out *o,
		      char *err, size_t errlen)
{
	const uint8_t *m = msg->m;
	size_t pos = rr->rdata_off, end = (size_t)rr->rdata_off + rr->rdlen;
	char buf[64];
	if (end > msg->len)
		return fail(err, errlen, "record data runs past the end");
	switch (rr->type) {
	case DRR_DNS_T_A:
		if (rr->rdlen != 4)
			return fail(err, errlen, "A record data is %u bytes, not 4", rr->rdlen);
		if (o)
			put(o, buf, strlen(inet_ntop(AF_INET, m + pos, buf, sizeof buf)));
		return 0;
	case DRR_DNS_T_AAAA:
		if (rr->rdlen != 16)
			return fail(err, errlen, "AAAA record data is %u bytes, not 16", rr->rdlen);
		if (o)
			put(o, buf, strlen(inet_ntop(AF_INET6, m + pos, buf, sizeof buf)));
		return 0;
	case DRR_DNS_T_NS:
	case DRR_DNS_T_CNAME:
	case DRR_DNS_T_PTR:
		if (rd_name(msg, &pos, end, o, err, errlen) < 0)
			return -1;
		break;
	case DRR_DNS_T_MX:
		if (pos + 2 > end)
			return fail(err, errlen, "MX record data too short");
		if (o)
			putf(o, "%u ", get16(m + pos));
		pos += 2;
		if (rd_name(msg, &pos, end, o, err, errlen) < 0)
			return -1;
		break;
	case DRR_DNS_T_SRV:
		if (pos + 6 > end)
			return fail(err, errlen, "SRV record data too short");
		if (o)
			putf(o, "%u %u %u ", get16(m + pos), get16(m + pos + 2),
			     get16(m + pos + 4));
		pos += 6;
		if (rd_name(msg, &pos, end, o, err, errlen) < 0)
			return -1;
		break;
	case DRR_DNS_T_SOA:
		if (rd_name(msg, &pos, end, o, err, errlen) < 0)
			return -1;
		if (o)
			put(o, " ", 1);
		if (rd_name(msg, &pos, end, o, err, errlen) < 0)
			return -1;
		if (pos + 20 > end)
			return fail(err, errlen, "SOA record data too short");
		if (o)
			for (int i = 0; i < 5; i++)
				putf(o, " %u", get32(m + pos + 4 * i));
		pos += 20;
		break;
	case DRR_DNS_T_TXT:
		if (pos == end)
			return fail(err, errlen, "TXT record data is empty");
		while (pos < end) {
			if (o && pos > rr->rdata_off)
				put(o, " ", 1);
			if (rd_string(m, &pos, end, o, err, errlen) < 0)
				return -1;
		}
		break;
	case DRR_DNS_T_CAA: {
		if (pos + 2 > end)
			return fail(err, errlen, "CAA record data too short");
		uint8_t flags = m[pos], tl = m[pos + 1];
		if (tl == 0 || pos + 2 + tl > end)
			return fail(err, errlen, "CAA tag length is wrong");
		for (size_t i = 0; i < tl; i++)
			if (!isalnum(m[pos + 2 + i]))
				return fail(err, errlen, "CAA tag is not alphanumeric");
		if (o) {
			putf(o, "%u ", flags);
			put(o, (const char *)m + pos + 2, tl);
			put(o, " ", 1);
			put_quoted(o, m + pos + 2 + tl, end - (pos + 2 + tl));
		}
		pos = end;
		break;
	}
	default:
		/* RFC 3597's generic form */
		if (o) {
			putf(o, "\\# %u", rr->rdlen);
			if (rr->rdlen) {
				put(o, " ", 1);
				rd_hex(o, m + pos, rr->rdlen);
			}
		}
		return 0;
	}
	if (pos != end)
		return fail(err, errlen, "%u bytes left over after the record data",
			    (unsigned)(end - pos));
	return 0;
}

int drr_dns_rdata_text(const struct drr_dns_msg *msg, const struct drr_dns_rr *rr, char *out,
		       size_t cap, char *err, size_t errlen)
{
	struct out o = { out, 0, cap, 0 };
	if (cap == 0)
		return fail(err, errlen, "no room");
	out[0] = 0;
	if (rdata_walk(msg, rr, &o, err, errlen) < 0)
		return -1;
	if (o.over)
		return fail(err, errlen, "record data text is longer than %zu bytes", cap - 1);
	return (int)o.len;
}

int drr_dns_rdata_check(const struct drr_dns_msg *msg, const struct drr_dns_rr *rr, char *err,
			size_t errlen)
{
	return rdata_walk(msg, rr, NULL, err, errlen);
}

int64_t drr_dns_soa_serial(const struct drr_dns_msg *msg, const struct drr_dns_rr *rr)
{
	/* the walk leaves nothing after SOA's five 32-bit fields: the serial
	 * is the first of the data's last 20 bytes */
	if (rr->type != DRR_DNS_T_SOA || rdata_walk(msg, rr, NULL, NULL, 0) < 0)
		return -1;
	return get32(msg->m + rr->rdata_off + rr->rdlen - 20);
}

/* ---- record data from text -------------------------------------------------------- */

struct rdout {
	uint8_t *p;
	size_t len, cap;
	int over;
};

static void rput(struct rdout *o, const void *p, size_t n)
{
	if (o->len + n > o->cap) {
		o->over = 1;
		return;
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static void rput16(struct rdout *o, uint16_t v)
{
	uint8_t p[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	rput(o, p, 2);
}

static void rput32(struct rdout *o, uint32_t v)
{
	uint8_t p[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	rput(o, p, 4);
}

/* The next whitespace-separated field of *s (quotes group, escapes kept):
 * [*start, *end).  0 when there is none. */
static int field(const char **s, const char **start, const char **end)
{
	const char *p = *s;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p)
		return 0;
	*start = p;
	if (*p == '"') {
		p++;
		while (*p && *p != '"') {
			if (*p == '\\' && p[1])
				p++;
			p++;
		}
		if (*p == '"')
			p++;
	} else {
		while (*p && *p != ' ' && *p != '\t') {
			if (*p == '\\' && p[1])
				p++;
			p++;
		}
	}
	*end = p;
	*s = p;
	return 1;
}

static int num_field(const char **s, unsigned long max, unsigned long *v, const char *what,
		     char *err, size_t errlen)
{
	const char *a, *e;
	if (!field(s, &a, &e))
		return fail(err, errlen, "%s is missing", what);
	char tmp[24];
	size_t n = (size_t)(e - a);
	if (n == 0 || n >= sizeof tmp)
		return fail(err, errlen, "%s '%.*s' is not a number", what, (int)n, a);
	memcpy(tmp, a, n);
	tmp[n] = 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)tmp[i]))
			return fail(err, errlen, "%s '%s' is not a number", what, tmp);
	*v = strtoul(tmp, NULL, 10);
	if (*v > max)
		return fail(err, errlen, "%s %s is over %lu", what, tmp, max);
	return 0;
}

static int name_field(const char **s, struct rdout *o, const char *what, char *err, size_t errlen)
{
	const char *a, *e;
	uint8_t wire[DRR_DNS_NAME_MAX];
	size_t wlen;
	char why[128];
	if (!field(s, &a, &e))
		return fail(err, errlen, "%s is missing", what);
	if (drr_dns_name_parse(a, (size_t)(e - a), wire, &wlen, why, sizeof why) < 0)
		return fail(err, errlen, "%s: %s", what, why);
	rput(o, wire, wlen);
	return 0;
}

/* Decode a quoted or bare string with escapes into bytes (at most cap). */
static int unescape(const char *a, const char *e, uint8_t *out, size_t cap, size_t *len,
		    char *err, size_t errlen)
{
	size_t n = 0;
	if (a < e && *a == '"') {
		if (e - a < 2 || e[-1] != '"')
			return fail(err, errlen, "unterminated quoted string");
		a++, e--;
	}
	while (a < e) {
		uint8_t c;
		if (*a == '\\' && a + 1 < e) {
			if (isdigit((unsigned char)a[1])) {
				if (e - a < 4 || !isdigit((unsigned char)a[2]) ||
				    !isdigit((unsigned char)a[3]))
					return fail(err, errlen, "bad \\DDD escape");
				int v = (a[1] - '0') * 100 + (a[2] - '0') * 10 + (a[3] - '0');
				if (v > 255)
					return fail(err, errlen, "\\DDD escape over 255");
				c = (uint8_t)v;
				a += 4;
			} else {
				c = (uint8_t)a[1];
				a += 2;
			}
		} else {
			c = (uint8_t)*a++;
		}
		if (n == cap)
			return fail(err, errlen, "string longer than %zu bytes", cap);
		out[n++] = c;
	}
	*len = n;
	return 0;
}

static int generic(const char *s, struct rdout *o, char *err, size_t errlen)
{
	unsigned long n;
	s += 2; /* "\#" */
	if (num_field(&s, 65535, &n, "\\# length", err, errlen) < 0)
		return -1;
	size_t got = 0;
	const char *a, *e;
	while (field(&s, &a, &e)) {
		for (const char *p = a; p < e; p += 2) {
			unsigned v;
			if (e - p < 2 || !isxdigit((unsigned char)p[0]) ||
			    !isxdigit((unsigned char)p[1]) || sscanf(p, "%2x", &v) != 1)
				return fail(err, errlen, "\\# data is not hex");
			uint8_t byte = (uint8_t)v;
			rput(o, &byte, 1);
			got++;
		}
	}
	if (got != n)
		return fail(err, errlen, "\\# says %lu bytes, the data has %zu", n, got);
	return 0;
}

int drr_dns_rdata_parse(uint16_t t, const char *text, uint8_t *out, size_t cap, size_t *len,
			char *err, size_t errlen)
{
	struct rdout o = { out, 0, cap, 0 };
	const char *s = text, *a, *e;
	unsigned long v;
	while (*s == ' ' || *s == '\t')
		s++;
	if (s[0] == '\\' && s[1] == '#') {
		if (generic(s, &o, err, errlen) < 0)
			return -1;
		goto done;
	}
	switch (t) {
	case DRR_DNS_T_A:
	case DRR_DNS_T_AAAA: {
		uint8_t addr[16];
		int six = t == DRR_DNS_T_AAAA;
		char tmp[64];
		size_t n = strlen(s);
		while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n >= sizeof tmp || (memcpy(tmp, s, n), tmp[n] = 0,
					inet_pton(six ? AF_INET6 : AF_INET, tmp, addr) != 1))
			return fail(err, errlen, "'%.60s' is not an %s address", s,
				    six ? "IPv6" : "IPv4");
		rput(&o, addr, six ? 16 : 4);
		goto done;
	}
	case DRR_DNS_T_NS:
	case DRR_DNS_T_CNAME:
	case DRR_DNS_T_PTR:
		if (name_field(&s, &o, "target", err, errlen) < 0)
			return -1;
		break;
	case DRR_DNS_T_MX:
		if (num_field(&s, 65535, &v, "MX preference", err, errlen) < 0)
			return -1;
		rput16(&o, (uint16_t)v);
		if (name_field(&s, &o, "MX exchange", err, errlen) < 0)
			return -1;
		break;
	case DRR_DNS_T_SRV: {
		static const char *const what[] = { "SRV priority", "SRV weight", "SRV port" };
		for (int i = 0; i < 3; i++) {
			if (num_field(&s, 65535, &v, what[i], err, errlen) < 0)
				return -1;
			rput16(&o, (uint16_t)v);
		}
		if (name_field(&s, &o, "SRV target", err, errlen) < 0)
			return -1;
		break;
	}
	case DRR_DNS_T_SOA: {
		static const char *const what[] = { "SOA serial", "SOA refresh", "SOA retry",
						    "SOA expire", "SOA minimum" };
		if (name_field(&s, &o, "SOA mname", err, errlen) < 0 ||
		    name_field(&s, &o, "SOA rname", err, errlen) < 0)
			return -1;
		for (int i = 0; i < 5; i++) {
			if (num_field(&s, 0xffffffffUL, &v, what[i], err, errlen) < 0)
				return -1;
			rput32(&o, (uint32_t)v);
		}
		break;
	}
	case DRR_DNS_T_TXT: {
		uint8_t str[65535];
		size_t n;
		if (*s != '"') { /* one unquoted value: the text itself, cut in 255s */
			size_t l = strlen(text);
			if (l == 0)
				return fail(err, errlen, "TXT value is empty");
			if (l > 60000)
				return fail(err, errlen, "TXT value is too long");
			for (size_t i = 0; i < l; i += 255) {
				uint8_t c = (uint8_t)(l - i > 255 ? 255 : l - i);
				rput(&o, &c, 1);
				rput(&o, text + i, c);
			}
			goto done;
		}
		while (field(&s, &a, &e)) {
			if (*a != '"')
				return fail(err, errlen, "TXT: mix of quoted and bare strings");
			if (unescape(a, e, str, 255, &n, err, errlen) < 0)
				return -1;
			uint8_t c = (uint8_t)n;
			rput(&o, &c, 1);
			rput(&o, str, n);
		}
		goto done;
	}
	case DRR_DNS_T_CAA: {
		uint8_t val[65535];
		size_t n;
		if (num_field(&s, 255, &v, "CAA flags", err, errlen) < 0)
			return -1;
		uint8_t flags = (uint8_t)v;
		if (!field(&s, &a, &e))
			return fail(err, errlen, "CAA tag is missing");
		size_t tl = (size_t)(e - a);
		if (tl == 0 || tl > 255)
			return fail(err, errlen, "CAA tag is empty or too long");
		for (const char *p = a; p < e; p++)
			if (!isalnum((unsigned char)*p))
				return fail(err, errlen, "CAA tag is not alphanumeric");
		rput(&o, &flags, 1);
		uint8_t tlb = (uint8_t)tl;
		rput(&o, &tlb, 1);
		rput(&o, a, tl);
		if (!field(&s, &a, &e))
			return fail(err, errlen, "CAA value is missing");
		if (unescape(a, e, val, sizeof val, &n, err, errlen) < 0)
			return -1;
		rput(&o, val, n);
		break;
	}
	default:
		return fail(err, errlen, "data of type %u must be given as \\# LENGTH HEX", t);
	}
	if (field(&s, &a, &e))
		return fail(err, errlen, "unexpected '%.*s' after the record data",
			    (int)(e - a > 40 ? 40 : e - a), a);
done:
	if (o.over)
		return fail(err, errlen, "record data longer than %zu bytes", cap);
	*len = o.len;
	return 0;
}
