/*
 * store.c - the durable store, <state-dir>/serve/events.jsonl (the records
 * are listed in serve.c): appends, fdatasync'd on the thread pool with a
 * group commit; the seen sets (PagerDuty webhook ids, generic signatures),
 * the dedupe keys and the activations; and reading it all back at start.
 */
#include "serve/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_MAX ((size_t)256 << 20) /* events.jsonl read back at start */

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
		srv_log(s, "error", "fdatasync of the events log failed", "error",
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

int srv_store_append(struct srv *s, json_t *rec)
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
		srv_log(s, "error", "cannot write the events log", "error", strerror(errno), NULL);
		return -1;
	}
	s->written++;
	return 0;
}

void srv_store_sync(struct srv *s, void (*fn)(void *ud, int rc), void *ud)
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

int srv_seen_has(struct srv *s, const char *id)
{
	for (struct seen *e = s->seen[hash(id) % SEEN_BUCKETS]; e; e = e->next)
		if (!strcmp(e->id, id))
			return 1;
	return 0;
}

void srv_seen_add(struct srv *s, const char *id, double until)
{
	if (srv_seen_has(s, id))
		return;
	struct seen *e = drr_xcalloc(1, sizeof *e);
	unsigned b = hash(id) % SEEN_BUCKETS;
	e->id = drr_xstrdup(id);
	e->until = until;
	e->next = s->seen[b];
	s->seen[b] = e;
}

struct key *srv_key_get(struct srv *s, const char *k)
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

struct act *srv_act_find(struct srv *s, long id)
{
	for (struct act *a = s->acts; a; a = a->next)
		if (a->id == id)
			return a;
	return NULL;
}

struct act *srv_act_new(struct srv *s, long id, const char *rule, const char *runbook,
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

double srv_now(void)
{
	return (double)drr_now_us() / 1e6;
}

/* ---- reading the events log back ------------------------------------------------------ */

/* At start, before the listener opens: the reads here may block. */
int srv_replay(struct srv *s, const char *path, time_t *last_fired)
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
				srv_seen_add(s, k, 0);
				free(k);
			}
			const char *rp = json_string_value(json_object_get(rec, "replay"));
			if (rp)
				srv_seen_add(s, rp, srv_now() + 2 * SIG_WINDOW);
		} else if (!strcmp(type, "decided")) {
			json_t *intents = json_object_get(accepted, ids);
			int idx = (int)json_integer_value(json_object_get(rec, "intent"));
			json_t *in = json_array_get(intents, (size_t)idx);
			if (in)
				json_object_set_new(in, "_decided", json_true());
			json_t *actj = json_object_get(rec, "act");
			if (in && actj) {
				json_t *trig = json_object_get(in, "trigger");
				struct act *a = srv_act_new(
					s, (long)json_integer_value(actj),
					json_string_value(json_object_get(in, "rule")),
					json_string_value(json_object_get(in, "runbook")),
					json_string_value(json_object_get(in, "path")),
					json_string_value(json_object_get(in, "key")),
					json_string_value(json_object_get(trig, "source")),
					json_is_true(json_object_get(in, "drill")));
				a->state = 3; /* lost, unless spawned (below) */
				srv_key_get(s, a->key)->active = a;
				s->nrunning++;
			}
		} else if (!strcmp(type, "spawned")) {
			struct act *a = srv_act_find(
				s, (long)json_integer_value(json_object_get(rec, "act")));
			if (a) {
				a->state = 1;
				a->pid = (long)json_integer_value(json_object_get(rec, "pid"));
			}
		} else if (!strcmp(type, "ended")) {
			struct act *a = srv_act_find(
				s, (long)json_integer_value(json_object_get(rec, "act")));
			if (a && a->state != 2) {
				a->state = 2;
				json_t *e = json_object_get(rec, "exit");
				a->exit = json_is_integer(e) ? (int)json_integer_value(e) : -1;
				snprintf(a->run_id, sizeof a->run_id, "%s",
					 json_string_value(json_object_get(rec, "run_id"))
						 ? json_string_value(json_object_get(rec, "run_id"))
						 : "");
				s->nrunning--;
				struct key *k = srv_key_get(s, a->key);
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
			srv_log(s, "warn",
				"a run decided before a crash was never started (not retried: at "
				"most once)",
				"act", ids, "rule", a->rule, NULL);
			s->nrunning++;
			srv_read_run_id(s->sdir, a->id, a->run_id, sizeof a->run_id);
			srv_act_ended(s, a, -1, 1);
		} else if (a->state == 1 && (a->pid <= 0 || kill((pid_t)a->pid, 0) < 0)) {
			srv_log(s, "warn",
				"a run started before a restart has gone; its end is "
				"unknown",
				"act", ids, "rule", a->rule, NULL);
			srv_read_run_id(s->sdir, a->id, a->run_id, sizeof a->run_id);
			srv_act_ended(s, a, -1, 1);
		} else if (a->state == 1) {
			srv_log(s, "info", "a run started before a restart is still going", "act",
				ids, "rule", a->rule, NULL);
		}
	}
	/* intents accepted but never decided: decided now */
	const char *ids;
	json_t *intents;
	json_object_foreach(accepted, ids, intents) {
		size_t i;
		json_t *in;
		json_array_foreach(intents, i, in) {
			if (json_is_true(json_object_get(in, "_decided")))
				continue;
			srv_log(s, "info", "deciding an alert accepted before a restart", "id", ids,
				NULL);
			srv_decide(s, strtol(ids, NULL, 10), (int)i, in);
		}
	}
	json_decref(accepted);
	if (s->pend)
		srv_store_sync(s, srv_on_decisions_durable, s);
	return 0;
}
