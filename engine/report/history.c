/*
 * history.c - `drrun report --history [RUNBOOK]`: the past runs and drills
 * of a runbook, oldest first, each reduced from its own report
 * (evidence.c): RTO and RPO achieved against their objectives, the restore
 * phase's duration, whether the verify-phase checks (data integrity, the
 * application) passed, whether its journal verifies; and the success rate.
 * As a Markdown table, JSON, or HTML with an inline-SVG trend chart.
 */
#include "report/report.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static json_t *row_of(json_t *rep)
{
	json_t *row = json_object();
	json_object_set(row, "run", json_object_get(rep, "run"));
	json_object_set(row, "runbook", json_object_get(json_object_get(rep, "runbook"), "name"));
	json_object_set(row, "started", json_object_get(rep, "started"));
	json_object_set(row, "drill", json_object_get(rep, "drill"));
	json_object_set(row, "env", json_object_get(rep, "env"));
	json_object_set(row, "result", json_object_get(rep, "result"));
	json_object_set(row, "exit", json_object_get(rep, "exit"));
	json_object_set(row, "verdict", json_object_get(rep, "verdict"));
	json_t *ob = json_object_get(rep, "objectives");
	json_object_set(row, "rto", json_object_get(ob, "rto"));
	json_object_set(row, "rpo", json_object_get(ob, "rpo"));
	json_t *restore = json_null();
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(rep, "phases"), i, v)
		if (!strcmp(str(v, "phase"), "restore"))
			restore = json_object_get(v, "duration_s");
	json_object_set(row, "restore_s", restore);
	json_t *checks = json_array();
	int passed = 1, any = 0;
	json_array_foreach(json_object_get(rep, "steps"), i, v) {
		if (strcmp(str(v, "phase"), "verify"))
			continue;
		json_t *c = json_object();
		json_object_set(c, "name", json_object_get(v, "name"));
		json_object_set(c, "result", json_object_get(v, "result"));
		json_array_append_new(checks, c);
		any = 1;
		passed &= !strcmp(str(v, "result"), "completed");
	}
	json_object_set_new(row, "checks", checks);
	json_object_set_new(row, "checks_passed", any ? json_boolean(passed) : json_null());
	json_object_set(row, "journal_ok", json_object_get(json_object_get(rep, "audit"), "ok"));
	return row;
}

json_t *drr_history_build(const char *state_dir, const char *runbook, char *err, size_t errlen)
{
	char *runs = drr_xasprintf("%s/runs", state_dir);
	DIR *d = opendir(runs);
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		names = drr_xrealloc(names, (n + 1) * sizeof *names);
		names[n++] = drr_xstrdup(e->d_name);
	}
	if (d)
		closedir(d);
	/* run ids begin with their start time: by name is oldest first */
	if (n > 1)
		qsort(names, n, sizeof *names, by_name);
	json_t *rows = json_array();
	int completed = 0;
	for (size_t i = 0; i < n; i++) {
		char *dir = drr_xasprintf("%s/%s", runs, names[i]), lerr[512];
		json_t *rep = drr_report_build(dir, state_dir, NULL, 0, lerr, sizeof lerr);
		free(dir);
		free(names[i]);
		if (!rep)
			continue; /* no journal yet: a run that never started */
		if (!runbook ||
		    !strcmp(str(json_object_get(rep, "runbook"), "name"), runbook)) {
			completed += !strcmp(str(rep, "result"), "completed");
			json_array_append_new(rows, row_of(rep));
		}
		json_decref(rep);
	}
	free(names);
	free(runs);
	size_t total = json_array_size(rows);
	if (!total) {
		snprintf(err, errlen, "no runs%s%s in %s", runbook ? " of runbook " : "",
			 runbook ? runbook : "", state_dir);
		json_decref(rows);
		return NULL;
	}
	json_t *h = json_object();
	json_object_set_new(h, "history", json_integer(1));
	json_object_set_new(h, "runbook", runbook ? json_string(runbook) : json_null());
	json_object_set_new(h, "runs_total", json_integer((json_int_t)total));
	json_object_set_new(h, "completed", json_integer(completed));
	json_object_set_new(h, "success_rate", json_real(round(1000.0 * completed / total) / 1000));
	json_object_set_new(h, "runs", rows);
	return h;
}

static const char *secs(json_t *v, char *buf, size_t n)
{
	return json_is_number(v) ? drr_duration_fmt(json_number_value(v), buf, n) : "-";
}

static const char *met(json_t *o)
{
	json_t *m = json_object_get(o, "met");
	return json_is_true(m) ? "met" : json_is_false(m) ? "MISSED" : "-";
}

static const char *checks(json_t *row)
{
	json_t *c = json_object_get(row, "checks_passed");
	return json_is_true(c) ? "passed" : json_is_false(c) ? "FAILED" : "-";
}

void drr_history_md(struct drr_buf *b, json_t *h)
{
	char d1[32], d2[32], d3[32];
	drr_buf_addf(b, "# History%s%s\n\n%lld runs, %lld completed: success rate %.0f%%\n\n",
		     json_is_string(json_object_get(h, "runbook")) ? " of " : "",
		     str(h, "runbook"), (long long)json_integer_value(json_object_get(h, "runs_total")),
		     (long long)json_integer_value(json_object_get(h, "completed")),
		     100 * json_number_value(json_object_get(h, "success_rate")));
	drr_buf_adds(b, "| run | kind | result | RTO achieved / target | RPO achieved / target | "
			"restore | checks | journal |\n|---|---|---|---|---|---|---|---|\n");
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(h, "runs"), i, r) {
		json_t *rto = json_object_get(r, "rto"), *rpo = json_object_get(r, "rpo");
		drr_buf_addf(b, "| %s | %s | %s | %s / %s %s | ", str(r, "run"),
			     json_is_true(json_object_get(r, "drill")) ? "drill" : "run",
			     str(r, "result"), secs(json_object_get(rto, "achieved_s"), d1, sizeof d1),
			     secs(json_object_get(rto, "target_s"), d2, sizeof d2), met(rto));
		drr_buf_addf(b, "%s / %s %s | %s | %s | %s |\n",
			     secs(json_object_get(rpo, "achieved_s"), d1, sizeof d1),
			     secs(json_object_get(rpo, "target_s"), d2, sizeof d2), met(rpo),
			     secs(json_object_get(r, "restore_s"), d3, sizeof d3), checks(r),
			     json_is_true(json_object_get(r, "journal_ok")) ? "intact" : "BROKEN");
	}
}

/* One series of the trend chart: a polyline and a dot per measured run. */
static void series(struct drr_buf *b, json_t *runs, const char *key, const char *cls,
		   double ymax, double w, double hgt)
{
	size_t n = json_array_size(runs), i;
	json_t *r;
	drr_buf_addf(b, "<polyline class=\"%s\" fill=\"none\" points=\"", cls);
	json_array_foreach(runs, i, r) {
		json_t *a = json_object_get(json_object_get(r, key), "achieved_s");
		if (!json_is_number(a))
			continue;
		double x = 50 + (n > 1 ? (w - 60) * (double)i / (double)(n - 1) : (w - 60) / 2);
		double y = hgt - 20 - (hgt - 40) * json_number_value(a) / ymax;
		drr_buf_addf(b, "%.1f,%.1f ", x, y);
	}
	drr_buf_adds(b, "\"/>");
	json_array_foreach(runs, i, r) {
		json_t *a = json_object_get(json_object_get(r, key), "achieved_s");
		if (!json_is_number(a))
			continue;
		double x = 50 + (n > 1 ? (w - 60) * (double)i / (double)(n - 1) : (w - 60) / 2);
		double y = hgt - 20 - (hgt - 40) * json_number_value(a) / ymax;
		drr_buf_addf(b, "<circle class=\"pt %s\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\"><title>",
			     cls, x, y);
		drr_buf_adds(b, str(r, "run"));
		drr_buf_addf(b, ": %s %.3fs</title></circle>", key, json_number_value(a));
	}
}

void drr_history_html(struct drr_buf *b, json_t *h)
{
	json_t *runs = json_object_get(h, "runs");
	drr_buf_adds(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			"<title>drrun history</title><style>"
			"body{font:14px/1.4 system-ui,sans-serif;margin:2em}"
			"table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
			".rto{stroke:#1565c0;fill:#1565c0}.rpo{stroke:#ef6c00;fill:#ef6c00}"
			"polyline{stroke-width:2;fill:none}.target{stroke-dasharray:4 3}"
			"svg text{font-size:11px}.missed{color:#c62828;font-weight:700}"
			"@media print{*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}"
			"</style></head><body>\n");
	drr_buf_adds(b, "<h1>History");
	if (json_is_string(json_object_get(h, "runbook"))) {
		drr_buf_adds(b, " of ");
		for (const char *p = str(h, "runbook"); *p; p++)
			if (*p == '<' || *p == '&')
				drr_buf_adds(b, *p == '<' ? "&lt;" : "&amp;");
			else
				drr_buf_add(b, p, 1);
	}
	drr_buf_addf(b, "</h1><p>%lld runs, %lld completed: success rate %.0f%%</p>\n",
		     (long long)json_integer_value(json_object_get(h, "runs_total")),
		     (long long)json_integer_value(json_object_get(h, "completed")),
		     100 * json_number_value(json_object_get(h, "success_rate")));
	double ymax = 1e-3;
	size_t i;
	json_t *r;
	json_array_foreach(runs, i, r) {
		const char *ks[] = { "rto", "rpo" };
		for (int k = 0; k < 2; k++) {
			json_t *o = json_object_get(r, ks[k]);
			double a = json_number_value(json_object_get(o, "achieved_s"));
			double t = json_number_value(json_object_get(o, "target_s"));
			ymax = a > ymax ? a : ymax;
			ymax = t > ymax ? t : ymax;
		}
	}
	ymax *= 1.1;
	double w = 800, hgt = 260;
	char d[32];
	drr_buf_addf(b,
		     "<svg id=\"trend\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f "
		     "%.0f\" width=\"100%%\"><text x=\"4\" y=\"14\">%s</text><text x=\"4\" "
		     "y=\"%.0f\">0</text><line x1=\"48\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" "
		     "stroke=\"#999\"/>",
		     w, hgt, drr_duration_fmt(ymax, d, sizeof d), hgt - 20, w - 10, hgt - 20,
		     hgt - 20);
	json_t *last = json_array_get(runs, json_array_size(runs) - 1);
	const char *ks[] = { "rto", "rpo" };
	for (int k = 0; k < 2; k++) {
		json_t *t = json_object_get(json_object_get(last, ks[k]), "target_s");
		if (!json_is_number(t))
			continue;
		double y = hgt - 20 - (hgt - 40) * json_number_value(t) / ymax;
		drr_buf_addf(b,
			     "<line class=\"target %s\" x1=\"48\" x2=\"%.0f\" y1=\"%.1f\" "
			     "y2=\"%.1f\"/><text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%s "
			     "objective</text>",
			     ks[k], w - 10, y, y, w - 10, y - 3, k ? "RPO" : "RTO");
	}
	series(b, runs, "rto", "rto", ymax, w, hgt);
	series(b, runs, "rpo", "rpo", ymax, w, hgt);
	drr_buf_adds(b, "</svg>\n<p><span class=\"rto\">&#9632;</span> RTO achieved "
			"<span class=\"rpo\">&#9632;</span> RPO achieved (dashed: objectives)</p>\n"
			"<table id=\"runs\"><tr><th>run</th><th>kind</th><th>result</th>"
			"<th>RTO</th><th>RPO</th><th>restore</th><th>checks</th><th>journal</th>"
			"</tr>\n");
	char d1[32], d2[32];
	json_array_foreach(runs, i, r) {
		json_t *rto = json_object_get(r, "rto"), *rpo = json_object_get(r, "rpo");
		drr_buf_addf(b, "<tr><td>%s</td><td>%s</td><td>%s</td>", str(r, "run"),
			     json_is_true(json_object_get(r, "drill")) ? "drill" : "run",
			     str(r, "result"));
		drr_buf_addf(b, "<td class=\"%s\">%s / %s</td>",
			     json_is_false(json_object_get(rto, "met")) ? "missed" : "",
			     secs(json_object_get(rto, "achieved_s"), d1, sizeof d1),
			     secs(json_object_get(rto, "target_s"), d2, sizeof d2));
		drr_buf_addf(b, "<td class=\"%s\">%s / %s</td>",
			     json_is_false(json_object_get(rpo, "met")) ? "missed" : "",
			     secs(json_object_get(rpo, "achieved_s"), d1, sizeof d1),
			     secs(json_object_get(rpo, "target_s"), d2, sizeof d2));
		drr_buf_addf(b, "<td>%s</td><td>%s</td><td>%s</td></tr>\n",
			     secs(json_object_get(r, "restore_s"), d1, sizeof d1), checks(r),
			     json_is_true(json_object_get(r, "journal_ok")) ? "intact" : "BROKEN");
	}
	drr_buf_adds(b, "</table>\n</body></html>\n");
}
