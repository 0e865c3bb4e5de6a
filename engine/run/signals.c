/*
 * signals.c - how a run stops and ends: SIGINT and SIGTERM (the first stops
 * and rolls back, a second stops at once and leaves the run resumable; a
 * teardown is not cut short by one), the live view's tick, and finish_run:
 * the run's status and exit code, its run_end record, closing the loop's
 * handles and the summary.
 */
#include "run/sched.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- signals ----------------------------------------------------------------- */

static void on_signal(uv_signal_t *h, int sig)
{
	struct run *r = h->data;
	if (r->finished)
		return;
	if (r->phase == P_TEARDOWN && !r->hard && !r->teardown_signalled &&
	    r->stop != STOP_INTERRUPTED) {
		/* teardown undoes what the run created: it is not cut short by
		 * one signal, and the run's outcome is settled already */
		r->teardown_signalled = 1;
		drr_view_message(r->view, "\ndrrun: %s: tearing down first (again to stop at once; "
					  "resume finishes the teardown)",
				 strsignal(sig));
		return;
	}
	if (r->stop == STOP_INTERRUPTED || r->hard || r->teardown_signalled) {
		/* second signal: stop at once, leave the run resumable */
		r->hard = 1;
		drr_view_message(r->view, "\ndrrun: second %s: stopping now", strsignal(sig));
	} else {
		drr_view_message(r->view,
				 "\ndrrun: %s: stopping; cancelling running steps%s "
				 "(again to stop at once)",
				 strsignal(sig), r->o->no_rollback ? "" : ", then rolling back");
		/* on disk before anything is cancelled: a resume after a crash from
		 * here on finishes stopping (rolls back), it never goes forward */
		json_t *rec = rec_step("run_interrupt", NULL);
		json_object_set_new(rec, "signal",
				    json_string(sig == SIGINT ? "SIGINT" : "SIGTERM"));
		json_object_set_new(rec, "rollback", json_boolean(!r->o->no_rollback));
		jrec(r, rec, 1);
		set_stop(r, STOP_INTERRUPTED, "interrupted");
		if (r->stop != STOP_JOURNAL)
			r->stop =
				STOP_INTERRUPTED; /* even over a failure: the operator said stop */
		free(r->reason);
		r->reason = drr_xasprintf("interrupted by %s", strsignal(sig));
	}
	if (r->prompting)
		prompt_answer(r, 0);
	abandon_retries(r);
	for (int i = 0; i < r->rb->nsteps; i++) {
		struct drr_stepstate *s = &r->st[i];
		if (s->task)
			drr_task_cancel(s->task, "interrupted");
	}
	if (r->hard && r->rb_task)
		drr_task_cancel(r->rb_task, "interrupted");
	kick();
}

static void on_tick(uv_timer_t *h)
{
	struct run *r = h->data;
	drr_view_redraw(r->view);
}

/* ---- start and finish ----------------------------------------------------------- */

static void close_cb_noop(uv_handle_t *h)
{
	(void)h;
}

const char *run_outcome(const struct run *r, int *exit_code)
{
	const char *status;
	int ec;
	if (r->stop == STOP_JOURNAL) {
		status = "failed";
		ec = DRR_EXIT_CANTSTART;
	} else if (r->hard) {
		status = "interrupted";
		ec = DRR_EXIT_STOPPED;
	} else if (r->rollback_failed) {
		status = "failed";
		ec = DRR_EXIT_ROLLBACK;
	} else if (r->explicit_rollback) {
		status = "rolled-back";
		ec = DRR_EXIT_OK;
	} else if (r->stop == STOP_INTERRUPTED) {
		status = "interrupted";
		ec = DRR_EXIT_STOPPED;
	} else if (r->stop == STOP_FAILED) {
		status = "rolled-back";
		ec = DRR_EXIT_FAILED;
	} else if (r->stop == STOP_ABORTED) {
		status = "aborted";
		ec = DRR_EXIT_STOPPED;
	} else {
		status = "completed";
		ec = DRR_EXIT_OK;
	}
	if (r->invalid_input && ec == DRR_EXIT_FAILED)
		ec = DRR_EXIT_INVALID; /* the runbook gave drrun a bad value */
	if (exit_code)
		*exit_code = ec;
	return status;
}

void finish_run(struct run *r)
{
	r->finished = 1;
	const char *status = run_outcome(r, &r->exit_code);
	if (r->teardown_failed && r->stop != STOP_JOURNAL && !r->hard) {
		/* something the run created may be left behind */
		status = "failed";
		r->exit_code = DRR_EXIT_ROLLBACK;
		char *why = r->reason ? drr_xasprintf("%s; %s", r->reason, r->teardown_error)
				      : drr_xstrdup(r->teardown_error);
		free(r->reason);
		r->reason = why;
	}
	/* objectives are measured from the first run_start, over every session */
	double session = drr_mono() - r->t0, total = session;
	if (r->res && r->res->past->start_us > 0) {
		double since = (double)(drr_now_us() - r->res->past->start_us) / 1e6;
		if (since > total)
			total = since;
	}
	/* measured from the journal, as `drrun report` will measure them */
	struct drr_objectives ob;
	size_t good = 0, torn = 0;
	char lerr[256];
	json_t *recs = r->stop == STOP_JOURNAL ? NULL
					       : drr_journal_load(drr_journal_path(r->j), &good,
								  &torn, lerr, sizeof lerr);
	if (recs)
		drr_objectives_compute(recs, status, &ob);
	if (recs && !strcmp(status, "completed") && ob.missed && r->exit_code == DRR_EXIT_OK &&
	    !r->explicit_rollback)
		r->exit_code = DRR_EXIT_MISSED;
	json_t *rec = rec_step("run_end", NULL);
	json_object_set_new(rec, "status", json_string(status));
	json_object_set_new(rec, "exit", json_integer(r->exit_code));
	json_object_set_new(rec, "duration", jsecs(session));
	json_object_set_new(rec, "elapsed", jsecs(total));
	if (r->reason)
		json_object_set_new(rec, "reason", drr_json_str(r->reason));
	if (r->hard || r->resumable)
		json_object_set_new(rec, "resumable", json_true());
	if (recs && !r->explicit_rollback) {
		json_object_set_new(rec, "verdict", json_string(drr_objectives_verdict(&ob)));
		json_object_set_new(rec, "objectives", drr_objectives_json(&ob));
	}
	jrec(r, rec, 1);
	if (r->stop == STOP_JOURNAL) /* run_end itself could not be written */
		r->exit_code = DRR_EXIT_CANTSTART;

	uv_timer_stop(&r->tick);
	uv_close((uv_handle_t *)&r->tick, close_cb_noop);
	uv_close((uv_handle_t *)&r->sigint, close_cb_noop);
	uv_close((uv_handle_t *)&r->sigterm, close_cb_noop);
	if (r->tty_open) {
		uv_tty_reset_mode();
		uv_close((uv_handle_t *)&r->tty, close_cb_noop);
	}
	uv_close((uv_handle_t *)&drr_eng.idle, close_cb_noop);
	for (int i = 0; i < r->rb->nsteps; i++) {
		struct drr_stepstate *s = &r->st[i];
		if (s->task)
			drr_task_cancel(s->task, "stopped");
		if (s->timer) {
			uv_close((uv_handle_t *)s->timer, timer_closed);
			s->timer = NULL;
		}
		if (s->state == DRR_PENDING || s->state == DRR_WAIT_APPROVAL)
			s->state = DRR_NOT_RUN;
	}
	if (r->rb_task)
		drr_task_cancel(r->rb_task, "stopped");
	drr_engine_shutdown(); /* after the last op that could use a plugin's state */
	drr_view_suspend(r->view);
	struct drr_summary sum = {
		.run_id = r->run_id,
		.status = status,
		.journal = drr_journal_path(r->j),
		.reason = r->reason,
		.exit_code = r->exit_code,
		.color = r->o->color,
		.dry_run = r->o->dry_run,
		.total = total,
		.session = session,
		.sessions = r->res ? r->res->past->sessions + 1 : 1,
		.ob = recs && !r->explicit_rollback ? &ob : NULL,
	};
	drr_report_summary(r->o->json ? stderr : stdout, r->rb, r->st, &sum);
	if (recs) {
		drr_objectives_free(&ob);
		json_decref(recs);
	}
}

void signals_start(struct run *r, int live)
{
	uv_signal_init(&r->loop, &r->sigint);
	uv_signal_init(&r->loop, &r->sigterm);
	r->sigint.data = r->sigterm.data = r;
	uv_signal_start(&r->sigint, on_signal, SIGINT);
	uv_signal_start(&r->sigterm, on_signal, SIGTERM);
	drr_engine_watch_signals(); /* noticed even while a step computes */
	uv_timer_init(&r->loop, &r->tick);
	r->tick.data = r;
	if (live)
		uv_timer_start(&r->tick, on_tick, 100, 100);
}
