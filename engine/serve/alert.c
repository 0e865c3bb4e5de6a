/*
 * alert.c - webhook bodies into alerts: Alertmanager's version 4 payload
 * (api-contracts §6), PagerDuty's v3 event (§5b) and the generic hook's
 * alert.  The bytes are untrusted: size and nesting are bounded before
 * jansson sees them, and labels are refused when they could steer anything
 * (see check_labels).  Pure: fuzz/serve_body.c drives it.
 */
#include "serve/serve.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const serve_source_names[SRC_N] = { "alertmanager", "pagerduty", "generic",
						"schedule" };

/* The deepest nesting of [ and { outside strings, stopping past limit. */
static int depth_of(const char *p, size_t n, int limit)
{
	int d = 0, max = 0, in_str = 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '[' || c == '{') {
			if (++d > max && (max = d) > limit)
				return max;
		} else if (c == ']' || c == '}') {
			d--;
		}
	}
	return max;
}

static int fail(int code, const char **reason, const char *why, char *detail, size_t dlen,
		const char *fmt, ...) DRR_PRINTF(6, 7);
static int fail(int code, const char **reason, const char *why, char *detail, size_t dlen,
		const char *fmt, ...)
{
	*reason = why;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, dlen, fmt, ap);
	va_end(ap);
	return code;
}

/* A template expression of any common engine: ours ({labels.x}), Go's and
 * Jinja's ({{ }}), the shell's and JavaScript's (${ }), Jinja's {% %}. */
static int has_template(const char *s)
{
	for (const char *p = s; *p; p++) {
		if (p[0] == '{' && (p[1] == '{' || p[1] == '%'))
			return 1;
		if (p[0] == '$' && p[1] == '{')
			return 1;
		if (p[0] == '{') {
			const char *q = p + 1;
			while (isalnum((unsigned char)*q) || *q == '_' || *q == '.')
				q++;
			if (*q == '}' && q > p + 1)
				return 1;
		}
	}
	return 0;
}

static int valid_label_name(const char *k)
{
	if (!(isalpha((unsigned char)*k) || *k == '_'))
		return 0;
	size_t n = 0;
	for (const char *p = k; *p; p++, n++)
		if (!(isalnum((unsigned char)*p) || *p == '_'))
			return 0;
	return n <= LABEL_NAME_MAX;
}

/* Labels choose a rule and fill the dedupe key and params; annotations are
 * only carried along.  Refused (422): a name that is not a Prometheus label
 * name, a value that is not a string or is too long, control characters in
 * a label value (a newline could forge a line in a log or a param), a
 * template expression in a label value, and a `runbook` label or annotation
 * (the rule alone names the runbook; an alert never does). */
static int check_kv(json_t *o, int labels, const char *where, const char **reason, char *detail,
		    size_t dlen)
{
	if (!o)
		return 0;
	if (!json_is_object(o))
		return fail(422, reason, "shape", detail, dlen, "%s is not an object", where);
	if (json_object_size(o) > LABELS_MAX)
		return fail(422, reason, "label", detail, dlen, "%s has more than %d entries",
			    where, LABELS_MAX);
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		if (!valid_label_name(k))
			return fail(422, reason, "label", detail, dlen,
				    "%s: a name is not a label name ([A-Za-z_][A-Za-z0-9_]*)",
				    where);
		if (!strcasecmp(k, "runbook") || !strcasecmp(k, "drrun_runbook"))
			return fail(422, reason, "runbook_in_alert", detail, dlen,
				    "%s.%s: an alert cannot name the runbook (the rule does)",
				    where, k);
		if (!json_is_string(v))
			return fail(422, reason, "label", detail, dlen, "%s.%s is not a string",
				    where, k);
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		if (n > (labels ? LABEL_VALUE_MAX : ANNOT_VALUE_MAX) || strlen(s) != n)
			return fail(422, reason, "label", detail, dlen,
				    "%s.%s is too long or holds a NUL", where, k);
		if (!labels)
			continue;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				return fail(422, reason, "label", detail, dlen,
					    "%s.%s holds a control character", where, k);
		if (has_template(s))
			return fail(422, reason, "template", detail, dlen,
				    "%s.%s holds a template expression", where, k);
	}
	return 0;
}

static const char *str_or(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : "";
}

static int check_alert(json_t *a, int i, struct serve_alert *out, const char **reason,
		       char *detail, size_t dlen)
{
	char where[48];
	if (!json_is_object(a))
		return fail(422, reason, "shape", detail, dlen, "alerts[%d] is not an object", i);
	json_t *labels = json_object_get(a, "labels");
	json_t *ann = json_object_get(a, "annotations");
	snprintf(where, sizeof where, "alerts[%d].labels", i);
	int rc = check_kv(labels, 1, where, reason, detail, dlen);
	if (rc)
		return rc;
	snprintf(where, sizeof where, "alerts[%d].annotations", i);
	if ((rc = check_kv(ann, 0, where, reason, detail, dlen)))
		return rc;
	if (!labels || json_object_size(labels) == 0)
		return fail(422, reason, "shape", detail, dlen, "alerts[%d] has no labels", i);
	const char *st = str_or(a, "status");
	if (strcmp(st, "firing") && strcmp(st, "resolved"))
		return fail(422, reason, "shape", detail, dlen,
			    "alerts[%d].status is not firing or resolved", i);
	out->firing = !strcmp(st, "firing");
	out->labels = labels;
	out->annotations = ann;
	out->starts_at = str_or(a, "startsAt");
	out->fingerprint = str_or(a, "fingerprint");
	if (strlen(out->starts_at) > 64 || strlen(out->fingerprint) > 64)
		return fail(422, reason, "shape", detail, dlen,
			    "alerts[%d]: startsAt or fingerprint is too long", i);
	return 0;
}

static int parse_alertmanager(struct serve_body *b, const char **reason, char *detail,
			      size_t dlen)
{
	json_t *alerts = json_object_get(b->root, "alerts");
	const char *ver = str_or(b->root, "version");
	if (*ver && strcmp(ver, "4"))
		return fail(422, reason, "shape", detail, dlen, "version is \"%s\", not \"4\"",
			    ver);
	if (!json_is_array(alerts))
		return fail(422, reason, "shape", detail, dlen, "alerts is not an array");
	size_t n = json_array_size(alerts);
	if (n > ALERTS_MAX)
		return fail(413, reason, "too_large", detail, dlen, "more than %d alerts",
			    ALERTS_MAX);
	b->alerts = drr_xcalloc(n ? n : 1, sizeof *b->alerts);
	for (size_t i = 0; i < n; i++) {
		int rc = check_alert(json_array_get(alerts, i), (int)i, &b->alerts[i], reason,
				     detail, dlen);
		if (rc)
			return rc;
		b->nalerts++;
	}
	b->group_key = str_or(b->root, "groupKey");
	b->firing = !strcmp(str_or(b->root, "status"), "firing");
	return 0;
}

/* PagerDuty's one event as one alert: its labels are the event's scalar
 * facts, built here (and so trusted as to shape), its annotations the
 * incident's title and link. */
static int parse_pagerduty(struct serve_body *b, const char **reason, char *detail, size_t dlen)
{
	json_t *ev = json_object_get(b->root, "event");
	if (!json_is_object(ev))
		return fail(422, reason, "shape", detail, dlen, "no event object");
	json_t *data = json_object_get(ev, "data");
	if (data && !json_is_object(data))
		return fail(422, reason, "shape", detail, dlen, "event.data is not an object");
	const char *type = str_or(ev, "event_type");
	if (!*type)
		return fail(422, reason, "shape", detail, dlen, "event.event_type is missing");
	json_t *labels = json_object(), *ann = json_object();
	json_object_set_new(b->root, "_labels", labels); /* owned by the tree */
	json_object_set_new(b->root, "_annotations", ann);
	json_object_set_new(labels, "event_type", json_string(type));
	const char *rt = str_or(ev, "resource_type");
	if (*rt)
		json_object_set_new(labels, "resource_type", json_string(rt));
	static const char *const scalar[] = { "status", "urgency", "incident_key", "id", NULL };
	static const char *const named[] = { "service", "id",		 "service_id",
					     "service", "summary",	 "service",
					     "priority", "summary",	 "priority",
					     NULL };
	for (int i = 0; data && scalar[i]; i++) {
		json_t *v = json_object_get(data, scalar[i]);
		if (json_is_string(v))
			json_object_set_new(labels,
					    !strcmp(scalar[i], "id") ? "incident_id" : scalar[i],
					    json_string(json_string_value(v)));
	}
	for (int i = 0; data && named[i]; i += 3) {
		json_t *o = json_object_get(data, named[i]);
		json_t *v = json_is_object(o) ? json_object_get(o, named[i + 1]) : NULL;
		if (json_is_string(v))
			json_object_set_new(labels, named[i + 2],
					    json_string(json_string_value(v)));
	}
	if (data && json_is_string(json_object_get(data, "title")))
		json_object_set(ann, "title", json_object_get(data, "title"));
	if (data && json_is_string(json_object_get(data, "html_url")))
		json_object_set(ann, "html_url", json_object_get(data, "html_url"));
	int rc = check_kv(labels, 1, "event", reason, detail, dlen);
	if (rc)
		return rc;
	if ((rc = check_kv(ann, 0, "event.data", reason, detail, dlen)))
		return rc;
	b->alerts = drr_xcalloc(1, sizeof *b->alerts);
	b->nalerts = 1;
	struct serve_alert *a = &b->alerts[0];
	a->firing = strcmp(type, "incident.resolved") != 0;
	a->labels = labels;
	a->annotations = ann;
	a->starts_at = str_or(ev, "occurred_at");
	a->fingerprint = data ? str_or(data, "id") : "";
	if (strlen(a->starts_at) > 64 || strlen(a->fingerprint) > 64)
		return fail(422, reason, "shape", detail, dlen,
			    "occurred_at or data.id is too long");
	b->group_key = str_or(ev, "id");
	b->firing = a->firing;
	return 0;
}

/* The generic hook: one alert object, the shape of one Alertmanager alert
 * ({status, labels, annotations, startsAt, fingerprint}). */
static int parse_generic(struct serve_body *b, const char **reason, char *detail, size_t dlen)
{
	b->alerts = drr_xcalloc(1, sizeof *b->alerts);
	if (!json_object_get(b->root, "status"))
		json_object_set_new(b->root, "status", json_string("firing"));
	int rc = check_alert(b->root, 0, &b->alerts[0], reason, detail, dlen);
	if (rc)
		return rc;
	b->nalerts = 1;
	b->firing = b->alerts[0].firing;
	b->group_key = "";
	return 0;
}

int serve_body_parse(int source, const char *p, size_t n, struct serve_body *b,
		     const char **reason, char *detail, size_t dlen)
{
	memset(b, 0, sizeof *b);
	b->source = source;
	b->group_key = "";
	if (n > BODY_MAX)
		return fail(413, reason, "too_large", detail, dlen, "body is over %zu bytes",
			    (size_t)BODY_MAX);
	if (n == 0)
		return fail(400, reason, "json", detail, dlen, "empty body");
	if (depth_of(p, n, BODY_DEPTH) > BODY_DEPTH)
		return fail(400, reason, "depth", detail, dlen, "JSON nested deeper than %d",
			    BODY_DEPTH);
	if (!drr_utf8_valid(p, n))
		return fail(400, reason, "utf8", detail, dlen, "body is not valid UTF-8");
	json_error_t je;
	b->root = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
	if (!b->root)
		return fail(400, reason, "json", detail, dlen, "invalid JSON at %d:%d: %s",
			    je.line, je.column, je.text);
	int rc;
	if (!json_is_object(b->root))
		rc = fail(422, reason, "shape", detail, dlen, "body is not a JSON object");
	else if (source == SRC_ALERTMANAGER)
		rc = parse_alertmanager(b, reason, detail, dlen);
	else if (source == SRC_PAGERDUTY)
		rc = parse_pagerduty(b, reason, detail, dlen);
	else
		rc = parse_generic(b, reason, detail, dlen);
	if (rc)
		serve_body_free(b);
	return rc;
}

void serve_body_free(struct serve_body *b)
{
	json_decref(b->root);
	free(b->alerts);
	memset(b, 0, sizeof *b);
}
