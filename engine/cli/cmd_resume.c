/*
 * cmd_resume.c - `drrun resume RUN_ID` and `drrun rollback RUN_ID`: carry on
 * with a run from its journal.  Completed steps are not run again (their
 * outputs come back from the journal); steps in flight when it stopped run
 * again, after a question for steps marked once; a run that failed finishes
 * its rollbacks.  `rollback` (cmd_rollback.c) shares the machinery.
 * Both refuse when the runbook file changed since the run started, unless
 * --force, listing the steps added, removed and changed.
 */
#include "cli/cli.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 0 when unchanged (or --force); else prints the differences, returns 65. */
static int check_changes(struct drr_past *p, struct drr_runbook *rb, int force)
{
	if (!p->sha256 || !strcmp(p->sha256, rb->sha256))
		return 0;
	struct drr_buf added = { 0 }, removed = { 0 }, changed = { 0 };
	for (int i = 0; i < rb->nsteps; i++) {
		const char *fp = json_string_value(json_object_get(p->plan, rb->steps[i].name));
		if (!fp)
			drr_buf_addf(&added, " %s", rb->steps[i].name);
		else if (strcmp(fp, rb->steps[i].fp))
			drr_buf_addf(&changed, " %s", rb->steps[i].name);
	}
	const char *k;
	json_t *v;
	json_object_foreach(p->plan, k, v) {
		int found = 0;
		for (int i = 0; i < rb->nsteps && !found; i++)
			found = !strcmp(rb->steps[i].name, k);
		if (!found)
			drr_buf_addf(&removed, " %s", k);
	}
	if (!added.data && !removed.data && !changed.data) {
		/* comments, blank lines, steps moved: what the steps do is the same */
		drr_term_line(stderr,
			      "drrun: %s changed since run %s started, but none of its steps "
			      "did; going on",
			      rb->path, p->run_id);
		return 0;
	}
	drr_term_line(stderr, "drrun: %s changed since run %s started", rb->path, p->run_id);
	drr_term_line(stderr, "  steps added:%s", added.data ? added.data : " none");
	drr_term_line(stderr, "  steps removed:%s", removed.data ? removed.data : " none");
	drr_term_line(stderr, "  steps changed:%s", changed.data ? changed.data : " none");
	drr_buf_free(&added);
	drr_buf_free(&removed);
	drr_buf_free(&changed);
	if (force) {
		fprintf(stderr, "drrun: --force: going on with the runbook as it is now\n");
		return 0;
	}
	fprintf(stderr, "drrun: refusing; re-run with --force to go on with the file as it is\n");
	return DRR_EXIT_INVALID;
}

/* A resumed run keeps the mode it started in: dry-run, drill, no-rollback
 * and max-parallel come from run_start.  A flag given now that says
 * otherwise is refused (exit 64), never silently obeyed or dropped.
 * Journals written before a flag was recorded count it as off (or 32). */
static int adopt_mode(const struct drr_past *p, struct drr_opts *o, const char *verb)
{
	static const struct {
		const char *key, *flag;
		size_t off;
	} flags[] = {
		{ "dry_run", "--dry-run", offsetof(struct drr_opts, dry_run) },
		{ "drill", "drill", offsetof(struct drr_opts, drill) },
		{ "no_rollback", "--no-rollback", offsetof(struct drr_opts, no_rollback) },
	};
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		int *now = (int *)((char *)o + flags[i].off);
		int then = json_is_true(json_object_get(p->start, flags[i].key));
		if (*now && !then) {
			fprintf(stderr,
				"drrun %s: run %s did not start with %s, and a resumed run keeps "
				"the mode it started in; start a new run instead\n",
				verb, p->run_id, flags[i].flag);
			return DRR_EXIT_USAGE;
		}
		*now = then;
	}
	json_t *mp = json_object_get(p->start, "max_parallel");
	int then = json_is_integer(mp) ? (int)json_integer_value(mp) : 32;
	if (o->max_parallel && o->max_parallel != then) {
		fprintf(stderr,
			"drrun %s: run %s started with --max-parallel %d; a resumed run keeps it\n",
			verb, p->run_id, then);
		return DRR_EXIT_USAGE;
	}
	o->max_parallel = then;
	return 0;
}

/* A resumed run keeps the alert that started it: ctx.trigger comes back
 * from run_start (its secrets already restored).  --trigger given now must
 * be that same alert, or it is refused (64). */
static int adopt_trigger(const struct drr_past *p, struct drr_opts *o, const char *verb)
{
	json_t *then = json_object_get(p->start, "trigger");
	if (!json_is_object(then))
		then = NULL;
	if (o->trigger && !(then && json_equal(o->trigger, then))) {
		fprintf(stderr,
			"drrun %s: run %s started %s; a resumed run keeps the alert it "
			"started with\n",
			verb, p->run_id,
			then ? "with another --trigger" : "without --trigger");
		return DRR_EXIT_USAGE;
	}
	json_decref(o->trigger);
	o->trigger = then ? json_deep_copy(then) : NULL;
	return 0;
}

/* The journal hides secrets as "***": give params and outputs back the
 * values the first session had, from the environment, or refuse (65) and
 * say which secret is missing or not what it was.  In memory only. */
static int restore_secrets(struct drr_past *p, const struct drr_opts *o, const char *verb)
{
	char err[512];
	int bad = drr_secrets_verify(json_object_get(p->start, "secrets"), o->key, o->klen,
				     p->run_id, err, sizeof err) < 0;
	json_t *map = json_object_get(p->start, "redacted");
	if (!bad && map)
		bad = drr_secrets_restore(p->params, map, "params", err, sizeof err) < 0;
	json_t *tmap = json_object_get(p->start, "trigger_redacted");
	json_t *trigger = json_object_get(p->start, "trigger");
	if (!bad && tmap && json_is_object(trigger))
		bad = drr_secrets_restore(trigger, tmap, "trigger", err, sizeof err) < 0;
	for (int i = 0; i < p->nsteps && !bad; i++) {
		struct drr_past_step *s = &p->steps[i];
		if (!s->redacted || !s->output)
			continue;
		char *what = drr_xasprintf("step '%s' output", s->name);
		bad = drr_secrets_restore(s->output, s->redacted, what, err, sizeof err) < 0;
		free(what);
	}
	if (!bad)
		return 0;
	drr_term_line(stderr, "drrun %s: %s; refusing to run with *** in its place", verb, err);
	return DRR_EXIT_INVALID;
}

static int by_done_desc(const void *a, const void *b)
{
	const struct drr_past_step *x = *(const struct drr_past_step *const *)a;
	const struct drr_past_step *y = *(const struct drr_past_step *const *)b;
	return y->done_order - x->done_order;
}

/* `drrun rollback` says what it will undo, newest first, and asks, unless
 * --yes.  With no terminal to ask on it refuses (exit 3): undoing a recovery
 * is never done by default.  0 to go on. */
static int confirm_rollback(struct drr_past *p, const struct drr_runbook *rb, int yes)
{
	struct drr_past_step **done = drr_xcalloc((size_t)p->nsteps + 1, sizeof *done);
	int n = 0;
	for (int i = 0; i < p->nsteps; i++)
		if (p->steps[i].done_order > 0 &&
		    !(p->steps[i].rb_ended && p->steps[i].rb_status &&
		      !strcmp(p->steps[i].rb_status, "completed")))
			done[n++] = &p->steps[i];
	qsort(done, (size_t)n, sizeof *done, by_done_desc);
	struct drr_buf undo = { 0 }, keep = { 0 };
	for (int i = 0; i < n; i++) {
		const struct drr_step *st = NULL;
		for (int k = 0; k < rb->nsteps && !st; k++)
			if (!strcmp(rb->steps[k].name, done[i]->name))
				st = &rb->steps[k];
		struct drr_buf *b = st && st->rollback_ref != LUA_NOREF ? &undo : &keep;
		drr_buf_addf(b, "%s%s", b->len ? ", " : "", done[i]->name);
	}
	free(done);
	drr_term_line(stdout, "drrun rollback: run %s: will undo %s", p->run_id,
		      undo.len ? undo.data : "nothing (no completed step has a rollback)");
	if (keep.len)
		drr_term_line(stdout, "  and leave as they are (no rollback): %s", keep.data);
	free(undo.data);
	free(keep.data);
	if (yes)
		return 0;
	if (!isatty(0) || !isatty(1)) {
		drr_term_line(stderr, "drrun rollback: not confirmed: give --yes (there is no "
				      "terminal to ask on); nothing was undone");
		return DRR_EXIT_STOPPED;
	}
	printf("Roll back run %s? [y/N] ", p->run_id);
	fflush(stdout);
	char line[64];
	if (!fgets(line, sizeof line, stdin) || (line[0] != 'y' && line[0] != 'Y')) {
		drr_term_line(stdout, "drrun rollback: not confirmed; nothing was undone");
		return DRR_EXIT_STOPPED;
	}
	return 0;
}

int drr_cli_resume_or_rollback(int argc, char **argv, const char *verb, int mode)
{
	struct drr_opts o;
	const char *id = NULL;
	int rc = drr_cli_parse(argc, argv, verb, &o, &id, 0);
	if (rc)
		return rc < 0 ? 0 : rc;
	char dir[4096], err[512], *path = NULL;
	struct drr_past past;
	struct drr_runbook *rb = NULL;
	memset(&past, 0, sizeof past);
	if (drr_run_find(o.state_dir, id, dir, sizeof dir, err, sizeof err) < 0) {
		drr_term_line(stderr, "drrun %s: %s", verb, err);
		rc = 66;
		goto out;
	}
	/* nothing is read from a journal that does not verify, nor appended */
	path = drr_xasprintf("%s/journal.jsonl", dir);
	struct drr_verify v;
	rc = drr_journal_check(o.state_dir, path, o.key, o.klen, &v, err, sizeof err);
	if (rc || drr_past_load(dir, &past, err, sizeof err) < 0) {
		drr_term_line(stderr, "drrun %s: %s", verb, err);
		rc = rc ? rc : 66;
		goto out;
	}
	if (mode == DRR_MODE_RESUME && past.end &&
	    !json_is_true(json_object_get(past.end, "resumable"))) {
		drr_term_line(stderr,
			      "drrun resume: run %s already ended (%s); nothing to resume%s",
			      past.run_id, drr_past_state(&past, o.state_dir),
			      strcmp(drr_past_state(&past, o.state_dir), "completed")
				      ? ""
				      : " (drrun rollback undoes it)");
		rc = DRR_EXIT_INVALID;
		goto out;
	}
	if ((rc = adopt_mode(&past, &o, verb)) || (rc = restore_secrets(&past, &o, verb)))
		goto out;
	rb = drr_cli_load_past(&past, &o, &rc);
	if (!rb)
		goto out;
	if ((rc = check_changes(&past, rb, o.force)))
		goto out;
	if (mode == DRR_MODE_ROLLBACK && (rc = confirm_rollback(&past, rb, o.yes)))
		goto out;
	struct drr_resume res = { .mode = mode, .past = &past };
	/* the lock first: never repair a journal another process is writing */
	res.lock_fd = drr_lock_take(o.state_dir, rb->name, past.run_id, err, sizeof err);
	if (res.lock_fd < 0) {
		drr_term_line(stderr, "drrun %s: cannot start: %s", verb, err);
		rc = DRR_EXIT_CANTSTART;
		goto out;
	}
	/* and with --lock, the one in etcd: another machine may be running it */
	if (o.lock && !(res.elock = drr_elock_take(o.lock, o.lock_ttl, rb->name, past.run_id, err,
						   sizeof err))) {
		drr_term_line(stderr, "drrun %s: cannot start: %s", verb, err);
		drr_lock_release(res.lock_fd);
		rc = DRR_EXIT_CANTSTART;
		goto out;
	}
	/* read it again under the lock: the last holder may have written more */
	drr_past_free(&past);
	if (drr_past_load(dir, &past, err, sizeof err) < 0) {
		drr_term_line(stderr, "drrun %s: %s", verb, err);
		drr_elock_release(res.elock);
		drr_lock_release(res.lock_fd);
		rc = 66;
		goto out;
	}
	if (mode == DRR_MODE_RESUME && past.end &&
	    !json_is_true(json_object_get(past.end, "resumable"))) {
		drr_term_line(stderr, "drrun resume: run %s ended meanwhile; nothing to resume",
			      past.run_id);
		drr_elock_release(res.elock);
		drr_lock_release(res.lock_fd);
		rc = DRR_EXIT_INVALID;
		goto out;
	}
	if ((rc = restore_secrets(&past, &o, verb)) || (rc = adopt_trigger(&past, &o, verb))) {
		drr_elock_release(res.elock);
		drr_lock_release(res.lock_fd);
		goto out;
	}
	res.j = drr_journal_open(o.state_dir, path, o.key, o.klen, &res.repaired, &rc, err,
				 sizeof err);
	if (!res.j) {
		drr_term_line(stderr, "drrun %s: %s", verb, err);
		drr_elock_release(res.elock);
		drr_lock_release(res.lock_fd);
		goto out;
	}
	if (res.repaired)
		drr_term_line(stderr,
			      "drrun %s: cut a torn record (%zu bytes) off the journal's end", verb,
			      res.repaired);
	rc = drr_sched_run(rb, &o, &res);
out:
	free(path);
	drr_runbook_free(rb);
	drr_past_free(&past);
	drr_redact_clear();
	drr_cli_free_opts(&o);
	return rc;
}

int cmd_resume(int argc, char **argv)
{
	return drr_cli_resume_or_rollback(argc, argv, "resume", DRR_MODE_RESUME);
}
