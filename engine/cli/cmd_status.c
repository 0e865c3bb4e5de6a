/*
 * cmd_status.c - `drrun status` lists the runs in the state directory;
 * `drrun status RUN_ID` shows each step of one run.  What comes from the
 * journal reaches the terminal escaped (term.c); --json is JSON.
 */
#include "cli/cli.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static int list_runs(const struct drr_opts *o)
{
	char *runs = drr_xasprintf("%s/runs", o->state_dir);
	DIR *d = opendir(runs);
	if (!d) {
		if (o->json)
			printf("[]\n");
		else
			drr_term_line(stdout, "no runs in %s", o->state_dir);
		free(runs);
		return 0;
	}
	char **names = NULL;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *jp = drr_xasprintf("%s/%s/journal.jsonl", runs, e->d_name);
		int has = access(jp, F_OK) == 0;
		free(jp);
		if (!has)
			continue; /* killed before its first record: it never started */
		names = drr_xrealloc(names, (size_t)(n + 1) * sizeof *names);
		names[n++] = drr_xstrdup(e->d_name);
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof *names, by_name);
	json_t *all = json_array();
	int resumable = 0;
	if (!o->json)
		printf("%-44s %-20s %-27s %s\n", "run", "runbook", "started", "state");
	for (int i = 0; i < n; i++) {
		char *dir = drr_xasprintf("%s/%s", runs, names[i]), err[512];
		struct drr_past p;
		if (drr_past_load(dir, &p, err, sizeof err) < 0) {
			if (!o->json)
				drr_term_line(stdout, "%-44s %-20s %-27s %s", names[i], "?", "?",
					      "unreadable");
		} else {
			const char *state = drr_past_state(&p, o->state_dir);
			int res = drr_past_resumable(&p, o->state_dir);
			int dry = json_is_true(json_object_get(p.start, "dry_run"));
			resumable += res;
			if (o->json)
				json_array_append_new(
					all, json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "run", p.run_id,
						       "runbook", p.runbook, "started",
						       str(p.start, "ts"), "state", state, "resumable",
						       res, "dry_run", dry));
			else
				drr_term_line(stdout, "%-44s %-20s %-27.27s %s%s%s", p.run_id,
					      p.runbook, str(p.start, "ts"), state,
					      dry ? " (dry run)" : "", res ? " (resumable)" : "");
			drr_past_free(&p);
		}
		free(dir);
		free(names[i]);
	}
	free(names);
	free(runs);
	if (resumable && !o->json)
		printf("\nresume with: drrun resume RUN_ID (a part of it that only one run has "
		       "is enough)\n");
	if (o->json) {
		char *s = json_dumps(all, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
	}
	json_decref(all);
	return 0;
}

/* A gate waiting for answers: what it asks, who answered, what is missing. */
static json_t *gate_json(const struct drr_past_step *s)
{
	json_t *o = json_object(), *yes = json_array();
	static const char *const copied[] = { "question", "quorum", "approvers", "expires",
					      "default", NULL };
	for (const char *const *k = copied; *k; k++) {
		json_t *v = json_object_get(s->gate, *k);
		if (v)
			json_object_set(o, *k, v);
	}
	size_t i;
	json_t *v;
	json_array_foreach(s->votes, i, v)
		if (!strcmp(json_string_value(json_object_get(v, "answer")), "approve"))
			json_array_append(yes, json_object_get(v, "as"));
	json_object_set_new(o, "approved_by", yes);
	return o;
}

static void show_gate(const struct drr_past *p, const struct drr_past_step *s)
{
	json_t *g = gate_json(s);
	struct drr_buf who = { 0 };
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(g, "approved_by"), i, v)
		drr_buf_addf(&who, "%s%s", i ? ", " : "", json_string_value(v));
	const char *exp = json_string_value(json_object_get(g, "expires"));
	drr_term_line(stdout, "  approval: step '%s' waits: \"%s\"", s->name,
		      json_string_value(json_object_get(g, "question")));
	const char *dflt = json_string_value(json_object_get(g, "default"));
	drr_term_line(stdout, "            %zu of %lld approved%s%s%s%s%s%s%s",
		      json_array_size(json_object_get(g, "approved_by")),
		      (long long)json_integer_value(json_object_get(g, "quorum")), who.len ? " (" : "",
		      who.len ? who.data : "", who.len ? ")" : "", exp ? "; until " : "",
		      exp ? exp : "", exp && dflt ? ", then " : "", exp && dflt ? dflt : "");
	int own = s->name[0] == '('; /* the run's own gate (serve's mode = "confirm") */
	drr_term_line(stdout, "            answer: drrun approve %s%s%s [--deny] --as NAME",
		      p->run_id, own ? "" : " ", own ? "" : s->name);
	drr_buf_free(&who);
	json_decref(g);
}

static int show_run(const struct drr_opts *o, const char *id)
{
	char dir[4096], err[512];
	struct drr_past p;
	if (drr_run_find(o->state_dir, id, dir, sizeof dir, err, sizeof err) < 0 ||
	    drr_past_load(dir, &p, err, sizeof err) < 0) {
		drr_term_line(stderr, "drrun status: %s", err);
		return 66;
	}
	const char *state = drr_past_state(&p, o->state_dir);
	int running = !strcmp(state, "running");
	if (o->json) {
		json_t *steps = json_array();
		for (int i = 0; i < p.nsteps; i++) {
			struct drr_past_step *s = &p.steps[i];
			json_t *js = json_pack("{s:s, s:s, s:i, s:f}", "step", s->name, "state",
					       drr_state_word(drr_past_step_state(s, running)),
					       "attempts", s->attempts, "duration", s->duration);
			if (s->error)
				json_object_set_new(js, "error", json_string(s->error));
			if (s->gate && running)
				json_object_set_new(js, "approval", gate_json(s));
			json_array_append_new(steps, js);
		}
		json_t *out = json_pack(
			"{s:s, s:s, s:s, s:s, s:b, s:b, s:o}", "run", p.run_id, "runbook", p.runbook,
			"started", str(p.start, "ts"), "state", state, "resumable",
			drr_past_resumable(&p, o->state_dir), "dry_run",
			json_is_true(json_object_get(p.start, "dry_run")), "steps", steps);
		char *s = json_dumps(out, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
		json_decref(out);
	} else {
		/* all of it read back from the journal: escaped, one line each */
		const char *reason = p.end ? str(p.end, "reason") : "";
		int res = drr_past_resumable(&p, o->state_dir);
		drr_term_line(stdout, "run %s", p.run_id);
		drr_term_line(stdout, "  runbook: %s (%s)", p.runbook, p.file);
		drr_term_line(stdout, "  started: %s", str(p.start, "ts"));
		if (json_is_true(json_object_get(p.start, "dry_run")))
			drr_term_line(stdout, "  mode:    dry run (side effects were described, "
					      "not made)");
		drr_term_line(stdout, "  state:   %s%s%s%s", state, res ? " (resumable)" : "",
			      *reason ? ": " : "", reason);
		if (res)
			drr_term_line(stdout, "  resume:  drrun resume %s %s", p.run_id,
				      drr_past_resume_hint(&p));
		drr_term_line(stdout, "  journal: %s/journal.jsonl%s", dir,
			      p.torn ? " (ends in a torn record: resume repairs it)" : "");
		for (int i = 0; running && i < p.nsteps; i++)
			if (p.steps[i].gate)
				show_gate(&p, &p.steps[i]);
		printf("\n  %-28s %-24s %8s %10s  %s\n", "step", "state", "attempts", "duration",
		       "error");
		for (int i = 0; i < p.nsteps; i++) {
			struct drr_past_step *s = &p.steps[i];
			char d[32] = "-";
			if (s->ended)
				drr_duration_fmt(s->duration, d, sizeof d);
			drr_term_line(stdout, "  %-28s %-24s %8d %10s  %.200s", s->name,
				      drr_state_word(drr_past_step_state(s, running)), s->attempts,
				      d,
				      s->rb_error ? s->rb_error
				      : s->error  ? s->error
						  : "");
		}
	}
	drr_past_free(&p);
	return 0;
}

int cmd_status(int argc, char **argv)
{
	struct drr_opts o;
	const char *id = NULL;
	int rc = drr_cli_parse(argc, argv, "status", &o, &id, DRR_CLI_ARG_OPTIONAL);
	if (rc)
		return rc < 0 ? 0 : rc;
	rc = id ? show_run(&o, id) : list_runs(&o);
	drr_redact_clear();
	drr_cli_free_opts(&o);
	return rc;
}
