/*
 * hooks.c - serve's HTTP routes: the three webhooks (authenticated on the
 * raw bytes, parsed, matched against the rules, accepted durably before the
 * 2xx), and the read-only /runs, /runs/<id>, /healthz, /metrics.
 */
#include "serve/internal.h"
#include "run/run.h"

#include <stdlib.h>
#include <string.h>

/* ---- hooks -------------------------------------------------------------------- */

void srv_reply_json(struct serve_req *r, int code, json_t *o)
{
	char *t = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	size_t n = strlen(t);
	char *line = drr_xasprintf("%s\n", t);
	serve_req_reply(r, code, "application/json", line, n + 1);
	free(line);
	free(t);
}

static void reject(struct srv *s, struct serve_req *r, int source, int code, const char *reason,
		   const char *detail)
{
	const char *src = serve_source_names[source];
	char *l1 = srv_plabel("source", src), *l2 = srv_plabel("reason", reason);
	char *l = drr_xasprintf("%s,%s", l1, l2);
	srv_metric(s, "drrun_webhooks_rejected_total", l, 1);
	free(l);
	free(l1);
	free(l2);
	char peer[64], codes[8];
	serve_req_peer(r, peer, sizeof peer);
	snprintf(codes, sizeof codes, "%d", code);
	srv_log(s, "warn", "webhook refused", "source", src, "status", codes, "reason", reason,
		"detail", detail, "peer", peer, NULL);
	srv_reply_json(r, code, json_pack("{s:s,s:s}", "error", reason, "detail", detail));
}

struct accept_ctx {
	struct srv *s;
	struct serve_req *r;
	long id;
	json_t *intents;
	int nresolved;
};

static void on_accept_durable(void *ud, int rc)
{
	struct accept_ctx *c = ud;
	struct srv *s = c->s;
	if (rc < 0) {
		/* not durable: 503, so the sender retries (Alertmanager, PagerDuty do) */
		srv_reply_json(c->r, 503,
			       json_pack("{s:s}", "error", "the events log is not durable"));
	} else {
		srv_reply_json(c->r, 202,
			       json_pack("{s:s,s:I,s:i,s:i}", "status", "accepted", "id",
					 (json_int_t)c->id, "intents",
					 (int)json_array_size(c->intents), "resolved",
					 c->nresolved));
		srv_decide_all(s, c->id, c->intents);
	}
	json_decref(c->intents);
	free(c);
}

json_t *srv_alert_trigger(int source, const struct serve_alert *a, const char *rule,
			  const char *received)
{
	return json_pack("{s:s,s:O,s:o,s:s,s:s,s:s,s:s}", "source", serve_source_names[source],
			 "labels", a->labels, "annotations",
			 a->annotations ? json_incref(a->annotations) : json_object(), "startsAt",
			 a->starts_at, "fingerprint", a->fingerprint, "rule", rule, "received_at",
			 received);
}

static void hook(struct srv *s, struct serve_req *r, int source)
{
	srv_metric1(s, "drrun_webhooks_received_total", "source", serve_source_names[source]);
	if (strcmp(r->method, "POST")) {
		reject(s, r, source, 405, "method", "use POST");
		return;
	}
	if (r->too_big) {
		reject(s, r, source, 413, "too_large", "body over 1 MiB");
		return;
	}
	const char *body = r->body.data ? r->body.data : "";
	size_t n = r->body.len;
	char replay[160] = "";
	const char *webhook_id = NULL;
	/* authenticate first, on the raw bytes; a hook with no secret refuses all */
	if (source == SRC_ALERTMANAGER) {
		if (!s->am_token) {
			reject(s, r, source, 401, "not_configured",
			       "DRRUN_ALERTMANAGER_TOKEN is not set");
			return;
		}
		if (!serve_auth_bearer(serve_req_header(r, "Authorization"), s->am_token)) {
			reject(s, r, source, 401, "auth", "missing or wrong bearer token");
			return;
		}
	} else if (source == SRC_PAGERDUTY) {
		if (!s->npd) {
			reject(s, r, source, 401, "not_configured",
			       "DRRUN_PAGERDUTY_SECRET is not set");
			return;
		}
		const char *h = serve_req_header(r, "X-PagerDuty-Signature");
		if (!h) {
			reject(s, r, source, 401, "unsigned", "no X-PagerDuty-Signature");
			return;
		}
		int rc = serve_sig_pagerduty(h, body, n, s->pd, s->npd);
		if (rc == SIG_MALFORMED) {
			reject(s, r, source, 400, "malformed",
			       "malformed X-PagerDuty-Signature or empty body");
			return;
		}
		if (rc != SIG_OK) {
			reject(s, r, source, 403, "signature", "no v1 signature matches");
			return;
		}
		webhook_id = serve_req_header(r, "X-Webhook-Id");
		if (webhook_id && (strlen(webhook_id) > 128 || !*webhook_id))
			webhook_id = NULL;
		if (webhook_id) {
			char *k = drr_xasprintf("pd:%s", webhook_id);
			int dup = srv_seen_has(s, k);
			free(k);
			if (dup) { /* a retry of one already accepted: done, again */
				srv_metric1(s, "drrun_webhooks_duplicate_total", "source",
					    "pagerduty");
				srv_reply_json(r, 200, json_pack("{s:s}", "status", "duplicate"));
				return;
			}
		}
	} else {
		if (!s->ngen) {
			reject(s, r, source, 401, "not_configured",
			       "DRRUN_WEBHOOK_SECRET is not set");
			return;
		}
		const char *h = serve_req_header(r, "X-Drrun-Signature");
		if (!h) {
			reject(s, r, source, 401, "unsigned", "no X-Drrun-Signature");
			return;
		}
		int64_t t;
		char sig[65];
		int rc = serve_sig_generic(h, body, n, s->gen, s->ngen, drr_now_us() / 1000000, &t,
					   sig);
		if (rc == SIG_MALFORMED) {
			reject(s, r, source, 400, "malformed", "malformed X-Drrun-Signature");
			return;
		}
		if (rc == SIG_STALE) {
			reject(s, r, source, 403, "stale", "t is more than 5 minutes from now");
			return;
		}
		if (rc != SIG_OK) {
			reject(s, r, source, 403, "signature", "no v1 signature matches");
			return;
		}
		snprintf(replay, sizeof replay, "gen:%lld.%s", (long long)t, sig);
		if (srv_seen_has(s, replay)) {
			reject(s, r, source, 403, "replay", "this signature was accepted before");
			return;
		}
	}
	struct serve_body b;
	const char *reason;
	char detail[256];
	int code = serve_body_parse(source, body, n, &b, &reason, detail, sizeof detail);
	if (code) {
		reject(s, r, source, code, reason, detail);
		return;
	}
	char received[40];
	drr_rfc3339(drr_now_us(), received, sizeof received);
	json_t *intents = json_array();
	int nresolved = 0;
	for (int i = 0; i < b.nalerts; i++) {
		struct serve_alert *a = &b.alerts[i];
		if (!a->firing) {
			nresolved++;
			continue;
		}
		for (int k = 0; k < s->rs->nrules; k++) {
			struct serve_rule *ru = &s->rs->rules[k];
			if (!serve_rule_matches(ru, source, a))
				continue;
			json_t *trig = srv_alert_trigger(source, a, ru->name, received);
			char perr[256];
			json_t *params =
				serve_rule_params(s->rs, ru->params_ref, trig, perr, sizeof perr);
			if (!params) {
				json_decref(trig);
				json_decref(intents);
				serve_body_free(&b);
				reject(s, r, source, 422, "param", perr);
				return;
			}
			if (ru->confirm) /* the run asks before its first step */
				json_object_set(trig, "confirm", ru->confirm);
			char *key = serve_template(ru->dedupe, ru->name, source, a);
			/* one intent per dedupe key in one delivery */
			int dup = 0;
			size_t j;
			json_t *in;
			json_array_foreach(intents, j, in) {
				dup |= !strcmp(json_string_value(json_object_get(in, "key")), key);
			}
			if (!dup)
				json_array_append_new(
					intents,
					json_pack("{s:s,s:s,s:s,s:s,s:b,s:f,s:o,s:o}", "rule",
						  ru->name, "key", key, "runbook", ru->runbook,
						  "path", ru->path, "drill", ru->drill, "cooldown",
						  ru->cooldown, "trigger", trig, "params", params));
			else {
				json_decref(trig);
				json_decref(params);
				srv_metric1(s, "drrun_dedupe_drops_total", "rule", ru->name);
			}
			free(key);
		}
	}
	long id = s->next_id++;
	json_t *rec = json_pack("{s:s,s:I,s:s,s:s,s:O,s:i}", "type", "accepted", "id",
				(json_int_t)id, "source", serve_source_names[source], "group_key",
				b.group_key, "intents", intents, "resolved", nresolved);
	if (webhook_id)
		json_object_set_new(rec, "webhook_id", json_string(webhook_id));
	if (*replay)
		json_object_set_new(rec, "replay", json_string(replay));
	if (nresolved) {
		json_t *res = json_array();
		for (int i = 0; i < b.nalerts; i++)
			if (!b.alerts[i].firing)
				json_array_append_new(
					res, json_pack("{s:O,s:s}", "labels", b.alerts[i].labels,
						       "fingerprint", b.alerts[i].fingerprint));
		json_object_set_new(rec, "resolved_alerts", res);
		srv_metric(s, "drrun_alerts_resolved_total", "", 0);
		char *l = srv_plabel("source", serve_source_names[source]);
		srv_metric(s, "drrun_alerts_resolved_total", l, nresolved);
		free(l);
	}
	serve_body_free(&b);
	if (srv_store_append(s, rec) < 0) {
		json_decref(intents);
		srv_reply_json(r, 503,
			       json_pack("{s:s}", "error", "the events log is not writable"));
		return;
	}
	if (webhook_id) {
		char *k = drr_xasprintf("pd:%s", webhook_id);
		srv_seen_add(s, k, 0);
		free(k);
	}
	if (*replay)
		srv_seen_add(s, replay, srv_now() + 2 * SIG_WINDOW);
	char ids[24], ns[16], rs[16], peer[64];
	snprintf(ids, sizeof ids, "%ld", id);
	snprintf(ns, sizeof ns, "%zu", json_array_size(intents));
	snprintf(rs, sizeof rs, "%d", nresolved);
	serve_req_peer(r, peer, sizeof peer);
	srv_log(s, "info", "webhook accepted", "id", ids, "source", serve_source_names[source],
		"intents", ns, "resolved", rs, "peer", peer, NULL);
	struct accept_ctx *c = drr_xcalloc(1, sizeof *c);
	c->s = s;
	c->r = r;
	c->id = id;
	c->intents = intents;
	c->nresolved = nresolved;
	serve_req_defer(r);
	srv_store_sync(s, on_accept_durable, c);
}

/* ---- the read-only endpoints ------------------------------------------------------ */

static json_t *act_json(const struct act *a)
{
	static const char *const states[] = { "queued", "running", "ended", "lost" };
	char st[40] = "", en[40] = "";
	if (a->started_at > 0)
		drr_rfc3339((int64_t)(a->started_at * 1e6), st, sizeof st);
	if (a->ended_at > 0)
		drr_rfc3339((int64_t)(a->ended_at * 1e6), en, sizeof en);
	json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s}", "id", (json_int_t)a->id, "rule",
			      a->rule, "source", a->source, "runbook", a->runbook, "key", a->key,
			      "state", states[a->state], "run_id", a->run_id);
	json_object_set_new(o, "pid", a->pid ? json_integer(a->pid) : json_null());
	json_object_set_new(o, "exit",
			    a->state >= 2 && a->exit >= 0 ? json_integer(a->exit) : json_null());
	json_object_set_new(o, "result",
			    a->state == 2   ? json_string(srv_result_name(a->exit))
			    : a->state == 3 ? json_string("lost")
					    : json_null());
	json_object_set_new(o, "started_at", *st ? json_string(st) : json_null());
	json_object_set_new(o, "ended_at", *en ? json_string(en) : json_null());
	return o;
}

static void on_alertmanager(struct srv *s, struct serve_req *r, const char *rest)
{
	(void)rest;
	hook(s, r, SRC_ALERTMANAGER);
}

static void on_pagerduty(struct srv *s, struct serve_req *r, const char *rest)
{
	(void)rest;
	hook(s, r, SRC_PAGERDUTY);
}

static void on_generic(struct srv *s, struct serve_req *r, const char *rest)
{
	(void)rest;
	hook(s, r, SRC_GENERIC);
}

static void on_healthz(struct srv *s, struct serve_req *r, const char *rest)
{
	(void)rest;
	int lock_down = s->etcd && !serve_etcd_up(s->etcd);
	json_t *o = json_pack("{s:s,s:b,s:i,s:i,s:i}", "status",
			      s->stopping ? "stopping"
			      : lock_down ? "lock_down"
					  : "ok",
			      "accepting", !s->stopping, "rules", s->rs->nrules, "schedules",
			      s->rs->nscheds, "running", s->nrunning);
	json_object_set_new(o, "lock",
			    !s->etcd	? json_string("local")
			    : lock_down ? json_string("etcd down: activations refused")
					: json_string("etcd"));
	srv_reply_json(r, s->stopping || lock_down ? 503 : 200, o);
}

static void on_metrics(struct srv *s, struct serve_req *r, const char *rest)
{
	(void)rest;
	struct drr_buf b = { 0 };
	srv_render_metrics(s, &b);
	serve_req_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "",
			b.len);
	drr_buf_free(&b);
}

/* GET /runs: the runs serve started; those going that wait for an approval
 * (or a confirmation) say which, read from their journals in the thread pool. */
struct runs_job {
	uv_work_t w;
	struct serve_req *r;
	char *state_dir, *sdir;
	json_t *runs; /* the answer being built */
};

static void runs_work(uv_work_t *w)
{
	struct runs_job *j = w->data;
	size_t i;
	json_t *o;
	json_array_foreach(j->runs, i, o)
	{
		const char *st = json_string_value(json_object_get(o, "state"));
		if (!st || strcmp(st, "running"))
			continue;
		const char *id = json_string_value(json_object_get(o, "run_id"));
		if (!id || !*id) { /* known from the run's log once it has started */
			char rid[160] = "";
			srv_read_run_id(j->sdir, (long)json_integer_value(json_object_get(o, "id")),
					rid, sizeof rid);
			json_object_set_new(o, "run_id", json_string(rid));
			id = json_string_value(json_object_get(o, "run_id"));
		}
		if (!*id || strchr(id, '/'))
			continue;
		char *dir = drr_xasprintf("%s/runs/%s", j->state_dir, id);
		struct drr_past p;
		char err[256];
		if (drr_past_load(dir, &p, err, sizeof err) == 0) {
			json_t *waits = json_array();
			for (int k = 0; k < p.nsteps; k++) {
				const json_t *g = p.steps[k].gate;
				if (!g || p.end)
					continue;
				json_t *yes = json_array();
				size_t n;
				json_t *v;
				json_array_foreach(p.steps[k].votes, n, v)
					if (!strcmp(json_string_value(json_object_get(v, "answer")),
						    "approve"))
						json_array_append(yes, json_object_get(v, "as"));
				json_array_append_new(
					waits, json_pack("{s:s,s:O,s:O,s:O,s:o}", "step", p.steps[k].name,
							 "question", json_object_get(g, "question"),
							 "quorum", json_object_get(g, "quorum"),
							 "approvers", json_object_get(g, "approvers"),
							 "approved_by", yes));
			}
			if (json_array_size(waits))
				json_object_set_new(o, "awaiting_approval", waits);
			else
				json_decref(waits);
			drr_past_free(&p);
		}
		free(dir);
	}
}

static void runs_done(uv_work_t *w, int status)
{
	(void)status;
	struct runs_job *j = w->data;
	srv_reply_json(j->r, 200, json_pack("{s:o}", "runs", j->runs));
	free(j->state_dir);
	free(j->sdir);
	free(j);
}

static void on_runs(struct srv *s, struct serve_req *r, const char *rest)
{
	(void)rest;
	json_t *arr = json_array();
	for (struct act *a = s->acts; a; a = a->next)
		json_array_insert_new(arr, 0, act_json(a));
	struct runs_job *j = drr_xcalloc(1, sizeof *j);
	j->w.data = j;
	j->r = r;
	j->state_dir = drr_xstrdup(s->state_dir);
	j->sdir = drr_xstrdup(s->sdir);
	j->runs = arr;
	serve_req_defer(r);
	uv_queue_work(s->loop, &j->w, runs_work, runs_done);
}

/* /runs/<activation id or run id> */
static void on_run(struct srv *s, struct serve_req *r, const char *rest)
{
	char *end;
	long id = strtol(rest, &end, 10);
	struct act *a = *end || end == rest ? NULL : srv_act_find(s, id);
	for (struct act *x = s->acts; !a && x; x = x->next)
		if (*x->run_id && !strcmp(x->run_id, rest))
			a = x;
	if (!a) {
		srv_reply_json(r, 404, json_pack("{s:s}", "error", "no such run"));
		return;
	}
	srv_reply_json(r, 200, act_json(a));
}

/* The routes, looked at in order.  prefix: the path starts with it, and the
 * handler gets the rest.  raw: the handler checks the method and the body
 * size itself; else only GET and HEAD are answered, and an over-long body
 * gets 413. */
static const struct {
	const char *path;
	int prefix, raw;
	void (*fn)(struct srv *s, struct serve_req *r, const char *rest);
} routes[] = {
	{ "/hooks/alertmanager", 0, 1, on_alertmanager },
	{ "/hooks/pagerduty", 0, 1, on_pagerduty },
	{ "/hooks/generic", 0, 1, on_generic },
	{ "/healthz", 0, 0, on_healthz },
	{ "/metrics", 0, 0, on_metrics },
	{ "/runs", 0, 0, on_runs },
	{ "/runs/", 1, 0, on_run },
	{ "/approve/", 1, 1, srv_on_approve },
};

void srv_on_request(void *ud, struct serve_req *r)
{
	struct srv *s = ud;
	const char *u = r->url;
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		size_t n = strlen(routes[i].path);
		if (routes[i].prefix ? strncmp(u, routes[i].path, n) : strcmp(u, routes[i].path))
			continue;
		if (!routes[i].raw && r->too_big) {
			srv_reply_json(r, 413, json_pack("{s:s}", "error", "too_large"));
			return;
		}
		if (!routes[i].raw && strcmp(r->method, "GET") && strcmp(r->method, "HEAD")) {
			srv_reply_json(r, 405, json_pack("{s:s}", "error", "method"));
			return;
		}
		routes[i].fn(s, r, u + n);
		return;
	}
	if (r->too_big) {
		srv_reply_json(r, 413, json_pack("{s:s}", "error", "too_large"));
		return;
	}
	if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD")) {
		srv_reply_json(r, 405, json_pack("{s:s}", "error", "method"));
		return;
	}
	srv_reply_json(r, 404, json_pack("{s:s}", "error", "not found"));
}
