/*
 * dns/rdata.h - private to the wire format's two files: wire.c (names,
 * the parser, the builder) and rdata.c (each type's record data, checked,
 * as text, and from text).  What they share: the check of a record's data
 * that the parser runs, the byte readers, and the error helper.  Not part
 * of the plugin's interface (dns/wire.h is).
 */
#ifndef DRR_DNS_RDATA_H
#define DRR_DNS_RDATA_H

#include "dns/wire.h"

#include <stdarg.h>
#include <stdio.h>

/* Short names: this header is included by wire.c and rdata.c alone. */
static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A one-line reason into err (when there is room); returns -1. */
static inline int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Check rr's data in msg for its type: within the message, names readable,
 * fixed fields there and nothing left over.  Types it does not know pass.
 * Returns 0, or -1 with err ("MX record data too short"). */
int drr_dns_rdata_check(const struct drr_dns_msg *msg, const struct drr_dns_rr *rr, char *err,
			size_t errlen);

#endif
