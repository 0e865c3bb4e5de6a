/*
 * signals.c - how a run stops and ends: SIGINT and SIGTERM (on a terminal
 * the first Ctrl-C asks: roll back, pause or keep going; else
 * --on-interrupt decides, rollback by default; a second signal stops at once
 * and leaves the run resumable; a teardown is not cut short by one), the live view's tick, and finish_run:
 * the run's status and exit code, its run_end record, closing the loop's
 * handles and the summary.
 */
#include "run/sched.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- signals ----------------------------------------------------------------- */

static const char *sig_name(int sig)
{
	return sig == SIGINT ? "SIGINT" : "SIGTERM";
}

/* Stop running steps, end retries; the rollback too on a stop at once. */
static void cancel_work(struct run *r)
{
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

/* The first signal, answered "roll back": stop, cancel, roll back. */
static void interrupt_rollback(struct run *r, int sig)
{
	drr_view_message(r->view,
			 "\ndrrun: %s: stopping; cancelling running steps%s "
			 "(again to stop at once)",
			 strsignal(sig), r->o->no_rollback ? "" : ", then rolling back");
	/* on disk before anything is cancelled: a resume after a crash from
	 * here on finishes stopping (rolls back), it never goes forward */
	json_t *rec = rec_step("run_interrupt", NULL);
	json_object_set_new(rec, "signal", json_string(sig_name(sig)));
	json_object_set_new(rec, "rollback", json_boolean(!r->o->no_rollback));
	jrec(r, rec, 1);
	set_stop(r, STOP_INTERRUPTED, "interrupted");
	if (r->stop != STOP_JOURNAL)
		r->stop = STOP_INTERRUPTED; /* even over a failure: the operator said stop */
	free(r->reason);
	r->reason = drr_xasprintf("interrupted by %s", strsignal(sig));
	cancel_work(r);
}

/* A second signal, or the first answered "pause": stop at once, cancel
 * what runs, leave the run resumable.  A pause writes no run_interrupt, so
 * `resume` goes forward; it journals run_pause, saying who chose. */
static void stop_now(struct run *r, int sig, const char *paused_by)
{
	r->hard = 1;
	if (paused_by) {
		drr_view_message(r->view,
				 "\ndrrun: %s: pausing; cancelling running steps (drrun resume "
				 "%s goes on)",
				 strsignal(sig), r->run_id);
		json_t *rec = rec_step("run_pause", NULL);
		json_object_set_new(rec, "signal", json_string(sig_name(sig)));
		json_object_set_new(rec, "by", json_string(paused_by));
		jrec(r, rec, 1);
		if (r->prompting && r->prompt_step) /* not declined: asked on resume */
			prompt_cancel(r, "paused");
	} else {
		drr_view_message(r->view, "\ndrrun: second %s: stopping now", strsignal(sig));
	}
	if (!r->stop) /* a pause, or a signal over the question: no step starts */
		r->stop = STOP_INTERRUPTED;
	if (!r->reason)
		r->reason = drr_xasprintf("%s by %s", paused_by ? "paused" : "interrupted",
					  strsignal(sig));
	cancel_work(r);
}

/* The first signal, with nobody asked: --on-interrupt decides. */
static void interrupt_by_flag(struct run *r, int sig)
{
	if (r->o->on_interrupt == DRR_INTERRUPT_PAUSE)
		stop_now(r, sig, "--on-interrupt");
	else
		interrupt_rollback(r, sig);
}

/* ---- the question on the terminal: roll back, pause or keep going ---------- */

static const char QUESTION[] =
	"\n? drrun: Interrupt: [r]oll back, [p]ause (resumable: drrun resume), or [k]eep "
	"going? ";

static void ask_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h, (void)hint;
	static char buf[256];
	b->base = buf;
	b->len = sizeof buf;
}

/* The question is closed: the terminal is free for approvals again. */
static void ask_close(struct run *r)
{
	r->asking = 0;
	r->prompting = 0;
	uv_read_stop((uv_stream_t *)&r->tty);
	drr_buf_free(&r->answer);
	drr_view_resume(r->view);
}

/* 'r', 'p', 'k' (or the words), else -1. */
static int ask_parse(const char *a)
{
	while (*a == ' ' || *a == '\t')
		a++;
	size_t n = strcspn(a, " \t\r");
	static const struct {
		const char *word;
		int answer;
	} words[] = {
		{ "r", 'r' },	 { "rollback", 'r' }, { "roll", 'r' },
		{ "p", 'p' },	 { "pause", 'p' },    { "k", 'k' },
		{ "keep", 'k' }, { "c", 'k' },	      { "continue", 'k' },
	};
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (n == strlen(words[i].word) && !strncasecmp(a, words[i].word, n))
			return words[i].answer;
	return -1;
}

static void ask_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct run *r = st->data;
	if (!r->asking || n == 0)
		return;
	if (n < 0) { /* EOF: nobody can answer; the flag decides */
		ask_close(r);
		interrupt_by_flag(r, SIGINT);
		return;
	}
	drr_buf_add(&r->answer, b->base, (size_t)n);
	char *nl = r->answer.data ? strchr(r->answer.data, '\n') : NULL;
	if (!nl)
		return;
	*nl = '\0';
	int a = ask_parse(r->answer.data);
	if (a < 0) {
		drr_buf_free(&r->answer);
		fputs(QUESTION + 1, stderr);
		fflush(stderr);
		return;
	}
	ask_close(r);
	if (a == 'r') {
		interrupt_rollback(r, SIGINT);
	} else if (a == 'p') {
		stop_now(r, SIGINT, "terminal");
	} else {
		drr_view_message(r->view, "drrun: going on (Ctrl-C again to ask again)");
		kick();
	}
}

/* Ask on the terminal, without blocking the loop: steps go on meanwhile,
 * but no approval is asked.  An open approval question is put back, to be
 * asked again if the run goes on.  Returns 0 when there is no terminal to
 * ask on. */
static int ask_interrupt(struct run *r)
{
	if (!isatty(0) || !isatty(2))
		return 0;
	if (!r->tty_open) {
		if (uv_tty_init(&r->loop, &r->tty, 0, 1) < 0)
			return 0;
		r->tty.data = r;
		r->tty_open = 1;
	}
	if (r->prompting && r->prompt_step) {
		struct drr_stepstate *s = r->prompt_step;
		prompt_cancel(r, "interrupted");
		if (!s->gw) { /* asked again on the next pass; a remote gate waits on */
			s->state = DRR_PENDING;
			r->rescan = 1;
		}
	}
	drr_view_clear(r->view);
	r->prompting = 1; /* no approval question while this one is open */
	r->asking = 1;
	fputs(QUESTION, stderr);
	fflush(stderr);
	uv_read_start((uv_stream_t *)&r->tty, ask_alloc, ask_read);
	return 1;
}

static void on_signal(uv_signal_t *h, int sig)
{
	struct run *r = h->data;
	if (r->finished)
		return;
	if (r->asking) {
		/* a signal while the question is open: stop at once */
		ask_close(r);
		stop_now(r, sig, NULL);
		return;
	}
	if (r->phase == P_TEARDOWN && !r->hard && !r->teardown_signalled &&
	    r->stop != STOP_INTERRUPTED) {
		/* teardown undoes what the run created: it is not cut short by
		 * one signal, and the run's outcome is settled already */
		r->teardown_signalled = 1;
		drr_view_message(r->view,
				 "\ndrrun: %s: tearing down first (again to stop at once; "
				 "resume finishes the teardown)",
				 strsignal(sig));
		return;
	}
	if (r->stop == STOP_INTERRUPTED || r->hard || r->teardown_signalled)
		stop_now(r, sig, NULL); /* second signal: stop at once, resumable */
	else if (sig != SIGINT || !ask_interrupt(r))
		interrupt_by_flag(r, sig);
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
	} else if (r->stop == STOP_ABORTED && r->deny_rollback) {
		status = "rolled-back"; /* nothing failed: a human said no */
		ec = DRR_EXIT_STOPPED;
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
	gates_close(r);
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
