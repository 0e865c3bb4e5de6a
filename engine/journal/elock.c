/*
 * elock.c - a runbook's lock in etcd (--lock etcd://HOST:PORT), held as
 * well as the flock of lock.c, so that one runbook runs once across every
 * machine that shares the etcd.
 *
 * The key /drrun/lock/<runbook> is put under a lease of the run's own with
 * one txn whose compare is "createRevision 0" (the key is absent); its value
 * names the holder, "<run-id> <pid> <host>", for the refusal.  The lease is
 * kept alive every TTL/3 on the libuv thread pool, and each time the key is
 * read back: it must still be the run's, under the run's lease.  The lock is
 * lost when the lease lapses (a keepalive answered without a TTL), when the
 * key is gone or someone else's, or when etcd has not confirmed the lease
 * for longer than its TTL (counted from the sending of the last keepalive
 * that answered, so never later than etcd's own count).  A run that dies
 * leaves the key to etcd, which deletes it when the lease lapses.
 */
#include "journal/journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REQ_TIMEOUT_MS 2000L
#define NS 1000000000ull

struct job {
	uv_work_t work;
	uint64_t sent;
	int ttl;  /* the keepalive's answer: TTL seconds, 0 lease gone, -1 no answer */
	int mine; /* the key: 1 ours, 0 gone or another's, -1 no answer */
	char err[200];
};

struct drr_elock {
	char *base, *hostport, *key, *value; /* key and value in base64 */
	char name[128];
	char lease[32];
	int ttl;
	uint64_t valid_until; /* uv_hrtime: the lease is live until then, as far as we know */
	char why[320];	      /* "" while held */
	char last_err[200];
	uv_loop_t *loop;
	uv_timer_t timer;
	int watching, inflight;
	struct job job;
	void (*on_lost)(void *ud, const char *why);
	void *ud;
};

static json_t *call(struct drr_elock *l, const char *path, json_t *body, char *err, size_t n)
{
	return drr_etcd_call(l->base, path, body, REQ_TIMEOUT_MS, err, n);
}

static void lease_revoke(struct drr_elock *l)
{
	char err[200];
	if (l->lease[0])
		json_decref(call(l, "/v3/lease/revoke", json_pack("{s:s}", "ID", l->lease), err,
				 sizeof err));
	l->lease[0] = '\0';
}

static void elock_free(struct drr_elock *l)
{
	free(l->base);
	free(l->hostport);
	free(l->key);
	free(l->value);
	free(l);
}

/* The holder a failed txn found: "<run-id> <pid> <host>", decoded. */
static void holder_of(json_t *ans, const char *name, const char *hostport, char *err, size_t n)
{
	json_t *rr = json_object_get(json_array_get(json_object_get(ans, "responses"), 0),
				     "response_range");
	const char *v = json_string_value(
		json_object_get(json_array_get(json_object_get(rr, "kvs"), 0), "value"));
	char *text = v ? drr_etcd_unb64(v) : NULL;
	char id[200] = "?", host[128] = "?";
	long pid = 0;
	if (text)
		sscanf(text, "%199s %ld %127s", id, &pid, host);
	free(text);
	char *sid = drr_term_str(id), *shost = drr_term_str(host);
	snprintf(err, n, "runbook '%s' is already running: run %s (pid %ld on %s; etcd lock at %s)",
		 name, sid, pid, shost, hostport);
	free(sid);
	free(shost);
}

struct drr_elock *drr_elock_take(const char *url, double ttl, const char *name, const char *run_id,
				 char *err, size_t errlen)
{
	char *base = drr_etcd_base(url, err, errlen);
	if (!base)
		return NULL;
	struct drr_elock *l = drr_xcalloc(1, sizeof *l);
	l->base = base;
	l->hostport = drr_xstrdup(url + 7);
	snprintf(l->name, sizeof l->name, "%s", name);
	char host[64] = "";
	gethostname(host, sizeof host - 1);
	char *kp = drr_xasprintf("/drrun/lock/%s", name);
	char *val = drr_xasprintf("%s %ld %s", run_id, (long)getpid(), *host ? host : "?");
	l->key = drr_etcd_b64(kp);
	l->value = drr_etcd_b64(val);
	free(kp);
	free(val);
	char why[200];
	uint64_t sent = uv_hrtime();
	json_t *ans = call(l, "/v3/lease/grant", json_pack("{s:i}", "TTL", (int)(ttl + 0.5)), why,
			   sizeof why);
	const char *id = json_string_value(json_object_get(ans, "ID"));
	const char *gt = json_string_value(json_object_get(ans, "TTL"));
	if (!ans || !id || strlen(id) >= sizeof l->lease || !gt || atoi(gt) <= 0) {
		snprintf(err, errlen,
			 "etcd at %s did not grant a lease: %s (--lock: not starting "
			 "without the lock)",
			 l->hostport, ans ? "no lease ID in its answer" : why);
		json_decref(ans);
		elock_free(l);
		return NULL;
	}
	snprintf(l->lease, sizeof l->lease, "%s", id);
	l->ttl = atoi(gt);
	l->valid_until = sent + (uint64_t)l->ttl * NS;
	json_decref(ans);
	json_t *body = json_pack("{s:[{s:s,s:s,s:s}],s:[{s:{s:s,s:s,s:s}}],s:[{s:{s:s}}]}",
				 "compare", "target", "CREATE", "key", l->key, "createRevision",
				 "0", "success", "requestPut", "key", l->key, "value", l->value,
				 "lease", l->lease, "failure", "requestRange", "key", l->key);
	ans = call(l, "/v3/kv/txn", body, why, sizeof why);
	if (ans && json_is_true(json_object_get(ans, "succeeded"))) {
		json_decref(ans);
		return l;
	}
	if (ans)
		holder_of(ans, name, l->hostport, err, errlen);
	else
		snprintf(err, errlen,
			 "etcd at %s did not answer: %s (--lock: not starting without "
			 "the lock)",
			 l->hostport, why);
	json_decref(ans);
	lease_revoke(l);
	elock_free(l);
	return NULL;
}

/* ---- keeping it ---------------------------------------------------------------- */

static void lose(struct drr_elock *l, const char *fmt, const char *arg)
{
	if (l->why[0])
		return;
	snprintf(l->why, sizeof l->why, fmt, arg);
	if (l->watching)
		uv_timer_stop(&l->timer);
	if (l->on_lost)
		l->on_lost(l->ud, l->why);
}

static void check_time(struct drr_elock *l)
{
	if (l->why[0] || uv_hrtime() < l->valid_until)
		return;
	char what[260];
	snprintf(what, sizeof what, "%ds)%s%s", l->ttl, l->last_err[0] ? ": " : "", l->last_err);
	lose(l, "etcd did not confirm the lease within its TTL (%s", what);
}

static void job_work(uv_work_t *w)
{
	struct drr_elock *l = w->data;
	struct job *j = &l->job;
	char err[200];
	j->sent = uv_hrtime();
	json_t *ans =
		call(l, "/v3/lease/keepalive", json_pack("{s:s}", "ID", l->lease), err, sizeof err);
	const char *ttl = json_string_value(json_object_get(json_object_get(ans, "result"), "TTL"));
	j->ttl = !ans ? -1 : ttl ? atoi(ttl) : 0;
	json_decref(ans);
	if (!j->ttl || j->ttl < 0) {
		snprintf(j->err, sizeof j->err, "%s", j->ttl ? err : "");
		j->mine = -1;
		return;
	}
	ans = call(l, "/v3/kv/range", json_pack("{s:s}", "key", l->key), err, sizeof err);
	json_t *kv = json_array_get(json_object_get(ans, "kvs"), 0);
	const char *lease = json_string_value(json_object_get(kv, "lease"));
	const char *value = json_string_value(json_object_get(kv, "value"));
	j->mine =
		!ans ? -1 : lease && value && !strcmp(lease, l->lease) && !strcmp(value, l->value);
	if (!ans)
		snprintf(j->err, sizeof j->err, "%s", err);
	json_decref(ans);
}

static void job_after(uv_work_t *w, int status)
{
	struct drr_elock *l = w->data;
	struct job *j = &l->job;
	l->inflight = 0;
	if (status < 0)
		return;
	if (j->ttl > 0 && j->sent + (uint64_t)j->ttl * NS > l->valid_until)
		l->valid_until = j->sent + (uint64_t)j->ttl * NS;
	if (j->ttl == 0)
		lose(l, "the etcd lease %s lapsed (its keys are gone)", l->lease);
	else if (j->mine == 0)
		lose(l, "the key /drrun/lock/%s in etcd is gone or no longer this run's", l->name);
	else if (j->ttl < 0 || j->mine < 0)
		snprintf(l->last_err, sizeof l->last_err, "%s", j->err);
	else
		l->last_err[0] = '\0';
	check_time(l);
}

static void on_tick(uv_timer_t *t)
{
	struct drr_elock *l = t->data;
	check_time(l);
	if (l->why[0] || l->inflight)
		return;
	memset(&l->job, 0, sizeof l->job);
	l->job.work.data = l;
	if (uv_queue_work(l->loop, &l->job.work, job_work, job_after) == 0)
		l->inflight = 1;
}

void drr_elock_watch(struct drr_elock *l, uv_loop_t *loop,
		     void (*on_lost)(void *ud, const char *why), void *ud)
{
	l->loop = loop;
	l->on_lost = on_lost;
	l->ud = ud;
	uv_timer_init(loop, &l->timer);
	l->timer.data = l;
	uv_unref((uv_handle_t *)&l->timer); /* the run's end is not held up by it */
	l->watching = 1;
	uint64_t every = (uint64_t)l->ttl * 1000 / 3;
	uv_timer_start(&l->timer, on_tick, every < 500 ? 500 : every, every < 500 ? 500 : every);
}

const char *drr_elock_lost(struct drr_elock *l)
{
	check_time(l);
	return l->why[0] ? l->why : NULL;
}

void drr_elock_unwatch(struct drr_elock *l)
{
	if (!l || !l->watching)
		return;
	l->watching = 0;
	l->on_lost = NULL;
	uv_timer_stop(&l->timer);
	uv_close((uv_handle_t *)&l->timer, NULL);
}

void drr_elock_release(struct drr_elock *l)
{
	if (!l)
		return;
	lease_revoke(l); /* the key goes with it */
	elock_free(l);
}
