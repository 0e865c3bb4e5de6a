/*
 * vclock.c - virtual time for `drrun test`.  When it is on, a prepare
 * handle looks at the loop just before it would block: if no task is ready,
 * no request (thread pool, DNS) is in flight and no handle other than timers
 * and signal watchers is active, the only thing the run waits for is a
 * timer.  Then the clocks (drr_mono, drr_now_us) jump to the earliest
 * deadline and every active timer is moved that much closer, so the loop
 * fires it at once.  drrun.sleep, retry delays, attempt timeouts and
 * everything built on them (health.wait_until, retry.call) take no real
 * time, and what the journal measures is the virtual time.  Real I/O, if a
 * test lets any happen, is waited for as usual: time never jumps past it.
 */
#include "lua/task.h"

#include <stdint.h>

static int vclock_on;
static uv_prepare_t vprep;
static int vprep_open;

struct scan {
	int busy;
	uint64_t next; /* ms until the earliest active timer */
	uint64_t jump;
};

static void scan_handle(uv_handle_t *h, void *arg)
{
	struct scan *s = arg;
	if (h == (uv_handle_t *)&vprep || uv_is_closing(h) || !uv_is_active(h))
		return;
	if (h->type == UV_TIMER) {
		uint64_t due = uv_timer_get_due_in((uv_timer_t *)h);
		if (due < s->next)
			s->next = due;
	} else if (h->type != UV_SIGNAL && uv_has_ref(h)) {
		s->busy = 1; /* a child, a socket, an idle handle with ready tasks */
	}
}

static void move_timer(uv_handle_t *h, void *arg)
{
	const struct scan *s = arg;
	if (h->type != UV_TIMER || uv_is_closing(h) || !uv_is_active(h))
		return;
	uv_timer_t *t = (uv_timer_t *)h;
	uint64_t due = uv_timer_get_due_in(t);
	uv_timer_start(t, t->timer_cb, due > s->jump ? due - s->jump : 0, uv_timer_get_repeat(t));
}

static void on_prepare(uv_prepare_t *p)
{
	if (drr_eng.ready_head || p->loop->active_reqs.count)
		return;
	struct scan s = { .busy = 0, .next = UINT64_MAX };
	uv_walk(p->loop, scan_handle, &s);
	if (s.busy || s.next == UINT64_MAX || s.next == 0)
		return;
	s.jump = s.next;
	drr_clock_skip((int64_t)s.jump * 1000);
	uv_walk(p->loop, move_timer, &s);
}

void drr_vclock_enable(void)
{
	vclock_on = 1;
}

int drr_vclock_enabled(void)
{
	return vclock_on;
}

void drr_vclock_attach(uv_loop_t *loop)
{
	if (!vclock_on || vprep_open)
		return;
	uv_prepare_init(loop, &vprep);
	uv_prepare_start(&vprep, on_prepare);
	uv_unref((uv_handle_t *)&vprep); /* it never keeps the loop alive */
	vprep_open = 1;
}

static void vprep_closed(uv_handle_t *h)
{
	(void)h;
	vprep_open = 0;
}

void drr_vclock_detach(void)
{
	if (vprep_open && !uv_is_closing((uv_handle_t *)&vprep))
		uv_close((uv_handle_t *)&vprep, vprep_closed);
}
