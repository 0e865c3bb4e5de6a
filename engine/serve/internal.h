/*
 * internal.h - what the files of drrun serve share: the server (struct srv),
 * its activations, keys and seen sets, and the functions between them.
 *   serve.c     serve_main, schedules, stopping
 *   hooks.c     the HTTP routes: the webhooks, /runs, /healthz, /metrics
 *   activate.c  deciding intents, starting `drrun run` children, their ends
 *   store.c     events.jsonl: append, group-committed fdatasync, read back
 *   metrics.c   counters, the Prometheus text, the log lines
 * Everything here runs on the loop thread, except what a uv_work_t's work
 * function does (it touches only its own request).
 */
#ifndef DRR_SERVE_INTERNAL_H
#define DRR_SERVE_INTERNAL_H

#include "serve/serve.h"

#include <time.h>

#define SRV_NBUCKETS 9 /* the run duration histogram's buckets (metrics.c) */
#define SEEN_BUCKETS 4096

struct ctr {
	char *family, *labels;
	double v;
	struct ctr *next;
};

struct act {
	long id;
	char *rule, *runbook, *key, *source, *path;
	int drill;
	int locked;	 /* its key is held in etcd */
	double cooldown; /* its rule's */
	char lockval[160];
	int state; /* 0 queued (its runbook's lock is busy), 1 running, 2 ended, 3 lost */
	long pid;
	int exit;
	char run_id[96];
	double started_at, ended_at; /* unix seconds */
	int has_proc;		     /* a child of this serve: srv_reap waits for it */
	int busy; /* its files are being made, or its log read, on the thread pool */
	struct act *next;
};

struct key {
	char *key;
	struct act *active; /* the run holding it, or NULL */
	double ended_at;    /* when its last run ended */
	struct key *next;
};

/* seen webhook ids and generic (t, signature) pairs, with when they may be
 * forgotten (0: never) */
struct seen {
	char *id;
	double until;
	struct seen *next;
};

struct pending { /* an intent waiting for its decision to be durable */
	struct act *a;
	int64_t seq; /* its decision's record */
	json_t *trigger, *params;
	char *path;
	struct pending *next;
};

struct syncwait {
	int64_t upto;
	void (*fn)(void *ud, int rc);
	void *ud;
	struct syncwait *next;
};

struct srv {
	uv_loop_t *loop;
	const struct serve_opts *o;
	struct serve_rules *rs;
	struct serve_http *http;
	char *state_dir, *sdir, *exe; /* absolute, as the runs get them */
	char *rules_dir;	      /* the rules file's, absolute: the runs' cwd */
	int fd;
	int64_t written, synced;
	int syncing, sync_err;
	int64_t sync_target;
	uv_work_t work;
	struct syncwait *waits;
	long next_id, next_act;
	struct act *acts;
	int nrunning;
	struct key *keys;
	struct seen *seen[SEEN_BUCKETS];
	struct ctr *ctrs;
	uint64_t hist[SRV_NBUCKETS + 1];
	double hist_sum;
	uint64_t hist_n;
	char **pd, **gen;
	int npd, ngen;
	char *am_token;
	int stopping;
	uv_signal_t sigterm, sigint, sigchld;
	uv_prepare_t log_prep; /* writes the log lines of an iteration */
	struct drr_buf log;
	int log_on;
	int nchildren; /* runs started here whose exit is not yet waited for */
	uv_timer_t sched_timer, reap_timer;
	time_t *sched_next;
	struct pending *pend;
	struct pending *queue; /* decided, waiting for a run of their runbook to end */
	int exit_code;
	struct serve_etcd *etcd;
	int locking; /* etcd answers awaited */
	char instance[96];
};

/* ---- approve.c: /approve/<token>, the links of approval gates --------------- */

void srv_on_approve(struct srv *s, struct serve_req *r, const char *tok);

/* ---- metrics.c ------------------------------------------------------------ */

void srv_metric(struct srv *s, const char *family, const char *labels, double by);
void srv_metric_set(struct srv *s, const char *family, const char *labels, double v);
void srv_metric1(struct srv *s, const char *family, const char *name, const char *v);
/* A Prometheus label: name="value", \ " and newline escaped; malloc'd. */
char *srv_plabel(const char *name, const char *v);
/* A run of runbook ended after d seconds: histogram and last RTO. */
void srv_metric_run(struct srv *s, const char *runbook, double d);
void srv_render_metrics(struct srv *s, struct drr_buf *b);
/* srv_log(s, level, msg, key, value, ..., NULL): values are redacted. */
void srv_log(struct srv *s, const char *level, const char *msg, ...);
/* Buffer the lines while the loop runs, written once an iteration; stop
 * writes what is left and closes the handle. */
void srv_log_start(struct srv *s);
void srv_log_flush(struct srv *s);
void srv_log_stop(struct srv *s);

/* ---- store.c -------------------------------------------------------------- */

/* Append one record (a line, stamped "ts"; rec is consumed); -1 when the
 * write failed. */
int srv_store_append(struct srv *s, json_t *rec);
/* Call fn once everything appended so far is durable (rc -1: it is not). */
void srv_store_sync(struct srv *s, void (*fn)(void *ud, int rc), void *ud);
int srv_seen_has(struct srv *s, const char *id);
void srv_seen_add(struct srv *s, const char *id, double until);
struct key *srv_key_get(struct srv *s, const char *k);
struct act *srv_act_find(struct srv *s, long id);
struct act *srv_act_new(struct srv *s, long id, const char *rule, const char *runbook,
			const char *path, const char *key, const char *source, int drill);
double srv_now(void);
/* Read events.jsonl back at start (before the listener opens); 0 or -1. */
int srv_replay(struct srv *s, const char *path, time_t *last_fired);

/* ---- activate.c ----------------------------------------------------------- */

const char *srv_result_name(int code);
/* Decide one intent (start, or drop: dedupe, cooldown, lock); decide_all
 * decides a delivery's intents, then waits for the decisions to be durable. */
void srv_decide(struct srv *s, long id, int idx, json_t *intent);
void srv_decide_all(struct srv *s, long id, json_t *intents);
/* The decisions appended so far are durable (rc 0) or not: start them. */
void srv_on_decisions_durable(void *ud, int rc);
/* A run ended (lost: its end is unknown): its key freed, its end recorded.
 * act_gone first reads its run id from its log, on the thread pool. */
void srv_act_ended(struct srv *s, struct act *a, int code, int lost);
void srv_act_gone(struct srv *s, struct act *a, int code, int lost);
/* Wait for the runs this serve started that have exited (on SIGCHLD). */
void srv_reap(struct srv *s);
/* The run id the child printed first ("... run <id>") in the log of act
 * id; "" when none.  Blocking: thread pool, or at start. */
void srv_read_run_id(const char *sdir, long id, char *out, size_t outlen);

/* ---- hooks.c -------------------------------------------------------------- */

void srv_on_request(void *ud, struct serve_req *r);
void srv_reply_json(struct serve_req *r, int code, json_t *o);
json_t *srv_alert_trigger(int source, const struct serve_alert *a, const char *rule,
			  const char *received);

/* ---- serve.c -------------------------------------------------------------- */

/* Stopping, and nothing left to wait for: close everything. */
void srv_maybe_finish(struct srv *s);

#endif
