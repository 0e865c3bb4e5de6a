/*
 * dns/dns.h - the private interface between the files of the DNS plugin:
 * wire.c and rdata.c (messages, record data), tsig.c (signatures), query.c
 * (one exchange on the loop) and binding.c (`require "drrun.dns.core"`).
 */
#ifndef DRR_DNS_H
#define DRR_DNS_H

#include "drrun/plugin.h"

#include "dns/tsig.h"
#include "dns/wire.h"

#include <netinet/in.h>

/* One exchange: the caller fills the request part, calls start, yields;
 * on wake either token is set (a failure, msg says it) or resp holds the
 * answer's bytes.  Then drr_dns_query_consumed() (never free it). */
struct drr_dns_query {
	struct drr_op op;
	/* request */
	struct sockaddr_storage addr;
	char server[80];
	size_t reqlen;
	uint16_t id, opcode, qtype, qclass;
	uint8_t qname[DRR_DNS_NAME_MAX];
	size_t qlen;
	int attempts; /* tries per transport */
	double per_try;
	int tcp_only;
	/* result */
	uint8_t *resp;
	size_t resplen;
	const char *token;
	char msg[300];
	double rtt;
	int used_tcp, truncated, dropped;
	uint16_t src_port;
	/* signing: the request's MAC, to check the answer's */
	struct drr_tsig_key key;
	int signed_;
	uint8_t reqmac[DRR_TSIG_MAC_MAX];
	/* state */
	uv_udp_t udp;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t conn;
	uv_write_t wr;
	uv_udp_send_t sreq;
	uint8_t lenpfx[2];
	uint8_t *tbuf;
	size_t tlen;
	int udp_on, tcp_on, timer_on, open, attempt, sending;
	int done, cancelled, consumed;
	double t0;
	uint8_t *req; /* the request, owned; room for its TSIG (DRR_DNS_TSIG_ROOM) */
};

/* What a TSIG RR can add to a message: owner and algorithm names, the
 * fixed fields, the longest MAC. */
#define DRR_DNS_TSIG_ROOM (2 * DRR_DNS_NAME_MAX + 10 + 16 + DRR_TSIG_MAC_MAX)

void drr_dns_query_start(struct drr_dns_query *q);
void drr_dns_query_consumed(struct drr_dns_query *q);
uint16_t drr_dns_random16(void);
/* "127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:53" -> address (port 53 by
 * default).  Returns 0, or -1 with err (names are refused: no resolver). */
int drr_dns_parse_server(const char *s, struct sockaddr_storage *ss, char *err, size_t errlen);

int luaopen_drrun_dns(lua_State *L);

#endif
