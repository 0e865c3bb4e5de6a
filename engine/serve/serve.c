/*
 * serve.c - the daemon (the files of serve: internal.h): hooks checked and parsed, alerts matched against
 * the rules, accepted durably, deduplicated, cooled down, and activated as
 * `drrun run` child processes; schedules; /runs, /healthz, /metrics; logs;
 * SIGTERM.
 *
 * Durability: every decision is a line of <state-dir>/serve/events.jsonl.
 *   accepted   {id, source, received_at, webhook_id|replay, intents[]}:
 *              written and fdatasync'd (thread pool, group commit) before
 *              the 2xx; an intent is one (rule, dedupe key, trigger, params)
 *   decided    {id, intent, act, result: started|dedupe|cooldown|skipped}:
 *              written and fdatasync'd before the child is spawned
 *   spawned    {act, pid}; ended {act, exit, run_id}
 *   resolved   {id, ...}: a resolved alert, recorded and nothing else
 *   fired      {schedule, at}: a schedule's firing (missed ones: missed)
 * On start the file is read back: an intent with no decision is decided
 * now (an accepted alert is never lost); a decided one is never decided
 * again, and a `started` one is never spawned again (at most once: a crash
 * between the decision and the spawn loses that run, and the log says so).
 * Dedupe keys of runs without `ended` stay held while their process lives.
 */
#include "serve/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- schedules ------------------------------------------------------------------- */

static void arm_schedules(struct srv *s);

static void fire(struct srv *s, struct serve_sched *sc, time_t at)
{
	char when[40];
	drr_rfc3339((int64_t)at * 1000000, when, sizeof when);
	json_t *rec = json_pack("{s:s,s:s,s:I}", "type", "fired", "schedule", sc->name, "at",
				(json_int_t)at);
	char *key = drr_xasprintf("schedule/%s", sc->name);
	struct key *k = srv_key_get(s, key);
	if (k->active) {
		json_object_set_new(rec, "result", json_string("skipped"));
		srv_store_append(s, rec);
		srv_metric1(s, "drrun_schedule_skips_total", "schedule", sc->name);
		srv_log(s, "warn", "schedule skipped: its previous run is still going", "schedule",
			sc->name, "at", when, NULL);
		free(key);
		return;
	}
	srv_store_append(s, rec);
	json_t *labels = json_pack("{s:s}", "schedule", sc->name);
	struct serve_alert a = { 1, labels, NULL, when, "" };
	json_t *trig = srv_alert_trigger(SRC_SCHEDULE, &a, sc->name, when);
	json_decref(labels);
	char perr[256];
	json_t *params = serve_rule_params(s->rs, sc->params_ref, trig, perr, sizeof perr);
	if (!params) {
		srv_log(s, "error", "schedule not started: bad params", "schedule", sc->name,
			"error", perr, NULL);
		json_decref(trig);
		free(key);
		return;
	}
	long id = s->next_id++;
	json_t *intents = json_pack("[{s:s,s:s,s:s,s:s,s:b,s:f,s:o,s:o}]", "rule", sc->name, "key",
				    key, "runbook", sc->runbook, "path", sc->path, "drill",
				    sc->drill, "cooldown", 0.0, "trigger", trig, "params", params);
	srv_store_append(s, json_pack("{s:s,s:I,s:s,s:O}", "type", "accepted", "id", (json_int_t)id,
				      "source", "schedule", "intents", intents));
	srv_decide_all(s, id, intents);
	json_decref(intents);
	free(key);
}

static void on_sched(uv_timer_t *t)
{
	struct srv *s = t->data;
	time_t now = time(NULL);
	for (int i = 0; i < s->rs->nscheds; i++)
		if (s->sched_next[i] != (time_t)-1 && s->sched_next[i] <= now) {
			fire(s, &s->rs->scheds[i], s->sched_next[i]);
			s->sched_next[i] =
				serve_cron_next(&s->rs->scheds[i].c, now, s->rs->scheds[i].utc);
		}
	arm_schedules(s);
}

static void arm_schedules(struct srv *s)
{
	if (s->stopping || !s->rs->nscheds)
		return;
	time_t now = time(NULL), next = (time_t)-1;
	for (int i = 0; i < s->rs->nscheds; i++)
		if (s->sched_next[i] != (time_t)-1 &&
		    (next == (time_t)-1 || s->sched_next[i] < next))
			next = s->sched_next[i];
	if (next == (time_t)-1)
		return;
	uint64_t ms = next > now ? (uint64_t)(next - now) * 1000 : 0;
	uv_timer_start(&s->sched_timer, on_sched, ms > 60000 ? 60000 : ms, 0);
}

/* ---- running, stopping ------------------------------------------------------------------ */

static void on_sigchld(uv_signal_t *h, int sig)
{
	srv_reap(h->data);
}

/* Runs this serve did not start (a restart's) are watched by pid; its own
 * are waited for, here too in case a SIGCHLD was missed. */
static void on_reap(uv_timer_t *t)
{
	struct srv *s = t->data;
	srv_reap(s);
	for (struct act *a = s->acts; a; a = a->next)
		if (a->state == 1 && !a->has_proc && !a->busy && kill((pid_t)a->pid, 0) < 0 &&
		    errno == ESRCH)
			srv_act_gone(s, a, -1, 1);
}

static void close_all(struct srv *s)
{
	serve_http_stop(s->http);
	s->http = NULL;
	serve_etcd_close(s->etcd);
	s->etcd = NULL;
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	uv_close((uv_handle_t *)&s->sigint, NULL);
	uv_close((uv_handle_t *)&s->sigchld, NULL);
	srv_log_stop(s);
	uv_close((uv_handle_t *)&s->sched_timer, NULL);
	uv_close((uv_handle_t *)&s->reap_timer, NULL);
}

void srv_maybe_finish(struct srv *s)
{
	if (!s->stopping || s->nrunning > 0 || s->pend || s->queue || s->waits || s->syncing ||
	    s->locking || !s->http)
		return;
	if (serve_http_open(s->http) > 0) /* in-flight requests: the next one re-checks */
		return;
	srv_log(s, "info", "stopped", NULL);
	close_all(s);
}

static void on_finish_check(uv_timer_t *t)
{
	on_reap(t);
	srv_maybe_finish(t->data);
}

static void on_signal(uv_signal_t *h, int sig)
{
	struct srv *s = h->data;
	if (s->stopping)
		return;
	s->stopping = 1;
	char n[16], sg[16];
	snprintf(n, sizeof n, "%d", s->nrunning);
	snprintf(sg, sizeof sg, "%s", sig == SIGTERM ? "TERM" : "INT");
	srv_log(s, "info", "stopping: no new webhooks; started runs finish", "signal", sg,
		"running", n, NULL);
	serve_http_quiesce(s->http);
	uv_timer_stop(&s->sched_timer);
	/* the reap timer now also watches for the end */
	uv_timer_start(&s->reap_timer, on_finish_check, 100, 100);
	srv_maybe_finish(s);
}

static void on_lock_state(void *ud, int up)
{
	struct srv *s = ud;
	srv_metric_set(s, "drrun_lock_up", "", up);
	if (up)
		srv_log(s, "info", "etcd lease granted: activations allowed", "lock", s->o->lock,
			NULL);
	else
		srv_log(s, "error", "etcd unreachable or lease lost: activations refused", "lock",
			s->o->lock, NULL);
}

static char *self_exe(void)
{
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return drr_xstrdup(buf);
}

static int parse_listen(const char *l, char *host, size_t hn, int *port)
{
	const char *c = strrchr(l, ':');
	if (!c || c == l || (size_t)(c - l) >= hn)
		return -1;
	memcpy(host, l, (size_t)(c - l));
	host[c - l] = '\0';
	char *end;
	long p = strtol(c + 1, &end, 10);
	if (*end || p < 0 || p > 65535 || end == c + 1)
		return -1;
	*port = (int)p;
	return 0;
}

static char *read_pem(const char *path, const char *flag)
{
	char err[512];
	size_t len;
	char *t = drr_slurp(path, (size_t)1 << 20, &len, err, sizeof err);
	if (!t)
		drr_term_line(stderr, "drrun serve: %s %s", flag, err);
	return t;
}

int serve_main(const struct serve_opts *o)
{
	struct drr_diag d = { 0 };
	struct serve_rules *rs = serve_rules_load(o->rules, &d);
	if (d.n) {
		for (int i = 0; i < d.n; i++)
			drr_term_line(stderr, "%s", d.msgs[i]);
		drr_diag_free(&d);
		serve_rules_free(rs);
		return DRR_EXIT_INVALID;
	}
	drr_diag_free(&d);
	char host[64];
	int port;
	if (parse_listen(o->listen, host, sizeof host, &port) < 0) {
		drr_term_line(stderr,
			      "drrun serve: --listen '%s': use HOST:PORT, e.g. 127.0.0.1:9095",
			      o->listen);
		serve_rules_free(rs);
		return DRR_EXIT_USAGE;
	}
	struct srv *s = drr_xcalloc(1, sizeof *s);
	s->o = o;
	s->rs = rs;
	s->exit_code = 0;
	s->state_dir = drr_xstrdup(o->state_dir);
	s->sdir = drr_xasprintf("%s/serve", o->state_dir);
	s->exe = self_exe();
	s->next_id = 1;
	s->next_act = 1;
	int rc = DRR_EXIT_CANTSTART;
	char *cert = NULL, *key = NULL;
	uv_loop_t loop;
	uv_loop_init(&loop);
	loop.data = s;
	s->loop = &loop;
	srv_log_start(s);
	/* the secrets: registered with the redactor, never logged */
	const char *am = getenv("DRRUN_ALERTMANAGER_TOKEN");
	if (am && *am) {
		s->am_token = drr_xstrdup(am);
		drr_redact_add(am);
	}
	s->npd = serve_secrets_split(getenv("DRRUN_PAGERDUTY_SECRET"), &s->pd);
	s->ngen = serve_secrets_split(getenv("DRRUN_WEBHOOK_SECRET"), &s->gen);
	for (int i = 0; i < s->npd; i++)
		drr_redact_add(s->pd[i]);
	for (int i = 0; i < s->ngen; i++)
		drr_redact_add(s->gen[i]);
	char *events = drr_xasprintf("%s/events.jsonl", s->sdir);
	time_t *last_fired = drr_xcalloc((size_t)rs->nscheds + 1, sizeof *last_fired);
	s->sched_next = drr_xcalloc((size_t)rs->nscheds + 1, sizeof *s->sched_next);
	if (!s->exe) {
		drr_term_line(stderr, "drrun serve: cannot find its own executable");
		goto out;
	}
	if (drr_mkdir_p(s->sdir, 0700) < 0) {
		drr_term_line(stderr, "drrun serve: cannot create %s: %s", s->sdir,
			      strerror(errno));
		goto out;
	}
	/* the runs start in the rules file's directory: give them absolute paths */
	char *abs = realpath(s->state_dir, NULL);
	if (abs) {
		free(s->state_dir);
		free(s->sdir);
		s->state_dir = abs;
		s->sdir = drr_xasprintf("%s/serve", abs);
	}
	s->rules_dir = realpath(rs->dir, NULL);
	if (!s->rules_dir)
		s->rules_dir = drr_xstrdup(rs->dir);
	if ((o->tls_cert && !(cert = read_pem(o->tls_cert, "--tls-cert"))) ||
	    (o->tls_key && !(key = read_pem(o->tls_key, "--tls-key")))) {
		rc = DRR_EXIT_USAGE;
		goto out;
	}
	s->fd = open(events, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (s->fd < 0 || drr_fsync_dir(s->sdir) < 0) {
		drr_term_line(stderr, "drrun serve: cannot open %s: %s", events, strerror(errno));
		goto out;
	}
	uv_timer_init(&loop, &s->sched_timer);
	uv_timer_init(&loop, &s->reap_timer);
	s->sched_timer.data = s->reap_timer.data = s;
	if (srv_replay(s, events, last_fired) < 0) {
		drr_term_line(stderr, "drrun serve: cannot read %s: %s", events, strerror(errno));
		uv_close((uv_handle_t *)&s->sched_timer, NULL);
		uv_close((uv_handle_t *)&s->reap_timer, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
		goto out;
	}
	struct serve_http_opts ho = { host, port,	  cert,
				      key,  o->max_conns, (int)(o->conn_timeout + 0.5) };
	char err[512];
	s->http = serve_http_start(&loop, &ho, srv_on_request, s, err, sizeof err);
	if (!s->http) {
		drr_term_line(stderr, "drrun serve: %s", err);
		uv_close((uv_handle_t *)&s->sched_timer, NULL);
		uv_close((uv_handle_t *)&s->reap_timer, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
		goto out;
	}
	if (o->lock) {
		char hn[64] = "host";
		gethostname(hn, sizeof hn - 1);
		snprintf(s->instance, sizeof s->instance, "%.63s:%ld", hn, (long)getpid());
		s->etcd = serve_etcd_new(&loop, o->lock, (int)(o->lock_ttl + 0.5), err, sizeof err);
		if (!s->etcd) {
			drr_term_line(stderr, "drrun serve: %s", err);
			rc = DRR_EXIT_USAGE;
			serve_http_stop(s->http);
			uv_close((uv_handle_t *)&s->sched_timer, NULL);
			uv_close((uv_handle_t *)&s->reap_timer, NULL);
			uv_run(&loop, UV_RUN_DEFAULT);
			goto out;
		}
		srv_metric_set(s, "drrun_lock_up", "", 0);
		serve_etcd_start(s->etcd, on_lock_state, s);
	}
	uv_signal_init(&loop, &s->sigterm);
	uv_signal_init(&loop, &s->sigint);
	s->sigterm.data = s->sigint.data = s;
	uv_signal_start(&s->sigterm, on_signal, SIGTERM);
	uv_signal_start(&s->sigint, on_signal, SIGINT);
	uv_signal_init(&loop, &s->sigchld);
	s->sigchld.data = s;
	uv_signal_start(&s->sigchld, on_sigchld, SIGCHLD);
	uv_timer_start(&s->reap_timer, on_reap, 1000, 1000);
	/* schedules: the next firing of each; firings missed while down are
	 * counted and reported, never replayed */
	time_t now = time(NULL);
	for (int i = 0; i < rs->nscheds; i++) {
		struct serve_sched *sc = &rs->scheds[i];
		int missed = 0;
		for (time_t t = last_fired[i] ? serve_cron_next(&sc->c, last_fired[i], sc->utc)
					      : (time_t)-1;
		     t != (time_t)-1 && t <= now && missed < 100000;
		     t = serve_cron_next(&sc->c, t, sc->utc))
			missed++;
		if (missed) {
			char m[16];
			snprintf(m, sizeof m, "%d", missed);
			srv_log(s, "warn",
				"schedule firings missed while serve was down (not "
				"replayed)",
				"schedule", sc->name, "missed", m, NULL);
			char *l = srv_plabel("schedule", sc->name);
			srv_metric(s, "drrun_schedule_missed_total", l, missed);
			free(l);
			srv_store_append(s, json_pack("{s:s,s:s,s:I,s:i}", "type", "fired",
						      "schedule", sc->name, "at", (json_int_t)now,
						      "missed", missed));
		}
		s->sched_next[i] = serve_cron_next(&sc->c, now, sc->utc);
	}
	arm_schedules(s);
	char ports[16], nr[16], ns[16];
	snprintf(ports, sizeof ports, "%d", serve_http_port(s->http));
	snprintf(nr, sizeof nr, "%d", rs->nrules);
	snprintf(ns, sizeof ns, "%d", rs->nscheds);
	srv_log(s, "info", "listening", "addr", host, "port", ports, "tls", cert ? "on" : "off",
		"rules", nr, "schedules", ns, "state", s->sdir, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	rc = 0;
out:
	if (s->log_on) { /* an error before the loop ran: the handle goes too */
		srv_log_stop(s);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	srv_log_flush(s);
	drr_buf_free(&s->log);
	if (s->fd > 0)
		close(s->fd);
	uv_loop_close(&loop);
	free(events);
	free(last_fired);
	free(s->sched_next);
	if (cert)
		free(cert);
	if (key) {
		memset(key, 0, strlen(key));
		free(key);
	}
	while (s->acts) {
		struct act *a = s->acts;
		s->acts = a->next;
		free(a->rule);
		free(a->runbook);
		free(a->key);
		free(a->source);
		free(a->path);
		free(a);
	}
	while (s->keys) {
		struct key *k = s->keys;
		s->keys = k->next;
		free(k->key);
		free(k);
	}
	for (int i = 0; i < SEEN_BUCKETS; i++)
		while (s->seen[i]) {
			struct seen *e = s->seen[i];
			s->seen[i] = e->next;
			free(e->id);
			free(e);
		}
	while (s->ctrs) {
		struct ctr *c = s->ctrs;
		s->ctrs = c->next;
		free(c->family);
		free(c->labels);
		free(c);
	}
	serve_secrets_free(s->pd, s->npd);
	serve_secrets_free(s->gen, s->ngen);
	free(s->am_token);
	free(s->state_dir);
	free(s->rules_dir);
	free(s->sdir);
	free(s->exe);
	serve_rules_free(rs);
	free(s);
	drr_redact_clear();
	return rc;
}