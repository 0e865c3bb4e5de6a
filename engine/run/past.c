/*
 * past.c - a run as its journal tells it: which steps completed (with their
 * outputs), which were in flight when it stopped, which were rolled back,
 * and how the run ended.  `status`, `resume` and `rollback` all start here.
 */
#include "run/run.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* The ids of the runs under runs/ that ever started (a journal.jsonl),
 * sorted: ids begin with their UTC start time, so the last is the newest. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **run_ids(const char *runs, int *n)
{
	DIR *d = opendir(runs);
	if (!d)
		return NULL;
	char **ids = NULL;
	int cap = 0;
	*n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *jp = drr_xasprintf("%s/%s/journal.jsonl", runs, e->d_name);
		struct stat st;
		int has = stat(jp, &st) == 0;
		free(jp);
		if (!has)
			continue; /* a run killed before its first record: never started */
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			ids = drr_xrealloc(ids, (size_t)cap * sizeof *ids);
		}
		ids[(*n)++] = drr_xstrdup(e->d_name);
	}
	closedir(d);
	if (*n)
		qsort(ids, (size_t)*n, sizeof *ids, cmp_str);
	return ids ? ids : drr_xcalloc(1, sizeof *ids);
}

/* "run id 'x' is ambiguous: it matches A, B, C and 4 more; give more of it" */
static void ambiguous(const char *id, char **ids, const int *hits, int nhits, char *err,
		      size_t errlen)
{
	enum { SHOW = 5 };
	int off = snprintf(err, errlen, "run id '%s' is ambiguous: it matches ", id);
	for (int i = 0; i < nhits && i < SHOW && off > 0 && (size_t)off < errlen; i++)
		off += snprintf(err + off, errlen - (size_t)off, "%s%s", i ? ", " : "",
				ids[hits[i]]);
	if (nhits > SHOW && off > 0 && (size_t)off < errlen)
		off += snprintf(err + off, errlen - (size_t)off, " and %d more", nhits - SHOW);
	if (off > 0 && (size_t)off < errlen)
		snprintf(err + off, errlen - (size_t)off, "; give more of it");
}

int drr_run_find(const char *state_dir, const char *id, char *dir, size_t n, char *err,
		 size_t errlen)
{
	if (!*id) { /* a part of every run id: never "the only run" */
		snprintf(err, errlen, "the run id is empty");
		return -1;
	}
	char *runs = drr_xasprintf("%s/runs", state_dir);
	int nids = 0;
	char **ids = run_ids(runs, &nids);
	if (!ids) {
		snprintf(err, errlen, "no runs in %s (%s)", state_dir, strerror(errno));
		free(runs);
		return -1;
	}
	/* an exact id wins; then `last`, the newest run; then a unique part */
	int *hits = drr_xcalloc((size_t)nids + 1, sizeof *hits);
	int nhits = 0, exact = -1;
	for (int i = 0; i < nids; i++) {
		if (!strcmp(ids[i], id))
			exact = i;
		else if (strstr(ids[i], id))
			hits[nhits++] = i;
	}
	if (exact < 0 && !strcmp(id, "last") && nids > 0) {
		exact = nids - 1;
	}
	int rc = -1;
	if (exact >= 0 || nhits == 1) {
		snprintf(dir, n, "%s/%s", runs, ids[exact >= 0 ? exact : hits[0]]);
		rc = 0;
	} else if (nhits > 1) {
		ambiguous(id, ids, hits, nhits, err, errlen);
	} else if (!strcmp(id, "last")) {
		snprintf(err, errlen, "no runs in %s yet", state_dir);
	} else {
		snprintf(err, errlen, "no run '%s' in %s", id, state_dir);
	}
	for (int i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
	free(hits);
	free(runs);
	return rc;
}

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

struct drr_past_step *drr_past_step(struct drr_past *p, const char *name)
{
	int i = drr_names_find(&p->by_name, name);
	return i < 0 ? NULL : &p->steps[i];
}

enum drr_step_state drr_past_step_state(const struct drr_past_step *s, int running)
{
	static const struct {
		const char *status;
		enum drr_step_state st;
	} ends[] = {
		{ "completed", DRR_COMPLETED },
		{ "failed", DRR_FAILED },
		{ "aborted", DRR_ABORTED },
		{ "cancelled", DRR_CANCELLED },
	};
	if (s->rb_ended)
		return s->rb_status && !strcmp(s->rb_status, "completed") ? DRR_ROLLED_BACK
									  : DRR_ROLLBACK_FAILED;
	if (s->rb_started)
		return running ? DRR_ROLLING_BACK : DRR_INTERRUPTED;
	if (s->skipped)
		return DRR_SKIPPED;
	if (s->ended) {
		for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
			if (s->status && !strcmp(s->status, ends[i].status))
				return ends[i].st;
		return DRR_FAILED;
	}
	if (s->gate && running)
		return DRR_WAIT_APPROVAL;
	if (s->started)
		return running ? DRR_RUNNING : DRR_INTERRUPTED;
	return running ? DRR_PENDING : DRR_NOT_RUN;
}

static struct drr_past_step *get_step(struct drr_past *p, const char *name)
{
	struct drr_past_step *s = drr_past_step(p, name);
	if (s)
		return s;
	if (p->nsteps == p->capsteps) {
		p->capsteps = p->capsteps ? 2 * p->capsteps : 16;
		p->steps = drr_xrealloc(p->steps, (size_t)p->capsteps * sizeof *p->steps);
	}
	drr_names_add(&p->by_name, name, p->nsteps);
	s = &p->steps[p->nsteps++];
	memset(s, 0, sizeof *s);
	s->name = name;
	return s;
}

/* "2026-11-22T05:10:22.123456Z" -> microseconds since the epoch; 0 if not so. */
static int64_t parse_ts(const char *ts)
{
	struct tm tm;
	int us = 0, n = 0;
	memset(&tm, 0, sizeof tm);
	if (!ts ||
	    sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &us, &n) != 7 ||
	    ts[n] != '\0')
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	return t < 0 ? 0 : (int64_t)t * 1000000 + us;
}

int drr_past_load(const char *run_dir, struct drr_past *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	snprintf(p->dir, sizeof p->dir, "%s", run_dir);
	char *path = drr_xasprintf("%s/journal.jsonl", run_dir);
	size_t good;
	p->recs = drr_journal_load(path, &good, &p->torn, err, errlen);
	free(path);
	if (!p->recs)
		return -1;
	int order = 0;
	size_t i;
	json_t *r;
	json_array_foreach(p->recs, i, r) {
		const char *type = str(r, "type"), *name = str(r, "step");
		if (!type)
			continue;
		if (!strcmp(type, "run_start")) {
			p->start = r;
			p->sessions = 1;
		} else if (!strcmp(type, "run_resume")) {
			p->end = NULL;
			p->sessions++;
			const char *mode = str(r, "mode");
			if (mode && !strcmp(mode, "rollback"))
				p->in_rollback = 1;
		} else if (!strcmp(type, "run_interrupt")) {
			p->interrupted = 1;
			p->interrupted_by = str(r, "signal");
			if (json_is_true(json_object_get(r, "rollback"))) {
				p->interrupt_rollback = 1;
				p->in_rollback = 1;
			}
		} else if (!strcmp(type, "run_end")) {
			p->end = r;
		}
		if (!strcmp(type, "run_end") || !strcmp(type, "run_resume"))
			for (int k = 0; k < p->nsteps; k++)
				p->steps[k].gate = NULL; /* that session's gates closed with it */
		if (!name)
			continue;
		struct drr_past_step *s = get_step(p, name);
		if (!strcmp(type, "step_start")) {
			s->started = 1;
			s->ended = 0;
			s->attempts = (int)json_integer_value(json_object_get(r, "attempt"));
		} else if (!strcmp(type, "step_end")) {
			s->ended = 1;
			s->status = str(r, "status");
			s->attempts = (int)json_integer_value(json_object_get(r, "attempts"));
			s->duration = json_number_value(json_object_get(r, "duration"));
			s->output = json_object_get(r, "output");
			s->redacted = json_object_get(r, "redacted");
			s->error = str(r, "error") ? str(r, "error") : str(r, "reason");
			if (s->status && !strcmp(s->status, "completed"))
				s->done_order = ++order;
			else if (s->status && !strcmp(s->status, "failed"))
				p->failed = 1;
		} else if (!strcmp(type, "step_attempt")) {
			s->attempts = (int)json_integer_value(json_object_get(r, "attempt"));
			s->error = str(r, "error");
		} else if (!strcmp(type, "step_skipped")) {
			s->skipped = 1;
		} else if (!strcmp(type, "approval")) {
			const char *st = str(r, "status");
			s->approved = st && !strcmp(st, "approved");
			if (st && !strcmp(st, "waiting")) {
				s->gate = r;
				json_decref(s->votes);
				s->votes = json_array();
			} else if (st && !strcmp(st, "answered") && s->gate) {
				json_array_append(s->votes, r);
			} else if (st && strcmp(st, "ignored")) {
				s->gate = NULL; /* decided, or withdrawn */
			}
		} else if (!strcmp(type, "rollback_start")) {
			s->rb_started = 1;
			s->rb_ended = 0;
			p->in_rollback = 1;
		} else if (!strcmp(type, "rollback_end")) {
			s->rb_ended = 1;
			s->rb_status = str(r, "status");
			s->rb_error = str(r, "error");
		}
	}
	if (!p->start) {
		snprintf(err, errlen, "%s: the journal has no run_start record", run_dir);
		drr_past_free(p);
		return -1;
	}
	p->run_id = str(p->start, "run");
	p->runbook = str(p->start, "runbook");
	p->file = str(p->start, "file");
	json_t *raw = drr_journal_raw_path(p->start); /* a path that is not UTF-8 */
	if (raw)
		json_object_set_new(p->start, "path_raw", raw);
	p->path = str(p->start, raw ? "path_raw" : "path");
	p->sha256 = str(p->start, "sha256");
	p->env = str(p->start, "env");
	p->start_us = parse_ts(str(p->start, "ts"));
	p->params = json_object_get(p->start, "params");
	p->plan = json_object_get(p->start, "plan");
	if (!p->run_id || !p->runbook) {
		snprintf(err, errlen, "%s: run_start lacks run or runbook", run_dir);
		drr_past_free(p);
		return -1;
	}
	return 0;
}

const char *drr_past_state(const struct drr_past *p, const char *state_dir)
{
	char holder[200];
	long pid;
	if (p->end) {
		const char *st = str(p->end, "status");
		return st ? st : "?";
	}
	if (drr_lock_holder(state_dir, p->runbook, holder, sizeof holder, &pid) &&
	    !strcmp(holder, p->run_id))
		return "running";
	return "crashed"; /* no run_end, and no process holds its lock */
}

int drr_past_resumable(const struct drr_past *p, const char *state_dir)
{
	if (p->end)
		return json_is_true(json_object_get(p->end, "resumable"));
	return strcmp(drr_past_state(p, state_dir), "running") != 0;
}

const char *drr_past_resume_hint(const struct drr_past *p)
{
	if (p->failed || p->in_rollback || p->interrupted)
		return "finishes its rollback";
	return "carries on";
}

void drr_past_free(struct drr_past *p)
{
	for (int i = 0; i < p->nsteps; i++)
		json_decref(p->steps[i].votes);
	json_decref(p->recs);
	free(p->steps);
	drr_names_free(&p->by_name);
	memset(p, 0, sizeof *p);
}
