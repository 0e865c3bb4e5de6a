/*
 * serve.c - the daemon: hooks checked and parsed, alerts matched against
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
#include "serve/serve.h"
#include "run/run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define LOG_MAX ((size_t)256 << 20) /* events.jsonl read back at start */

/* ---- metrics: counters by family and label set -------------------------------- */

struct ctr {
	char *family, *labels;
	double v;
	struct ctr *next;
};

static const double buckets[] = { 1, 5, 15, 60, 300, 900, 1800, 3600, 7200 };
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

/* ---- activations and keys ----------------------------------------------------- */

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
	uv_process_t proc;
	int has_proc;
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
#define SEEN_BUCKETS 4096

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
	char *state_dir, *sdir, *exe;
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
	uint64_t hist[NBUCKETS + 1];
	double hist_sum;
	uint64_t hist_n;
	char **pd, **gen;
	int npd, ngen;
	char *am_token;
	int stopping;
	uv_signal_t sigterm, sigint;
	uv_timer_t sched_timer, reap_timer;
	time_t *sched_next;
	struct pending *pend;
	struct pending *queue; /* decided, waiting for a run of their runbook to end */
	int exit_code;
	struct serve_etcd *etcd;
	int locking; /* etcd answers awaited */
	char instance[96];
};

static void serve_log(struct srv *s, const char *level, const char *msg, ...);

static void metric(struct srv *s, const char *family, const char *labels, double by)
{
	for (struct ctr *c = s->ctrs; c; c = c->next)
		if (!strcmp(c->family, family) && !strcmp(c->labels, labels)) {
			c->v += by;
			return;
		}
	struct ctr *c = drr_xcalloc(1, sizeof *c), **pp = &s->ctrs;
	c->family = drr_xstrdup(family);
	c->labels = drr_xstrdup(labels);
	c->v = by;
	while (*pp) /* in order of first use, so /metrics groups families */
		pp = &(*pp)->next;
	*pp = c;
}

static void metric_set(struct srv *s, const char *family, const char *labels, double v)
{
	metric(s, family, labels, 0);
	for (struct ctr *c = s->ctrs; c; c = c->next)
		if (!strcmp(c->family, family) && !strcmp(c->labels, labels))
			c->v = v;
}

/* A Prometheus label value: \ " and newline escaped. */
static char *plabel(const char *name, const char *v)
{
	struct drr_buf b = { 0 };
	drr_buf_addf(&b, "%s=\"", name);
	for (const char *p = v; *p; p++) {
		if (*p == '\\' || *p == '"')
			drr_buf_addf(&b, "\\%c", *p);
		else if (*p == '\n')
			drr_buf_adds(&b, "\\n");
		else
			drr_buf_add(&b, p, 1);
	}
	drr_buf_add(&b, "\"", 2);
	return b.data;
}

static void metric1(struct srv *s, const char *family, const char *name, const char *v)
{
	char *l = plabel(name, v);
	metric(s, family, l, 1);
	free(l);
}

static const struct {
	const char *family, *type, *help;
} families[] = {
	{ "drrun_webhooks_received_total", "counter", "Webhook requests received, by source." },
	{ "drrun_webhooks_rejected_total", "counter",
	  "Webhook requests refused, by source and reason." },
	{ "drrun_webhooks_duplicate_total", "counter",
	  "Webhook retries already accepted (PagerDuty's X-Webhook-Id), by source." },
	{ "drrun_alerts_resolved_total", "counter", "Resolved alerts recorded, by source." },
	{ "drrun_activations_total", "counter", "Runs started, by rule or schedule." },
	{ "drrun_dedupe_drops_total", "counter",
	  "Alerts not activated because their dedupe key's run is going, by rule." },
	{ "drrun_cooldown_drops_total", "counter",
	  "Alerts not activated because their key is cooling down, by rule." },
	{ "drrun_schedule_skips_total", "counter",
	  "Schedule firings skipped: the previous run still going, by schedule." },
	{ "drrun_schedule_missed_total", "counter",
	  "Schedule firings missed while serve was down (reported, not replayed)." },
	{ "drrun_runs_total", "counter", "Runs ended, by result." },
	{ "drrun_runs_running", "gauge", "Runs going now." },
	{ "drrun_last_run_rto_seconds", "gauge",
	  "Duration of the last run of each runbook (the RTO achieved), seconds." },
	{ "drrun_accepting", "gauge", "1 while serve accepts webhooks, 0 once it stops." },
	{ "drrun_lock_up", "gauge", "With --lock: 1 while serve holds its etcd lease." },
	{ "drrun_lock_refusals_total", "counter",
	  "Activations refused because etcd did not answer (fail closed), by rule." },
};

static void render_metrics(struct srv *s, struct drr_buf *b)
{
	metric_set(s, "drrun_runs_running", "", s->nrunning);
	metric_set(s, "drrun_accepting", "", !s->stopping);
	for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
		drr_buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", families[f].family,
			     families[f].help, families[f].family, families[f].type);
		for (struct ctr *c = s->ctrs; c; c = c->next)
			if (!strcmp(c->family, families[f].family)) {
				if (*c->labels)
					drr_buf_addf(b, "%s{%s} %.17g\n", c->family, c->labels,
						     c->v);
				else
					drr_buf_addf(b, "%s %.17g\n", c->family, c->v);
			}
	}
	drr_buf_adds(b, "# HELP drrun_run_duration_seconds Duration of the runs serve started.\n"
			"# TYPE drrun_run_duration_seconds histogram\n");
	uint64_t cum = 0;
	for (size_t i = 0; i < NBUCKETS; i++) {
		cum += s->hist[i];
		drr_buf_addf(b, "drrun_run_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[i],
			     (unsigned long long)cum);
	}
	cum += s->hist[NBUCKETS];
	drr_buf_addf(b,
		     "drrun_run_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
		     "drrun_run_duration_seconds_sum %.6f\n"
		     "drrun_run_duration_seconds_count %llu\n",
		     (unsigned long long)cum, s->hist_sum, (unsigned long long)s->hist_n);
}

/* ---- logs: logfmt, or one JSON object a line ----------------------------------- */

/* serve_log(s, level, msg, key, value, ..., NULL): values are redacted. */
static void serve_log(struct srv *s, const char *level, const char *msg, ...)
{
	char ts[40];
	drr_rfc3339(drr_now_us(), ts, sizeof ts);
	va_list ap;
	va_start(ap, msg);
	if (s->o->log_json) {
		json_t *o = json_object();
		json_object_set_new(o, "ts", json_string(ts));
		json_object_set_new(o, "level", json_string(level));
		json_object_set_new(o, "msg", json_string(msg));
		const char *k;
		while ((k = va_arg(ap, const char *))) {
			const char *v = va_arg(ap, const char *);
			char *r = drr_redact(v ? v : "");
			json_object_set_new(o, k, drr_json_str(r));
			free(r);
		}
		char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		fprintf(stderr, "%s\n", line);
		free(line);
		json_decref(o);
	} else {
		struct drr_buf b = { 0 };
		drr_buf_addf(&b, "ts=%s level=%s msg=\"%s\"", ts, level, msg);
		const char *k;
		while ((k = va_arg(ap, const char *))) {
			const char *v = va_arg(ap, const char *);
			char *r = drr_redact(v ? v : "");
			int quote = !*r || strpbrk(r, " \"=\\") != NULL;
			drr_buf_addf(&b, " %s=%s", k, quote ? "\"" : "");
			for (const char *p = r; *p; p++) {
				unsigned char c = (unsigned char)*p;
				if (c == '"' || c == '\\')
					drr_buf_addf(&b, "\\%c", c);
				else if (c < 0x20 || c == 0x7f)
					drr_buf_addf(&b, "\\x%02x", c);
				else
					drr_buf_add(&b, p, 1);
			}
			if (quote)
				drr_buf_adds(&b, "\"");
			free(r);
		}
		drr_buf_add(&b, "", 1);
		fprintf(stderr, "%s\n", b.data);
		drr_buf_free(&b);
	}
	va_end(ap);
	fflush(stderr);
}

/* ---- the events log: append, group-committed fdatasync on the thread pool ------ */

static void sync_work(uv_work_t *w)
{
	struct srv *s = w->data;
	s->sync_err = fdatasync(s->fd) < 0 ? errno : 0;
}

static void start_sync(struct srv *s);

static void sync_after(uv_work_t *w, int status)
{
	struct srv *s = w->data;
	s->syncing = 0;
	int rc = s->sync_err || status ? -1 : 0;
	if (rc == 0)
		s->synced = s->sync_target;
	else
		serve_log(s, "error", "fdatasync of the events log failed", "error",
			  strerror(s->sync_err ? s->sync_err : EIO), NULL);
	struct syncwait **pp = &s->waits, *ready = NULL, **rt = &ready;
	while (*pp) {
		if ((*pp)->upto <= s->sync_target) {
			struct syncwait *w2 = *pp;
			*pp = w2->next;
			w2->next = NULL;
			*rt = w2;
			rt = &w2->next;
		} else {
			pp = &(*pp)->next;
		}
	}
	if (s->waits)
		start_sync(s);
	while (ready) {
		struct syncwait *w2 = ready;
		ready = w2->next;
		w2->fn(w2->ud, rc);
		free(w2);
	}
}

static void start_sync(struct srv *s)
{
	if (s->syncing)
		return;
	s->syncing = 1;
	s->sync_target = s->written;
	s->work.data = s;
	if (uv_queue_work(s->loop, &s->work, sync_work, sync_after) < 0) {
		s->sync_err = EIO;
		s->syncing = 0;
	}
}

/* Append one record (a line); -1 when the write failed. */
static int store_append(struct srv *s, json_t *rec)
{
	char ts[40];
	drr_rfc3339(drr_now_us(), ts, sizeof ts);
	json_object_set_new(rec, "ts", json_string(ts));
	char *line = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(rec);
	size_t n = strlen(line);
	line[n] = '\n';
	int rc = drr_write_all(s->fd, line, n + 1);
	free(line);
	if (rc < 0) {
		serve_log(s, "error", "cannot write the events log", "error", strerror(errno),
			  NULL);
		return -1;
	}
	s->written++;
	return 0;
}

/* Call fn once everything appended so far is durable (rc -1: it is not). */
static void store_sync(struct srv *s, void (*fn)(void *ud, int rc), void *ud)
{
	struct syncwait *w = drr_xcalloc(1, sizeof *w);
	w->upto = s->written;
	w->fn = fn;
	w->ud = ud;
	w->next = s->waits;
	s->waits = w;
	start_sync(s);
}

/* ---- seen sets, keys ------------------------------------------------------------ */

static unsigned hash(const char *p)
{
	unsigned h = 2166136261u;
	for (; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

static int seen_has(struct srv *s, const char *id)
{
	for (struct seen *e = s->seen[hash(id) % SEEN_BUCKETS]; e; e = e->next)
		if (!strcmp(e->id, id))
			return 1;
	return 0;
}

static void seen_add(struct srv *s, const char *id, double until)
{
	if (seen_has(s, id))
		return;
	struct seen *e = drr_xcalloc(1, sizeof *e);
	unsigned b = hash(id) % SEEN_BUCKETS;
	e->id = drr_xstrdup(id);
	e->until = until;
	e->next = s->seen[b];
	s->seen[b] = e;
}

static struct key *key_get(struct srv *s, const char *k)
{
	for (struct key *e = s->keys; e; e = e->next)
		if (!strcmp(e->key, k))
			return e;
	struct key *e = drr_xcalloc(1, sizeof *e);
	e->key = drr_xstrdup(k);
	e->next = s->keys;
	s->keys = e;
	return e;
}

static struct act *act_find(struct srv *s, long id)
{
	for (struct act *a = s->acts; a; a = a->next)
		if (a->id == id)
			return a;
	return NULL;
}

static struct act *act_new(struct srv *s, long id, const char *rule, const char *runbook,
			   const char *path, const char *key, const char *source, int drill)
{
	struct act *a = drr_xcalloc(1, sizeof *a);
	a->path = drr_xstrdup(path ? path : "");
	a->id = id;
	a->rule = drr_xstrdup(rule);
	a->runbook = drr_xstrdup(runbook);
	a->key = drr_xstrdup(key);
	a->source = drr_xstrdup(source);
	a->drill = drill;
	a->exit = -1;
	a->next = s->acts;
	s->acts = a;
	if (id >= s->next_act)
		s->next_act = id + 1;
	return a;
}

static double now_s(void)
{
	return (double)drr_now_us() / 1e6;
}

/* ---- activation ------------------------------------------------------------------ */

static const char *result_name(int code)
{
	switch (code) {
	case 0: return "completed";
	case 1: return "failed";
	case 2: return "rollback_failed";
	case 3: return "stopped";
	case 4: return "objective_missed";
	case 65: return "invalid";
	case 75: return "could_not_start";
	default: return "error";
	}
}

static void maybe_finish(struct srv *s);
static void run_queue(struct srv *s);

/* The run id the child printed first ("... run <id>"), from its log. */
static void read_run_id(struct srv *s, struct act *a)
{
	char *path = drr_xasprintf("%s/runs/%ld.log", s->sdir, a->id);
	char err[128];
	size_t len;
	char *text = drr_slurp(path, (size_t)1 << 20, &len, err, sizeof err);
	free(path);
	if (!text)
		return;
	const char *p = strstr(text, " run ");
	if (p) {
		p += 5;
		size_t n = strcspn(p, " \n\t");
		if (n < sizeof a->run_id) {
			memcpy(a->run_id, p, n);
			a->run_id[n] = '\0';
		}
	}
	free(text);
}

static void act_ended(struct srv *s, struct act *a, int code, int lost)
{
	a->state = lost ? 3 : 2;
	a->exit = code;
	a->ended_at = now_s();
	s->nrunning--;
	read_run_id(s, a);
	struct key *k = key_get(s, a->key);
	if (k->active == a)
		k->active = NULL;
	k->ended_at = a->ended_at;
	if (a->locked && s->etcd)
		serve_etcd_release(s->etcd, a->key, a->lockval, a->cooldown);
	json_t *rec = json_pack("{s:s,s:I}", "type", "ended", "act", (json_int_t)a->id);
	json_object_set_new(rec, "exit", code >= 0 ? json_integer(code) : json_null());
	json_object_set_new(rec, "run_id", json_string(a->run_id));
	store_append(s, rec);
	const char *res = lost ? "lost" : result_name(code);
	metric1(s, "drrun_runs_total", "result", res);
	double d = a->ended_at - a->started_at;
	if (!lost && d >= 0) {
		size_t i = 0;
		while (i < NBUCKETS && d > buckets[i])
			i++;
		s->hist[i]++;
		s->hist_sum += d;
		s->hist_n++;
		char *l = plabel("runbook", a->runbook);
		metric_set(s, "drrun_last_run_rto_seconds", l, d);
		free(l);
	}
	char ids[24], codes[16], ds[32];
	snprintf(ids, sizeof ids, "%ld", a->id);
	snprintf(codes, sizeof codes, "%d", code);
	snprintf(ds, sizeof ds, "%.3f", d);
	serve_log(s, "info", "run ended", "act", ids, "rule", a->rule, "run", a->run_id,
		  "result", res, "exit", codes, "seconds", ds, NULL);
	maybe_finish(s);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct act *a = p->data;
	struct srv *s = p->loop->data;
	uv_close((uv_handle_t *)p, NULL);
	a->has_proc = 0;
	act_ended(s, a, sig ? 128 + sig : (int)status, 0);
	run_queue(s);
}

/* The child's environment: ours, less the hooks' own secrets. */
static char **child_env(void)
{
	int n = 0;
	while (environ[n])
		n++;
	char **env = drr_xcalloc((size_t)n + 1, sizeof *env);
	int k = 0;
	for (int i = 0; i < n; i++) {
		if (!strncmp(environ[i], "DRRUN_ALERTMANAGER_TOKEN=", 25) ||
		    !strncmp(environ[i], "DRRUN_PAGERDUTY_SECRET=", 23) ||
		    !strncmp(environ[i], "DRRUN_WEBHOOK_SECRET=", 21))
			continue;
		env[k++] = environ[i];
	}
	return env;
}

static void spawn(struct srv *s, struct act *a, json_t *trigger, json_t *params, const char *path)
{
	char *tdir = drr_xasprintf("%s/triggers", s->sdir);
	char *rdir = drr_xasprintf("%s/runs", s->sdir);
	drr_mkdir_p(tdir, 0700);
	drr_mkdir_p(rdir, 0700);
	char *tfile = drr_xasprintf("%s/%ld.json", tdir, a->id);
	char *lfile = drr_xasprintf("%s/%ld.log", rdir, a->id);
	char ids[24];
	snprintf(ids, sizeof ids, "%ld", a->id);
	int ok = json_dump_file(trigger, tfile, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0;
	int lfd = ok ? open(lfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
	const char *why = !ok ? "cannot write the trigger file" : "cannot create the run's log";
	size_t np = json_object_size(params);
	const char **argv = drr_xcalloc(10 + 2 * np, sizeof *argv);
	char **pv = drr_xcalloc(np + 1, sizeof *pv);
	int n = 0, k = 0;
	argv[n++] = s->exe;
	argv[n++] = a->drill ? "drill" : "run";
	argv[n++] = path;
	argv[n++] = "--state-dir";
	argv[n++] = s->state_dir;
	argv[n++] = "--trigger";
	argv[n++] = tfile;
	const char *pk;
	json_t *pj;
	json_object_foreach(params, pk, pj)
	{
		pv[k] = drr_xasprintf("%s=%s", pk, json_string_value(pj));
		argv[n++] = "--param";
		argv[n++] = pv[k++];
	}
	argv[n] = NULL;
	int rc = -1;
	char **env = child_env();
	if (lfd >= 0) {
		uv_stdio_container_t io[3];
		io[0].flags = UV_IGNORE;
		io[1].flags = io[2].flags = UV_INHERIT_FD;
		io[1].data.fd = io[2].data.fd = lfd;
		uv_process_options_t po;
		memset(&po, 0, sizeof po);
		po.file = s->exe;
		po.args = (char **)argv;
		po.env = env;
		po.cwd = s->rs->dir;
		po.exit_cb = on_exit_cb;
		po.stdio = io;
		po.stdio_count = 3;
		/* its own session: a Ctrl-C or SIGTERM meant for serve leaves it be */
		po.flags = UV_PROCESS_DETACHED;
		a->proc.data = a;
		rc = uv_spawn(s->loop, &a->proc, &po);
		if (rc < 0)
			why = uv_strerror(rc);
		close(lfd);
	}
	free(env);
	a->started_at = now_s();
	if (rc == 0) {
		a->state = 1;
		a->pid = a->proc.pid;
		a->has_proc = 1;
		s->nrunning++;
		json_t *rec = json_pack("{s:s,s:I,s:I}", "type", "spawned", "act",
					(json_int_t)a->id, "pid", (json_int_t)a->pid);
		store_append(s, rec);
		metric1(s, "drrun_activations_total", "rule", a->rule);
		char pids[24];
		snprintf(pids, sizeof pids, "%ld", a->pid);
		serve_log(s, "info", "run started", "act", ids, "rule", a->rule, "runbook",
			  a->runbook, "key", a->key, "pid", pids, NULL);
	} else {
		s->nrunning++;
		serve_log(s, "error", "cannot start the run", "act", ids, "rule", a->rule,
			  "error", why, NULL);
		act_ended(s, a, 75, 0);
	}
	for (int i = 0; i < k; i++)
		free(pv[i]);
	free(pv);
	free(argv);
	free(tfile);
	free(lfile);
	free(tdir);
	free(rdir);
}

static void pending_free(struct pending *p)
{
	json_decref(p->trigger);
	json_decref(p->params);
	free(p->path);
	free(p);
}

/* A run of this runbook going?  `drrun run` holds a lock per runbook, so a
 * second one would only fail to start: it waits in the queue instead. */
static int runbook_busy(struct srv *s, const char *path)
{
	for (struct act *a = s->acts; a; a = a->next)
		if (a->state == 1 && !strcmp(a->path, path))
			return 1;
	return 0;
}

static void start_or_queue(struct srv *s, struct pending *p)
{
	if (!runbook_busy(s, p->path)) {
		spawn(s, p->a, p->trigger, p->params, p->path);
		pending_free(p);
		return;
	}
	char ids[24];
	snprintf(ids, sizeof ids, "%ld", p->a->id);
	serve_log(s, "info", "run queued: a run of its runbook is going", "act", ids, "rule",
		  p->a->rule, "key", p->a->key, NULL);
	struct pending **pp = &s->queue;
	while (*pp)
		pp = &(*pp)->next;
	p->next = NULL;
	*pp = p;
}

/* A run ended: the first queued run of a runbook now free starts. */
static void run_queue(struct srv *s)
{
	for (struct pending **pp = &s->queue; *pp;) {
		struct pending *p = *pp;
		if (runbook_busy(s, p->path)) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		spawn(s, p->a, p->trigger, p->params, p->path);
		pending_free(p);
	}
}

static void on_decisions_durable(void *ud, int rc)
{
	struct srv *s = ud;
	/* only what this sync covered: a decision appended since waits for its own */
	struct pending *take = NULL, **tt = &take;
	for (struct pending **pp = &s->pend; *pp;) {
		struct pending *p = *pp;
		if (rc < 0 || p->seq <= s->synced) {
			*pp = p->next;
			p->next = NULL;
			*tt = p;
			tt = &p->next;
		} else {
			pp = &p->next;
		}
	}
	while (take) { /* oldest first: pend is kept in order */
		struct pending *n = take->next;
		if (rc == 0) {
			start_or_queue(s, take);
		} else {
			s->nrunning++;
			act_ended(s, take->a, 75, 1);
			pending_free(take);
		}
		take = n;
	}
	maybe_finish(s);
}

static void drop(struct srv *s, long id, int idx, const char *rule, const char *key,
		 const char *result, const char *where)
{
	json_t *rec = json_pack("{s:s,s:I,s:i,s:s,s:s}", "type", "decided", "id", (json_int_t)id,
				"intent", idx, "result", result, "key", key);
	if (where)
		json_object_set_new(rec, "where", json_string(where));
	store_append(s, rec);
	metric1(s,
		!strcmp(result, "dedupe")     ? "drrun_dedupe_drops_total"
		: !strcmp(result, "cooldown") ? "drrun_cooldown_drops_total"
					      : "drrun_lock_refusals_total",
		"rule", rule);
	char ids[24];
	snprintf(ids, sizeof ids, "%ld", id);
	serve_log(s, !strcmp(result, "lock_unavailable") ? "error" : "info", "not activated",
		  "id", ids, "rule", rule, "key", key, "reason", result, "where",
		  where ? where : "here", NULL);
}

/* The intent is to start: its act, its durable decision, then the spawn. */
static void start(struct srv *s, long id, int idx, json_t *intent)
{
	const char *rule = json_string_value(json_object_get(intent, "rule"));
	const char *key = json_string_value(json_object_get(intent, "key"));
	const char *path = json_string_value(json_object_get(intent, "path"));
	json_t *trigger = json_object_get(intent, "trigger");
	struct key *k = key_get(s, key);
	if (k->active) { /* taken here while etcd answered */
		drop(s, id, idx, rule, key, "dedupe", NULL);
		return;
	}
	struct act *a = act_new(s, s->next_act, rule,
				json_string_value(json_object_get(intent, "runbook")), path, key,
				json_string_value(json_object_get(trigger, "source")),
				json_is_true(json_object_get(intent, "drill")));
	a->cooldown = json_real_value(json_object_get(intent, "cooldown"));
	a->locked = s->etcd != NULL;
	snprintf(a->lockval, sizeof a->lockval, "%s/%ld/%d", s->instance, id, idx);
	json_t *rec = json_pack("{s:s,s:I,s:i,s:s,s:s,s:I}", "type", "decided", "id",
				(json_int_t)id, "intent", idx, "result", "started", "key", key,
				"act", (json_int_t)a->id);
	store_append(s, rec);
	k->active = a;
	struct pending *p = drr_xcalloc(1, sizeof *p);
	p->a = a;
	p->trigger = json_incref(trigger);
	p->params = json_incref(json_object_get(intent, "params"));
	p->path = drr_xstrdup(path);
	p->seq = s->written;
	struct pending **pp = &s->pend;
	while (*pp)
		pp = &(*pp)->next;
	*pp = p;
}

struct lockwait {
	struct srv *s;
	long id;
	int idx;
	json_t *intent;
};

static void on_lock(void *ud, int rc)
{
	struct lockwait *w = ud;
	struct srv *s = w->s;
	const char *rule = json_string_value(json_object_get(w->intent, "rule"));
	const char *key = json_string_value(json_object_get(w->intent, "key"));
	s->locking--;
	if (rc == 0)
		start(s, w->id, w->idx, w->intent);
	else if (rc == 1)
		drop(s, w->id, w->idx, rule, key, "dedupe", "etcd");
	else
		drop(s, w->id, w->idx, rule, key, "lock_unavailable", "etcd");
	if (s->pend)
		store_sync(s, on_decisions_durable, s);
	json_decref(w->intent);
	free(w);
	maybe_finish(s);
}

/* Decide one intent: start, or drop for dedupe or cooldown (here, then, with
 * --lock, in etcd: fail closed when it does not answer). */
static void decide(struct srv *s, long id, int idx, json_t *intent)
{
	const char *rule = json_string_value(json_object_get(intent, "rule"));
	const char *key = json_string_value(json_object_get(intent, "key"));
	const char *runbook = json_string_value(json_object_get(intent, "runbook"));
	const char *path = json_string_value(json_object_get(intent, "path"));
	json_t *trigger = json_object_get(intent, "trigger");
	double cooldown = json_real_value(json_object_get(intent, "cooldown"));
	const char *source = json_string_value(json_object_get(trigger, "source"));
	if (!rule || !key || !runbook || !path || !source)
		return;
	struct key *k = key_get(s, key);
	if (k->active) {
		drop(s, id, idx, rule, key, "dedupe", NULL);
		return;
	}
	if (k->ended_at > 0 && now_s() < k->ended_at + cooldown) {
		drop(s, id, idx, rule, key, "cooldown", NULL);
		return;
	}
	if (!s->etcd) {
		start(s, id, idx, intent);
		return;
	}
	struct lockwait *w = drr_xcalloc(1, sizeof *w);
	*w = (struct lockwait){ s, id, idx, json_incref(intent) };
	s->locking++;
	char *val = drr_xasprintf("%s/%ld/%d", s->instance, id, idx);
	serve_etcd_acquire(s->etcd, key, val, on_lock, w);
	free(val);
}

static void decide_all(struct srv *s, long id, json_t *intents)
{
	size_t i;
	json_t *in;
	json_array_foreach(intents, i, in)
	{
		decide(s, id, (int)i, in);
	}
	if (s->pend)
		store_sync(s, on_decisions_durable, s);
}

/* ---- hooks -------------------------------------------------------------------- */

static void reply_json(struct serve_req *r, int code, json_t *o)
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
	char *l1 = plabel("source", src), *l2 = plabel("reason", reason);
	char *l = drr_xasprintf("%s,%s", l1, l2);
	metric(s, "drrun_webhooks_rejected_total", l, 1);
	free(l);
	free(l1);
	free(l2);
	char peer[64], codes[8];
	serve_req_peer(r, peer, sizeof peer);
	snprintf(codes, sizeof codes, "%d", code);
	serve_log(s, "warn", "webhook refused", "source", src, "status", codes, "reason", reason,
		  "detail", detail, "peer", peer, NULL);
	reply_json(r, code, json_pack("{s:s,s:s}", "error", reason, "detail", detail));
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
		reply_json(c->r, 503, json_pack("{s:s}", "error", "the events log is not durable"));
	} else {
		reply_json(c->r, 202,
			   json_pack("{s:s,s:I,s:i,s:i}", "status", "accepted", "id",
				     (json_int_t)c->id, "intents", (int)json_array_size(c->intents),
				     "resolved", c->nresolved));
		decide_all(s, c->id, c->intents);
	}
	json_decref(c->intents);
	free(c);
}

static json_t *alert_trigger(int source, const struct serve_alert *a, const char *rule,
			     const char *received)
{
	return json_pack("{s:s,s:O,s:o,s:s,s:s,s:s,s:s}", "source", serve_source_names[source],
			 "labels", a->labels, "annotations",
			 a->annotations ? json_incref(a->annotations) : json_object(), "startsAt",
			 a->starts_at,
			 "fingerprint", a->fingerprint, "rule", rule, "received_at", received);
}

static void hook(struct srv *s, struct serve_req *r, int source)
{
	metric1(s, "drrun_webhooks_received_total", "source", serve_source_names[source]);
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
			int dup = seen_has(s, k);
			free(k);
			if (dup) { /* a retry of one already accepted: done, again */
				metric1(s, "drrun_webhooks_duplicate_total", "source", "pagerduty");
				reply_json(r, 200, json_pack("{s:s}", "status", "duplicate"));
				return;
			}
		}
	} else {
		if (!s->ngen) {
			reject(s, r, source, 401, "not_configured", "DRRUN_WEBHOOK_SECRET is not set");
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
		if (seen_has(s, replay)) {
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
			json_t *trig = alert_trigger(source, a, ru->name, received);
			char perr[256];
			json_t *params = serve_rule_params(s->rs, ru->params_ref, trig, perr,
							   sizeof perr);
			if (!params) {
				json_decref(trig);
				json_decref(intents);
				serve_body_free(&b);
				reject(s, r, source, 422, "param", perr);
				return;
			}
			char *key = serve_template(ru->dedupe, ru->name, source, a);
			/* one intent per dedupe key in one delivery */
			int dup = 0;
			size_t j;
			json_t *in;
			json_array_foreach(intents, j, in)
			{
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
				metric1(s, "drrun_dedupe_drops_total", "rule", ru->name);
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
		metric(s, "drrun_alerts_resolved_total", "", 0);
		char *l = plabel("source", serve_source_names[source]);
		metric(s, "drrun_alerts_resolved_total", l, nresolved);
		free(l);
	}
	serve_body_free(&b);
	if (store_append(s, rec) < 0) {
		json_decref(intents);
		reply_json(r, 503, json_pack("{s:s}", "error", "the events log is not writable"));
		return;
	}
	if (webhook_id) {
		char *k = drr_xasprintf("pd:%s", webhook_id);
		seen_add(s, k, 0);
		free(k);
	}
	if (*replay)
		seen_add(s, replay, now_s() + 2 * SIG_WINDOW);
	char ids[24], ns[16], rs[16], peer[64];
	snprintf(ids, sizeof ids, "%ld", id);
	snprintf(ns, sizeof ns, "%zu", json_array_size(intents));
	snprintf(rs, sizeof rs, "%d", nresolved);
	serve_req_peer(r, peer, sizeof peer);
	serve_log(s, "info", "webhook accepted", "id", ids, "source", serve_source_names[source],
		  "intents", ns, "resolved", rs, "peer", peer, NULL);
	struct accept_ctx *c = drr_xcalloc(1, sizeof *c);
	c->s = s;
	c->r = r;
	c->id = id;
	c->intents = intents;
	c->nresolved = nresolved;
	serve_req_defer(r);
	store_sync(s, on_accept_durable, c);
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
	json_object_set_new(o, "exit", a->state >= 2 && a->exit >= 0 ? json_integer(a->exit)
								   : json_null());
	json_object_set_new(o, "result",
			    a->state == 2 ? json_string(result_name(a->exit))
					  : a->state == 3 ? json_string("lost") : json_null());
	json_object_set_new(o, "started_at", *st ? json_string(st) : json_null());
	json_object_set_new(o, "ended_at", *en ? json_string(en) : json_null());
	return o;
}

static void on_request(void *ud, struct serve_req *r)
{
	struct srv *s = ud;
	const char *u = r->url;
	if (!strcmp(u, "/hooks/alertmanager"))
		return hook(s, r, SRC_ALERTMANAGER);
	if (!strcmp(u, "/hooks/pagerduty"))
		return hook(s, r, SRC_PAGERDUTY);
	if (!strcmp(u, "/hooks/generic"))
		return hook(s, r, SRC_GENERIC);
	if (r->too_big) {
		reply_json(r, 413, json_pack("{s:s}", "error", "too_large"));
		return;
	}
	if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD")) {
		reply_json(r, 405, json_pack("{s:s}", "error", "method"));
		return;
	}
	if (!strcmp(u, "/healthz")) {
		int lock_down = s->etcd && !serve_etcd_up(s->etcd);
		json_t *o = json_pack("{s:s,s:b,s:i,s:i,s:i}", "status",
				      s->stopping ? "stopping" : lock_down ? "lock_down" : "ok",
				      "accepting", !s->stopping, "rules", s->rs->nrules, "schedules",
				      s->rs->nscheds, "running", s->nrunning);
		json_object_set_new(o, "lock",
				    !s->etcd ? json_string("local")
				    : lock_down ? json_string("etcd down: activations refused")
						: json_string("etcd"));
		reply_json(r, s->stopping || lock_down ? 503 : 200, o);
		return;
	}
	if (!strcmp(u, "/metrics")) {
		struct drr_buf b = { 0 };
		render_metrics(s, &b);
		serve_req_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "",
				b.len);
		drr_buf_free(&b);
		return;
	}
	if (!strcmp(u, "/runs")) {
		json_t *arr = json_array();
		for (struct act *a = s->acts; a; a = a->next)
			json_array_insert_new(arr, 0, act_json(a));
		reply_json(r, 200, json_pack("{s:o}", "runs", arr));
		return;
	}
	if (!strncmp(u, "/runs/", 6)) {
		char *end;
		long id = strtol(u + 6, &end, 10);
		struct act *a = *end || end == u + 6 ? NULL : act_find(s, id);
		for (struct act *x = s->acts; !a && x; x = x->next)
			if (*x->run_id && !strcmp(x->run_id, u + 6))
				a = x;
		if (!a) {
			reply_json(r, 404, json_pack("{s:s}", "error", "no such run"));
			return;
		}
		reply_json(r, 200, act_json(a));
		return;
	}
	reply_json(r, 404, json_pack("{s:s}", "error", "not found"));
}

/* ---- schedules ------------------------------------------------------------------- */

static void arm_schedules(struct srv *s);

static void fire(struct srv *s, struct serve_sched *sc, time_t at)
{
	char when[40];
	drr_rfc3339((int64_t)at * 1000000, when, sizeof when);
	json_t *rec = json_pack("{s:s,s:s,s:I}", "type", "fired", "schedule", sc->name, "at",
				(json_int_t)at);
	char *key = drr_xasprintf("schedule/%s", sc->name);
	struct key *k = key_get(s, key);
	if (k->active) {
		json_object_set_new(rec, "result", json_string("skipped"));
		store_append(s, rec);
		metric1(s, "drrun_schedule_skips_total", "schedule", sc->name);
		serve_log(s, "warn", "schedule skipped: its previous run is still going",
			  "schedule", sc->name, "at", when, NULL);
		free(key);
		return;
	}
	store_append(s, rec);
	json_t *labels = json_pack("{s:s}", "schedule", sc->name);
	struct serve_alert a = { 1, labels, NULL, when, "" };
	json_t *trig = alert_trigger(SRC_SCHEDULE, &a, sc->name, when);
	json_decref(labels);
	char perr[256];
	json_t *params = serve_rule_params(s->rs, sc->params_ref, trig, perr, sizeof perr);
	if (!params) {
		serve_log(s, "error", "schedule not started: bad params", "schedule", sc->name,
			  "error", perr, NULL);
		json_decref(trig);
		free(key);
		return;
	}
	long id = s->next_id++;
	json_t *intents = json_pack("[{s:s,s:s,s:s,s:s,s:b,s:f,s:o,s:o}]", "rule", sc->name, "key",
				    key, "runbook", sc->runbook, "path", sc->path, "drill",
				    sc->drill, "cooldown", 0.0, "trigger", trig, "params", params);
	store_append(s, json_pack("{s:s,s:I,s:s,s:O}", "type", "accepted", "id", (json_int_t)id,
				  "source", "schedule", "intents", intents));
	decide_all(s, id, intents);
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
		if (s->sched_next[i] != (time_t)-1 && (next == (time_t)-1 || s->sched_next[i] < next))
			next = s->sched_next[i];
	if (next == (time_t)-1)
		return;
	uint64_t ms = next > now ? (uint64_t)(next - now) * 1000 : 0;
	uv_timer_start(&s->sched_timer, on_sched, ms > 60000 ? 60000 : ms, 0);
}

/* ---- reading the events log back ------------------------------------------------------ */

static int replay(struct srv *s, const char *path, time_t *last_fired)
{
	char err[512];
	size_t len;
	char *text = drr_slurp(path, LOG_MAX, &len, err, sizeof err);
	if (!text)
		return errno == ENOENT ? 0 : -1;
	/* a torn last line was never answered 2xx: cut it */
	size_t good = len;
	while (good > 0 && text[good - 1] != '\n')
		good--;
	if (good < len && truncate(path, (off_t)good) < 0) {
		free(text);
		return -1;
	}
	json_t *accepted = json_object(); /* id -> intents awaiting decisions */
	char *p = text, *end = text + good;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		json_t *rec = json_loadb(p, (size_t)(nl - p), 0, NULL);
		p = nl + 1;
		if (!rec)
			continue;
		const char *type = json_string_value(json_object_get(rec, "type"));
		long id = (long)json_integer_value(json_object_get(rec, "id"));
		char ids[24];
		snprintf(ids, sizeof ids, "%ld", id);
		if (!type) {
		} else if (!strcmp(type, "accepted")) {
			if (id >= s->next_id)
				s->next_id = id + 1;
			json_object_set(accepted, ids, json_object_get(rec, "intents"));
			const char *w = json_string_value(json_object_get(rec, "webhook_id"));
			if (w) {
				char *k = drr_xasprintf("pd:%s", w);
				seen_add(s, k, 0);
				free(k);
			}
			const char *rp = json_string_value(json_object_get(rec, "replay"));
			if (rp)
				seen_add(s, rp, now_s() + 2 * SIG_WINDOW);
		} else if (!strcmp(type, "decided")) {
			json_t *intents = json_object_get(accepted, ids);
			int idx = (int)json_integer_value(json_object_get(rec, "intent"));
			json_t *in = json_array_get(intents, (size_t)idx);
			if (in)
				json_object_set_new(in, "_decided", json_true());
			json_t *actj = json_object_get(rec, "act");
			if (in && actj) {
				json_t *trig = json_object_get(in, "trigger");
				struct act *a = act_new(
					s, (long)json_integer_value(actj),
					json_string_value(json_object_get(in, "rule")),
					json_string_value(json_object_get(in, "runbook")),
					json_string_value(json_object_get(in, "path")),
					json_string_value(json_object_get(in, "key")),
					json_string_value(json_object_get(trig, "source")),
					json_is_true(json_object_get(in, "drill")));
				a->state = 3; /* lost, unless spawned (below) */
				key_get(s, a->key)->active = a;
				s->nrunning++;
			}
		} else if (!strcmp(type, "spawned")) {
			struct act *a = act_find(s, (long)json_integer_value(json_object_get(rec, "act")));
			if (a) {
				a->state = 1;
				a->pid = (long)json_integer_value(json_object_get(rec, "pid"));
			}
		} else if (!strcmp(type, "ended")) {
			struct act *a = act_find(s, (long)json_integer_value(json_object_get(rec, "act")));
			if (a && a->state != 2) {
				a->state = 2;
				json_t *e = json_object_get(rec, "exit");
				a->exit = json_is_integer(e) ? (int)json_integer_value(e) : -1;
				snprintf(a->run_id, sizeof a->run_id, "%s",
					 json_string_value(json_object_get(rec, "run_id"))
						 ? json_string_value(json_object_get(rec, "run_id"))
						 : "");
				s->nrunning--;
				struct key *k = key_get(s, a->key);
				if (k->active == a)
					k->active = NULL;
				/* the cooldown runs from the end as recorded */
				const char *ts = json_string_value(json_object_get(rec, "ts"));
				struct tm tm;
				memset(&tm, 0, sizeof tm);
				if (ts && strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm))
					k->ended_at = a->ended_at = (double)timegm(&tm);
			}
		} else if (!strcmp(type, "fired")) {
			const char *sc = json_string_value(json_object_get(rec, "schedule"));
			time_t at = (time_t)json_integer_value(json_object_get(rec, "at"));
			for (int i = 0; sc && i < s->rs->nscheds; i++)
				if (!strcmp(s->rs->scheds[i].name, sc) && at > last_fired[i])
					last_fired[i] = at;
		}
		json_decref(rec);
	}
	free(text);
	/* runs without `ended`: held while their process lives */
	for (struct act *a = s->acts; a; a = a->next) {
		char ids[24];
		snprintf(ids, sizeof ids, "%ld", a->id);
		if (a->state == 3) {
			serve_log(s, "warn",
				  "a run decided before a crash was never started (not retried: at "
				  "most once)",
				  "act", ids, "rule", a->rule, NULL);
			s->nrunning++;
			act_ended(s, a, -1, 1);
		} else if (a->state == 1 && (a->pid <= 0 || kill((pid_t)a->pid, 0) < 0)) {
			serve_log(s, "warn", "a run started before a restart has gone; its end is "
					     "unknown",
				  "act", ids, "rule", a->rule, NULL);
			act_ended(s, a, -1, 1);
		} else if (a->state == 1) {
			serve_log(s, "info", "a run started before a restart is still going", "act",
				  ids, "rule", a->rule, NULL);
		}
	}
	/* intents accepted but never decided: decided now */
	const char *ids;
	json_t *intents;
	json_object_foreach(accepted, ids, intents)
	{
		size_t i;
		json_t *in;
		json_array_foreach(intents, i, in)
		{
			if (json_is_true(json_object_get(in, "_decided")))
				continue;
			serve_log(s, "info", "deciding an alert accepted before a restart", "id", ids,
				  NULL);
			decide(s, strtol(ids, NULL, 10), (int)i, in);
		}
	}
	json_decref(accepted);
	if (s->pend)
		store_sync(s, on_decisions_durable, s);
	return 0;
}

/* ---- running, stopping ------------------------------------------------------------------ */

static void on_reap(uv_timer_t *t)
{
	struct srv *s = t->data;
	for (struct act *a = s->acts; a; a = a->next)
		if (a->state == 1 && !a->has_proc && kill((pid_t)a->pid, 0) < 0 && errno == ESRCH)
			act_ended(s, a, -1, 1);
}

static void close_all(struct srv *s)
{
	serve_http_stop(s->http);
	s->http = NULL;
	serve_etcd_close(s->etcd);
	s->etcd = NULL;
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	uv_close((uv_handle_t *)&s->sigint, NULL);
	uv_close((uv_handle_t *)&s->sched_timer, NULL);
	uv_close((uv_handle_t *)&s->reap_timer, NULL);
}

static void maybe_finish(struct srv *s)
{
	if (!s->stopping || s->nrunning > 0 || s->pend || s->queue || s->waits || s->syncing ||
	    s->locking || !s->http)
		return;
	if (serve_http_open(s->http) > 0) /* in-flight requests: the next one re-checks */
		return;
	serve_log(s, "info", "stopped", NULL);
	close_all(s);
}

static void on_finish_check(uv_timer_t *t)
{
	on_reap(t);
	maybe_finish(t->data);
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
	serve_log(s, "info", "stopping: no new webhooks; started runs finish", "signal", sg,
		  "running", n, NULL);
	serve_http_quiesce(s->http);
	uv_timer_stop(&s->sched_timer);
	/* the reap timer now also watches for the end */
	uv_timer_start(&s->reap_timer, on_finish_check, 100, 100);
	maybe_finish(s);
}

static void on_lock_state(void *ud, int up)
{
	struct srv *s = ud;
	metric_set(s, "drrun_lock_up", "", up);
	if (up)
		serve_log(s, "info", "etcd lease granted: activations allowed", "lock", s->o->lock,
			  NULL);
	else
		serve_log(s, "error", "etcd unreachable or lease lost: activations refused", "lock",
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
		drr_term_line(stderr, "drrun serve: --listen '%s': use HOST:PORT, e.g. 127.0.0.1:9095",
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
		drr_term_line(stderr, "drrun serve: cannot create %s: %s", s->sdir, strerror(errno));
		goto out;
	}
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
	if (replay(s, events, last_fired) < 0) {
		drr_term_line(stderr, "drrun serve: cannot read %s: %s", events, strerror(errno));
		uv_close((uv_handle_t *)&s->sched_timer, NULL);
		uv_close((uv_handle_t *)&s->reap_timer, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
		goto out;
	}
	struct serve_http_opts ho = { host, port, cert, key, o->max_conns,
				      (int)(o->conn_timeout + 0.5) };
	char err[512];
	s->http = serve_http_start(&loop, &ho, on_request, s, err, sizeof err);
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
		metric_set(s, "drrun_lock_up", "", 0);
		serve_etcd_start(s->etcd, on_lock_state, s);
	}
	uv_signal_init(&loop, &s->sigterm);
	uv_signal_init(&loop, &s->sigint);
	s->sigterm.data = s->sigint.data = s;
	uv_signal_start(&s->sigterm, on_signal, SIGTERM);
	uv_signal_start(&s->sigint, on_signal, SIGINT);
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
			serve_log(s, "warn", "schedule firings missed while serve was down (not "
					     "replayed)",
				  "schedule", sc->name, "missed", m, NULL);
			char *l = plabel("schedule", sc->name);
			metric(s, "drrun_schedule_missed_total", l, missed);
			free(l);
			store_append(s, json_pack("{s:s,s:s,s:I,s:i}", "type", "fired", "schedule",
						  sc->name, "at", (json_int_t)now, "missed",
						  missed));
		}
		s->sched_next[i] = serve_cron_next(&sc->c, now, sc->utc);
	}
	arm_schedules(s);
	char ports[16], nr[16], ns[16];
	snprintf(ports, sizeof ports, "%d", serve_http_port(s->http));
	snprintf(nr, sizeof nr, "%d", rs->nrules);
	snprintf(ns, sizeof ns, "%d", rs->nscheds);
	serve_log(s, "info", "listening", "addr", host, "port", ports, "tls",
		  cert ? "on" : "off", "rules", nr, "schedules", ns, "state", s->sdir, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	rc = 0;
out:
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
	free(s->sdir);
	free(s->exe);
	serve_rules_free(rs);
	free(s);
	drr_redact_clear();
	return rc;
}
