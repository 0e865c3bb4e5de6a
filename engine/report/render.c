/*
 * render.c - the report object (evidence.c) as Markdown or as one
 * self-contained HTML page: no external assets, an inline-SVG Gantt
 * timeline with one bar per step attempt, grouped by phase, and print
 * styles.  The audit result comes first; in HTML it is red when the journal
 * does not verify.  Everything drrun did not write itself is escaped.
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

/* ---- Markdown ------------------------------------------------------------ */

static void md_kv(struct drr_buf *b, const char *k, const char *v)
{
	drr_buf_addf(b, "| %s | ", k);
	esc_md(b, v);
	drr_buf_adds(b, " |\n");
}

void drr_report_md(struct drr_buf *b, json_t *rep)
{
	char d1[32], d2[32];
	json_t *a = json_object_get(rep, "audit");
	char *al = audit_line(a);
	drr_buf_adds(b, json_is_true(json_object_get(a, "ok")) ? "> Audit: " : "> **Audit: ");
	esc_md(b, al);
	drr_buf_adds(b, json_is_true(json_object_get(a, "ok")) ? "\n\n" : "**\n\n");
	free(al);
	json_t *rb = json_object_get(rep, "runbook");
	drr_buf_addf(b, "# %s report: ",
		     json_is_true(json_object_get(rep, "drill")) ? "Drill" : "Run");
	esc_md(b, str(rb, "name"));
	drr_buf_adds(b, "\n\n| | |\n|---|---|\n");
	md_kv(b, "run", str(rep, "run"));
	md_kv(b, "runbook sha256", str(rb, "sha256"));
	md_kv(b, "file", str(rb, "path"));
	md_kv(b, "kind", json_is_true(json_object_get(rep, "drill")) ? "drill" : "real run");
	md_kv(b, "env", json_is_string(json_object_get(rep, "env")) ? str(rep, "env") : "-");
	json_t *who = json_object_get(rep, "who");
	char *w = drr_xasprintf("%s on %s (drrun %s)",
				json_is_string(json_object_get(who, "user")) ? str(who, "user")
									      : "?",
				str(who, "host"), str(who, "version"));
	md_kv(b, "who", w);
	free(w);
	char *pj = json_dumps(json_object_get(rep, "params"), JSON_COMPACT | JSON_ENCODE_ANY);
	md_kv(b, "params", pj ? pj : "{}");
	free(pj);
	if (json_is_object(json_object_get(rep, "trigger"))) {
		char *tj = json_dumps(json_object_get(rep, "trigger"), JSON_COMPACT);
		md_kv(b, "trigger", tj ? tj : "");
		free(tj);
	}
	md_kv(b, "started", str(rep, "started"));
	md_kv(b, "ended", json_is_string(json_object_get(rep, "ended")) ? str(rep, "ended") : "-");
	char *res = json_is_integer(json_object_get(rep, "exit"))
			    ? drr_xasprintf("%s (exit %lld)", str(rep, "result"),
					    (long long)json_integer_value(json_object_get(rep, "exit")))
			    : drr_xstrdup(str(rep, "result"));
	md_kv(b, "result", res);
	free(res);
	if (json_is_string(json_object_get(rep, "reason")))
		md_kv(b, "reason", str(rep, "reason"));
	md_kv(b, "verdict", str(rep, "verdict"));

	struct objrow rows[64];
	int nr = objective_rows(rep, rows, 64);
	drr_buf_adds(b, "\n## Objectives\n\n");
	if (!nr)
		drr_buf_adds(b, "The runbook declares no objectives.\n");
	else
		drr_buf_adds(b, "| objective | target | achieved | verdict |\n|---|---|---|---|\n");
	for (int i = 0; i < nr; i++) {
		drr_buf_adds(b, "| ");
		esc_md(b, rows[i].name);
		drr_buf_addf(b, " | %s | %s | %s |\n",
			     secs(json_object_get(rows[i].o, "target_s"), d1, sizeof d1),
			     secs(json_object_get(rows[i].o, "achieved_s"), d2, sizeof d2),
			     met(json_object_get(rows[i].o, "met")));
	}
	drr_buf_adds(b, "\n## Phases\n\n| phase | start | end | duration | budget |\n"
			"|---|---|---|---|---|\n");
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(rep, "phases"), i, v) {
		drr_buf_adds(b, "| ");
		esc_md(b, str(v, "phase"));
		drr_buf_addf(b, " | %s | %s | %s | %s |\n", str(v, "start"), str(v, "end"),
			     secs(json_object_get(v, "duration_s"), d1, sizeof d1),
			     secs(json_object_get(v, "budget_s"), d2, sizeof d2));
	}
	drr_buf_adds(b, "\n## Steps\n\n| step | phase | result | attempts | start | end | "
			"duration | last log / error |\n|---|---|---|---|---|---|---|---|\n");
	json_array_foreach(json_object_get(rep, "steps"), i, v) {
		json_t *at = json_object_get(v, "attempts");
		size_t na = json_array_size(at);
		drr_buf_adds(b, "| ");
		esc_md(b, str(v, "name"));
		drr_buf_adds(b, " | ");
		esc_md(b, str(v, "phase"));
		drr_buf_addf(b, " | %s | %zu | %s | %s | %s | ", str(v, "result"), na,
			     na ? str(json_array_get(at, 0), "start") : "-",
			     na ? str(json_array_get(at, na - 1), "end") : "-",
			     secs(json_object_get(v, "duration_s"), d1, sizeof d1));
		json_t *logs = json_object_get(v, "logs");
		if (json_is_string(json_object_get(v, "error")))
			esc_md(b, str(v, "error"));
		else if (json_array_size(logs))
			esc_md(b, json_string_value(json_array_get(logs, json_array_size(logs) - 1)));
		drr_buf_adds(b, " |\n");
	}
	drr_buf_adds(b, "\n## Approvals\n\n");
	if (!json_array_size(json_object_get(rep, "approvals")))
		drr_buf_adds(b, "None.\n");
	json_array_foreach(json_object_get(rep, "approvals"), i, v) {
		drr_buf_adds(b, "- ");
		esc_md(b, str(v, "step"));
		drr_buf_addf(b, ": %s by %s at %s: ", str(v, "status"),
			     json_is_string(json_object_get(v, "by")) ? str(v, "by") : "nobody",
			     str(v, "at"));
		esc_md(b, str(v, "question"));
		drr_buf_adds(b, "\n");
	}
	drr_buf_adds(b, "\n## Rollbacks\n\n");
	if (!json_array_size(json_object_get(rep, "rollbacks")))
		drr_buf_adds(b, "None.\n");
	json_array_foreach(json_object_get(rep, "rollbacks"), i, v) {
		drr_buf_adds(b, "- ");
		esc_md(b, str(v, "step"));
		drr_buf_addf(b, ": %s (%s to %s)", str(v, "result"), str(v, "start"), str(v, "end"));
		if (json_is_string(json_object_get(v, "error"))) {
			drr_buf_adds(b, ": ");
			esc_md(b, str(v, "error"));
		}
		drr_buf_adds(b, "\n");
	}
	json_t *td = json_object_get(rep, "teardown");
	drr_buf_addf(b, "\n## Teardown\n\n%s\n",
		     json_is_true(json_object_get(td, "ran")) ? "" : "No teardown step ran.");
	json_array_foreach(json_object_get(td, "steps"), i, v) {
		drr_buf_adds(b, "- ");
		esc_md(b, str(v, "name"));
		drr_buf_addf(b, ": %s", str(v, "result"));
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
}

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

static void html_kv(struct drr_buf *b, const char *k, const char *v)
{
	drr_buf_addf(b, "<tr><th>%s</th><td>", k);
	esc_html(b, v);
	drr_buf_adds(b, "</td></tr>");
}

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
			     LABEL + PLOT * q / 4, q == 0 ? "start" : q == 4 ? "end" : "middle",
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
				drr_buf_addf(b, "<rect class=\"bar %s\" x=\"%.1f\" y=\"%zu\" "
						"width=\"%.1f\" data-step=\"",
					     bar_class(str(one, "result")), x, y + 2, w);
				esc_html(b, str(v, "name"));
				drr_buf_adds(b, "\"");
				if (n) /* a first attempt is the default: a big page stays small */
					drr_buf_addf(b, " data-attempt=\"%zu\"", n + 1);
				if (detail) {
					drr_buf_adds(b, "><title>");
					esc_html(b, str(v, "name"));
					drr_buf_addf(b, " #%zu %s, %s</title></rect>", n + 1,
						     str(one, "result"),
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

void drr_report_html(struct drr_buf *b, json_t *rep)
{
	char d1[32], d2[32];
	json_t *rb = json_object_get(rep, "runbook"), *a = json_object_get(rep, "audit");
	int drill = json_is_true(json_object_get(rep, "drill"));
	drr_buf_adds(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			"<title>drrun report ");
	esc_html(b, str(rep, "run"));
	drr_buf_addf(b, "</title><style>%s</style></head><body>\n", CSS);
	char *al = audit_line(a);
	drr_buf_addf(b, "<div id=\"audit\" class=\"audit %s\">Audit: ",
		     json_is_true(json_object_get(a, "ok")) ? "ok" : "bad");
	esc_html(b, al);
	drr_buf_adds(b, "</div>\n");
	free(al);
	drr_buf_addf(b, "<h1>%s report: ", drill ? "Drill" : "Run");
	esc_html(b, str(rb, "name"));
	drr_buf_adds(b, "</h1>\n<table class=\"meta\">");
	html_kv(b, "run", str(rep, "run"));
	html_kv(b, "runbook sha256", str(rb, "sha256"));
	html_kv(b, "file", str(rb, "path"));
	html_kv(b, "kind", drill ? "drill" : "real run");
	html_kv(b, "env", json_is_string(json_object_get(rep, "env")) ? str(rep, "env") : "-");
	json_t *who = json_object_get(rep, "who");
	char *w = drr_xasprintf("%s on %s (drrun %s)",
				json_is_string(json_object_get(who, "user")) ? str(who, "user")
									      : "?",
				str(who, "host"), str(who, "version"));
	html_kv(b, "who", w);
	free(w);
	drr_buf_adds(b, "<tr><th>params</th><td>");
	html_list_json(b, json_object_get(rep, "params"));
	drr_buf_adds(b, "</td></tr>");
	if (json_is_object(json_object_get(rep, "trigger"))) {
		drr_buf_adds(b, "<tr><th>trigger</th><td>");
		html_list_json(b, json_object_get(rep, "trigger"));
		drr_buf_adds(b, "</td></tr>");
	}
	html_kv(b, "started", str(rep, "started"));
	html_kv(b, "ended", json_is_string(json_object_get(rep, "ended")) ? str(rep, "ended") : "-");
	char *res = json_is_integer(json_object_get(rep, "exit"))
			    ? drr_xasprintf("%s (exit %lld)", str(rep, "result"),
					    (long long)json_integer_value(json_object_get(rep, "exit")))
			    : drr_xstrdup(str(rep, "result"));
	html_kv(b, "result", res);
	free(res);
	if (json_is_string(json_object_get(rep, "reason")))
		html_kv(b, "reason", str(rep, "reason"));
	drr_buf_adds(b, "</table>\n<h2>Objectives</h2>\n");
	struct objrow rows[64];
	int nr = objective_rows(rep, rows, 64);
	if (!nr)
		drr_buf_adds(b, "<p>The runbook declares no objectives.</p>\n");
	else
		drr_buf_adds(b, "<table id=\"objectives\"><tr><th>objective</th><th>target</th>"
				"<th>achieved</th><th>verdict</th></tr>");
	for (int i = 0; i < nr; i++) {
		json_t *m = json_object_get(rows[i].o, "met");
		drr_buf_adds(b, "<tr><td>");
		esc_html(b, rows[i].name);
		drr_buf_addf(b, "</td><td>%s</td><td>%s</td><td class=\"%s\">%s</td></tr>",
			     secs(json_object_get(rows[i].o, "target_s"), d1, sizeof d1),
			     secs(json_object_get(rows[i].o, "achieved_s"), d2, sizeof d2),
			     json_is_true(m) ? "met" : json_is_false(m) ? "missed" : "", met(m));
	}
	if (nr)
		drr_buf_adds(b, "</table>\n");
	drr_buf_adds(b, "<h2>Timeline</h2>\n");
	html_gantt(b, rep);
	int64_t t0 = 0;
	drr_rfc3339_parse(str(rep, "started"), &t0);
	drr_buf_adds(b, "\n<h2>Steps</h2>\n<table id=\"steps\"><tr><th>step</th><th>phase</th>"
			"<th>result</th><th>attempts</th><th>started</th>"
			"<th>duration</th><th>last log / error</th></tr>\n");
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(rep, "steps"), i, v) {
		json_t *at = json_object_get(v, "attempts");
		size_t na = json_array_size(at);
		char o1[48];
		drr_buf_adds(b, "<tr><td>");
		esc_html(b, str(v, "name"));
		drr_buf_adds(b, "<td>");
		esc_html(b, str(v, "phase"));
		drr_buf_addf(b, "<td>%s<td>%zu<td>%s<td>%s<td>", str(v, "result"), na,
			     na ? offset(str(json_array_get(at, 0), "start"), t0, o1, sizeof o1)
				: "-",
			     secs(json_object_get(v, "duration_s"), d1, sizeof d1));
		json_t *logs = json_object_get(v, "logs");
		if (json_is_string(json_object_get(v, "error")))
			esc_html(b, str(v, "error"));
		else if (json_array_size(logs))
			esc_html(b,
				 json_string_value(json_array_get(logs, json_array_size(logs) - 1)));
		drr_buf_adds(b, "\n"); /* HTML closes td and tr itself */
	}
	drr_buf_adds(b, "</table>\n<p><small>Times are from the run's start.</small></p>\n"
			"<h2>Approvals</h2>\n");
	if (!json_array_size(json_object_get(rep, "approvals")))
		drr_buf_adds(b, "<p>None.</p>\n");
	else
		drr_buf_adds(b, "<table id=\"approvals\"><tr><th>step</th><th>question</th>"
				"<th>answer</th><th>by</th><th>at</th></tr>");
	json_array_foreach(json_object_get(rep, "approvals"), i, v) {
		drr_buf_adds(b, "<tr><td>");
		esc_html(b, str(v, "step"));
		drr_buf_adds(b, "</td><td>");
		esc_html(b, str(v, "question"));
		drr_buf_addf(b, "</td><td>%s</td><td>%s</td><td>%s</td></tr>", str(v, "status"),
			     json_is_string(json_object_get(v, "by")) ? str(v, "by") : "-",
			     str(v, "at"));
	}
	if (json_array_size(json_object_get(rep, "approvals")))
		drr_buf_adds(b, "</table>\n");
	drr_buf_adds(b, "<h2>Rollbacks</h2>\n");
	if (!json_array_size(json_object_get(rep, "rollbacks")))
		drr_buf_adds(b, "<p>None.</p>\n");
	else
		drr_buf_adds(b, "<table id=\"rollbacks\"><tr><th>step</th><th>result</th>"
				"<th>start</th><th>end</th><th>error</th></tr>");
	json_array_foreach(json_object_get(rep, "rollbacks"), i, v) {
		drr_buf_adds(b, "<tr><td>");
		esc_html(b, str(v, "step"));
		drr_buf_addf(b, "</td><td>%s</td><td>%s</td><td>%s</td><td>", str(v, "result"),
			     str(v, "start"), str(v, "end"));
		esc_html(b, str(v, "error"));
		drr_buf_adds(b, "</td></tr>");
	}
	if (json_array_size(json_object_get(rep, "rollbacks")))
		drr_buf_adds(b, "</table>\n");
	json_t *td = json_object_get(rep, "teardown");
	drr_buf_adds(b, "<h2>Teardown</h2>\n");
	if (!json_array_size(json_object_get(td, "steps")))
		drr_buf_adds(b, "<p>No teardown steps.</p>\n");
	else
		drr_buf_adds(b, "<table id=\"teardown\"><tr><th>step</th><th>result</th>"
				"<th>removed</th><th>could not remove</th></tr>");
	json_array_foreach(json_object_get(td, "steps"), i, v) {
		drr_buf_adds(b, "<tr><td>");
		esc_html(b, str(v, "name"));
		drr_buf_addf(b, "</td><td>%s", str(v, "result"));
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
	if (json_array_size(json_object_get(td, "steps")))
		drr_buf_adds(b, "</table>\n");
	drr_buf_adds(b, "<p><small>Made by drrun from the run's journal alone.</small></p>\n"
			"</body></html>\n");
}
