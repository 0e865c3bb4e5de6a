/*
 * render.c - the report object (evidence.c) as Markdown or as one
 * self-contained HTML page: no external assets, an inline-SVG Gantt
 * timeline with one bar per step attempt, grouped by phase, and print
 * styles.  The audit result comes first; in HTML it is red when the journal
 * does not verify.  Everything drrun did not write itself is escaped.
 * One walk (render) goes through the report for both formats; a struct fmt
 * of emitters says how each lays out its parts.
 */
#include "report/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static void esc_html(struct drr_buf *b, const char *s)
{
	while (s && *s) {
		size_t n = strcspn(s, "<>&\""); /* a run that needs no escape */
		drr_buf_add(b, s, n);
		s += n;
		switch (*s) {
		case '<':
			drr_buf_adds(b, "&lt;");
			break;
		case '>':
			drr_buf_adds(b, "&gt;");
			break;
		case '&':
			drr_buf_adds(b, "&amp;");
			break;
		case '"':
			drr_buf_adds(b, "&quot;");
			break;
		default:
			return; /* the end */
		}
		s++;
	}
}

/* A Markdown table cell: no pipe, no newline, no HTML. */
static void esc_md(struct drr_buf *b, const char *s)
{
	while (s && *s) {
		size_t n = strcspn(s, "|\n\r<");
		drr_buf_add(b, s, n);
		s += n;
		if (!*s)
			return;
		drr_buf_adds(b, *s == '|' ? "\\|" : *s == '<' ? "&lt;" : " ");
		s++;
	}
}

static const char *secs(json_t *v, char *buf, size_t n)
{
	if (!json_is_number(v))
		return "-";
	return drr_duration_fmt(json_number_value(v), buf, n);
}

static const char *met(json_t *v)
{
	return json_is_true(v) ? "met" : json_is_false(v) ? "MISSED" : "not measured";
}

/* A one-line audit sentence, for both formats. */
static char *audit_line(json_t *a)
{
	if (json_is_true(json_object_get(a, "ok")))
		return drr_xasprintf("journal verified: hash chain intact (%lld records), HMAC %s, "
				     "ledger %s",
				     (long long)json_integer_value(json_object_get(a, "records")),
				     str(a, "hmac"), str(a, "ledger"));
	return drr_xasprintf("JOURNAL VERIFICATION FAILED at seq %lld: %s (HMAC %s). What "
			     "follows is what the readable records say.",
			     (long long)json_integer_value(json_object_get(a, "bad_seq")),
			     str(a, "reason"), str(a, "hmac"));
}

struct objrow {
	char name[120];
	json_t *o;
};

/* RTO, RPO, then every budget: the rows of the objectives table. */
static int objective_rows(json_t *rep, struct objrow *rows, int max)
{
	json_t *ob = json_object_get(rep, "objectives");
	int n = 0;
	const char *k;
	json_t *v;
	if (n < max && json_is_number(json_object_get(json_object_get(ob, "rto"), "target_s"))) {
		snprintf(rows[n].name, sizeof rows[n].name, "RTO");
		rows[n++].o = json_object_get(ob, "rto");
	}
	if (n < max && json_is_number(json_object_get(json_object_get(ob, "rpo"), "target_s"))) {
		snprintf(rows[n].name, sizeof rows[n].name, "RPO");
		rows[n++].o = json_object_get(ob, "rpo");
	}
	json_object_foreach(json_object_get(ob, "budgets"), k, v) {
		if (n >= max)
			break;
		snprintf(rows[n].name, sizeof rows[n].name, "budget %s", k);
		rows[n++].o = v;
	}
	return n;
}

/* ---- what the formats share -------------------------------------------------- */

/* One step's row of the steps table. */
struct step_row {
	const char *name, *phase, *result;
	const char *start, *end; /* of the first and the last attempt; NULL: none */
	const char *note;	 /* the error, else the last log line; may be NULL */
	size_t attempts;
	json_t *duration;
	int64_t t0; /* the run's start */
};

/* A format: render() walks the report once, in the same order for both,
 * and lays out through these.  Tables have a heading row in HTML only when
 * `list` is used: Markdown shows those as bullet lists. */
struct fmt {
	void (*esc)(struct drr_buf *b, const char *s);
	void (*begin)(struct drr_buf *b, json_t *rep); /* or NULL */
	void (*banner)(struct drr_buf *b, int ok, const char *line);
	const char *title_open, *title_close; /* around "Drill report: NAME" */
	const char *facts_open, *facts_close; /* around the rows of kv */
	const char *no_json;		      /* a kv's JSON when it cannot be written */
	void (*kv)(struct drr_buf *b, const char *k, const char *v);
	int verdict; /* the facts end with the verdict */
	void (*heading)(struct drr_buf *b, const char *title);
	void (*none)(struct drr_buf *b, const char *text);
	void (*table)(struct drr_buf *b, const char *id, const char *const *cols);
	void (*list)(struct drr_buf *b, const char *id, const char *const *cols); /* or NULL */
	const char *table_close; /* after the last row of a table or list */
	void (*objective)(struct drr_buf *b, const char *name, json_t *o);
	void (*timeline)(struct drr_buf *b, json_t *rep);
	const char *const *step_cols;
	const char *steps_open, *steps_close; /* after the heading row; after the rows */
	void (*step)(struct drr_buf *b, const struct step_row *r);
	void (*approval)(struct drr_buf *b, json_t *v);
	void (*rollback)(struct drr_buf *b, json_t *v);
	void (*teardown_intro)(struct drr_buf *b, json_t *td);
	void (*teardown)(struct drr_buf *b, json_t *v);
	const char *end;
};

static const char *const OBJ_COLS[] = { "objective", "target", "achieved", "verdict", NULL };

/* ---- Markdown ------------------------------------------------------------ */

static void md_banner(struct drr_buf *b, int ok, const char *line)
{
	drr_buf_adds(b, ok ? "> Audit: " : "> **Audit: ");
	esc_md(b, line);
	drr_buf_adds(b, ok ? "\n\n" : "**\n\n");
}

static void md_kv(struct drr_buf *b, const char *k, const char *v)
{
	drr_buf_addf(b, "| %s | ", k);
	esc_md(b, v);
	drr_buf_adds(b, " |\n");
}

static void md_heading(struct drr_buf *b, const char *title)
{
	drr_buf_addf(b, "\n## %s\n\n", title);
}

static void md_none(struct drr_buf *b, const char *text)
{
	drr_buf_addf(b, "%s\n", text);
}

static void md_table(struct drr_buf *b, const char *id, const char *const *cols)
{
	(void)id;
	for (int i = 0; cols[i]; i++)
		drr_buf_addf(b, "| %s ", cols[i]);
	drr_buf_adds(b, "|\n|");
	for (int i = 0; cols[i]; i++)
		drr_buf_adds(b, "---|");
	drr_buf_adds(b, "\n");
}

static void md_objective(struct drr_buf *b, const char *name, json_t *o)
{
	char d1[32], d2[32];
	drr_buf_adds(b, "| ");
	esc_md(b, name);
	drr_buf_addf(b, " | %s | %s | %s |\n", secs(json_object_get(o, "target_s"), d1, sizeof d1),
		     secs(json_object_get(o, "achieved_s"), d2, sizeof d2),
		     met(json_object_get(o, "met")));
}

/* Markdown has no timeline: a table of the phases. */
static void md_phases(struct drr_buf *b, json_t *rep)
{
	static const char *const cols[] = { "phase", "start", "end", "duration", "budget", NULL };
	char d1[32], d2[32];
	size_t i;
	json_t *v;
	md_heading(b, "Phases");
	md_table(b, NULL, cols);
	json_array_foreach(json_object_get(rep, "phases"), i, v) {
		drr_buf_adds(b, "| ");
		esc_md(b, str(v, "phase"));
		drr_buf_adds(b, " | ");
		esc_md(b, str(v, "start"));
		drr_buf_adds(b, " | ");
		esc_md(b, str(v, "end"));
		drr_buf_addf(b, " | %s | %s |\n",
			     secs(json_object_get(v, "duration_s"), d1, sizeof d1),
			     secs(json_object_get(v, "budget_s"), d2, sizeof d2));
	}
}

static void md_step(struct drr_buf *b, const struct step_row *r)
{
	char d[32];
	drr_buf_adds(b, "| ");
	esc_md(b, r->name);
	drr_buf_adds(b, " | ");
	esc_md(b, r->phase);
	drr_buf_adds(b, " | ");
	esc_md(b, r->result);
	drr_buf_addf(b, " | %zu | ", r->attempts);
	esc_md(b, r->start ? r->start : "-");
	drr_buf_adds(b, " | ");
	esc_md(b, r->end ? r->end : "-");
	drr_buf_addf(b, " | %s | ", secs(r->duration, d, sizeof d));
	esc_md(b, r->note);
	drr_buf_adds(b, " |\n");
}

static void md_approval(struct drr_buf *b, json_t *v)
{
	drr_buf_adds(b, "- ");
	esc_md(b, str(v, "step"));
	drr_buf_adds(b, ": ");
	esc_md(b, str(v, "status"));
	drr_buf_adds(b, " by ");
	esc_md(b, json_is_string(json_object_get(v, "by")) ? str(v, "by") : "nobody");
	drr_buf_adds(b, " at ");
	esc_md(b, str(v, "at"));
	drr_buf_adds(b, ": ");
	esc_md(b, str(v, "question"));
	drr_buf_adds(b, "\n");
}

static void md_rollback(struct drr_buf *b, json_t *v)
{
	drr_buf_adds(b, "- ");
	esc_md(b, str(v, "step"));
	drr_buf_adds(b, ": ");
	esc_md(b, str(v, "result"));
	drr_buf_adds(b, " (");
	esc_md(b, str(v, "start"));
	drr_buf_adds(b, " to ");
	esc_md(b, str(v, "end"));
	drr_buf_adds(b, ")");
	if (json_is_string(json_object_get(v, "error"))) {
		drr_buf_adds(b, ": ");
		esc_md(b, str(v, "error"));
	}
	drr_buf_adds(b, "\n");
}

static void md_teardown_intro(struct drr_buf *b, json_t *td)
{
	md_none(b, json_is_true(json_object_get(td, "ran")) ? "" : "No teardown step ran.");
}

static void md_teardown(struct drr_buf *b, json_t *v)
{
	drr_buf_adds(b, "- ");
	esc_md(b, str(v, "name"));
	drr_buf_adds(b, ": ");
	esc_md(b, str(v, "result"));
	char *rm = json_dumps(json_object_get(v, "removed"), JSON_COMPACT | JSON_ENCODE_ANY);
	char *lf = json_dumps(json_object_get(v, "left"), JSON_COMPACT | JSON_ENCODE_ANY);
	if (json_is_array(json_object_get(v, "removed"))) {
		drr_buf_adds(b, "; removed ");
		esc_md(b, rm);
	}
	if (json_is_array(json_object_get(v, "left"))) {
		drr_buf_adds(b, "; could not remove ");
		esc_md(b, lf);
	}
	if (json_is_string(json_object_get(v, "error"))) {
		drr_buf_adds(b, "; ");
		esc_md(b, str(v, "error"));
	}
	free(rm);
	free(lf);
	drr_buf_adds(b, "\n");
}

static const char *const MD_STEP_COLS[] = { "step",  "phase", "result",	  "attempts",
					    "start", "end",   "duration", "last log / error",
					    NULL };

static const struct fmt MD = {
	.esc = esc_md,
	.banner = md_banner,
	.title_open = "# ",
	.title_close = "\n\n",
	.facts_open = "| | |\n|---|---|\n",
	.facts_close = "",
	.kv = md_kv,
	.no_json = "{}",
	.verdict = 1,
	.heading = md_heading,
	.none = md_none,
	.table = md_table,
	.table_close = "",
	.objective = md_objective,
	.timeline = md_phases,
	.step_cols = MD_STEP_COLS,
	.steps_open = "",
	.steps_close = "",
	.step = md_step,
	.approval = md_approval,
	.rollback = md_rollback,
	.teardown_intro = md_teardown_intro,
	.teardown = md_teardown,
	.end = "",
};

/* ---- HTML ------------------------------------------------------------------ */

static const char CSS[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#111}"
	"h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}"
	"table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
	"padding:2px 6px;text-align:left;vertical-align:top}th{background:#f2f2f2}"
	".audit{padding:.6em 1em;border-radius:4px;font-weight:600}"
	".audit.ok{background:#e6f4ea;color:#135c24;border:1px solid #7bc08b}"
	".audit.bad{background:#d32f2f;color:#fff;border:2px solid #8e0000}"
	".met{color:#135c24}.missed{color:#c62828;font-weight:700}"
	"svg text{font-size:11px;font-family:system-ui,sans-serif}"
	"rect.bar{height:10px}.ok{fill:#2e7d32}.failed{fill:#c62828}"
	".int{fill:#ef6c00}.running{fill:#1565c0}"
	".ph{font-weight:700}.lane{fill:#f7f7f7}"
	"@media print{body{margin:0;font-size:10pt}.audit,.bar,.lane{-webkit-print-color-adjust:"
	"exact;print-color-adjust:exact}h2{break-after:avoid}tr{break-inside:avoid}"
	"svg{max-width:100%}}";

#define ROW 14
#define LABEL 220.0
#define PLOT 760.0

/* Bars beyond this many get no tooltip and steps no label, to keep a big
 * run's page small. */
#define DETAIL_MAX 2000

/* A bar's class: ok, failed, int (cancelled or interrupted) or running. */
static const char *bar_class(const char *result)
{
	if (!strcmp(result, "completed"))
		return "ok";
	if (!strcmp(result, "failed"))
		return "failed";
	if (!strcmp(result, "running"))
		return "running";
	return "int";
}

/* "+1.234s" after t0, the run's start: the table's times, short. */
static const char *offset(const char *ts, int64_t t0, char *buf, size_t n)
{
	int64_t us;
	if (!ts || drr_rfc3339_parse(ts, &us) < 0)
		return "-";
	char d[32];
	snprintf(buf, n, "+%s", drr_duration_fmt((double)(us - t0) / 1e6, d, sizeof d));
	return buf;
}

static double tsecs(const char *ts, int64_t t0)
{
	int64_t us;
	if (drr_rfc3339_parse(ts, &us) < 0)
		return -1;
	return (double)(us - t0) / 1e6;
}

/* One lane per phase (in the order phases started), one row per step with
 * at least one attempt, one bar per attempt. */
static void html_gantt(struct drr_buf *b, json_t *rep)
{
	int64_t t0 = 0, t1 = 0, us;
	if (drr_rfc3339_parse(str(rep, "started"), &t0) < 0)
		return;
	t1 = t0 + 1000;
	size_t i, k, nattempts = 0, nsteps = 0;
	json_t *v, *a;
	json_t *steps = json_object_get(rep, "steps");
	/* the steps that ran, with their phase: each lane picks its own */
	struct lane_step {
		json_t *step, *attempts;
		const char *phase;
	} *ran = drr_xcalloc(json_array_size(steps) + 1, sizeof *ran);
	json_array_foreach(steps, i, v) {
		json_t *at = json_object_get(v, "attempts");
		if (json_array_size(at))
			ran[nsteps++] = (struct lane_step){ v, at, str(v, "phase") };
		json_array_foreach(at, k, a) {
			nattempts++;
			if (drr_rfc3339_parse(str(a, "end"), &us) == 0 && us > t1)
				t1 = us;
			if (drr_rfc3339_parse(str(a, "start"), &us) == 0 && us > t1)
				t1 = us;
		}
	}
	if (drr_rfc3339_parse(str(rep, "ended"), &us) == 0 && us > t1)
		t1 = us;
	double span = (double)(t1 - t0) / 1e6;
	json_t *phases = json_object_get(rep, "phases");
	int detail = nattempts <= DETAIL_MAX;
	size_t rows = nsteps + json_array_size(phases) + 1;
	char d[32];
	drr_buf_addf(b,
		     "<svg id=\"gantt\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1000 "
		     "%zu\" width=\"100%%\" role=\"img\" aria-label=\"timeline\">",
		     rows * ROW + 20);
	/* the time axis: start, middle, end */
	for (int q = 0; q <= 4; q++)
		drr_buf_addf(b,
			     "<text x=\"%.1f\" y=\"10\" text-anchor=\"%s\">+%s</text>"
			     "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"12\" y2=\"%zu\" stroke=\"#ddd\"/>",
			     LABEL + PLOT * q / 4,
			     q == 0   ? "start"
			     : q == 4 ? "end"
				      : "middle",
			     drr_duration_fmt(span * q / 4, d, sizeof d), LABEL + PLOT * q / 4,
			     LABEL + PLOT * q / 4, rows * ROW + 20);
	size_t y = 16;
	json_array_foreach(phases, k, a) {
		const char *ph = str(a, "phase");
		drr_buf_addf(b, "<g class=\"phase\" data-phase=\"");
		esc_html(b, ph);
		drr_buf_addf(b, "\"><text class=\"ph\" x=\"2\" y=\"%zu\">", y + 10);
		esc_html(b, ph);
		drr_buf_adds(b, "</text>");
		y += ROW;
		for (i = 0; i < nsteps; i++) {
			json_t *at = ran[i].attempts;
			v = ran[i].step;
			if (strcmp(ran[i].phase, ph))
				continue;
			if (detail) {
				drr_buf_addf(b, "<text x=\"12\" y=\"%zu\">", y + 10);
				esc_html(b, str(v, "name"));
				drr_buf_adds(b, "</text>");
			}
			size_t n;
			json_t *one;
			json_array_foreach(at, n, one) {
				double s = tsecs(str(one, "start"), t0);
				double e = tsecs(str(one, "end"), t0);
				if (s < 0)
					s = 0;
				if (e < s)
					e = span; /* never ended: to the end of the record */
				double x = LABEL + PLOT * s / span, w = PLOT * (e - s) / span;
				if (w < 1.5)
					w = 1.5;
				drr_buf_addf(b,
					     "<rect class=\"bar %s\" x=\"%.1f\" y=\"%zu\" "
					     "width=\"%.1f\" data-step=\"",
					     bar_class(str(one, "result")), x, y + 2, w);
				esc_html(b, str(v, "name"));
				drr_buf_adds(b, "\"");
				if (n) /* a first attempt is the default: a big page stays small */
					drr_buf_addf(b, " data-attempt=\"%zu\"", n + 1);
				if (detail) {
					drr_buf_adds(b, "><title>");
					esc_html(b, str(v, "name"));
					drr_buf_addf(b, " #%zu ", n + 1);
					esc_html(b, str(one, "result"));
					drr_buf_addf(b, ", %s</title></rect>",
						     drr_duration_fmt(e - s, d, sizeof d));
				} else {
					drr_buf_adds(b, "/>");
				}
			}
			y += ROW;
		}
		drr_buf_adds(b, "</g>");
	}
	drr_buf_adds(b, "</svg>");
	free(ran);
}

static void html_list_json(struct drr_buf *b, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	esc_html(b, s);
	free(s);
}

static void html_begin(struct drr_buf *b, json_t *rep)
{
	drr_buf_adds(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			"<title>drrun report ");
	esc_html(b, str(rep, "run"));
	drr_buf_addf(b, "</title><style>%s</style></head><body>\n", CSS);
}

static void html_banner(struct drr_buf *b, int ok, const char *line)
{
	drr_buf_addf(b, "<div id=\"audit\" class=\"audit %s\">Audit: ", ok ? "ok" : "bad");
	esc_html(b, line);
	drr_buf_adds(b, "</div>\n");
}

static void html_kv(struct drr_buf *b, const char *k, const char *v)
{
	drr_buf_addf(b, "<tr><th>%s</th><td>", k);
	esc_html(b, v);
	drr_buf_adds(b, "</td></tr>");
}

static void html_heading(struct drr_buf *b, const char *title)
{
	drr_buf_addf(b, "<h2>%s</h2>\n", title);
}

static void html_none(struct drr_buf *b, const char *text)
{
	drr_buf_addf(b, "<p>%s</p>\n", text);
}

static void html_table(struct drr_buf *b, const char *id, const char *const *cols)
{
	drr_buf_addf(b, "<table id=\"%s\"><tr>", id);
	for (int i = 0; cols[i]; i++)
		drr_buf_addf(b, "<th>%s</th>", cols[i]);
	drr_buf_adds(b, "</tr>");
}

static void html_objective(struct drr_buf *b, const char *name, json_t *o)
{
	char d1[32], d2[32];
	json_t *m = json_object_get(o, "met");
	drr_buf_adds(b, "<tr><td>");
	esc_html(b, name);
	drr_buf_addf(b, "</td><td>%s</td><td>%s</td><td class=\"%s\">%s</td></tr>",
		     secs(json_object_get(o, "target_s"), d1, sizeof d1),
		     secs(json_object_get(o, "achieved_s"), d2, sizeof d2),
		     json_is_true(m)	? "met"
		     : json_is_false(m) ? "missed"
					: "",
		     met(m));
}

static void html_timeline(struct drr_buf *b, json_t *rep)
{
	html_heading(b, "Timeline");
	html_gantt(b, rep);
	drr_buf_adds(b, "\n");
}

static void html_step(struct drr_buf *b, const struct step_row *r)
{
	char d[32], o[48];
	drr_buf_adds(b, "<tr><td>");
	esc_html(b, r->name);
	drr_buf_adds(b, "<td>");
	esc_html(b, r->phase);
	drr_buf_adds(b, "<td>");
	esc_html(b, r->result);
	drr_buf_addf(b, "<td>%zu<td>", r->attempts);
	esc_html(b, r->start ? offset(r->start, r->t0, o, sizeof o) : "-");
	drr_buf_addf(b, "<td>%s<td>", secs(r->duration, d, sizeof d));
	esc_html(b, r->note);
	drr_buf_adds(b, "\n"); /* HTML closes td and tr itself */
}

static void html_approval(struct drr_buf *b, json_t *v)
{
	drr_buf_adds(b, "<tr><td>");
	esc_html(b, str(v, "step"));
	drr_buf_adds(b, "</td><td>");
	esc_html(b, str(v, "question"));
	drr_buf_adds(b, "</td><td>");
	esc_html(b, str(v, "status"));
	drr_buf_adds(b, "</td><td>");
	esc_html(b, json_is_string(json_object_get(v, "by")) ? str(v, "by") : "-");
	drr_buf_adds(b, "</td><td>");
	esc_html(b, str(v, "at"));
	drr_buf_adds(b, "</td></tr>");
}

static void html_rollback(struct drr_buf *b, json_t *v)
{
	drr_buf_adds(b, "<tr><td>");
	esc_html(b, str(v, "step"));
	drr_buf_adds(b, "</td><td>");
	esc_html(b, str(v, "result"));
	drr_buf_adds(b, "</td><td>");
	esc_html(b, str(v, "start"));
	drr_buf_adds(b, "</td><td>");
	esc_html(b, str(v, "end"));
	drr_buf_adds(b, "</td><td>");
	esc_html(b, str(v, "error"));
	drr_buf_adds(b, "</td></tr>");
}

static void html_teardown_intro(struct drr_buf *b, json_t *td)
{
	static const char *const cols[] = { "step", "result", "removed", "could not remove", NULL };
	if (!json_array_size(json_object_get(td, "steps")))
		html_none(b, "No teardown steps.");
	else
		html_table(b, "teardown", cols);
}

static void html_teardown(struct drr_buf *b, json_t *v)
{
	drr_buf_adds(b, "<tr><td>");
	esc_html(b, str(v, "name"));
	drr_buf_adds(b, "</td><td>");
	esc_html(b, str(v, "result"));
	if (json_is_string(json_object_get(v, "error"))) {
		drr_buf_adds(b, ": ");
		esc_html(b, str(v, "error"));
	}
	drr_buf_adds(b, "</td><td>");
	if (json_is_array(json_object_get(v, "removed")))
		html_list_json(b, json_object_get(v, "removed"));
	drr_buf_adds(b, "</td><td>");
	if (json_is_array(json_object_get(v, "left")))
		html_list_json(b, json_object_get(v, "left"));
	drr_buf_adds(b, "</td></tr>");
}

static const char *const HTML_STEP_COLS[] = { "step",	 "phase",    "result",		 "attempts",
					      "started", "duration", "last log / error", NULL };

static const struct fmt HTML = {
	.esc = esc_html,
	.begin = html_begin,
	.banner = html_banner,
	.title_open = "<h1>",
	.title_close = "</h1>\n",
	.facts_open = "<table class=\"meta\">",
	.facts_close = "</table>\n",
	.kv = html_kv,
	.no_json = "",
	.verdict = 0,
	.heading = html_heading,
	.none = html_none,
	.table = html_table,
	.list = html_table,
	.table_close = "</table>\n",
	.objective = html_objective,
	.timeline = html_timeline,
	.step_cols = HTML_STEP_COLS,
	.steps_open = "\n",
	.steps_close = "</table>\n<p><small>Times are from the run's start.</small></p>\n",
	.step = html_step,
	.approval = html_approval,
	.rollback = html_rollback,
	.teardown_intro = html_teardown_intro,
	.teardown = html_teardown,
	.end = "<p><small>Made by drrun from the run's journal alone.</small></p>\n"
	       "</body></html>\n",
};

/* ---- the walk ------------------------------------------------------------------ */

/* A value as compact JSON in a row of the facts. */
static void kv_json(struct drr_buf *b, const struct fmt *f, const char *k, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	f->kv(b, k, s ? s : f->no_json);
	free(s);
}

/* Who ran it and what it was: the table at the top. */
static void facts(struct drr_buf *b, json_t *rep, const struct fmt *f)
{
	json_t *rb = json_object_get(rep, "runbook"), *who = json_object_get(rep, "who");
	f->kv(b, "run", str(rep, "run"));
	f->kv(b, "runbook sha256", str(rb, "sha256"));
	f->kv(b, "file", str(rb, "path"));
	f->kv(b, "kind", json_is_true(json_object_get(rep, "drill")) ? "drill" : "real run");
	f->kv(b, "env", json_is_string(json_object_get(rep, "env")) ? str(rep, "env") : "-");
	char *w =
		drr_xasprintf("%s on %s (drrun %s)",
			      json_is_string(json_object_get(who, "user")) ? str(who, "user") : "?",
			      str(who, "host"), str(who, "version"));
	f->kv(b, "who", w);
	free(w);
	kv_json(b, f, "params", json_object_get(rep, "params"));
	if (json_is_object(json_object_get(rep, "trigger")))
		kv_json(b, f, "trigger", json_object_get(rep, "trigger"));
	f->kv(b, "started", str(rep, "started"));
	f->kv(b, "ended", json_is_string(json_object_get(rep, "ended")) ? str(rep, "ended") : "-");
	char *res =
		json_is_integer(json_object_get(rep, "exit"))
			? drr_xasprintf("%s (exit %lld)", str(rep, "result"),
					(long long)json_integer_value(json_object_get(rep, "exit")))
			: drr_xstrdup(str(rep, "result"));
	f->kv(b, "result", res);
	free(res);
	if (json_is_string(json_object_get(rep, "reason")))
		f->kv(b, "reason", str(rep, "reason"));
	if (f->verdict)
		f->kv(b, "verdict", str(rep, "verdict"));
}

static void objectives(struct drr_buf *b, json_t *rep, const struct fmt *f)
{
	struct objrow rows[64];
	int nr = objective_rows(rep, rows, 64);
	f->heading(b, "Objectives");
	if (!nr)
		f->none(b, "The runbook declares no objectives.");
	else
		f->table(b, "objectives", OBJ_COLS);
	for (int i = 0; i < nr; i++)
		f->objective(b, rows[i].name, rows[i].o);
	if (nr)
		drr_buf_adds(b, f->table_close);
}

static void steps(struct drr_buf *b, json_t *rep, const struct fmt *f)
{
	struct step_row r = { 0 };
	drr_rfc3339_parse(str(rep, "started"), &r.t0);
	f->heading(b, "Steps");
	f->table(b, "steps", f->step_cols);
	drr_buf_adds(b, f->steps_open);
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(rep, "steps"), i, v) {
		json_t *at = json_object_get(v, "attempts"), *logs = json_object_get(v, "logs");
		r.attempts = json_array_size(at);
		r.name = str(v, "name");
		r.phase = str(v, "phase");
		r.result = str(v, "result");
		r.start = r.attempts ? str(json_array_get(at, 0), "start") : NULL;
		r.end = r.attempts ? str(json_array_get(at, r.attempts - 1), "end") : NULL;
		r.duration = json_object_get(v, "duration_s");
		size_t nl = json_array_size(logs);
		r.note = json_is_string(json_object_get(v, "error")) ? str(v, "error")
			 : nl ? json_string_value(json_array_get(logs, nl - 1))
			      : NULL;
		f->step(b, &r);
	}
	drr_buf_adds(b, f->steps_close);
}

/* Approvals and rollbacks: "None.", or a list (a table in HTML). */
static void events(struct drr_buf *b, json_t *list, const char *title, const char *id,
		   const char *const *cols, void (*row)(struct drr_buf *, json_t *),
		   const struct fmt *f)
{
	size_t i;
	json_t *v;
	f->heading(b, title);
	if (!json_array_size(list))
		f->none(b, "None.");
	else if (f->list)
		f->list(b, id, cols);
	json_array_foreach(list, i, v)
		row(b, v);
	if (json_array_size(list))
		drr_buf_adds(b, f->table_close);
}

static void render(struct drr_buf *b, json_t *rep, const struct fmt *f)
{
	static const char *const approval_cols[] = {
		"step", "question", "answer", "by", "at", NULL
	};
	static const char *const rollback_cols[] = {
		"step", "result", "start", "end", "error", NULL
	};
	json_t *a = json_object_get(rep, "audit");
	if (f->begin)
		f->begin(b, rep);
	char *al = audit_line(a);
	f->banner(b, json_is_true(json_object_get(a, "ok")), al);
	free(al);
	drr_buf_addf(b, "%s%s report: ", f->title_open,
		     json_is_true(json_object_get(rep, "drill")) ? "Drill" : "Run");
	f->esc(b, str(json_object_get(rep, "runbook"), "name"));
	drr_buf_adds(b, f->title_close);
	drr_buf_adds(b, f->facts_open);
	facts(b, rep, f);
	drr_buf_adds(b, f->facts_close);
	objectives(b, rep, f);
	f->timeline(b, rep);
	steps(b, rep, f);
	events(b, json_object_get(rep, "approvals"), "Approvals", "approvals", approval_cols,
	       f->approval, f);
	events(b, json_object_get(rep, "rollbacks"), "Rollbacks", "rollbacks", rollback_cols,
	       f->rollback, f);
	json_t *td = json_object_get(rep, "teardown"), *v;
	size_t i;
	f->heading(b, "Teardown");
	f->teardown_intro(b, td);
	json_array_foreach(json_object_get(td, "steps"), i, v)
		f->teardown(b, v);
	if (json_array_size(json_object_get(td, "steps")))
		drr_buf_adds(b, f->table_close);
	drr_buf_adds(b, f->end);
}

void drr_report_md(struct drr_buf *b, json_t *rep)
{
	render(b, rep, &MD);
}

void drr_report_html(struct drr_buf *b, json_t *rep)
{
	render(b, rep, &HTML);
}
