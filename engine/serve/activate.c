/*
 * activate.c - deciding an accepted intent (start it, or drop it for its
 * dedupe key, its cooldown, or an etcd that did not answer), starting the
 * `drrun run` child, and recording its end.  The files a start needs (the
 * trigger, the run's log) are made, and a finished run's log read, on the
 * libuv thread pool: the loop only spawns and records.
 */
#include "serve/internal.h"
#include "run/run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

const char *srv_result_name(int code)
{
	switch (code) {
	case 0:
		return "completed";
	case 1:
		return "failed";
	case 2:
		return "rollback_failed";
	case 3:
		return "stopped";
	case 4:
		return "objective_missed";
	case 65:
		return "invalid";
	case 75:
		return "could_not_start";
	default:
		return "error";
	}
}

static void run_queue(struct srv *s);

void srv_read_run_id(const char *sdir, long id, char *out, size_t outlen)
{
	char *path = drr_xasprintf("%s/runs/%ld.log", sdir, id);
	char err[128];
	size_t len;
	char *text = drr_slurp(path, (size_t)1 << 20, &len, err, sizeof err);
	free(path);
	*out = '\0';
	if (!text)
		return;
	const char *p = strstr(text, " run ");
	if (p) {
		p += 5;
		size_t n = strcspn(p, " \n\t");
		if (n < outlen) {
			memcpy(out, p, n);
			out[n] = '\0';
		}
	}
	free(text);
}

void srv_act_ended(struct srv *s, struct act *a, int code, int lost)
{
	a->state = lost ? 3 : 2;
	a->exit = code;
	a->ended_at = srv_now();
	s->nrunning--;
	struct key *k = srv_key_get(s, a->key);
	if (k->active == a)
		k->active = NULL;
	k->ended_at = a->ended_at;
	if (a->locked && s->etcd)
		serve_etcd_release(s->etcd, a->key, a->lockval, a->cooldown);
	json_t *rec = json_pack("{s:s,s:I}", "type", "ended", "act", (json_int_t)a->id);
	json_object_set_new(rec, "exit", code >= 0 ? json_integer(code) : json_null());
	json_object_set_new(rec, "run_id", json_string(a->run_id));
	srv_store_append(s, rec);
	const char *res = lost ? "lost" : srv_result_name(code);
	srv_metric1(s, "drrun_runs_total", "result", res);
	double d = a->ended_at - a->started_at;
	if (!lost && d >= 0)
		srv_metric_run(s, a->runbook, d);
	char ids[24], codes[16], ds[32];
	snprintf(ids, sizeof ids, "%ld", a->id);
	snprintf(codes, sizeof codes, "%d", code);
	snprintf(ds, sizeof ds, "%.3f", d);
	srv_log(s, "info", "run ended", "act", ids, "rule", a->rule, "run", a->run_id, "result",
		res, "exit", codes, "seconds", ds, NULL);
	srv_maybe_finish(s);
}

/* ---- a run's end: its log read on the thread pool ------------------------------- */

struct gone_job {
	uv_work_t work;
	struct srv *s;
	struct act *a;
	int code, lost;
	char run_id[sizeof((struct act *)0)->run_id];
};

static void gone_work(uv_work_t *w)
{
	struct gone_job *j = w->data;
	srv_read_run_id(j->s->sdir, j->a->id, j->run_id, sizeof j->run_id);
}

static void gone_after(uv_work_t *w, int status)
{
	struct gone_job *j = w->data;
	struct act *a = j->a;
	a->busy = 0;
	if (status == 0)
		memcpy(a->run_id, j->run_id, sizeof a->run_id);
	srv_act_ended(j->s, a, j->code, j->lost);
	run_queue(j->s);
	free(j);
}

void srv_act_gone(struct srv *s, struct act *a, int code, int lost)
{
	struct gone_job *j = drr_xcalloc(1, sizeof *j);
	*j = (struct gone_job){ .s = s, .a = a, .code = code, .lost = lost };
	j->work.data = j;
	a->busy = 1;
	if (uv_queue_work(s->loop, &j->work, gone_work, gone_after) < 0)
		gone_after(&j->work, -1);
}

void srv_reap(struct srv *s)
{
	for (struct act *a = s->acts; a && s->nchildren > 0; a = a->next) {
		if (!a->has_proc)
			continue;
		int st;
		pid_t r = waitpid((pid_t)a->pid, &st, WNOHANG);
		if (r == 0 || (r < 0 && errno == EINTR))
			continue;
		a->has_proc = 0; /* not ours any more (ECHILD): srv's reap timer sees it go */
		s->nchildren--;
		if (r == (pid_t)a->pid)
			srv_act_gone(s, a, WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st),
				     0);
	}
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

/* ---- starting a run: its files made on the thread pool, then the spawn ---------- */

struct spawn_job {
	uv_work_t work;
	struct srv *s;
	struct act *a;
	char *trigger; /* its text */
	json_t *params;
	char *path, *tfile, *lfile;
	int lfd;
	const char *why;
};

static void spawn_work(uv_work_t *w)
{
	struct spawn_job *j = w->data;
	char *tdir = drr_xasprintf("%s/triggers", j->s->sdir);
	char *rdir = drr_xasprintf("%s/runs", j->s->sdir);
	drr_mkdir_p(tdir, 0700);
	drr_mkdir_p(rdir, 0700);
	free(tdir);
	free(rdir);
	int fd = open(j->tfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ok = fd >= 0 && drr_write_all(fd, j->trigger, strlen(j->trigger)) == 0;
	if (fd >= 0 && close(fd) < 0)
		ok = 0;
	if (!ok) {
		j->why = "cannot write the trigger file";
		return;
	}
	j->lfd = open(j->lfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (j->lfd < 0)
		j->why = "cannot create the run's log";
	/* the child starts in the rules file's directory: a path relative to
	 * serve's would not be found from there */
	char *abs = j->path[0] != '/' ? realpath(j->path, NULL) : NULL;
	if (abs) {
		free(j->path);
		j->path = abs;
	}
}

static int spawn_child(struct srv *s, struct spawn_job *j)
{
	struct act *a = j->a;
	size_t np = json_object_size(j->params);
	const char **argv = drr_xcalloc(10 + 2 * np, sizeof *argv);
	char **pv = drr_xcalloc(np + 1, sizeof *pv);
	int n = 0, k = 0;
	argv[n++] = s->exe;
	argv[n++] = a->drill ? "drill" : "run";
	argv[n++] = j->path;
	argv[n++] = "--state-dir";
	argv[n++] = s->state_dir;
	argv[n++] = "--trigger";
	argv[n++] = j->tfile;
	const char *pk;
	json_t *pj;
	json_object_foreach(j->params, pk, pj) {
		pv[k] = drr_xasprintf("%s=%s", pk, json_string_value(pj));
		argv[n++] = "--param";
		argv[n++] = pv[k++];
	}
	argv[n] = NULL;
	char **env = child_env();
	/* posix_spawn, not uv_spawn's fork: a vfork does not copy serve's
	 * page tables for every run.  stdin from /dev/null, stdout and
	 * stderr to the run's log, the rules file's directory, its own
	 * session (a Ctrl-C or SIGTERM meant for serve leaves it be), every
	 * signal at its default and none blocked. */
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, j->lfd, 1);
	posix_spawn_file_actions_adddup2(&fa, j->lfd, 2);
	posix_spawn_file_actions_addchdir_np(&fa, s->rules_dir);
	posix_spawnattr_init(&at);
	sigset_t all, none;
	sigfillset(&all);
	sigemptyset(&none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF |
					      POSIX_SPAWN_SETSIGMASK);
	pid_t pid;
	int rc = posix_spawn(&pid, s->exe, &fa, &at, (char *const *)argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc) {
		j->why = strerror(rc);
		rc = -1;
	} else {
		a->pid = pid;
	}
	free(env);
	for (int i = 0; i < k; i++)
		free(pv[i]);
	free(pv);
	free(argv);
	return rc;
}

static void spawn_after(uv_work_t *w, int status)
{
	struct spawn_job *j = w->data;
	struct srv *s = j->s;
	struct act *a = j->a;
	a->busy = 0;
	if (status < 0 && !j->why)
		j->why = uv_strerror(status);
	int rc = -1;
	if (!j->why && j->lfd >= 0)
		rc = spawn_child(s, j);
	if (j->lfd >= 0)
		close(j->lfd);
	a->started_at = srv_now();
	char ids[24];
	snprintf(ids, sizeof ids, "%ld", a->id);
	if (rc == 0) {
		a->state = 1;
		a->has_proc = 1;
		s->nchildren++;
		json_t *rec = json_pack("{s:s,s:I,s:I}", "type", "spawned", "act",
					(json_int_t)a->id, "pid", (json_int_t)a->pid);
		srv_store_append(s, rec);
		srv_metric1(s, "drrun_activations_total", "rule", a->rule);
		char pids[24];
		snprintf(pids, sizeof pids, "%ld", a->pid);
		srv_log(s, "info", "run started", "act", ids, "rule", a->rule, "runbook",
			a->runbook, "key", a->key, "pid", pids, NULL);
	} else {
		srv_log(s, "error", "cannot start the run", "act", ids, "rule", a->rule, "error",
			j->why ? j->why : "cannot start", NULL);
		srv_act_ended(s, a, 75, 0);
	}
	free(j->trigger);
	json_decref(j->params);
	free(j->path);
	free(j->tfile);
	free(j->lfile);
	free(j);
}

/* Start a's run: counted as running (the runbook busy) from now on. */
static void spawn(struct srv *s, struct act *a, json_t *trigger, json_t *params, const char *path)
{
	struct spawn_job *j = drr_xcalloc(1, sizeof *j);
	j->s = s;
	j->a = a;
	j->trigger = json_dumps(trigger, JSON_COMPACT | JSON_PRESERVE_ORDER);
	j->params = json_incref(params);
	j->path = drr_xstrdup(path);
	j->tfile = drr_xasprintf("%s/triggers/%ld.json", s->sdir, a->id);
	j->lfile = drr_xasprintf("%s/runs/%ld.log", s->sdir, a->id);
	j->lfd = -1;
	j->work.data = j;
	a->busy = 1;
	s->nrunning++;
	if (!j->trigger)
		j->why = "cannot write the trigger file";
	else if (uv_queue_work(s->loop, &j->work, spawn_work, spawn_after) < 0)
		j->why = "cannot queue the run's files on the thread pool";
	if (j->why)
		spawn_after(&j->work, 0);
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
		if ((a->state == 1 || a->busy) && !strcmp(a->path, path))
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
	srv_log(s, "info", "run queued: a run of its runbook is going", "act", ids, "rule",
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
	/* the runbooks found busy in this pass: a long queue of one runbook
	 * costs one look at the runs, not one per queued run */
	const char *busy[16];
	int nbusy = 0;
	for (struct pending **pp = &s->queue; *pp;) {
		struct pending *p = *pp;
		int known = 0;
		for (int i = 0; i < nbusy && !known; i++)
			known = !strcmp(busy[i], p->path);
		if (known || runbook_busy(s, p->path)) {
			if (!known && nbusy < 16)
				busy[nbusy++] = p->path;
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		const char *path = p->a->path; /* the act's: it outlives p */
		spawn(s, p->a, p->trigger, p->params, p->path);
		pending_free(p);
		if (nbusy < 16)
			busy[nbusy++] = path;
	}
}

void srv_on_decisions_durable(void *ud, int rc)
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
			srv_act_ended(s, take->a, 75, 1);
			pending_free(take);
		}
		take = n;
	}
	srv_maybe_finish(s);
}

static void drop(struct srv *s, long id, int idx, const char *rule, const char *key,
		 const char *result, const char *where)
{
	json_t *rec = json_pack("{s:s,s:I,s:i,s:s,s:s}", "type", "decided", "id", (json_int_t)id,
				"intent", idx, "result", result, "key", key);
	if (where)
		json_object_set_new(rec, "where", json_string(where));
	srv_store_append(s, rec);
	srv_metric1(s,
		    !strcmp(result, "dedupe")	  ? "drrun_dedupe_drops_total"
		    : !strcmp(result, "cooldown") ? "drrun_cooldown_drops_total"
						  : "drrun_lock_refusals_total",
		    "rule", rule);
	char ids[24];
	snprintf(ids, sizeof ids, "%ld", id);
	srv_log(s, !strcmp(result, "lock_unavailable") ? "error" : "info", "not activated", "id",
		ids, "rule", rule, "key", key, "reason", result, "where", where ? where : "here",
		NULL);
}

/* The intent is to start: its act, its durable decision, then the spawn. */
static void start(struct srv *s, long id, int idx, json_t *intent)
{
	const char *rule = json_string_value(json_object_get(intent, "rule"));
	const char *key = json_string_value(json_object_get(intent, "key"));
	const char *path = json_string_value(json_object_get(intent, "path"));
	json_t *trigger = json_object_get(intent, "trigger");
	struct key *k = srv_key_get(s, key);
	if (k->active) { /* taken here while etcd answered */
		drop(s, id, idx, rule, key, "dedupe", NULL);
		return;
	}
	struct act *a = srv_act_new(s, s->next_act, rule,
				    json_string_value(json_object_get(intent, "runbook")), path,
				    key, json_string_value(json_object_get(trigger, "source")),
				    json_is_true(json_object_get(intent, "drill")));
	a->cooldown = json_real_value(json_object_get(intent, "cooldown"));
	a->locked = s->etcd != NULL;
	snprintf(a->lockval, sizeof a->lockval, "%s/%ld/%d", s->instance, id, idx);
	json_t *rec =
		json_pack("{s:s,s:I,s:i,s:s,s:s,s:I}", "type", "decided", "id", (json_int_t)id,
			  "intent", idx, "result", "started", "key", key, "act", (json_int_t)a->id);
	srv_store_append(s, rec);
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
		srv_store_sync(s, srv_on_decisions_durable, s);
	json_decref(w->intent);
	free(w);
	srv_maybe_finish(s);
}

/* Decide one intent: start, or drop for dedupe or cooldown (here, then, with
 * --lock, in etcd: fail closed when it does not answer). */
void srv_decide(struct srv *s, long id, int idx, json_t *intent)
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
	struct key *k = srv_key_get(s, key);
	if (k->active) {
		drop(s, id, idx, rule, key, "dedupe", NULL);
		return;
	}
	if (k->ended_at > 0 && srv_now() < k->ended_at + cooldown) {
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

void srv_decide_all(struct srv *s, long id, json_t *intents)
{
	size_t i;
	json_t *in;
	json_array_foreach(intents, i, in) {
		srv_decide(s, id, (int)i, in);
	}
	if (s->pend)
		srv_store_sync(s, srv_on_decisions_durable, s);
}
