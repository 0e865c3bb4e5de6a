/*
 * lease.c - the run's lock in etcd (--lock): taken with the flock before
 * the journal, kept alive while the run lives, given back at its end.  A
 * lock lost mid-run (its lease lapsed, its key gone, etcd silent past the
 * TTL) stops the run before its next step starts, the way a gate with no
 * one to answer it does: steps already running finish, the run ends
 * resumable (exit 3), and `drrun resume` carries on once the lock can be
 * had again.  In a rollback or a teardown it stops at once, resumable.
 */
#include "run/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lease_take(struct run *r, char *err, size_t errlen)
{
	if (r->res) { /* drrun resume and rollback took it with the flock */
		r->elock = r->res->elock;
		return 0;
	}
	if (!r->o->lock)
		return 0;
	r->elock = drr_elock_take(r->o->lock, r->o->lock_ttl, r->rb->name, r->run_id, err, errlen);
	return r->elock ? 0 : -1;
}

static void lost(struct run *r, const char *why)
{
	if (r->lock_lost || r->finished)
		return;
	r->lock_lost = 1;
	char *reason = drr_xasprintf("lock lost: %s", why);
	drr_view_message(r->view,
			 "drrun: %s; stopping before the next step (drrun resume "
			 "carries on)",
			 reason);
	if (r->phase == P_STEPS && !r->stop) {
		r->resumable = 1;
		set_stop(r, STOP_ABORTED, reason);
	} else {
		r->hard = 1; /* as a second signal: left resumable */
		if (r->stop != STOP_JOURNAL) {
			free(r->reason);
			r->reason = drr_xstrdup(reason);
		}
	}
	free(reason);
	abandon_retries(r);
	kick();
}

static void on_lost(void *ud, const char *why)
{
	lost(ud, why);
}

void lease_watch(struct run *r)
{
	if (r->elock)
		drr_elock_watch(r->elock, &r->loop, on_lost, r);
}

void lease_check(struct run *r)
{
	const char *why = r->elock && !r->lock_lost ? drr_elock_lost(r->elock) : NULL;
	if (why)
		lost(r, why);
}

void lease_unwatch(struct run *r)
{
	drr_elock_unwatch(r->elock);
}

void lease_release(struct run *r)
{
	drr_elock_release(r->elock);
	r->elock = NULL;
}
