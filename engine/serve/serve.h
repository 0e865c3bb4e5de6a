/*
 * serve/serve.h - `drrun serve`: the webhook listener (libmicrohttpd on the
 * libuv loop), signatures, the rules file, durable acceptance, dedupe and
 * cooldown, schedules, activation of `drrun run` as a child process.
 *
 * Files: sig.c (signature headers, pure), alert.c (webhook bodies into
 * alerts, pure), rules.c (the rules file, matching, the dedupe template,
 * cron), store.c (the durable log under <state-dir>/serve/), http.c (the
 * listener), serve.c (the daemon: activation, metrics, signals), libmhd.c.
 */
#ifndef DRR_SERVE_H
#define DRR_SERVE_H

#include "core/core.h"

#include <time.h>

/* ---- libmhd.c ---------------------------------------------------------- */

/* Open libmicrohttpd; once.  0, or -1 with a one-line reason in err. */
int serve_mhd_load(char *err, size_t errlen);

/* ---- sig.c: signature headers ------------------------------------------ */

enum {
	SIG_OK = 0,
	SIG_MALFORMED = -1, /* missing or unparsable header, empty body: 400 */
	SIG_MISMATCH = -2,  /* no v1= entry matches any secret: 403 (401 generic) */
	SIG_STALE = -3,	    /* generic: t more than 5 min away from now */
};
#define SIG_MAX_ENTRIES 16     /* v1= entries looked at in one header */
#define SIG_MAX_HEADER 4096    /* longer headers are malformed */
#define SIG_WINDOW 300	       /* the generic hook's t: +/- 5 min */

/* Split a comma-separated secret list (DRRUN_PAGERDUTY_SECRET during
 * rotation) into n >= 0 non-empty secrets; *out is malloc'd, each string
 * too.  serve_secrets_free frees them, wiping the bytes. */
int serve_secrets_split(const char *list, char ***out);
void serve_secrets_free(char **s, int n);

/* X-PagerDuty-Signature: "v1=<hex>[,v1=<hex>...]", HMAC-SHA256(secret, raw
 * body).  Entries of other versions are ignored.  SIG_OK when any v1 entry
 * matches any secret (constant-time compare). */
int serve_sig_pagerduty(const char *header, const char *body, size_t n, char *const *secrets,
			int nsecrets);
/* X-Drrun-Signature: "t=<unix seconds>,v1=<hex>[,v1=...]", HMAC-SHA256(secret,
 * "<t>.<raw body>").  On SIG_OK *t_out is t and matched (65 bytes) the hex
 * that matched, for the replay check. */
int serve_sig_generic(const char *header, const char *body, size_t n, char *const *secrets,
		      int nsecrets, int64_t now, int64_t *t_out, char matched[65]);
/* Authorization for /hooks/alertmanager: "Bearer <token>" or "Basic
 * base64(user:token)" (the password is the token).  1 when it matches. */
int serve_auth_bearer(const char *header, const char *token);

/* ---- alert.c: webhook bodies ------------------------------------------- */

enum { SRC_ALERTMANAGER, SRC_PAGERDUTY, SRC_GENERIC, SRC_SCHEDULE, SRC_N };
extern const char *const serve_source_names[SRC_N];

#define BODY_MAX ((size_t)1 << 20) /* 1 MiB: larger bodies get 413 */
#define BODY_DEPTH 16		   /* deeper JSON nesting gets 400 */
#define LABELS_MAX 64
#define LABEL_NAME_MAX 128
#define LABEL_VALUE_MAX 1024
#define ANNOT_VALUE_MAX 16384
#define ALERTS_MAX 1000

/* One alert: borrowed pointers into the parsed tree. */
struct serve_alert {
	int firing;		 /* status "firing" (else resolved) */
	json_t *labels;		 /* object of strings */
	json_t *annotations;	 /* object of strings */
	const char *starts_at;	 /* "" when absent */
	const char *fingerprint; /* "" when absent */
};

struct serve_body {
	json_t *root;
	int source;
	struct serve_alert *alerts;
	int nalerts;
	const char *group_key; /* Alertmanager groupKey, PagerDuty event id; "" */
	int firing;	       /* the payload's status */
};

/* Parse and check a webhook body.  0, or the HTTP status to answer (400,
 * 413, 422) with a metric reason (a static token: "json", "depth", "utf8",
 * "shape", "label", "template", "runbook_in_alert", "too_large") and a
 * one-line detail.  serve_body_free after 0 only. */
int serve_body_parse(int source, const char *p, size_t n, struct serve_body *b,
		     const char **reason, char *detail, size_t dlen);
void serve_body_free(struct serve_body *b);

/* ---- rules.c: the rules file ------------------------------------------- */

struct serve_match {
	char *key, *value;
	void *re; /* pcre2_code for match_re, NULL for match */
};

struct serve_rule {
	char *name;
	int line;
	int source;
	struct serve_match *match;
	int nmatch;
	char *runbook; /* as written; path is resolved against the rules dir */
	char *path;
	int params_ref; /* function(alert) or table, LUA_NOREF */
	int drill;
	char *dedupe;	 /* template */
	double cooldown; /* seconds */
	/* mode = "confirm": what the run asks before its first step (the
	 * trigger's "confirm" member: question, timeout, default, approvers,
	 * quorum, notify); NULL in mode "auto" */
	json_t *confirm;
};

struct serve_cron {
	uint64_t min;		/* bits 0-59 */
	uint32_t hour, dom, mon; /* bits 0-23, 1-31, 1-12 */
	uint8_t dow;		/* bits 0-6, Sunday 0 */
	int dom_any, dow_any;
};

struct serve_sched {
	char *name;
	int line;
	char *cron;
	struct serve_cron c;
	int utc;
	char *runbook, *path;
	int params_ref;
	int drill;
};

struct serve_rules {
	lua_State *L;
	char *file, *dir;
	struct serve_rule *rules;
	int nrules;
	struct serve_sched *scheds;
	int nscheds;
};

/* Load and validate a rules file in the runbook sandbox: every error goes
 * to d as file:line: message.  NULL only when nothing could be loaded. */
struct serve_rules *serve_rules_load(const char *file, struct drr_diag *d);
void serve_rules_free(struct serve_rules *r);
/* Does the alert match the rule (source, match, match_re)? */
int serve_rule_matches(const struct serve_rule *r, int source, const struct serve_alert *a);
/* Expand a dedupe template: {labels.X}, {annotations.X}, {fingerprint},
 * {rule}, {source}; a missing value expands to "".  Single pass: what a
 * label holds is never expanded again.  Caller frees. */
char *serve_template(const char *tmpl, const char *rule, int source, const struct serve_alert *a);
/* The rule's params for this alert as a JSON object of strings (the
 * function runs bounded in the rules' sandbox).  NULL with err. */
json_t *serve_rule_params(struct serve_rules *rs, int ref, const json_t *trigger, char *err,
			  size_t errlen);
/* Cron: parse 5 fields; 0 or -1 with why.  next: the first minute after
 * `after` (unix seconds) that matches, in UTC or local time. */
int serve_cron_parse(const char *s, struct serve_cron *c, const char **why);
time_t serve_cron_next(const struct serve_cron *c, time_t after, int utc);
/* Does the file declare rules (rule/schedule), so `drrun check` checks it
 * as a rules file? */
int serve_is_rules_file(const char *file);

/* ---- http.c: libmicrohttpd on the libuv loop ------------------------------ */

struct serve_http;
struct serve_req {
	struct serve_http *h;
	void *conn; /* struct MHD_Connection */
	const char *method, *url;
	struct drr_buf body;
	int too_big, started, deferred, replied;
	int code;
	char *resp;
	size_t resplen;
	const char *ctype;
	double t0; /* drr_mono() at the first byte */
};
typedef void (*serve_handler)(void *ud, struct serve_req *r);

struct serve_http_opts {
	const char *host;
	int port;
	const char *tls_cert, *tls_key; /* PEM text, or NULL */
	int max_conns;
	int conn_timeout; /* seconds of inactivity before a client is dropped */
};
/* Listen; NULL with err.  handler runs on the loop, once per complete
 * request; it calls serve_req_reply now, or serve_req_defer and later. */
struct serve_http *serve_http_start(uv_loop_t *loop, const struct serve_http_opts *o,
				    serve_handler fn, void *ud, char *err, size_t errlen);
/* The port really bound (for --listen HOST:0). */
int serve_http_port(struct serve_http *h);
/* A request header (case-insensitive), or NULL; valid until the reply. */
const char *serve_req_header(struct serve_req *r, const char *name);
/* The client's address, for logs: "127.0.0.1:43210". */
void serve_req_peer(struct serve_req *r, char *buf, size_t n);
void serve_req_defer(struct serve_req *r);
/* Answer: body is copied. */
void serve_req_reply(struct serve_req *r, int code, const char *ctype, const char *body,
		     size_t n);
/* Stop accepting new connections; the open ones finish. */
void serve_http_quiesce(struct serve_http *h);
/* Connections open now. */
int serve_http_open(struct serve_http *h);
void serve_http_stop(struct serve_http *h);

/* ---- etcd.c: dedupe keys shared by several instances ---------------------- */

struct serve_etcd;
/* url is etcd://HOST:PORT; ttl the lease's seconds.  NULL with err. */
struct serve_etcd *serve_etcd_new(uv_loop_t *loop, const char *url, int ttl, char *err,
				  size_t errlen);
/* Grant the lease and keep it alive; on_state(ud, up) when that changes. */
void serve_etcd_start(struct serve_etcd *e, void (*on_state)(void *ud, int up), void *ud);
int serve_etcd_up(const struct serve_etcd *e);
/* Take key (neither it nor its cooldown held anywhere): cb(ud, 0) taken,
 * 1 held elsewhere or cooling down, -1 etcd unreachable or no lease. */
void serve_etcd_acquire(struct serve_etcd *e, const char *key, const char *value,
			void (*cb)(void *ud, int rc), void *ud);
/* Give key back (if it still holds value), leaving a cooldown behind. */
void serve_etcd_release(struct serve_etcd *e, const char *key, const char *value,
			double cooldown);
void serve_etcd_close(struct serve_etcd *e);

/* ---- cmd_serve (engine/cli) calls this --------------------------------- */

struct serve_opts {
	const char *rules, *listen, *lock, *tls_cert, *tls_key, *state_dir;
	int log_json;
	int max_conns;
	double conn_timeout;
	double lock_ttl; /* seconds, for --lock */
};
int serve_main(const struct serve_opts *o);

#endif
