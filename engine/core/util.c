/*
 * util.c - allocation that never returns NULL, byte buffers, durations,
 * clocks, SHA-256/HMAC (sha256.c), and collected diagnostics.
 */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void oom(void)
{
	fputs("drrun: out of memory\n", stderr);
	abort();
}

void *drr_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *drr_xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);
	if (!p)
		oom();
	return p;
}

void *drr_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *drr_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(drr_xmalloc(n), s, n);
}

char *drr_xvasprintf(const char *fmt, va_list ap)
{
	va_list aq;
	va_copy(aq, ap);
	int n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		oom();
	char *s = drr_xmalloc((size_t)n + 1);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

char *drr_xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = drr_xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

void drr_buf_add(struct drr_buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->data = drr_xrealloc(b->data, cap);
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void drr_buf_adds(struct drr_buf *b, const char *s)
{
	drr_buf_add(b, s, strlen(s));
}

/* Formats straight into the buffer's spare room (growing it once if the
 * text does not fit): no allocation per call, which the fingerprints of a
 * large runbook's steps make by the thousand. */
void drr_buf_addf(struct drr_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = b->cap > b->len ? b->cap - b->len : 0;
	int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= room) {
		drr_buf_add(b, "", 0); /* make sure data exists */
		size_t want = b->len + (size_t)n + 1, cap = b->cap;
		while (cap < want)
			cap *= 2;
		b->data = drr_xrealloc(b->data, cap);
		b->cap = cap;
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void drr_buf_free(struct drr_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* A duration is one or more <digits><unit> groups, units in strictly
 * decreasing order (h, m, s, ms), e.g. "1h30m", "2m5s", "250ms". */
int drr_duration_parse(const char *s, double *out)
{
	static const struct {
		const char *u;
		double mult;
	} units[] = { { "ms", 0.001 }, { "h", 3600 }, { "m", 60 }, { "s", 1 } };
	static const int rank[] = { 0, 3, 2, 1 }; /* ms < s < m < h */
	double total = 0;
	int last_rank = 4, groups = 0;

	if (!s || !*s)
		return -1;
	while (*s) {
		if (*s < '0' || *s > '9')
			return -1;
		double v = 0;
		int digits = 0;
		while (*s >= '0' && *s <= '9') {
			v = v * 10 + (*s++ - '0');
			if (++digits > 9)
				return -1;
		}
		int k = -1;
		for (int i = 0; i < 4; i++) {
			size_t ul = strlen(units[i].u);
			if (strncmp(s, units[i].u, ul) == 0) {
				k = i;
				s += ul;
				break;
			}
		}
		if (k < 0 || rank[k] >= last_rank)
			return -1;
		last_rank = rank[k];
		total += v * units[k].mult;
		groups++;
	}
	if (!groups)
		return -1;
	*out = total;
	return 0;
}

int drr_duration_check(double secs, int allow_zero, const char **why)
{
	const char *w = NULL;
	if (isnan(secs))
		w = "is not a number (NaN)";
	else if (isinf(secs))
		w = "must be finite";
	else if (secs < 0)
		w = "must not be negative";
	else if (secs == 0 && !allow_zero)
		w = "must be more than 0";
	else if (secs > DRR_DURATION_MAX)
		w = "is too long";
	if (why)
		*why = w;
	return w ? -1 : 0;
}

char *drr_duration_fmt(double secs, char *buf, size_t n)
{
	if (secs < 0)
		secs = 0;
	/* round first, then choose the unit, so 0.9996 reads 1.0s, not 1000ms */
	long ms = lround(secs * 1000), tenths = lround(secs * 10), s = lround(secs);
	if (ms < 1000)
		snprintf(buf, n, "%ldms", ms);
	else if (tenths < 600)
		snprintf(buf, n, "%ld.%lds", tenths / 10, tenths % 10);
	else if (s < 3600)
		snprintf(buf, n, "%ldm%02lds", s / 60, s % 60);
	else
		snprintf(buf, n, "%ldh%02ldm%02lds", s / 3600, s / 60 % 60, s % 60);
	return buf;
}

/* Virtual time (drrun test): how far the clocks were moved ahead. */
static int64_t skipped_us;

void drr_clock_skip(int64_t us)
{
	if (us > 0)
		skipped_us += us;
}

int64_t drr_clock_skipped(void)
{
	return skipped_us;
}

int64_t drr_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 + skipped_us;
}

char *drr_rfc3339(int64_t us, char *buf, size_t n)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000));
	return buf;
}

double drr_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + (double)skipped_us / 1e6;
}

static void to_hex(const unsigned char *md, unsigned len, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	for (unsigned i = 0; i < len; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * len] = '\0';
}

/* sha256.c, not OpenSSL: libcrypto is not part of the engine's start-up. */
void drr_sha256_hex(const void *p, size_t n, char hex[65])
{
	unsigned char md[32];
	struct drr_sha256 c;
	drr_sha256_init(&c);
	drr_sha256_update(&c, p, n);
	drr_sha256_final(&c, md);
	to_hex(md, sizeof md, hex);
}

int drr_sha256_file_hex(const char *path, char hex[65])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct drr_sha256 c;
	drr_sha256_init(&c);
	char buf[65536];
	ssize_t r;
	while ((r = read(fd, buf, sizeof buf)) > 0)
		drr_sha256_update(&c, buf, (size_t)r);
	unsigned char md[32];
	drr_sha256_final(&c, md);
	close(fd);
	if (r < 0)
		return -1;
	to_hex(md, sizeof md, hex);
	return 0;
}

/* HMAC-SHA256 (RFC 2104) over sha256.c. */
void drr_hmac_sha256_hex(const void *key, size_t klen, const void *p, size_t n, char hex[65])
{
	unsigned char k[64] = { 0 }, pad[64], inner[32], md[32];
	struct drr_sha256 c;
	if (klen > sizeof k) {
		drr_sha256_init(&c);
		drr_sha256_update(&c, key, klen);
		drr_sha256_final(&c, k);
	} else {
		memcpy(k, key, klen);
	}
	for (int i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x36;
	drr_sha256_init(&c);
	drr_sha256_update(&c, pad, sizeof pad);
	drr_sha256_update(&c, p, n);
	drr_sha256_final(&c, inner);
	for (int i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x5c;
	drr_sha256_init(&c);
	drr_sha256_update(&c, pad, sizeof pad);
	drr_sha256_update(&c, inner, sizeof inner);
	drr_sha256_final(&c, md);
	explicit_bzero(k, sizeof k);
	explicit_bzero(pad, sizeof pad);
	to_hex(md, sizeof md, hex);
}

int drr_mkdir_p(const char *path, unsigned mode)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int drr_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 99;
	int row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int diag = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int up = row[j];
			int cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int v = diag + cost;
			if (row[j] + 1 < v)
				v = row[j] + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			row[j] = v;
			diag = up;
		}
	}
	return row[lb];
}

void drr_diag_add(struct drr_diag *d, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = drr_xvasprintf(fmt, ap);
	va_end(ap);
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->msgs = drr_xrealloc(d->msgs, (size_t)d->cap * sizeof *d->msgs);
	}
	if (!file)
		d->msgs[d->n++] = drr_xstrdup(msg);
	else if (line > 0)
		d->msgs[d->n++] = drr_xasprintf("%s:%d: %s", file, line, msg);
	else
		d->msgs[d->n++] = drr_xasprintf("%s: %s", file, msg);
	free(msg);
}

void drr_diag_free(struct drr_diag *d)
{
	for (int i = 0; i < d->n; i++)
		free(d->msgs[i]);
	free(d->msgs);
	d->msgs = NULL;
	d->n = d->cap = 0;
}

size_t drr_utf8_seq(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	if (!n)
		return 0;
	unsigned c = s[0];
	size_t len;
	unsigned cp;
	if (c < 0x80)
		return 1;
	else if (c >= 0xC2 && c <= 0xDF)
		len = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

int drr_utf8_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t l = drr_utf8_seq(s + i, n - i);
		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

char *drr_utf8_escape(const char *s, size_t n, size_t *outlen)
{
	static const char hex[] = "0123456789abcdef";
	struct drr_buf b = { 0 };
	for (size_t i = 0; i < n;) {
		size_t l = drr_utf8_seq(s + i, n - i);
		if (l) {
			drr_buf_add(&b, s + i, l);
			i += l;
		} else {
			unsigned char c = (unsigned char)s[i++];
			char e[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
			drr_buf_add(&b, e, 4);
		}
	}
	if (!b.data)
		drr_buf_adds(&b, "");
	if (outlen)
		*outlen = b.len;
	return b.data;
}

json_t *drr_json_text(const char *s, size_t n)
{
	if (!s)
		return json_null();
	json_t *j = json_stringn(s, n);
	if (j)
		return j;
	size_t len;
	char *e = drr_utf8_escape(s, n, &len);
	j = json_stringn(e, len);
	free(e);
	return j ? j : json_string("<unencodable>");
}

json_t *drr_json_str(const char *s)
{
	return s ? drr_json_text(s, strlen(s)) : json_null();
}
