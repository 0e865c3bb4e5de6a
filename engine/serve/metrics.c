/*
 * metrics.c - serve's counters by family and label set, the run duration
 * histogram, /metrics in the Prometheus text format, and the log lines
 * (logfmt, or one JSON object a line).
 */
#include "serve/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double buckets[SRV_NBUCKETS] = { 1, 5, 15, 60, 300, 900, 1800, 3600, 7200 };
#define NBUCKETS SRV_NBUCKETS

void srv_metric(struct srv *s, const char *family, const char *labels, double by)
{
	for (struct ctr *c = s->ctrs; c; c = c->next)
		if (!strcmp(c->family, family) && !strcmp(c->labels, labels)) {
			c->v += by;
			return;
		}
	struct ctr *c = drr_xcalloc(1, sizeof *c), **pp = &s->ctrs;
	c->family = drr_xstrdup(family);
	c->labels = drr_xstrdup(labels);
	c->v = by;
	while (*pp) /* in order of first use, so /metrics groups families */
		pp = &(*pp)->next;
	*pp = c;
}

void srv_metric_set(struct srv *s, const char *family, const char *labels, double v)
{
	srv_metric(s, family, labels, 0);
	for (struct ctr *c = s->ctrs; c; c = c->next)
		if (!strcmp(c->family, family) && !strcmp(c->labels, labels))
			c->v = v;
}

char *srv_plabel(const char *name, const char *v)
{
	struct drr_buf b = { 0 };
	drr_buf_addf(&b, "%s=\"", name);
	for (const char *p = v; *p; p++) {
		if (*p == '\\' || *p == '"')
			drr_buf_addf(&b, "\\%c", *p);
		else if (*p == '\n')
			drr_buf_adds(&b, "\\n");
		else
			drr_buf_add(&b, p, 1);
	}
	drr_buf_add(&b, "\"", 2);
	return b.data;
}

void srv_metric1(struct srv *s, const char *family, const char *name, const char *v)
{
	char *l = srv_plabel(name, v);
	srv_metric(s, family, l, 1);
	free(l);
}

static const struct {
	const char *family, *type, *help;
} families[] = {
	{ "drrun_webhooks_received_total", "counter", "Webhook requests received, by source." },
	{ "drrun_webhooks_rejected_total", "counter",
	  "Webhook requests refused, by source and reason." },
	{ "drrun_webhooks_duplicate_total", "counter",
	  "Webhook retries already accepted (PagerDuty's X-Webhook-Id), by source." },
	{ "drrun_alerts_resolved_total", "counter", "Resolved alerts recorded, by source." },
	{ "drrun_activations_total", "counter", "Runs started, by rule or schedule." },
	{ "drrun_dedupe_drops_total", "counter",
	  "Alerts not activated because their dedupe key's run is going, by rule." },
	{ "drrun_cooldown_drops_total", "counter",
	  "Alerts not activated because their key is cooling down, by rule." },
	{ "drrun_schedule_skips_total", "counter",
	  "Schedule firings skipped: the previous run still going, by schedule." },
	{ "drrun_schedule_missed_total", "counter",
	  "Schedule firings missed while serve was down (reported, not replayed)." },
	{ "drrun_runs_total", "counter", "Runs ended, by result." },
	{ "drrun_runs_running", "gauge", "Runs going now." },
	{ "drrun_last_run_rto_seconds", "gauge",
	  "Duration of the last run of each runbook (the RTO achieved), seconds." },
	{ "drrun_accepting", "gauge", "1 while serve accepts webhooks, 0 once it stops." },
	{ "drrun_lock_up", "gauge", "With --lock: 1 while serve holds its etcd lease." },
	{ "drrun_lock_refusals_total", "counter",
	  "Activations refused because etcd did not answer (fail closed), by rule." },
	{ "drrun_approvals_total", "counter",
	  "Approval links answered at /approve/<token>, by result (recorded, forged, expired, "
	  "duplicate, closed, ...)." },
};

void srv_render_metrics(struct srv *s, struct drr_buf *b)
{
	srv_metric_set(s, "drrun_runs_running", "", s->nrunning);
	srv_metric_set(s, "drrun_accepting", "", !s->stopping);
	for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
		drr_buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", families[f].family,
			     families[f].help, families[f].family, families[f].type);
		for (struct ctr *c = s->ctrs; c; c = c->next)
			if (!strcmp(c->family, families[f].family)) {
				if (*c->labels)
					drr_buf_addf(b, "%s{%s} %.17g\n", c->family, c->labels,
						     c->v);
				else
					drr_buf_addf(b, "%s %.17g\n", c->family, c->v);
			}
	}
	drr_buf_adds(b, "# HELP drrun_run_duration_seconds Duration of the runs serve started.\n"
			"# TYPE drrun_run_duration_seconds histogram\n");
	uint64_t cum = 0;
	for (size_t i = 0; i < NBUCKETS; i++) {
		cum += s->hist[i];
		drr_buf_addf(b, "drrun_run_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[i],
			     (unsigned long long)cum);
	}
	cum += s->hist[NBUCKETS];
	drr_buf_addf(b,
		     "drrun_run_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
		     "drrun_run_duration_seconds_sum %.6f\n"
		     "drrun_run_duration_seconds_count %llu\n",
		     (unsigned long long)cum, s->hist_sum, (unsigned long long)s->hist_n);
}

void srv_metric_run(struct srv *s, const char *runbook, double d)
{
	size_t i = 0;
	while (i < NBUCKETS && d > buckets[i])
		i++;
	s->hist[i]++;
	s->hist_sum += d;
	s->hist_n++;
	char *l = srv_plabel("runbook", runbook);
	srv_metric_set(s, "drrun_last_run_rto_seconds", l, d);
	free(l);
}

/* ---- logs: logfmt, or one JSON object a line ----------------------------------- */

/* A line to stderr: buffered while the loop runs (written before it next
 * waits: one write for all of an iteration's lines), else at once. */
static void emit(struct srv *s, const char *line, size_t n)
{
	drr_buf_add(&s->log, line, n);
	drr_buf_add(&s->log, "\n", 1);
	if (!s->log_on || s->log.len > 65536)
		srv_log_flush(s);
}

void srv_log(struct srv *s, const char *level, const char *msg, ...)
{
	char ts[40];
	drr_rfc3339(drr_now_us(), ts, sizeof ts);
	va_list ap;
	va_start(ap, msg);
	if (s->o->log_json) {
		json_t *o = json_object();
		json_object_set_new(o, "ts", json_string(ts));
		json_object_set_new(o, "level", json_string(level));
		json_object_set_new(o, "msg", json_string(msg));
		const char *k;
		while ((k = va_arg(ap, const char *))) {
			const char *v = va_arg(ap, const char *);
			char *r = drr_redact(v ? v : "");
			json_object_set_new(o, k, drr_json_str(r));
			free(r);
		}
		char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		emit(s, line, strlen(line));
		free(line);
		json_decref(o);
	} else {
		struct drr_buf b = { 0 };
		drr_buf_addf(&b, "ts=%s level=%s msg=\"%s\"", ts, level, msg);
		const char *k;
		while ((k = va_arg(ap, const char *))) {
			const char *v = va_arg(ap, const char *);
			char *r = drr_redact(v ? v : "");
			int quote = !*r || strpbrk(r, " \"=\\") != NULL;
			drr_buf_addf(&b, " %s=%s", k, quote ? "\"" : "");
			for (const char *p = r; *p; p++) {
				unsigned char c = (unsigned char)*p;
				if (c == '"' || c == '\\')
					drr_buf_addf(&b, "\\%c", c);
				else if (c < 0x20 || c == 0x7f)
					drr_buf_addf(&b, "\\x%02x", c);
				else
					drr_buf_add(&b, p, 1);
			}
			if (quote)
				drr_buf_adds(&b, "\"");
			free(r);
		}
		emit(s, b.data, b.len);
		drr_buf_free(&b);
	}
	va_end(ap);
}

/* ---- the lines reach stderr once a loop iteration, before it waits --------- */

void srv_log_flush(struct srv *s)
{
	/* a stderr that is gone has nobody to tell */
	if (s->log.len)
		(void)!drr_write_all(2, s->log.data, s->log.len);
	s->log.len = 0;
}

static void on_prepare(uv_prepare_t *h)
{
	srv_log_flush(h->data);
}

void srv_log_start(struct srv *s)
{
	uv_prepare_init(s->loop, &s->log_prep);
	s->log_prep.data = s;
	uv_prepare_start(&s->log_prep, on_prepare);
	uv_unref((uv_handle_t *)&s->log_prep);
	s->log_on = 1;
}

void srv_log_stop(struct srv *s)
{
	srv_log_flush(s);
	if (s->log_on)
		uv_close((uv_handle_t *)&s->log_prep, NULL);
	s->log_on = 0;
}
