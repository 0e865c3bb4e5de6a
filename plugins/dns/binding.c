/*
 * binding.c - `require "drrun.dns.core"`: the C mechanism under drrun.dns
 * (stdlib/drrun/dns.lua holds the policy: switch, wait_for, restore).
 *
 *   core.query{ server, name, type = "A", class = "IN", timeout = "2s",
 *               retries = 2, tcp = false, edns = 1232, dnssec = false,
 *               rd = true, key = { name, algorithm, secret } }
 *     -> message | nil, "token: detail", token
 *   core.update{ server, zone, prereq = { { kind, name, type, value } },
 *                changes = { { op, name, type, ttl, value } }, key,
 *                timeout = "5s", retries = 2, tcp = false, time }
 *     -> message (its rcode says how it went) | nil, err, token
 *   core.parse(bytes [, update]) -> message | nil, err, "invalid"
 *   core.name(text) -> canonical name ("www.example.test.") (raises)
 *   core.canon(type, value) -> canonical value text | nil, err
 *   core.keyfile(path) -> { name, algorithm, secret } | nil, err, token
 *
 * A message is { id, opcode, rcode, aa, tc, rd, ra, ad, cd, question =
 * { name, type, class }, answers, authority, additional = { { name, type,
 * class, ttl, value [, serial] } }, edns = { udp_size, version, dnssec_ok },
 * tsig = { error, time_signed, verified }, server, rtt, tcp, source_port,
 * size }.  Tokens: timeout, refused, closed, io, invalid, auth (the TSIG
 * does not verify, BADSIG, BADKEY, an unsigned answer to a signed request),
 * clock (BADTIME).  A bad name, type or value raises before anything is
 * sent.  Exports luaopen_drrun_dns.
 */
#include "dns/dns.h"

#include "drrun/libcrypto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RR_MT "drrun.dns.Records"
#define KEYFILE_MT "drrun.dns.KeyFile"

/* ---- options ----------------------------------------------------------------------- */

static const char *opt_str(lua_State *L, int idx, const char *field, const char *who)
{
	lua_getfield(L, idx, field);
	if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "%s: %s must be a string", who, field);
	const char *s = lua_tostring(L, -1);
	lua_pop(L, 1); /* the table keeps it alive */
	return s;
}

static void check_name(lua_State *L, const char *who, const char *what, const char *s,
		       uint8_t *wire, size_t *wlen)
{
	char why[160];
	if (!s)
		luaL_error(L, "%s: %s is required", who, what);
	if (drr_dns_name_parse(s, strlen(s), wire, wlen, why, sizeof why) < 0)
		luaL_error(L, "%s: %s '%s': %s", who, what, s, why);
}

static uint16_t check_type(lua_State *L, const char *who, const char *what, const char *s,
			   const char *dflt)
{
	if (!s)
		s = dflt;
	int t = drr_dns_type_code(s);
	if (t < 0)
		luaL_error(L, "%s: %s '%s' is not a record type", who, what, s);
	return (uint16_t)t;
}

static uint16_t class_code(lua_State *L, const char *who, const char *s)
{
	if (!s || !strcasecmp(s, "IN"))
		return DRR_DNS_C_IN;
	if (!strcasecmp(s, "CH"))
		return 3;
	if (!strcasecmp(s, "HS"))
		return 4;
	if (!strcasecmp(s, "ANY"))
		return DRR_DNS_C_ANY;
	if (!strcasecmp(s, "NONE"))
		return DRR_DNS_C_NONE;
	return (uint16_t)luaL_error(L, "%s: class '%s' is not IN, CH, HS, NONE or ANY", who, s);
}

static const char *class_name(uint16_t c, char *buf)
{
	switch (c) {
	case DRR_DNS_C_IN:
		return "IN";
	case 3:
		return "CH";
	case 4:
		return "HS";
	case DRR_DNS_C_NONE:
		return "NONE";
	case DRR_DNS_C_ANY:
		return "ANY";
	}
	snprintf(buf, 16, "CLASS%u", c);
	return buf;
}

/* key = { name, algorithm = "hmac-sha256", secret = base64 } at the field
 * "key" of the table at idx, into k.  0 when there is none. */
static int opt_key(lua_State *L, int idx, const char *who, struct drr_tsig_key *k)
{
	if (lua_getfield(L, idx, "key") == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	if (!lua_istable(L, -1))
		luaL_error(L, "%s: key must be a table { name, algorithm, secret }", who);
	int t = lua_gettop(L);
	const char *name = opt_str(L, t, "name", who), *alg = opt_str(L, t, "algorithm", who),
		   *secret = opt_str(L, t, "secret", who);
	if (!name || !secret)
		luaL_error(L, "%s: key needs a name and a secret", who);
	char err[200];
	if (drr_tsig_key_init(k, name, alg ? alg : "hmac-sha256", secret, err, sizeof err) < 0)
		luaL_error(L, "%s: key '%s': %s", who, name, err);
	lua_pop(L, 1);
	return 1;
}

/* server, timeout, retries, tcp: the parts of every exchange */
static void opt_exchange(lua_State *L, int idx, const char *who, struct drr_dns_query *q,
			 double dflt_timeout)
{
	const char *server = opt_str(L, idx, "server", who);
	char err[200];
	if (!server)
		luaL_error(L, "%s: server is required (an address: \"127.0.0.1:53\")", who);
	if (drr_dns_parse_server(server, &q->addr, err, sizeof err) < 0)
		luaL_error(L, "%s: server %s", who, err);
	snprintf(q->server, sizeof q->server, "%s", server);
	q->per_try = drr_opt_duration(L, idx, "timeout", dflt_timeout, who);
	lua_getfield(L, idx, "retries");
	lua_Integer retries = luaL_optinteger(L, -1, 2);
	lua_pop(L, 1);
	if (retries < 0 || retries > 20)
		luaL_error(L, "%s: retries must be 0 to 20", who);
	q->attempts = (int)retries + 1;
	lua_getfield(L, idx, "tcp");
	q->tcp_only = lua_toboolean(L, -1);
	lua_pop(L, 1);
}

/* ---- messages as Lua tables --------------------------------------------------------- */

static void push_name(lua_State *L, const struct drr_dns_msg *msg, size_t off)
{
	uint8_t wire[DRR_DNS_NAME_MAX];
	size_t wlen;
	char text[DRR_DNS_NAME_TEXT_MAX];
	if (drr_dns_name_read(msg->m, msg->len, off, wire, &wlen, NULL, NULL, 0) < 0) {
		lua_pushliteral(L, "?");
		return;
	}
	lua_pushlstring(L, text, drr_dns_name_text(wire, wlen, text));
}

static void push_rr(lua_State *L, const struct drr_dns_msg *msg, const struct drr_dns_rr *r)
{
	char b[16];
	lua_createtable(L, 0, 6);
	push_name(L, msg, r->name_off);
	lua_setfield(L, -2, "name");
	lua_pushstring(L, drr_dns_type_name(r->type, b));
	lua_setfield(L, -2, "type");
	lua_pushstring(L, class_name(r->rclass, b));
	lua_setfield(L, -2, "class");
	if (r->section == DRR_DNS_S_QUESTION)
		return;
	lua_pushinteger(L, r->ttl);
	lua_setfield(L, -2, "ttl");
	if (r->rdlen || (r->rclass != DRR_DNS_C_ANY && r->rclass != DRR_DNS_C_NONE)) {
		char text[DRR_DNS_RDATA_TEXT_MAX];
		char err[160];
		int n = drr_dns_rdata_text(msg, r, text, sizeof text, err, sizeof err);
		if (n < 0) /* too long for its text: the generic form's head */
			lua_pushfstring(L, "\\# %d (%s)", (int)r->rdlen, err);
		else
			lua_pushlstring(L, text, (size_t)n);
		lua_setfield(L, -2, "value");
	}
	int64_t serial = drr_dns_soa_serial(msg, r);
	if (serial >= 0) {
		lua_pushinteger(L, serial);
		lua_setfield(L, -2, "serial");
	}
}

static void push_flag(lua_State *L, const char *name, int on)
{
	lua_pushboolean(L, on);
	lua_setfield(L, -2, name);
}

/* The message table.  [-0, +1, m] */
static void push_msg(lua_State *L, const struct drr_dns_msg *msg)
{
	char b[16];
	int update = ((msg->flags >> 11) & 0xf) == DRR_DNS_OP_UPDATE;
	lua_createtable(L, 0, 16);
	lua_pushinteger(L, msg->id);
	lua_setfield(L, -2, "id");
	lua_pushinteger(L, (msg->flags >> 11) & 0xf);
	lua_setfield(L, -2, "opcode");
	lua_pushstring(L, drr_dns_rcode_name(msg->rcode, b));
	lua_setfield(L, -2, "rcode");
	push_flag(L, "qr", msg->flags & 0x8000);
	push_flag(L, "aa", msg->flags & 0x0400);
	push_flag(L, "tc", msg->flags & 0x0200);
	push_flag(L, "rd", msg->flags & 0x0100);
	push_flag(L, "ra", msg->flags & 0x0080);
	push_flag(L, "ad", msg->flags & 0x0020);
	push_flag(L, "cd", msg->flags & 0x0010);
	lua_pushinteger(L, (lua_Integer)msg->len);
	lua_setfield(L, -2, "size");
	static const char *const keys[] = { "question", "answers", "authority", "additional" };
	static const char *const ukeys[] = { "zone", "prereq", "updates", "additional" };
	size_t k = 0;
	for (int s = 0; s < 4; s++) {
		lua_createtable(L, msg->count[s], 0);
		int n = 0;
		for (unsigned i = 0; i < msg->count[s]; i++, k++) {
			if ((int)k == msg->opt || (int)k == msg->tsig)
				continue;
			push_rr(L, msg, &msg->rr[k]);
			lua_rawseti(L, -2, ++n);
		}
		if (s == 0) { /* one question: the table itself */
			lua_rawgeti(L, -1, 1);
			lua_setfield(L, -3, update ? "zone" : "question");
			lua_pop(L, 1);
			continue;
		}
		lua_setfield(L, -2, update ? ukeys[s] : keys[s]);
	}
	if (msg->opt >= 0) {
		lua_createtable(L, 0, 3);
		lua_pushinteger(L, msg->udp_size);
		lua_setfield(L, -2, "udp_size");
		lua_pushinteger(L, msg->edns_version);
		lua_setfield(L, -2, "version");
		push_flag(L, "dnssec_ok", msg->dnssec_ok);
		lua_setfield(L, -2, "edns");
	}
}

static size_t maxrr(size_t n)
{
	return n / 5 + 1;
}

/* core.parse(bytes) */
static int l_parse(lua_State *L)
{
	size_t n;
	const char *p = luaL_checklstring(L, 1, &n);
	if (n > DRR_DNS_MSG_MAX)
		return drr_push_fail(L, "invalid", "message is longer than 65535 bytes");
	struct drr_dns_rr *rr = lua_newuserdatauv(L, maxrr(n) * sizeof *rr, 0);
	struct drr_dns_msg msg;
	char err[200];
	if (drr_dns_parse((const uint8_t *)p, n, &msg, rr, maxrr(n), err, sizeof err) < 0)
		return drr_push_fail(L, "invalid", "%s", err);
	push_msg(L, &msg);
	return 1;
}

/* core.name(text) -> the canonical (presentation, absolute) form */
static int l_name(lua_State *L)
{
	const char *s = luaL_checkstring(L, 1);
	uint8_t wire[DRR_DNS_NAME_MAX];
	size_t wlen;
	char text[DRR_DNS_NAME_TEXT_MAX];
	check_name(L, "dns", "name", s, wire, &wlen);
	lua_pushlstring(L, text, drr_dns_name_text(wire, wlen, text));
	return 1;
}

/* core.canon(type, value) -> the value as the parser would print it */
static int l_canon(lua_State *L)
{
	uint16_t t = check_type(L, "dns", "type", luaL_checkstring(L, 1), NULL);
	const char *v = luaL_checkstring(L, 2);
	char err[200];
	uint8_t *buf = lua_newuserdatauv(L, 12 + 1 + 10 + DRR_DNS_MSG_MAX, 0);
	struct drr_dns_builder b;
	drr_dns_build_init(&b, buf, 12 + 1 + 10 + 65000, 0, 0);
	uint8_t root = 0;
	if (drr_dns_build_rr(&b, DRR_DNS_S_ANSWER, &root, 1, t, DRR_DNS_C_IN, 0, v, err,
			     sizeof err) < 0)
		return drr_push_fail(L, "invalid", "%s", err);
	if (b.failed)
		return drr_push_fail(L, "invalid", "the value is too long");
	struct drr_dns_rr rr[2];
	struct drr_dns_msg msg;
	if (drr_dns_parse(buf, b.len, &msg, rr, 2, err, sizeof err) < 0)
		return drr_push_fail(L, "invalid", "%s", err);
	char *text = lua_newuserdatauv(L, DRR_DNS_RDATA_TEXT_MAX, 0);
	int n = drr_dns_rdata_text(&msg, &rr[0], text, DRR_DNS_RDATA_TEXT_MAX, err, sizeof err);
	if (n < 0)
		return drr_push_fail(L, "invalid", "%s", err);
	lua_pushlstring(L, text, (size_t)n);
	return 1;
}

/* ---- exchanges ----------------------------------------------------------------------- */

/* A query with the options in opts and a request buffer of len bytes
 * (plus room for a TSIG) holding msg.  Owned by the caller. */
static struct drr_dns_query *new_query(const struct drr_dns_query *opts, const uint8_t *msg,
				       size_t len)
{
	struct drr_dns_query *q = drr_xmalloc(sizeof *q);
	*q = *opts;
	q->req = drr_xmalloc(len + DRR_DNS_TSIG_ROOM);
	memcpy(q->req, msg, len);
	return q;
}

/* The answer of a finished exchange: the message table, or a failure. */
static int exchange_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	struct drr_dns_query *q = (struct drr_dns_query *)ctx;
	if (q->token) {
		int n = drr_push_fail(L, q->token, "%s", q->msg);
		drr_dns_query_consumed(q);
		return n;
	}
	/* everything Lua needs, before anything can raise */
	struct drr_tsig_key key = q->key;
	int is_signed = q->signed_;
	uint8_t reqmac[DRR_TSIG_MAC_MAX];
	memcpy(reqmac, q->reqmac, sizeof reqmac);
	char server[80];
	memcpy(server, q->server, sizeof server);
	double rtt = q->rtt;
	int tcp = q->used_tcp;
	uint16_t sport = q->src_port;
	lua_pushlstring(L, (const char *)q->resp, q->resplen);
	memset(&q->key, 0, sizeof q->key);
	drr_dns_query_consumed(q);

	size_t n;
	const uint8_t *p = (const uint8_t *)lua_tolstring(L, -1, &n);
	struct drr_dns_rr *rr = lua_newuserdatauv(L, maxrr(n) * sizeof *rr, 0);
	struct drr_dns_msg msg;
	char err[200];
	if (drr_dns_parse(p, n, &msg, rr, maxrr(n), err, sizeof err) < 0) {
		OPENSSL_cleanse(&key, sizeof key);
		return drr_push_fail(L, "invalid", "%s: the answer does not parse: %s", server,
				     err);
	}
	struct drr_tsig_verdict v = { 0 };
	char rc[16];
	if (is_signed) {
		drr_tsig_verify(&msg, &key, reqmac, key.maclen, (uint64_t)time(NULL), &v);
		OPENSSL_cleanse(&key, sizeof key);
		const char *rcode = drr_dns_rcode_name(msg.rcode, rc);
		switch (v.result) {
		case DRR_TSIG_OK:
			break;
		case DRR_TSIG_UNSIGNED:
			return drr_push_fail(L, "auth", "%s answered %s without a TSIG", server,
					     rcode);
		case DRR_TSIG_PEER_ERROR:
			if (v.error == DRR_TSIG_BADTIME)
				return drr_push_fail(
					L, "clock",
					"%s answered %s (BADTIME): its clock reads %llu, ours %llu; "
					"TSIG allows %u seconds apart",
					server, rcode, (unsigned long long)v.other_time,
					(unsigned long long)time(NULL), v.fudge);
			return drr_push_fail(L, "auth", "%s answered %s (%s): %s", server, rcode,
					     drr_dns_rcode_name(v.error, rc + 0), v.why);
		case DRR_TSIG_BAD_TIME:
			return drr_push_fail(L, "clock", "%s: the answer's TSIG (BADTIME): %s",
					     server, v.why);
		default:
			return drr_push_fail(L, "auth", "%s: the answer's TSIG: %s (rcode %s)",
					     server, v.why, rcode);
		}
	}
	push_msg(L, &msg);
	lua_pushstring(L, server);
	lua_setfield(L, -2, "server");
	lua_pushnumber(L, rtt);
	lua_setfield(L, -2, "rtt");
	lua_pushboolean(L, tcp);
	lua_setfield(L, -2, "tcp");
	lua_pushinteger(L, sport);
	lua_setfield(L, -2, "source_port");
	if (is_signed) {
		lua_createtable(L, 0, 2);
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, "verified");
		lua_pushinteger(L, (lua_Integer)v.time_signed);
		lua_setfield(L, -2, "time_signed");
		lua_setfield(L, -2, "tsig");
	}
	return 1;
}

/* Sign (when a key is given), then start and yield.  Owns q. */
static int go(lua_State *L, struct drr_dns_query *q, struct drr_dns_builder *b, uint64_t when)
{
	char err[200];
	if (q->signed_ && drr_tsig_sign(b, &q->key, when, DRR_TSIG_FUDGE, NULL, 0, q->reqmac,
					err, sizeof err) < 0) {
		free(q->req);
		free(q);
		return drr_push_fail(L, "invalid", "%s", err);
	}
	if (b->failed) {
		free(q->req);
		free(q);
		return drr_push_fail(L, "too_large", "the request does not fit in 65535 bytes");
	}
	q->reqlen = b->len;
	drr_dns_query_start(q);
	return drr_task_yield(L, &q->op, (lua_KContext)q, exchange_k);
}

static int l_query(lua_State *L)
{
	const char *who = "dns.query";
	luaL_checktype(L, 1, LUA_TTABLE);
	uint8_t wire[DRR_DNS_NAME_MAX];
	size_t wlen;
	check_name(L, who, "name", opt_str(L, 1, "name", who), wire, &wlen);
	uint16_t type = check_type(L, who, "type", opt_str(L, 1, "type", who), "A");
	uint16_t cls = class_code(L, who, opt_str(L, 1, "class", who));
	lua_Integer edns = 1232;
	if (lua_getfield(L, 1, "edns") == LUA_TBOOLEAN)
		edns = lua_toboolean(L, -1) ? 1232 : 0;
	else if (!lua_isnil(L, -1))
		edns = luaL_checkinteger(L, -1);
	lua_pop(L, 1);
	if (edns != 0 && (edns < 512 || edns > 65535))
		luaL_error(L, "%s: edns must be false or a UDP size from 512 to 65535", who);
	lua_getfield(L, 1, "dnssec");
	int dnssec = lua_toboolean(L, -1);
	lua_getfield(L, 1, "rd");
	int rd = lua_isnil(L, -1) || lua_toboolean(L, -1);
	lua_pop(L, 2);
	/* everything that may raise first; then C owns q */
	struct drr_tsig_key key;
	struct drr_dns_query opts;
	memset(&opts, 0, sizeof opts);
	opt_exchange(L, 1, who, &opts, 2.0);
	int has_key = opt_key(L, 1, who, &key);
	drr_task_check(L, who);
	/* a question and an OPT: well under 512 bytes */
	uint8_t buf[512];
	uint16_t id = drr_dns_random16();
	struct drr_dns_builder b;
	drr_dns_build_init(&b, buf, sizeof buf, id, rd ? 0x0100 : 0);
	drr_dns_build_question(&b, wire, wlen, type, cls);
	if (edns)
		drr_dns_build_opt(&b, (uint16_t)edns, dnssec);
	struct drr_dns_query *q = new_query(&opts, buf, b.len);
	q->opcode = DRR_DNS_OP_QUERY;
	q->id = id;
	memcpy(q->qname, wire, wlen);
	q->qlen = wlen;
	q->qtype = type;
	q->qclass = cls;
	if (has_key) {
		q->key = key;
		q->signed_ = 1;
		OPENSSL_cleanse(&key, sizeof key);
	}
	struct drr_dns_builder qb = b;
	qb.buf = q->req;
	qb.cap = b.len + DRR_DNS_TSIG_ROOM;
	return go(L, q, &qb, (uint64_t)time(NULL));
}

/* ---- UPDATE ------------------------------------------------------------------------ */

static int in_zone(const uint8_t *name, size_t nlen, const uint8_t *zone, size_t zlen)
{
	/* name ends with zone at a label boundary */
	size_t i = 0;
	while (nlen - i >= zlen) {
		if (drr_dns_name_equal(name + i, nlen - i, zone, zlen))
			return 1;
		if (!name[i])
			break;
		i += (size_t)name[i] + 1;
	}
	return 0;
}

struct upd_item {
	uint8_t name[DRR_DNS_NAME_MAX];
	size_t nlen;
	uint16_t type, rclass;
	uint32_t ttl;
	int vref; /* index on the stack of the value string, or 0 */
};

/* Read list `field` of the update's table (prereq or changes) and write
 * its records into b, section s.  Raises on a bad entry: b is a userdata's
 * buffer, so nothing leaks. */
static void upd_section(lua_State *L, struct drr_dns_builder *b, const char *field, int s,
			const uint8_t *zone, size_t zlen)
{
	const char *who = "dns.update";
	if (lua_getfield(L, 1, field) == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	luaL_checktype(L, -1, LUA_TTABLE);
	int list = lua_gettop(L);
	lua_Integer n = luaL_len(L, list);
	for (lua_Integer i = 1; i <= n; i++) {
		char what[64], err[200];
		snprintf(what, sizeof what, "%s[%lld]", field, (long long)i);
		lua_rawgeti(L, list, i);
		if (!lua_istable(L, -1))
			luaL_error(L, "%s: %s must be a table", who, what);
		int e = lua_gettop(L);
		uint8_t name[DRR_DNS_NAME_MAX];
		size_t nlen;
		char wn[80];
		snprintf(wn, sizeof wn, "%s.name", what);
		check_name(L, who, wn, opt_str(L, e, "name", who), name, &nlen);
		if (!in_zone(name, nlen, zone, zlen))
			luaL_error(L, "%s: %s '%s' is not in the zone", who, wn,
				   opt_str(L, e, "name", who));
		const char *kind = opt_str(L, e, s == 1 ? "kind" : "op", who);
		const char *tname = opt_str(L, e, "type", who);
		const char *value = opt_str(L, e, "value", who);
		lua_getfield(L, e, "ttl");
		lua_Integer ttl = luaL_optinteger(L, -1, 0);
		lua_pop(L, 1);
		if (ttl < 0 || ttl > 2147483647)
			luaL_error(L, "%s: %s.ttl must be 0 to 2147483647", who, what);
		if (!kind)
			luaL_error(L, "%s: %s.%s is required", who, what, s == 1 ? "kind" : "op");
		uint16_t type = 0, cls = 0;
		int want_value = 0, want_type = 1;
		uint32_t t = 0;
		if (s == 1) {
			if (!strcmp(kind, "exists")) /* RRset exists (value-independent) */
				cls = DRR_DNS_C_ANY;
			else if (!strcmp(kind, "value")) /* RRset exists with this value */
				cls = DRR_DNS_C_IN, want_value = 1;
			else if (!strcmp(kind, "not_exists"))
				cls = DRR_DNS_C_NONE;
			else if (!strcmp(kind, "in_use"))
				cls = DRR_DNS_C_ANY, type = DRR_DNS_T_ANY, want_type = 0;
			else if (!strcmp(kind, "not_in_use"))
				cls = DRR_DNS_C_NONE, type = DRR_DNS_T_ANY, want_type = 0;
			else
				luaL_error(L,
					   "%s: %s.kind '%s' is not exists, value, not_exists, "
					   "in_use or not_in_use",
					   who, what, kind);
		} else {
			if (!strcmp(kind, "add"))
				cls = DRR_DNS_C_IN, want_value = 1, t = (uint32_t)ttl;
			else if (!strcmp(kind, "delete_rrset"))
				cls = DRR_DNS_C_ANY;
			else if (!strcmp(kind, "delete"))
				cls = DRR_DNS_C_NONE, want_value = 1;
			else if (!strcmp(kind, "delete_name"))
				cls = DRR_DNS_C_ANY, type = DRR_DNS_T_ANY, want_type = 0;
			else
				luaL_error(L,
					   "%s: %s.op '%s' is not add, delete_rrset, delete or "
					   "delete_name",
					   who, what, kind);
		}
		if (want_type) {
			char wt[80];
			snprintf(wt, sizeof wt, "%s.type", what);
			if (!tname)
				luaL_error(L, "%s: %s is required", who, wt);
			type = check_type(L, who, wt, tname, NULL);
		}
		if (want_value && !value)
			luaL_error(L, "%s: %s.value is required", who, what);
		if (drr_dns_build_rr(b, s, name, nlen, type, cls, t, want_value ? value : NULL, err,
				     sizeof err) < 0)
			luaL_error(L, "%s: %s.value '%s': %s", who, what, value, err);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

static int l_update(lua_State *L)
{
	const char *who = "dns.update";
	luaL_checktype(L, 1, LUA_TTABLE);
	struct drr_dns_query opts;
	memset(&opts, 0, sizeof opts);
	opt_exchange(L, 1, who, &opts, 5.0);
	uint8_t zone[DRR_DNS_NAME_MAX];
	size_t zlen;
	check_name(L, who, "zone", opt_str(L, 1, "zone", who), zone, &zlen);
	lua_getfield(L, 1, "time"); /* TSIG's time signed: now, unless given */
	uint64_t when = lua_isnil(L, -1) ? (uint64_t)time(NULL) : (uint64_t)luaL_checkinteger(L, -1);
	lua_pop(L, 1);
	uint16_t id = drr_dns_random16();
	/* the message is built in a userdata: a bad entry raises, nothing leaks */
	uint8_t *buf = lua_newuserdatauv(L, DRR_DNS_MSG_MAX, 0);
	struct drr_dns_builder b;
	drr_dns_build_init(&b, buf, DRR_DNS_MSG_MAX, id, DRR_DNS_OP_UPDATE << 11);
	drr_dns_build_question(&b, zone, zlen, DRR_DNS_T_SOA, DRR_DNS_C_IN);
	upd_section(L, &b, "prereq", 1, zone, zlen);
	upd_section(L, &b, "changes", 2, zone, zlen);
	struct drr_tsig_key key;
	int has_key = opt_key(L, 1, who, &key);
	if (b.failed) {
		OPENSSL_cleanse(&key, sizeof key);
		return drr_push_fail(L, "too_large", "the update does not fit in 65535 bytes");
	}
	drr_task_check(L, who);
	if (drr_dry_run()) {
		OPENSSL_cleanse(&key, sizeof key);
		return drr_push_dry_run(L, "would send a DNS UPDATE of %zu bytes to %s",
					b.len, opts.server);
	}
	struct drr_dns_query *q = new_query(&opts, buf, b.len);
	struct drr_dns_builder qb = b;
	qb.buf = q->req;
	qb.cap = b.len + DRR_DNS_TSIG_ROOM;
	if (qb.cap > DRR_DNS_MSG_MAX)
		qb.cap = DRR_DNS_MSG_MAX;
	q->opcode = DRR_DNS_OP_UPDATE;
	q->id = id;
	memcpy(q->qname, zone, zlen);
	q->qlen = zlen;
	q->qtype = DRR_DNS_T_SOA;
	q->qclass = DRR_DNS_C_IN;
	if (has_key) {
		q->key = key;
		q->signed_ = 1;
		OPENSSL_cleanse(&key, sizeof key);
	}
	return go(L, q, &qb, when);
}

/* ---- BIND key files ---------------------------------------------------------------- */

struct keyfile {
	struct drr_op op;
	uv_work_t req;
	atomic_int cancelled;
	int ref;
	const char *path;
	char name[300], alg[64], secret[400];
	const char *token;
	char msg[400];
};

/* The next token of a named.conf-style text: a quoted string, a word, or
 * one of { } ;  Comments (#, //, C-style) are skipped. */
static const char *conf_token(const char **pp, char *out, size_t cap)
{
	const char *p = *pp;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			while (*p && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");
			p = e ? e + 2 : p + strlen(p);
		} else {
			break;
		}
	}
	if (!*p)
		return NULL;
	size_t n = 0;
	if (*p == '"') {
		p++;
		while (*p && *p != '"' && n + 1 < cap)
			out[n++] = *p++;
		if (*p != '"')
			return NULL;
		p++;
	} else if (*p == '{' || *p == '}' || *p == ';') {
		out[n++] = *p++;
	} else {
		while (*p && !strchr(" \t\r\n{};\"", *p) && n + 1 < cap)
			out[n++] = *p++;
	}
	out[n] = 0;
	*pp = p;
	return out;
}

static int parse_keyfile(struct keyfile *k, const char *text)
{
	const char *p = text;
	char tok[400];
	if (!conf_token(&p, tok, sizeof tok) || strcmp(tok, "key") ||
	    !conf_token(&p, k->name, sizeof k->name) || !conf_token(&p, tok, sizeof tok) ||
	    strcmp(tok, "{"))
		return -1;
	while (conf_token(&p, tok, sizeof tok) && strcmp(tok, "}")) {
		char *dst = !strcmp(tok, "algorithm") ? k->alg
			    : !strcmp(tok, "secret")  ? k->secret
						      : NULL;
		size_t cap = dst == k->alg ? sizeof k->alg : sizeof k->secret;
		char val[400];
		if (!conf_token(&p, val, sizeof val))
			return -1;
		if (dst)
			snprintf(dst, cap, "%s", val);
		if (!conf_token(&p, tok, sizeof tok) || strcmp(tok, ";"))
			return -1;
	}
	return k->name[0] && k->alg[0] && k->secret[0] ? 0 : -1;
}

static void kf_run(uv_work_t *req)
{
	struct keyfile *k = req->data;
	int fd = open(k->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		k->token = errno == ENOENT ? "not_found" : "io";
		snprintf(k->msg, sizeof k->msg, "cannot open key file '%s': %s", k->path,
			 strerror(errno));
		return;
	}
	struct stat st;
	char buf[4096];
	ssize_t n = -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		k->token = "invalid";
		snprintf(k->msg, sizeof k->msg, "key file '%s' is not a regular file", k->path);
	} else if (st.st_mode & 077) {
		k->token = "invalid";
		snprintf(k->msg, sizeof k->msg,
			 "key file '%s' is open to others (mode %04o): it must be 0600 "
			 "(chmod 600)",
			 k->path, (unsigned)(st.st_mode & 07777));
	} else if (st.st_size >= (off_t)sizeof buf) {
		k->token = "invalid";
		snprintf(k->msg, sizeof k->msg, "key file '%s' is too large for a key", k->path);
	} else {
		size_t len = 0;
		while (len < sizeof buf - 1) {
			n = read(fd, buf + len, sizeof buf - 1 - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
		}
		buf[len] = 0;
		if (n < 0) {
			k->token = "io";
			snprintf(k->msg, sizeof k->msg, "cannot read key file '%s': %s", k->path,
				 strerror(errno));
		} else if (parse_keyfile(k, buf) < 0) {
			k->token = "invalid";
			snprintf(k->msg, sizeof k->msg,
				 "key file '%s' is not a BIND key statement (key \"name\" { "
				 "algorithm ...; secret \"...\"; };)",
				 k->path);
		}
		explicit_bzero(buf, sizeof buf);
	}
	close(fd);
}

static void kf_after(uv_work_t *req, int status)
{
	struct keyfile *k = req->data;
	if (status == UV_ECANCELED && !k->token) {
		k->token = "cancelled";
		snprintf(k->msg, sizeof k->msg, "cancelled");
	}
	int ref = k->ref;
	k->ref = LUA_NOREF;
	if (k->op.task)
		drr_task_wake(k->op.task);
	luaL_unref(drr_lua_main(), LUA_REGISTRYINDEX, ref);
}

static void kf_cancel(struct drr_op *op)
{
	struct keyfile *k = (struct keyfile *)op;
	atomic_store(&k->cancelled, 1);
	uv_cancel((uv_req_t *)&k->req);
}

static int kf_gc(lua_State *L)
{
	struct keyfile *k = luaL_checkudata(L, 1, KEYFILE_MT);
	explicit_bzero(k->secret, sizeof k->secret);
	return 0;
}

static int kf_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	struct keyfile *k = (struct keyfile *)ctx;
	if (k->token)
		return drr_push_fail(L, k->token, "%s", k->msg);
	lua_createtable(L, 0, 3);
	lua_pushstring(L, k->name);
	lua_setfield(L, -2, "name");
	lua_pushstring(L, k->alg);
	lua_setfield(L, -2, "algorithm");
	lua_pushstring(L, k->secret);
	lua_setfield(L, -2, "secret");
	explicit_bzero(k->secret, sizeof k->secret);
	return 1;
}

static int l_keyfile(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	luaL_argcheck(L, *path, 1, "empty path");
	drr_task_check(L, "dns.keyfile");
	struct keyfile *k = lua_newuserdatauv(L, sizeof *k, 1);
	memset(k, 0, sizeof *k);
	atomic_init(&k->cancelled, 0);
	k->req.data = k;
	k->op.cancel = kf_cancel;
	k->path = path;
	luaL_setmetatable(L, KEYFILE_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	lua_pushvalue(L, -1);
	k->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	int rc = uv_queue_work(drr_loop(), &k->req, kf_run, kf_after);
	if (rc < 0) {
		luaL_unref(L, LUA_REGISTRYINDEX, k->ref);
		k->ref = LUA_NOREF;
		return drr_push_fail(L, "io", "cannot queue work: %s", uv_strerror(rc));
	}
	return drr_task_yield(L, &k->op, (lua_KContext)k, kf_k);
}

int luaopen_drrun_dns(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "query", l_query }, { "update", l_update },	{ "parse", l_parse },
		{ "name", l_name },   { "canon", l_canon },	{ "keyfile", l_keyfile },
		{ NULL, NULL },
	};
	char err[300];
	if (!drr_libcrypto_load(err, sizeof err))
		return luaL_error(L, "drrun.dns: %s (TSIG needs OpenSSL 3's libcrypto)", err);
	if (luaL_newmetatable(L, KEYFILE_MT)) {
		lua_pushcfunction(L, kf_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	luaL_newlib(L, fns);
	return 1;
}
