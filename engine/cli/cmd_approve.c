/*
 * cmd_approve.c - `drrun approve RUN_ID [STEP] [--deny] --as NAME
 * [--comment TEXT]`: answer a run's approval gate from another shell or
 * machine sharing the state directory.  The answer is left as a file the
 * run reads (run/answer.c); the run journals it, and this command waits a
 * few seconds to say what the run made of it.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WAIT_SECS 5.0

static const char USAGE[] =
	"usage: drrun approve RUN_ID [STEP] [--deny] --as NAME [--comment TEXT] "
	"[--state-dir DIR]\n";

enum {
	O_AS = 256,
	O_DENY,
	O_COMMENT,
	O_STATE,
	O_HELP
};

static int usage(const char *fmt, const char *arg)
{
	fputs("drrun approve: ", stderr);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", USAGE);
	return DRR_EXIT_USAGE;
}

/* What the run made of our answer: its "answered" or "ignored" record, or
 * NULL when it has not read it yet. */
static json_t *outcome(const char *dir, const char *gate, const char *as, const char *file)
{
	struct drr_past p;
	char err[512];
	if (drr_past_load(dir, &p, err, sizeof err) < 0)
		return NULL;
	json_t *found = NULL;
	size_t i;
	json_t *r;
	json_array_foreach(p.recs, i, r) {
		const char *type = json_string_value(json_object_get(r, "type"));
		const char *st = json_string_value(json_object_get(r, "status"));
		const char *g = json_string_value(json_object_get(r, "gate"));
		if (!type || strcmp(type, "approval") || !st || !g || strcmp(g, gate))
			continue;
		const char *ras = json_string_value(json_object_get(r, "as"));
		const char *rf = json_string_value(json_object_get(r, "file"));
		if ((!strcmp(st, "answered") && ras && !strcmp(ras, as)) ||
		    (!strcmp(st, "ignored") && rf && !strcmp(rf, file)))
			found = r;
		else if ((!strcmp(st, "approved") || !strcmp(st, "declined")) && found)
			json_object_set(found, "decided", r);
	}
	json_incref(found);
	drr_past_free(&p);
	return found;
}

static void say_outcome(json_t *o, const char *step)
{
	const char *st = json_string_value(json_object_get(o, "status"));
	if (!strcmp(st, "ignored")) {
		drr_term_line(stderr, "drrun approve: the run ignored the answer: %s",
			      json_string_value(json_object_get(o, "reason")));
		return;
	}
	const json_t *d = json_object_get(o, "decided");
	const char *ds = d ? json_string_value(json_object_get(d, "status")) : NULL;
	drr_term_line(stdout, "step '%s': %s by %s (%lld of %lld)%s%s", step,
		      !strcmp(json_string_value(json_object_get(o, "answer")), "approve")
			      ? "approved"
			      : "denied",
		      json_string_value(json_object_get(o, "as")),
		      (long long)json_integer_value(json_object_get(o, "count")),
		      (long long)json_integer_value(json_object_get(o, "quorum")),
		      ds ? ": the step is " : "", ds ? ds : "");
}

static int answer(const struct drr_opts *o, const char *id, const char *step, struct drr_answer *a)
{
	char dir[4096], err[1024];
	struct drr_past p;
	if (drr_run_find(o->state_dir, id, dir, sizeof dir, err, sizeof err) < 0 ||
	    drr_past_load(dir, &p, err, sizeof err) < 0) {
		drr_term_line(stderr, "drrun approve: %s", err);
		return 66;
	}
	int rc = DRR_EXIT_INVALID;
	const json_t *g = drr_past_open_gate(&p, step, err, sizeof err);
	const char *state = drr_past_state(&p, o->state_dir);
	if (!g) {
		drr_term_line(stderr, "drrun approve: %s", err);
		goto out;
	}
	if (strcmp(state, "running")) {
		drr_term_line(stderr,
			      "drrun approve: run %s is %s: no process waits for the answer "
			      "(resume it, and it asks again)",
			      p.run_id, state);
		goto out;
	}
	a->gate = json_string_value(json_object_get(g, "gate"));
	a->step = json_string_value(json_object_get(g, "step"));
	const json_t *who = json_object_get(g, "approvers");
	int listed = !json_array_size(who);
	size_t i;
	json_t *v;
	json_array_foreach(who, i, v)
		listed |= !strcmp(json_string_value(v), a->as);
	if (!a->gate || !a->step) {
		drr_term_line(stderr,
			      "drrun approve: the journal's approval record lacks gate or step");
		goto out;
	}
	if (!listed) {
		drr_term_line(stderr, "drrun approve: %s is not one of step '%s''s approvers",
			      a->as, a->step);
		goto out;
	}
	if (drr_answer_write(dir, a, err, sizeof err) < 0) {
		drr_term_line(stderr, "drrun approve: %s", err);
		rc = errno == EEXIST ? DRR_EXIT_INVALID : 75;
		goto out;
	}
	char *file = drr_xasprintf("%s-%s.json", a->gate, a->as);
	json_t *res = NULL;
	double t0 = drr_mono();
	while (!(res = outcome(dir, a->gate, a->as, file)) && drr_mono() - t0 < WAIT_SECS) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	rc = 0;
	if (res) {
		say_outcome(res, a->step);
		if (!strcmp(json_string_value(json_object_get(res, "status")), "ignored"))
			rc = DRR_EXIT_INVALID;
	} else {
		drr_term_line(stdout,
			      "step '%s': answer recorded; the run has not read it yet (it reads "
			      "answers a few times a second)",
			      a->step);
	}
	json_decref(res);
	free(file);
out:
	drr_past_free(&p);
	return rc;
}

int cmd_approve(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "as", required_argument, NULL, O_AS },
		{ "deny", no_argument, NULL, O_DENY },
		{ "comment", required_argument, NULL, O_COMMENT },
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct drr_answer a = { .approve = 1, .via = "drrun approve" };
	const char *state = NULL, *pos[2] = { NULL, NULL };
	int npos = 0;
	optind = 1;
	opterr = 0;
	for (;;) {
		int c = getopt_long(argc, argv, "+:", lo, NULL);
		if (c == -1) {
			if (optind < argc && npos < 2) {
				pos[npos++] = argv[optind++];
				continue;
			}
			break;
		}
		switch (c) {
		case O_AS:
			a.as = optarg;
			break;
		case O_DENY:
			a.approve = 0;
			break;
		case O_COMMENT:
			a.comment = optarg;
			break;
		case O_STATE:
			state = optarg;
			break;
		case O_HELP:
			fputs(USAGE, stdout);
			return 0;
		case ':':
			return usage("%s needs a value", argv[optind - 1]);
		default:
			return usage("unknown flag '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage("unexpected argument '%s'", argv[optind]);
	if (!pos[0] || !*pos[0])
		return usage("%s", "which run? (give its RUN_ID, a part of it, or last)");
	if (pos[1] && !*pos[1])
		return usage("%s", "the STEP is empty");
	if (!a.as)
		return usage("%s", "--as NAME is needed: who is answering");
	if (!drr_approver_name_ok(a.as))
		return usage("--as '%s': a name is a letter or digit, then letters, digits, '-', "
			     "'_' or '.' (at most 64)",
			     a.as);
	if (a.comment && (strlen(a.comment) > 1000 || !*a.comment))
		return usage("%s", "--comment must be 1 to 1000 bytes");
	if (state && !*state)
		return usage("%s", "--state-dir is empty");
	struct drr_opts o;
	if (drr_cli_state_and_key(&o, "approve", state, NULL) < 0)
		return DRR_EXIT_USAGE;
	int rc = answer(&o, pos[0], pos[1], &a);
	drr_cli_free_opts(&o);
	return rc;
}
