/*
 * cmd_log.c - `drrun log RUN_ID` prints a run's journal for a human, one
 * record a line (control bytes escaped, term.c), or exactly as written with
 * --json.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* One journal record as a line for a human. */
static void print_record(json_t *r)
{
	const char *type = str(r, "type"), *step = str(r, "step");
	struct drr_buf b = { 0 };
	const char *k;
	json_t *v;
	json_object_foreach(r, k, v) {
		if (!strcmp(k, "seq") || !strcmp(k, "ts") || !strcmp(k, "run") ||
		    !strcmp(k, "type") || !strcmp(k, "step") || !strcmp(k, "prev") ||
		    !strcmp(k, "hash") || !strcmp(k, "mac") || !strcmp(k, "plan"))
			continue;
		char *val = json_is_string(v) ? drr_xstrdup(json_string_value(v))
					      : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
								      JSON_REAL_PRECISION(15));
		drr_buf_addf(&b, " %s=%s", k, val ? val : "?");
		free(val);
	}
	/* the journal holds what the runbook and the world wrote: escaped, one line */
	drr_term_line(stdout, "%5lld %s %-14s %-20s%s",
		      (long long)json_integer_value(json_object_get(r, "seq")), str(r, "ts"), type,
		      step, b.data ? b.data : "");
	drr_buf_free(&b);
}

int cmd_log(int argc, char **argv)
{
	struct drr_opts o;
	const char *id = NULL;
	int rc = drr_cli_parse(argc, argv, "log", &o, &id, 0);
	if (rc)
		return rc < 0 ? 0 : rc;
	char dir[4096], err[512];
	if (drr_run_find(o.state_dir, id, dir, sizeof dir, err, sizeof err) < 0) {
		drr_term_line(stderr, "drrun log: %s", err);
		rc = 66;
		goto out;
	}
	char *path = drr_xasprintf("%s/journal.jsonl", dir);
	size_t good, torn;
	json_t *recs = drr_journal_load(path, &good, &torn, err, sizeof err);
	free(path);
	if (!recs) {
		drr_term_line(stderr, "drrun log: %s", err);
		rc = 66;
		goto out;
	}
	if (o.json) {
		/* the records exactly as written, so a reader can check the hashes */
		char *p2 = drr_xasprintf("%s/journal.jsonl", dir);
		size_t len;
		char *raw = drr_slurp(p2, (size_t)1 << 30, &len, err, sizeof err);
		free(p2);
		if (raw)
			fwrite(raw, 1, good < len ? good : len, stdout);
		else
			drr_term_line(stderr, "drrun log: %s", err);
		free(raw);
	} else {
		size_t i;
		json_t *r;
		json_array_foreach(recs, i, r)
			print_record(r);
	}
	if (torn)
		fprintf(stderr, "drrun log: the journal ends in a torn record (%zu bytes)\n", torn);
	json_decref(recs);
out:
	drr_redact_clear();
	drr_cli_free_opts(&o);
	return rc;
}
