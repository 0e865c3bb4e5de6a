/*
 * term.c - the one gate between a string drrun did not write itself (a log
 * line, an error, a command's output, a name read back from a journal) and
 * the operator's terminal.  Every byte a terminal would act on is written
 * visibly instead: C0 controls and DEL as \r \n \t or \xNN; C1 controls
 * (U+0080..U+009F) and bytes that are not UTF-8 as \xNN; Unicode's
 * bidirectional controls (U+061C, U+200E, U+200F, U+202A..U+202E,
 * U+2066..U+2069), which reorder what a line shows, as \uNNNN.  So a remote
 * command cannot move the cursor, clear a line, set the title or print a
 * fake "result: completed" on a line of its own.  Journals keep the real
 * bytes: this is for the terminal only.  Redact first, then escape.
 */
#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at p (at most n bytes) that is
 * not a C1 control, or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len = drr_utf8_seq((const char *)p, n);
	if (len == 2 && p[0] == 0xC2 && p[1] <= 0x9F)
		return 0; /* a C1 control (U+0080..U+009F): escaped byte by byte */
	return len > 1 ? len : 0;
}

/* The bidirectional control encoded at p (len bytes of valid UTF-8), or 0. */
static unsigned bidi(const unsigned char *p, size_t len)
{
	unsigned cp;
	if (len == 2)
		cp = (unsigned)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
	else if (len == 3)
		cp = (unsigned)(p[0] & 0x0F) << 12 | (unsigned)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
	else
		return 0;
	if (cp == 0x061C || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
	    (cp >= 0x2066 && cp <= 0x2069))
		return cp;
	return 0;
}

void drr_term_add(struct drr_buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		size_t run = i;
		while (run < n && p[run] >= 0x20 && p[run] < 0x7F)
			run++; /* printable ASCII, the common case */
		if (run > i) {
			drr_buf_add(b, p + i, run - i);
			i = run;
			continue;
		}
		unsigned c = p[i];
		size_t len = c >= 0x80 ? utf8_len(p + i, n - i) : 0;
		if (len) {
			unsigned cp = bidi(p + i, len);
			if (cp)
				drr_buf_addf(b, "\\u%04x", cp);
			else
				drr_buf_add(b, p + i, len);
			i += len;
			continue;
		}
		if (c == '\n')
			drr_buf_adds(b, "\\n");
		else if (c == '\r')
			drr_buf_adds(b, "\\r");
		else if (c == '\t')
			drr_buf_adds(b, "\\t");
		else
			drr_buf_addf(b, "\\x%02x", c);
		i++;
	}
}

char *drr_term_str(const char *s)
{
	if (!s)
		return NULL;
	struct drr_buf b = { 0 };
	drr_term_add(&b, s, strlen(s));
	return b.data ? b.data : drr_xstrdup("");
}

void drr_term_line(FILE *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *line = drr_xvasprintf(fmt, ap);
	va_end(ap);
	struct drr_buf b = { 0 };
	drr_term_add(&b, line, strlen(line));
	drr_buf_adds(&b, "\n");
	fwrite(b.data, 1, b.len, f);
	drr_buf_free(&b);
	free(line);
}
