/*
 * dns/wire.h - the DNS wire format (RFC 1035, 3596, 2782, 6844, 6891) for
 * the files of the DNS plugin: a parser of untrusted messages, a builder
 * with name compression, and the text forms of names and record data.
 * Pure C over byte buffers: no Lua, no loop, no allocation.
 *
 * Every read goes through a bounds check; names are read with a hop limit
 * and pointers that must go strictly backwards, so a compression loop, a
 * pointer past the message, a label over 63 bytes or a name over 255 bytes
 * is an error with a message, never a crash.
 */
#ifndef DRR_DNS_WIRE_H
#define DRR_DNS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define DRR_DNS_NAME_MAX 255	  /* wire bytes, root label included */
#define DRR_DNS_LABEL_MAX 63
#define DRR_DNS_NAME_TEXT_MAX 1024 /* 4 text bytes per wire byte at worst */
#define DRR_DNS_MSG_MAX 65535
#define DRR_DNS_RDATA_TEXT_MAX 8192 /* text of one record's data, capped */

enum {
	DRR_DNS_T_A = 1,
	DRR_DNS_T_NS = 2,
	DRR_DNS_T_CNAME = 5,
	DRR_DNS_T_SOA = 6,
	DRR_DNS_T_PTR = 12,
	DRR_DNS_T_MX = 15,
	DRR_DNS_T_TXT = 16,
	DRR_DNS_T_AAAA = 28,
	DRR_DNS_T_SRV = 33,
	DRR_DNS_T_OPT = 41,
	DRR_DNS_T_TSIG = 250,
	DRR_DNS_T_IXFR = 251,
	DRR_DNS_T_AXFR = 252,
	DRR_DNS_T_ANY = 255,
	DRR_DNS_T_CAA = 257,
};
enum {
	DRR_DNS_C_IN = 1,
	DRR_DNS_C_NONE = 254,
	DRR_DNS_C_ANY = 255,
};
enum {
	DRR_DNS_OP_QUERY = 0,
	DRR_DNS_OP_UPDATE = 5,
};
enum { /* sections of a message; for UPDATE: zone, prerequisite, update, additional */
	DRR_DNS_S_QUESTION = 0,
	DRR_DNS_S_ANSWER,
	DRR_DNS_S_AUTHORITY,
	DRR_DNS_S_ADDITIONAL,
};

/* One record of a parsed message: offsets into the message, which must
 * outlive it.  Questions have no ttl or rdata. */
struct drr_dns_rr {
	uint16_t name_off;	   /* owner name (may be compressed) */
	uint16_t type, rclass;
	uint32_t ttl;
	uint16_t rdata_off, rdlen; /* rdata_off: first byte of RDATA */
	uint16_t start, end;	   /* the whole RR's bytes: [start, end) */
	uint8_t section;
};

struct drr_dns_msg {
	const uint8_t *m;
	size_t len;
	uint16_t id, flags;
	uint16_t count[4];   /* as the header says */
	struct drr_dns_rr *rr; /* count[0] + ... + count[3] of them */
	size_t nrr;
	int opt;	     /* index in rr of the OPT record, or -1 */
	int tsig;	     /* index in rr of the TSIG record (last), or -1 */
	uint16_t udp_size;   /* from OPT, or 0 */
	uint16_t rcode;	     /* 12 bits with OPT's extension */
	uint8_t edns_version;
	int dnssec_ok;
};

/* Parse the message m[0..n) into msg, using rr[0..maxrr) for its records.
 * maxrr = n / 5 + 1 always suffices (a question takes 5 bytes at least).
 * Returns 0, or -1 with a one-line reason in err ("answer 2: name: pointer
 * past the end").  Every name and every known record type is checked, so
 * a later drr_dns_rdata_text or drr_dns_name_read on it cannot fail for a
 * reason the parse did not report. */
int drr_dns_parse(const uint8_t *m, size_t n, struct drr_dns_msg *msg, struct drr_dns_rr *rr,
		  size_t maxrr, char *err, size_t errlen);

/* Read the name at off in m[0..n) into wire (uncompressed, at most 255
 * bytes, *wlen its length); *next (if not NULL) gets the offset just past
 * the name where it is written at off.  Returns 0 or -1 with err set. */
int drr_dns_name_read(const uint8_t *m, size_t n, size_t off, uint8_t *wire, size_t *wlen,
		      size_t *next, char *err, size_t errlen);
/* The presentation form of an uncompressed wire name: "www.example.com.",
 * "." for the root, with \. \\ \" and \DDD escapes.  out must hold
 * DRR_DNS_NAME_TEXT_MAX bytes.  Returns the length. */
size_t drr_dns_name_text(const uint8_t *wire, size_t wlen, char *out);
/* The wire form of a name in presentation form (escapes decoded; a final
 * dot optional, the name is always taken as absolute).  Returns 0, or -1
 * with err ("label 'xxx...' is longer than 63 bytes"). */
int drr_dns_name_parse(const char *s, size_t n, uint8_t *wire, size_t *wlen, char *err,
		       size_t errlen);
/* Wire names equal, ASCII case ignored. */
int drr_dns_name_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* The wire name lowercased in place (canonical form, RFC 4034 6.2). */
void drr_dns_name_lower(uint8_t *wire, size_t wlen);

/* The presentation form of a record's data (as in a zone file: "192.0.2.1",
 * "10 mail.example.com.", "\"text\"", SOA's seven fields, "\# 3 abcdef" for
 * types it does not know) into out (cap bytes, NUL-terminated).  Names in
 * the data are decompressed against the message.  Returns the length, or -1
 * with err set for data that does not fit its type. */
int drr_dns_rdata_text(const struct drr_dns_msg *msg, const struct drr_dns_rr *rr, char *out,
		       size_t cap, char *err, size_t errlen);
/* SOA's serial, or -1 if rr is not a well-formed SOA. */
int64_t drr_dns_soa_serial(const struct drr_dns_msg *msg, const struct drr_dns_rr *rr);

/* ---- building ---------------------------------------------------------- */

#define DRR_DNS_COMP_MAX 64

struct drr_dns_builder {
	uint8_t *buf;
	size_t len, cap;
	int failed;		      /* ran out of room: the message is void */
	uint16_t comp[DRR_DNS_COMP_MAX]; /* offsets of names written, for compression */
	int ncomp;
};

/* Start a message in buf[0..cap) (cap <= 65535) with a header: id, flags,
 * and zero counts. */
void drr_dns_build_init(struct drr_dns_builder *b, uint8_t *buf, size_t cap, uint16_t id,
			uint16_t flags);
/* Add 1 to section s's count in the header. */
void drr_dns_build_count(struct drr_dns_builder *b, int section);
void drr_dns_build_u8(struct drr_dns_builder *b, uint8_t v);
void drr_dns_build_u16(struct drr_dns_builder *b, uint16_t v);
void drr_dns_build_u32(struct drr_dns_builder *b, uint32_t v);
void drr_dns_build_bytes(struct drr_dns_builder *b, const void *p, size_t n);
/* Write a wire name, compressed against the names already written when
 * compress is set (and remembered for later names either way). */
void drr_dns_build_name(struct drr_dns_builder *b, const uint8_t *wire, size_t wlen,
			int compress);
/* A question (or UPDATE's zone): name, type, class; counts it in section 0. */
void drr_dns_build_question(struct drr_dns_builder *b, const uint8_t *wire, size_t wlen,
			    uint16_t type, uint16_t rclass);
/* A record: owner, type, class, ttl and rdata given as text (parsed by
 * drr_dns_rdata_parse; NULL or "" for none, as UPDATE's deletes need),
 * counted in section s.  Returns 0, or -1 with err (bad rdata text). */
int drr_dns_build_rr(struct drr_dns_builder *b, int section, const uint8_t *wire, size_t wlen,
		     uint16_t type, uint16_t rclass, uint32_t ttl, const char *rdata, char *err,
		     size_t errlen);
/* An OPT record (EDNS0) advertising udp_size, DO bit as asked. */
void drr_dns_build_opt(struct drr_dns_builder *b, uint16_t udp_size, int dnssec_ok);

/* The record type for a name ("A", "aaaa", "TYPE65"), or -1. */
int drr_dns_type_code(const char *s);
/* The name of a type ("A", or "TYPE65" into buf of 16 bytes). */
const char *drr_dns_type_name(uint16_t t, char *buf);
/* The name of an rcode ("NOERROR", "NXDOMAIN", "BADSIG"...), or "RCODE<n>"
 * into buf of 16 bytes. */
const char *drr_dns_rcode_name(uint16_t rc, char *buf);
/* The section names of QUERY and of UPDATE messages. */
const char *drr_dns_section_name(int section, int update);

/* The wire form of record data given as text for type t into out[0..cap),
 * *len its length; names in it are written uncompressed.  For TXT a value
 * that does not start with '"' is one string (cut into 255-byte pieces).
 * "\# N hex" is taken for any type.  Returns 0, or -1 with err ("'300.1.1.1'
 * is not an IPv4 address"). */
int drr_dns_rdata_parse(uint16_t t, const char *text, uint8_t *out, size_t cap, size_t *len,
			char *err, size_t errlen);

#endif
