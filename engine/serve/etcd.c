/*
 * etcd.c - serve's dedupe keys in etcd v3, through its JSON gateway
 * (servers.md §4), so several serve instances on one etcd start one run per
 * key.  No consensus of our own: etcd's transactions and leases do it.
 *
 * Each instance holds one lease (grant, then keepalive every TTL/3).  A key
 * is taken with one txn: "/drrun/serve/key/<k>" and
 * "/drrun/serve/cooldown/<k>" both absent (createRevision 0) -> put the key
 * under our lease.  When the run ends the key is deleted (if it is still
 * ours) and, for a rule with a cooldown, the cooldown key is put under a
 * lease of its own that etcd expires when the cooldown is over.  A serve
 * that dies loses its lease after the TTL, and its keys with it: another
 * instance may then take them, and no sooner.  An etcd that does not answer,
 * or a lease that lapsed, means no key can be taken: serve refuses to
 * activate (fail closed) until a new lease is granted.
 *
 * Requests (journal/etcd.c, the client a run's --lock shares) run on the
 * libuv thread pool (2 s timeout each), so the loop never waits for etcd;
 * their answers are read back on the loop.
 */
#include "serve/serve.h"
#include "journal/journal.h"

#include <stdlib.h>
#include <string.h>

#define REQ_TIMEOUT_MS 2000L

struct serve_etcd {
	uv_loop_t *loop;
	char *base; /* http://host:port */
	int ttl;
	char lease[32]; /* "" while there is none */
	int up, closing, inflight;
	uv_timer_t timer;
	void (*on_state)(void *ud, int up);
	void *ud;
};

struct req {
	uv_work_t work;
	struct serve_etcd *e;
	char *path, *body;
	json_t *ans; /* NULL: no answer */
	void (*done)(struct req *r, json_t *ans); /* ans NULL: no answer */
	void *ud;
	void (*cb)(void *ud, int rc);
	char *key, *value;
	double cooldown;
};

static void req_work(uv_work_t *w)
{
	struct req *r = w->data;
	char err[200];
	r->ans = drr_etcd_post(r->e->base, r->path, r->body, REQ_TIMEOUT_MS, err, sizeof err);
}

static void req_after(uv_work_t *w, int status)
{
	struct req *r = w->data;
	struct serve_etcd *e = r->e;
	e->inflight--;
	r->done(r, status ? NULL : r->ans);
	json_decref(r->ans);
	free(r->path);
	free(r->body);
	free(r->key);
	free(r->value);
	free(r);
	if (e->closing && e->inflight == 0 && e->closing == 2) {
		free(e->base);
		free(e);
	}
}

static struct req *post(struct serve_etcd *e, const char *path, json_t *body,
			void (*done)(struct req *, json_t *))
{
	struct req *r = drr_xcalloc(1, sizeof *r);
	r->e = e;
	r->path = drr_xstrdup(path);
	r->body = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	r->done = done;
	r->work.data = r;
	e->inflight++;
	if (uv_queue_work(e->loop, &r->work, req_work, req_after) < 0) {
		req_after(&r->work, -1);
		return NULL;
	}
	return r;
}

static void set_up(struct serve_etcd *e, int up)
{
	if (e->up == up)
		return;
	e->up = up;
	if (!up)
		e->lease[0] = '\0';
	if (e->on_state)
		e->on_state(e->ud, up);
}

/* ---- the lease ------------------------------------------------------------- */

static void on_grant(struct req *r, json_t *ans)
{
	struct serve_etcd *e = r->e;
	const char *id = json_string_value(json_object_get(ans, "ID"));
	if (!id || strlen(id) >= sizeof e->lease) {
		set_up(e, 0);
		return;
	}
	snprintf(e->lease, sizeof e->lease, "%s", id);
	set_up(e, 1);
}

static void on_keepalive(struct req *r, json_t *ans)
{
	/* a lapsed lease answers without TTL: its keys are gone */
	json_t *res = json_object_get(ans, "result");
	const char *ttl = json_string_value(json_object_get(res, "TTL"));
	set_up(r->e, ttl && atoi(ttl) > 0);
}

static void on_tick(uv_timer_t *t)
{
	struct serve_etcd *e = t->data;
	if (e->inflight > 4) /* etcd is slow: do not pile requests up */
		return;
	if (!e->lease[0])
		post(e, "/v3/lease/grant", json_pack("{s:i}", "TTL", e->ttl), on_grant);
	else
		post(e, "/v3/lease/keepalive", json_pack("{s:s}", "ID", e->lease), on_keepalive);
}

struct serve_etcd *serve_etcd_new(uv_loop_t *loop, const char *url, int ttl, char *err,
				  size_t errlen)
{
	char *base = drr_etcd_base(url, err, errlen);
	if (!base)
		return NULL;
	struct serve_etcd *e = drr_xcalloc(1, sizeof *e);
	e->loop = loop;
	e->base = base;
	e->ttl = ttl;
	uv_timer_init(loop, &e->timer);
	e->timer.data = e;
	return e;
}

void serve_etcd_start(struct serve_etcd *e, void (*on_state)(void *ud, int up), void *ud)
{
	e->on_state = on_state;
	e->ud = ud;
	on_tick(&e->timer);
	uint64_t every = (uint64_t)e->ttl * 1000 / 3;
	uv_timer_start(&e->timer, on_tick, every, every);
}

int serve_etcd_up(const struct serve_etcd *e)
{
	return e->up && e->lease[0];
}

/* ---- keys ----------------------------------------------------------------- */

static void on_txn(struct req *r, json_t *ans)
{
	if (!r->cb) /* the request could not even be queued: acquire answers */
		return;
	if (!ans) {
		r->cb(r->ud, -1);
		return;
	}
	r->cb(r->ud, json_is_true(json_object_get(ans, "succeeded")) ? 0 : 1);
}

void serve_etcd_acquire(struct serve_etcd *e, const char *key, const char *value,
			void (*cb)(void *ud, int rc), void *ud)
{
	if (!serve_etcd_up(e)) {
		cb(ud, -1);
		return;
	}
	char *kp = drr_xasprintf("/drrun/serve/key/%s", key);
	char *cp = drr_xasprintf("/drrun/serve/cooldown/%s", key);
	char *k = drr_etcd_b64(kp), *c = drr_etcd_b64(cp), *v = drr_etcd_b64(value);
	json_t *body = json_pack(
		"{s:[{s:s,s:s,s:s},{s:s,s:s,s:s}],s:[{s:{s:s,s:s,s:s}}],s:[]}", "compare", "target",
		"CREATE", "key", k, "createRevision", "0", "target", "CREATE", "key", c,
		"createRevision", "0", "success", "requestPut", "key", k, "value", v, "lease",
		e->lease, "failure");
	struct req *r = post(e, "/v3/kv/txn", body, on_txn);
	if (r) {
		r->cb = cb;
		r->ud = ud;
	} else {
		cb(ud, -1);
	}
	free(kp);
	free(cp);
	free(k);
	free(c);
	free(v);
}

static void on_release(struct req *r, json_t *ans)
{
}

/* Delete the key if it is still ours; put the cooldown key under lease. */
static void release_txn(struct serve_etcd *e, const char *key, const char *value,
			const char *lease)
{
	char *kp = drr_xasprintf("/drrun/serve/key/%s", key);
	char *cp = drr_xasprintf("/drrun/serve/cooldown/%s", key);
	char *k = drr_etcd_b64(kp), *c = drr_etcd_b64(cp), *v = drr_etcd_b64(value);
	json_t *success = json_pack("[{s:{s:s}}]", "requestDeleteRange", "key", k);
	if (lease)
		json_array_append_new(success, json_pack("{s:{s:s,s:s,s:s}}", "requestPut", "key", c,
							 "value", v, "lease", lease));
	json_t *body = json_pack("{s:[{s:s,s:s,s:s}],s:o}", "compare", "target", "VALUE", "key", k,
				 "value", v, "success", success);
	post(e, "/v3/kv/txn", body, on_release);
	free(kp);
	free(cp);
	free(k);
	free(c);
	free(v);
}

static void on_cool_grant(struct req *r, json_t *ans)
{
	if (!r->key)
		return;
	const char *id = json_string_value(json_object_get(ans, "ID"));
	/* no lease for the cooldown: release anyway, the cooldown is then
	 * only this instance's (it keeps one locally) */
	release_txn(r->e, r->key, r->value, id);
}

void serve_etcd_release(struct serve_etcd *e, const char *key, const char *value,
			double cooldown)
{
	if (e->closing)
		return;
	if (cooldown < 1) {
		release_txn(e, key, value, NULL);
		return;
	}
	struct req *r = post(e, "/v3/lease/grant",
			     json_pack("{s:I}", "TTL", (json_int_t)(cooldown + 0.999)), on_cool_grant);
	if (r) {
		r->key = drr_xstrdup(key);
		r->value = drr_xstrdup(value);
	}
}

static void on_timer_closed(uv_handle_t *h)
{
	struct serve_etcd *e = h->data;
	e->closing = 2;
	if (e->inflight == 0) {
		free(e->base);
		free(e);
	}
}

void serve_etcd_close(struct serve_etcd *e)
{
	if (!e)
		return;
	e->closing = 1;
	e->on_state = NULL;
	uv_timer_stop(&e->timer);
	uv_close((uv_handle_t *)&e->timer, on_timer_closed);
}
