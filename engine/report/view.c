/*
 * view.c - what the operator sees while a run goes on.  On a terminal: one
 * line per step (state, elapsed time, last log line) redrawn in place.
 * Otherwise: plain timestamped lines, one per event, fit for a log file.
 * Messages for the operator print above the live view, which then redraws
 * below them, so a frame never overwrites a message or leaves rows behind.
 * Every string shown has already been redacted by the caller or is redacted
 * here, and reaches the terminal through term.c's escaping.
 */
#include "report/report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct drr_view {
	const struct drr_runbook *rb;
	const struct drr_stepstate *st;
	FILE *out;
	int live, color, drawn, suspended;
	double t0;
};

#define C(v, code) ((v)->color ? "\033[" code "m" : "")

struct drr_view *drr_view_new(const struct drr_runbook *rb, const struct drr_stepstate *st,
			      FILE *out, int live, int color)
{
	struct drr_view *v = drr_xcalloc(1, sizeof *v);
	v->rb = rb;
	v->st = st;
	v->out = out;
	v->live = live;
	v->color = color;
	v->t0 = drr_mono();
	return v;
}

void drr_view_free(struct drr_view *v)
{
	free(v);
}

static const char *state_color(enum drr_step_state st)
{
	switch (st) {
	case DRR_RUNNING:
	case DRR_ROLLING_BACK:
		return "36";
	case DRR_COMPLETED:
	case DRR_ROLLED_BACK:
		return "32";
	case DRR_FAILED:
	case DRR_ROLLBACK_FAILED:
		return "1;31";
	case DRR_RETRY_WAIT:
	case DRR_WAIT_APPROVAL:
	case DRR_ABORTED:
	case DRR_INTERRUPTED:
		return "33";
	default:
		return "2";
	}
}

void drr_view_event(struct drr_view *v, const struct drr_stepstate *s, const char *what,
		    const char *detail)
{
	if (!v || v->live)
		return; /* the live view redraws from the steps' state */
	char ts[40];
	drr_rfc3339(drr_now_us(), ts, sizeof ts);
	ts[23] = 'Z';
	ts[24] = '\0'; /* milliseconds are enough on screen */
	/* the run's own id is drrun's, not a value a runbook wrote: a short
	 * secret must not blank its digits */
	int own = !s && !strcmp(what, "run");
	char *d = !detail ? NULL : own ? drr_xstrdup(detail) : drr_redact(detail);
	/* one line per event, whatever the detail holds */
	if (s)
		drr_term_line(v->out, "%s %-20s %s%s%s", ts, s->def->name, what, d ? ": " : "",
			      d ? d : "");
	else
		drr_term_line(v->out, "%s %s%s%s", ts, what, d ? " " : "", d ? d : "");
	fflush(v->out);
	free(d);
}

static int term_size(int *rows, int *cols)
{
	struct winsize ws;
	if (ioctl(fileno(stdout), TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
		return 0;
	}
	*rows = 24;
	*cols = 80;
	return -1;
}

/* Append s to b, control bytes escaped (term.c), cut to `width` display
 * columns (UTF-8 aware, roughly). */
static void add_cut(struct drr_buf *b, const char *s, int width)
{
	struct drr_buf e = { 0 };
	drr_term_add(&e, s, strlen(s));
	int cols = 0;
	for (size_t i = 0; i < e.len; i++) {
		unsigned char c = (unsigned char)e.data[i];
		if ((c & 0xC0) != 0x80) {
			if (cols + 1 > width)
				break;
			cols++;
		}
		drr_buf_add(b, &e.data[i], 1);
	}
	drr_buf_free(&e);
}

/* Append s to b (escaped), wrapped to `width` columns, each row after the
 * first indented by `indent` spaces, breaking at a space where one is near;
 * at most max_rows rows (the last ends in "..." when cut).  Returns the rows. */
static int add_wrapped(struct drr_buf *b, const char *s, int width, int indent, int max_rows)
{
	struct drr_buf e = { 0 };
	drr_term_add(&e, s, strlen(s));
	int rows = 0;
	size_t i = 0;
	if (width - indent < 10)
		indent = 0;
	while (i < e.len && rows < max_rows) {
		int room = width - (rows ? indent : 0);
		/* how far `room` columns reach, and the last space before that */
		size_t j = i, brk = 0;
		int cols = 0;
		while (j < e.len) {
			unsigned char c = (unsigned char)e.data[j];
			if ((c & 0xC0) != 0x80) {
				if (cols == room)
					break;
				cols++;
				if (c == ' ')
					brk = j;
			}
			j++;
		}
		if (j < e.len && brk > i && brk - i > (size_t)room / 2)
			j = brk; /* break at the space; it is not shown */
		if (rows)
			drr_buf_addf(b, "\033[2K%*s", indent, "");
		else
			drr_buf_adds(b, "\033[2K");
		if (rows == max_rows - 1 && j < e.len && j - i > 3) {
			drr_buf_add(b, e.data + i, j - i - 3); /* roughly: room for the dots */
			drr_buf_adds(b, "...");
		} else {
			drr_buf_add(b, e.data + i, j - i);
		}
		drr_buf_adds(b, "\n");
		rows++;
		i = j;
		while (i < e.len && e.data[i] == ' ')
			i++;
	}
	drr_buf_free(&e);
	return rows;
}

/* Below the steps, for each step awaiting approval: its question in full,
 * wrapped, and the last line its dependencies logged (what the approver
 * decides on).  Returns the rows added. */
static int approval_panel(struct drr_view *v, struct drr_buf *b, int cols, int budget)
{
	int rows = 0;
	const struct drr_runbook *rb = v->rb;
	for (int i = 0; i < rb->nsteps && rows < budget; i++) {
		const struct drr_stepstate *s = &v->st[i];
		if (s->state != DRR_WAIT_APPROVAL)
			continue;
		const char *q = s->question ? s->question : s->def->approve;
		char *red = drr_redact(q ? q : "");
		char *line = drr_xasprintf("? %s: %s", s->def->name, red);
		rows += add_wrapped(b, line, cols - 1, 4, budget - rows < 6 ? budget - rows : 6);
		free(line);
		free(red);
		for (int k = 0; k < s->def->g->ndeps && rows < budget; k++) {
			const struct drr_stepstate *d = &v->st[s->def->g->deps[k]];
			if (!d->last_log)
				continue;
			line = drr_xasprintf("    %s: %s", d->def->name, d->last_log);
			rows += add_wrapped(b, line, cols - 1, 6,
					    budget - rows < 3 ? budget - rows : 3);
			free(line);
		}
	}
	return rows;
}

void drr_view_redraw(struct drr_view *v)
{
	if (!v || !v->live || v->suspended)
		return;
	int rows, cols;
	term_size(&rows, &cols);
	const struct drr_runbook *rb = v->rb;
	int max_lines = rows - 2 > 3 ? rows - 2 : 3;
	double now = drr_mono();
	struct drr_buf b = { 0 };
	if (v->drawn)
		drr_buf_addf(&b, "\r\033[%dA", v->drawn);
	int shown = 0, hidden = 0;
	/* with more steps than rows, show the active ones and the failures */
	int crowded = rb->nsteps > max_lines - 1;
	for (int i = 0; i < rb->nsteps; i++) {
		const struct drr_stepstate *s = &v->st[i];
		int active = s->state == DRR_RUNNING || s->state == DRR_RETRY_WAIT ||
			     s->state == DRR_ROLLING_BACK || s->state == DRR_FAILED ||
			     s->state == DRR_WAIT_APPROVAL || s->state == DRR_ROLLBACK_FAILED;
		if ((crowded && !active) || shown >= max_lines - 1) {
			hidden++;
			continue;
		}
		double el = 0;
		if (s->t_start > 0)
			el = (s->t_end > 0 ? s->t_end : now) - s->t_start;
		char d[32] = "";
		if (s->t_start > 0)
			drr_duration_fmt(el, d, sizeof d);
		struct drr_buf line = { 0 };
		drr_buf_addf(&line, "%-24.24s %-17s %8s  ", s->def->name, drr_state_word(s->state),
			     d);
		const char *tail =
			s->error && (s->state == DRR_FAILED || s->state == DRR_ROLLBACK_FAILED ||
				     s->state == DRR_RETRY_WAIT || s->state == DRR_ABORTED ||
				     s->state == DRR_CANCELLED)
				? s->error
				: s->last_log;
		drr_buf_adds(&b, "\033[2K");
		if (v->color)
			drr_buf_addf(&b, "\033[%sm", state_color(s->state));
		add_cut(&b, line.data, cols - 1);
		if (tail && (int)line.len < cols - 1)
			add_cut(&b, tail, cols - 1 - (int)line.len);
		drr_buf_adds(&b, C(v, "0"));
		drr_buf_adds(&b, "\n");
		drr_buf_free(&line);
		shown++;
	}
	int done = 0;
	for (int i = 0; i < rb->nsteps; i++)
		done += v->st[i].state == DRR_COMPLETED || v->st[i].state == DRR_SKIPPED;
	char d[32];
	drr_buf_adds(&b, "\033[2K");
	drr_buf_addf(&b, "%s%d/%d steps done, %s elapsed%s", C(v, "1"), done, rb->nsteps,
		     drr_duration_fmt(now - v->t0, d, sizeof d), C(v, "0"));
	if (hidden)
		drr_buf_addf(&b, " (%d more not shown)", hidden);
	drr_buf_adds(&b, "\n");
	int lines = shown + 1;
	lines += approval_panel(v, &b, cols, rows - 1 - lines > 0 ? rows - 1 - lines : 0);
	/* clear what an earlier, longer frame left below */
	for (int k = lines; k < v->drawn; k++)
		drr_buf_adds(&b, "\033[2K\n");
	if (v->drawn > lines)
		drr_buf_addf(&b, "\033[%dA", v->drawn - lines);
	v->drawn = lines;
	fwrite(b.data, 1, b.len, v->out);
	fflush(v->out);
	drr_buf_free(&b);
}

void drr_view_message(struct drr_view *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = drr_xvasprintf(fmt, ap);
	va_end(ap);
	const char *m = msg;
	int live = v && v->live && !v->suspended;
	if (live && v->drawn) {
		/* back to the frame's first row, and clear it and all below */
		fprintf(v->out, "\r\033[%dA\033[J", v->drawn);
		fflush(v->out);
		v->drawn = 0;
	}
	while (*m == '\n') {
		if (!live) /* off the "^C" the terminal echoed; the clear did that */
			fputc('\n', stderr);
		m++;
	}
	drr_term_line(stderr, "%s", m);
	fflush(stderr);
	free(msg);
	if (live)
		drr_view_redraw(v); /* the frame again, below the message */
}

void drr_view_suspend(struct drr_view *v)
{
	if (!v || !v->live)
		return;
	if (!v->suspended)
		drr_view_redraw(v); /* leave the last frame on screen */
	v->drawn = 0;
	v->suspended = 1;
}

void drr_view_clear(struct drr_view *v)
{
	if (!v || !v->live)
		return;
	if (!v->suspended && v->drawn) {
		fprintf(v->out, "\r\033[%dA\033[J", v->drawn);
		fflush(v->out);
	}
	v->drawn = 0;
	v->suspended = 1;
}

void drr_view_resume(struct drr_view *v)
{
	if (v)
		v->suspended = 0; /* the next frame starts below what is on screen */
}
