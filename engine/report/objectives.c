/*
 * objectives.c - RTO, RPO and phase budgets as achieved, measured from a
 * run's journal records alone, so that the end of a run (summary, run_end)
 * and `drrun report` later say the same thing.
 *
 * RTO: from the recovery's start (the trigger's startsAt, else the first
 * run_start) to the end of the last completed step of phase verify (or, with
 * no verify step completed, of the last completed step that is not
 * teardown).  RPO: the incident (the same start) minus the last recovery
 * point a step reported.  A phase's time: its first step_start to its last
 * step_end.  Depends on jansson only.
 */
#include "report/report.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int drr_rfc3339_parse(const char *s, int64_t *us)
{
	int Y, M, D, h, m, sec;
	if (!s || strlen(s) < 20 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) ||
	    s[7] != '-' || digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &m) || s[16] != ':' ||
	    digits(s + 17, 2, &sec))
		return -1;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -1;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
	if (D > mdays[M - 1] || (M == 2 && D == 29 && !leap))
		return -1;
	const char *p = s + 19;
	int64_t frac = 0;
	if (*p == '.') {
		int n = 0;
		for (p++; isdigit((unsigned char)*p); p++, n++)
			if (n < 6)
				frac = frac * 10 + (*p - '0');
		if (n == 0)
			return -1;
		for (; n < 6; n++)
			frac *= 10;
	}
	int off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 ||
		    om > 59)
			return -1;
		off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = Y - 1900;
	tm.tm_mon = M - 1;
	tm.tm_mday = D;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec > 59 ? 59 : sec;
	time_t t = timegm(&tm);
	*us = ((int64_t)t - off) * 1000000 + frac;
	return 0;
}

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int64_t ts_of(json_t *rec)
{
	int64_t us = 0;
	return drr_rfc3339_parse(str(rec, "ts"), &us) == 0 ? us : 0;
}

static struct drr_phase_time *phase_slot(struct drr_objectives *ob, const char *phase)
{
	for (int i = 0; i < ob->nphases; i++)
		if (!strcmp(ob->phases[i].phase, phase))
			return &ob->phases[i];
	ob->phases = drr_xrealloc(ob->phases, (size_t)(ob->nphases + 1) * sizeof *ob->phases);
	struct drr_phase_time *p = &ob->phases[ob->nphases++];
	memset(p, 0, sizeof *p);
	p->phase = phase;
	return p;
}

static void verdict(struct drr_objective *o)
{
	if (o->has_target && o->measured)
		o->met = o->achieved <= o->target + 1e-9 ? 1 : 0;
	else
		o->met = -1; /* not measured, or nothing to measure against */
}

/* The step_start/step_end records: each phase's span and the RTO's end. */
static void walk_steps(json_t *recs, struct drr_objectives *ob, json_t *phase_of,
		       int64_t *verify_end, int64_t *other_end)
{
	size_t i;
	json_t *r;
	json_array_foreach(recs, i, r) {
		const char *type = str(r, "type"), *step = str(r, "step");
		if (!type || !step)
			continue;
		if (!strcmp(type, "step_start")) {
			const char *ph = str(r, "phase");
			if (!ph)
				continue;
			json_object_set(phase_of, step, json_object_get(r, "phase"));
			struct drr_phase_time *p = phase_slot(ob, ph);
			int64_t t = ts_of(r);
			if (!p->ran || t < p->start_us)
				p->start_us = t;
			p->ran = 1;
		} else if (!strcmp(type, "step_end")) {
			const char *ph = json_string_value(json_object_get(phase_of, step));
			if (!ph)
				continue;
			struct drr_phase_time *p = phase_slot(ob, ph);
			int64_t t = ts_of(r);
			if (t > p->end_us)
				p->end_us = t;
			const char *st = str(r, "status");
			if (!st || strcmp(st, "completed"))
				continue;
			if (!strcmp(ph, "verify") && t > *verify_end)
				*verify_end = t;
			else if (strcmp(ph, "teardown") && t > *other_end)
				*other_end = t;
		} else if (!strcmp(type, "recovery_point")) {
			json_t *e = json_object_get(r, "epoch");
			/* what ctx.recovery_point accepts: after 1970, before 10000 */
			if (json_is_number(e) && json_number_value(e) > 0 &&
			    json_number_value(e) < 253402300800.0) {
				ob->recovery_point_us = (int64_t)llround(json_number_value(e) * 1e6);
				ob->has_recovery_point = 1;
			}
		}
	}
}

void drr_objectives_compute(json_t *recs, const char *status, struct drr_objectives *ob)
{
	memset(ob, 0, sizeof *ob);
	json_t *start = NULL;
	size_t i;
	json_t *r;
	json_array_foreach(recs, i, r) {
		const char *type = str(r, "type");
		if (type && !strcmp(type, "run_start")) {
			start = r;
			break;
		}
	}
	if (!start)
		return;
	ob->start_us = ts_of(start);
	ob->incident_us = ob->start_us;
	ob->from = "run_start";
	int64_t t;
	json_t *trig = json_object_get(start, "trigger");
	if (drr_rfc3339_parse(str(trig, "startsAt"), &t) == 0) {
		ob->incident_us = t;
		ob->from = "trigger";
	}
	ob->tier = str(start, "tier");
	json_t *v = json_object_get(start, "rto");
	ob->rto.has_target = json_is_number(v) && json_number_value(v) > 0;
	ob->rto.target = json_number_value(v);
	v = json_object_get(start, "rpo");
	ob->rpo.has_target = json_is_number(v) && json_number_value(v) > 0;
	ob->rpo.target = json_number_value(v);

	json_t *phase_of = json_object();
	int64_t verify_end = 0, other_end = 0;
	walk_steps(recs, ob, phase_of, &verify_end, &other_end);
	json_decref(phase_of);

	const char *k;
	json_object_foreach(json_object_get(start, "budgets"), k, v) {
		struct drr_phase_time *p = phase_slot(ob, k);
		p->has_budget = 1;
		p->budget = json_number_value(v);
	}
	for (int b = 0; b < ob->nphases; b++) {
		struct drr_phase_time *p = &ob->phases[b];
		p->secs = p->ran && p->end_us > p->start_us ? (double)(p->end_us - p->start_us) / 1e6
							    : 0;
		p->met = !p->has_budget ? -1 : !p->ran || p->end_us == 0 ? -1
									  : p->secs <= p->budget + 1e-9;
		if (p->met == 0)
			ob->missed = 1;
		ob->any |= p->has_budget;
	}

	ob->rto_end_us = verify_end ? verify_end : other_end;
	ob->rto_to = verify_end ? "verify" : "last step";
	/* a run that did not complete did not recover: nothing is achieved;
	 * one with no end yet (running, crashed) is not measured */
	int recovered = status && !strcmp(status, "completed");
	if (recovered && ob->rto_end_us) {
		ob->rto.measured = 1;
		ob->rto.achieved = (double)(ob->rto_end_us - ob->incident_us) / 1e6;
		if (ob->rto.achieved < 0)
			ob->rto.achieved = 0;
	}
	if (ob->has_recovery_point) {
		ob->rpo.measured = 1;
		ob->rpo.achieved = (double)(ob->incident_us - ob->recovery_point_us) / 1e6;
		if (ob->rpo.achieved < 0)
			ob->rpo.achieved = 0; /* a recovery point after the incident loses nothing */
	}
	verdict(&ob->rto);
	verdict(&ob->rpo);
	if (ob->rto.has_target && status && !recovered)
		ob->rto.met = 0;
	ob->missed |= ob->rto.met == 0 || ob->rpo.met == 0;
	ob->any |= ob->rto.has_target || ob->rpo.has_target;
}

static json_t *secs_or_null(int measured, double v)
{
	return measured ? json_real(round(v * 1000) / 1000) : json_null();
}

static json_t *met_json(int met)
{
	return met < 0 ? json_null() : json_boolean(met);
}

static json_t *objective_json(const struct drr_objective *o)
{
	json_t *j = json_object();
	json_object_set_new(j, "target_s", o->has_target ? json_real(o->target) : json_null());
	json_object_set_new(j, "achieved_s", secs_or_null(o->measured, o->achieved));
	json_object_set_new(j, "met", o->has_target ? met_json(o->met) : json_null());
	return j;
}

json_t *drr_objectives_json(const struct drr_objectives *ob)
{
	char ts[40];
	json_t *j = json_object();
	json_t *rto = objective_json(&ob->rto);
	json_object_set_new(rto, "from", json_string(ob->from ? ob->from : "run_start"));
	json_object_set_new(rto, "to", ob->rto.measured ? json_string(ob->rto_to) : json_null());
	json_object_set_new(j, "rto", rto);
	json_t *rpo = objective_json(&ob->rpo);
	if (ob->has_recovery_point) {
		drr_rfc3339(ob->recovery_point_us, ts, sizeof ts);
		json_object_set_new(rpo, "recovery_point", json_string(ts));
	} else {
		json_object_set_new(rpo, "recovery_point", json_null());
	}
	json_object_set_new(j, "rpo", rpo);
	json_t *b = json_object();
	for (int i = 0; i < ob->nphases; i++) {
		const struct drr_phase_time *p = &ob->phases[i];
		if (!p->has_budget)
			continue;
		json_t *o = json_object();
		json_object_set_new(o, "target_s", json_real(p->budget));
		json_object_set_new(o, "achieved_s", secs_or_null(p->ran && p->end_us, p->secs));
		json_object_set_new(o, "met", met_json(p->met));
		json_object_set_new(b, p->phase, o);
	}
	json_object_set_new(j, "budgets", b);
	json_object_set_new(j, "tier", ob->tier ? json_string(ob->tier) : json_null());
	return j;
}

const char *drr_objectives_verdict(const struct drr_objectives *ob)
{
	return !ob->any ? "none" : ob->missed ? "missed" : "met";
}

void drr_objectives_free(struct drr_objectives *ob)
{
	free(ob->phases);
	memset(ob, 0, sizeof *ob);
}
