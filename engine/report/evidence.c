/*
 * evidence.c - a run's report as one JSON object, built from its journal
 * alone: the runbook and its sha256, params and trigger (as journalled, so
 * redacted), who ran it and where, every step with its attempts, results
 * and last log lines, approvals, rollbacks, objectives against their
 * targets, teardown, and the `audit verify` result.  A journal that does
 * not verify still gives what its readable lines say.  The members are
 * documented in docs/report.md; md and html (render.c) are views of it.
 */
#include "report/report.h"
#include "journal/journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAST_LOGS 5

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static json_t *copy_or_null(json_t *v)
{
	return v ? json_deep_copy(v) : json_null();
}

/* The `audit verify` result: rc and v as drr_journal_verify gave them. */
static json_t *audit_json(int rc, const struct drr_verify *v, const char *state_dir,
			  const void *key, long unreadable)
{
	json_t *a = json_object();
	json_object_set_new(a, "chain", json_string(rc == 0 ? "intact" : "broken"));
	json_object_set_new(a, "ok", json_boolean(rc == 0));
	json_object_set_new(a, "records", json_integer(v->records));
	if (rc != 0) {
		json_object_set_new(a, "bad_seq", json_integer(v->bad_seq));
		json_object_set_new(a, "reason", drr_json_str(v->reason));
	}
	const char *hmac = key	     ? (rc == 0 ? "verified" : "not verified")
			   : v->macs ? "not checked (records carry HMACs; no key given)"
				     : "not keyed";
	json_object_set_new(a, "hmac", json_string(hmac));
	json_object_set_new(a, "macs", json_integer(v->macs));
	if (rc == 0 && state_dir) {
		json_object_set_new(a, "ledger", json_string("matches"));
		json_object_set_new(a, "ledger_head", json_string(v->ledger_head));
	} else {
		json_object_set_new(a, "ledger", json_string(state_dir ? "not checked" : "none"));
	}
	if (unreadable)
		json_object_set_new(a, "unreadable_lines", json_integer(unreadable));
	return a;
}

struct stepacc {
	json_t *step;	  /* the report's step object (borrowed from steps[]) */
	json_t *attempts; /* borrowed */
	json_t *open;	  /* the attempt begun and not ended yet, or NULL */
	json_t *logs;	  /* the last LAST_LOGS messages */
};

static struct stepacc *acc_of(json_t *index, json_t *steps, const char *name,
			      struct stepacc **all, size_t *n)
{
	json_t *i = json_object_get(index, name);
	if (i)
		return &(*all)[json_integer_value(i)];
	*all = drr_xrealloc(*all, (*n + 1) * sizeof **all);
	struct stepacc *a = &(*all)[*n];
	memset(a, 0, sizeof *a);
	a->step = json_object();
	json_object_set_new(a->step, "name", json_string(name));
	json_object_set_new(a->step, "phase", json_string("other"));
	json_object_set_new(a->step, "result", json_string("not run"));
	a->attempts = json_array();
	json_object_set_new(a->step, "attempts", a->attempts);
	a->logs = json_array();
	json_array_append_new(steps, a->step);
	json_object_set_new(index, name, json_integer((json_int_t)*n));
	(*n)++;
	return a;
}

static void close_attempt(struct stepacc *a, json_t *r, const char *result)
{
	if (!a->open)
		return;
	json_object_set_new(a->open, "end", json_incref(json_object_get(r, "ts")));
	json_object_set_new(a->open, "result", json_string(result));
	const char *e = str(r, "error") ? str(r, "error") : str(r, "reason");
	if (e)
		json_object_set_new(a->open, "error", drr_json_str(e));
	a->open = NULL;
}

/* A teardown step's output: what it says it removed and left behind. */
static void teardown_lists(json_t *out, json_t *removed, json_t *left)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(out, "removed"), i, v)
		json_array_append(removed, v);
	json_array_foreach(json_object_get(out, "left"), i, v)
		json_array_append(left, v);
}

static void walk(json_t *recs, json_t *rep, json_t *steps, json_t *approvals, json_t *rollbacks,
		 json_t *points)
{
	json_t *index = json_object();
	struct stepacc *all = NULL;
	size_t n = 0, i;
	json_t *r;
	int sessions = 0;
	json_array_foreach(recs, i, r) {
		const char *type = str(r, "type"), *name = str(r, "step");
		if (!type)
			continue;
		if (!strcmp(type, "run_start") || !strcmp(type, "run_resume"))
			sessions++;
		if (!strcmp(type, "run_start")) {
			/* every declared step, in the runbook's order, even if never run */
			const char *k;
			json_t *v;
			json_object_foreach(json_object_get(r, "plan"), k, v)
				acc_of(index, steps, k, &all, &n);
		}
		if (!name)
			continue;
		struct stepacc *a = acc_of(index, steps, name, &all, &n);
		if (!strcmp(type, "step_start")) {
			close_attempt(a, r, "interrupted"); /* a crash left it open */
			json_t *at = json_object();
			json_object_set_new(at, "attempt", json_incref(json_object_get(r, "attempt")));
			json_object_set_new(at, "start", json_incref(json_object_get(r, "ts")));
			json_object_set_new(at, "end", json_null());
			json_object_set_new(at, "result", json_string("running"));
			if (str(r, "variant"))
				json_object_set_new(at, "variant", json_string(str(r, "variant")));
			json_array_append_new(a->attempts, at);
			a->open = at;
			json_object_set(a->step, "phase", json_object_get(r, "phase"));
			json_object_set_new(a->step, "result", json_string("interrupted"));
		} else if (!strcmp(type, "step_attempt")) {
			close_attempt(a, r, "failed");
		} else if (!strcmp(type, "step_end")) {
			const char *st = str(r, "status");
			close_attempt(a, r, st ? st : "failed");
			json_object_set_new(a->step, "result", json_string(st ? st : "failed"));
			json_object_set(a->step, "duration_s", json_object_get(r, "duration"));
			const char *e = str(r, "error") ? str(r, "error") : str(r, "reason");
			if (e)
				json_object_set_new(a->step, "error", drr_json_str(e));
			if (json_object_get(r, "output"))
				json_object_set(a->step, "output", json_object_get(r, "output"));
		} else if (!strcmp(type, "step_skipped")) {
			json_object_set_new(a->step, "result", json_string("skipped"));
			if (str(r, "phase"))
				json_object_set(a->step, "phase", json_object_get(r, "phase"));
			json_object_set(a->step, "reason", json_object_get(r, "reason"));
		} else if (!strcmp(type, "step_log")) {
			json_array_append(a->logs, json_object_get(r, "msg"));
			if (json_array_size(a->logs) > LAST_LOGS)
				json_array_remove(a->logs, 0);
		} else if (!strcmp(type, "approval")) {
			json_t *o = json_object();
			json_object_set_new(o, "step", json_string(name));
			json_object_set(o, "question", json_object_get(r, "question"));
			json_object_set(o, "status", json_object_get(r, "status"));
			json_object_set(o, "by", json_object_get(r, "by"));
			json_object_set(o, "at", json_object_get(r, "ts"));
			json_array_append_new(approvals, o);
		} else if (!strcmp(type, "rollback_start")) {
			json_t *o = json_object();
			json_object_set_new(o, "step", json_string(name));
			json_object_set(o, "start", json_object_get(r, "ts"));
			json_object_set_new(o, "end", json_null());
			json_object_set_new(o, "result", json_string("interrupted"));
			json_array_append_new(rollbacks, o);
		} else if (!strcmp(type, "rollback_end")) {
			for (size_t k = json_array_size(rollbacks); k-- > 0;) {
				json_t *o = json_array_get(rollbacks, k);
				if (strcmp(str(o, "step"), name))
					continue;
				json_object_set(o, "end", json_object_get(r, "ts"));
				json_object_set(o, "result", json_object_get(r, "status"));
				if (str(r, "error"))
					json_object_set(o, "error", json_object_get(r, "error"));
				break;
			}
			json_object_set(a->step, "rollback", json_object_get(r, "status"));
		} else if (!strcmp(type, "recovery_point")) {
			json_t *o = json_object();
			json_object_set_new(o, "step", json_string(name));
			json_object_set(o, "at", json_object_get(r, "at"));
			json_object_set(o, "reported", json_object_get(r, "ts"));
			json_array_append_new(points, o);
		}
	}
	json_t *removed = json_array(), *left = json_array(), *failed = json_array(),
	       *tsteps = json_array();
	int tran = 0;
	for (size_t k = 0; k < n; k++) {
		struct stepacc *a = &all[k];
		json_object_set_new(a->step, "logs", a->logs);
		if (!json_object_get(a->step, "duration_s"))
			json_object_set_new(a->step, "duration_s", json_null());
		const char *ph = str(a->step, "phase"), *res = str(a->step, "result");
		if (!ph || strcmp(ph, "teardown"))
			continue;
		tran |= json_array_size(a->attempts) > 0;
		json_t *t = json_object();
		json_object_set(t, "name", json_object_get(a->step, "name"));
		json_object_set_new(t, "result", json_string(res));
		json_t *out = json_object_get(a->step, "output");
		json_object_set_new(t, "removed",
				    copy_or_null(json_object_get(out, "removed")));
		json_object_set_new(t, "left", copy_or_null(json_object_get(out, "left")));
		if (str(a->step, "error"))
			json_object_set(t, "error", json_object_get(a->step, "error"));
		json_array_append_new(tsteps, t);
		teardown_lists(out, removed, left);
		if (strcmp(res, "completed") && strcmp(res, "skipped"))
			json_array_append(failed, json_object_get(a->step, "name"));
	}
	json_t *td = json_object();
	json_object_set_new(td, "ran", json_boolean(tran));
	json_object_set_new(td, "failed", failed);
	json_object_set_new(td, "removed", removed);
	json_object_set_new(td, "left", left);
	json_object_set_new(td, "steps", tsteps);
	json_object_set_new(rep, "teardown", td);
	json_object_set_new(rep, "sessions", json_integer(sessions));
	free(all);
	json_decref(index);
}

json_t *drr_report_build(const char *run_dir, const char *state_dir, const void *key, size_t klen,
			 char *err, size_t errlen)
{
	char *path = drr_xasprintf("%s/journal.jsonl", run_dir);
	/* one read and one parse: the records the report is made of are the
	 * ones verified; a damaged journal still reports what it can */
	long bad = 0;
	json_t *recs;
	struct drr_verify v;
	int vrc = drr_journal_verify_load(path, state_dir, key, klen, 0, &v, &recs, &bad);
	if (!recs) {
		snprintf(err, errlen, "%s", v.reason);
		free(path);
		return NULL;
	}
	json_t *start = NULL, *end = NULL;
	size_t i;
	json_t *r;
	json_array_foreach(recs, i, r) {
		const char *type = str(r, "type");
		if (type && !strcmp(type, "run_start") && !start)
			start = r;
		else if (type && !strcmp(type, "run_resume"))
			end = NULL;
		else if (type && !strcmp(type, "run_end"))
			end = r;
	}
	if (!start) {
		snprintf(err, errlen, "%s: no run_start record: nothing to report", path);
		json_decref(recs);
		free(path);
		return NULL;
	}
	json_t *rep = json_object();
	json_object_set_new(rep, "report", json_integer(1));
	json_object_set(rep, "run", json_object_get(start, "run"));
	json_t *rb = json_object();
	json_object_set(rb, "name", json_object_get(start, "runbook"));
	json_object_set(rb, "sha256", json_object_get(start, "sha256"));
	json_object_set(rb, "file", json_object_get(start, "file"));
	json_object_set(rb, "path", json_object_get(start, "path"));
	json_object_set(rb, "steps", json_object_get(start, "steps"));
	json_object_set_new(rep, "runbook", rb);
	json_object_set_new(rep, "drill", json_boolean(json_is_true(json_object_get(start, "drill"))));
	json_object_set_new(rep, "dry_run",
			    json_boolean(json_is_true(json_object_get(start, "dry_run"))));
	const char *status = end ? str(end, "status") : NULL;
	json_object_set_new(rep, "result", json_string(status ? status : "unfinished"));
	json_object_set_new(rep, "exit", copy_or_null(end ? json_object_get(end, "exit") : NULL));
	json_object_set_new(rep, "reason", copy_or_null(end ? json_object_get(end, "reason") : NULL));
	json_object_set(rep, "started", json_object_get(start, "ts"));
	json_object_set_new(rep, "ended", copy_or_null(end ? json_object_get(end, "ts") : NULL));
	json_object_set_new(rep, "elapsed_s",
			    copy_or_null(end ? json_object_get(end, "elapsed") : NULL));
	json_t *who = json_object();
	json_object_set_new(who, "user", copy_or_null(json_object_get(start, "user")));
	json_object_set(who, "host", json_object_get(start, "host"));
	json_object_set(who, "pid", json_object_get(start, "pid"));
	json_object_set(who, "version", json_object_get(start, "version"));
	json_object_set_new(rep, "who", who);
	json_object_set_new(rep, "env", copy_or_null(json_object_get(start, "env")));
	json_object_set_new(rep, "params", copy_or_null(json_object_get(start, "params")));
	json_object_set_new(rep, "trigger", copy_or_null(json_object_get(start, "trigger")));

	struct drr_objectives ob;
	drr_objectives_compute(recs, status, &ob);
	json_object_set_new(rep, "objectives", drr_objectives_json(&ob));
	json_object_set_new(rep, "verdict", json_string(drr_objectives_verdict(&ob)));
	json_t *phases = json_array();
	for (int k = 0; k < ob.nphases; k++) {
		const struct drr_phase_time *p = &ob.phases[k];
		char ts[40];
		json_t *o = json_object();
		json_object_set_new(o, "phase", json_string(p->phase));
		json_object_set_new(o, "start",
				    p->ran ? json_string(drr_rfc3339(p->start_us, ts, sizeof ts))
					   : json_null());
		json_object_set_new(o, "end", p->ran && p->end_us ? json_string(drr_rfc3339(
									    p->end_us, ts, sizeof ts))
								  : json_null());
		json_object_set_new(o, "duration_s",
				    p->ran && p->end_us ? json_real(p->secs) : json_null());
		json_object_set_new(o, "budget_s", p->has_budget ? json_real(p->budget) : json_null());
		json_object_set_new(o, "met", p->met < 0 ? json_null() : json_boolean(p->met));
		json_array_append_new(phases, o);
	}
	json_object_set_new(rep, "phases", phases);
	drr_objectives_free(&ob);

	json_t *steps = json_array(), *approvals = json_array(), *rollbacks = json_array(),
	       *points = json_array();
	json_object_set_new(rep, "steps", steps);
	json_object_set_new(rep, "approvals", approvals);
	json_object_set_new(rep, "rollbacks", rollbacks);
	json_object_set_new(rep, "recovery_points", points);
	walk(recs, rep, steps, approvals, rollbacks, points);
	json_object_set_new(rep, "audit", audit_json(vrc, &v, state_dir, key, bad));
	json_decref(recs);
	free(path);
	return rep;
}
