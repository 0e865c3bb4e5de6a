/*
 * cmd_audit.c - `drrun audit verify RUN_ID|FILE`: prove that no journal
 * record was edited, removed, reordered or cut.  With an audit key
 * (DRRUN_AUDIT_KEY or --key-file) every record's HMAC is checked too, so a
 * chain rewritten from scratch by someone without the key fails as well.
 * The journal is also checked against the state dir's ledger of runs
 * (ledger.c), so records cut off its end, an emptied journal, or a journal
 * copied into another run's directory are found too.
 * Exit 0: intact; 1: not intact (first bad seq and why); 66: not found.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* <state>/runs/<id>/journal.jsonl -> <state> (a copy), or NULL. */
static char *state_dir_of(const char *path)
{
	char *abs = realpath(path, NULL);
	if (!abs)
		return NULL;
	char *cut[3];
	for (int i = 0; i < 3; i++) {
		cut[i] = strrchr(abs, '/');
		if (!cut[i] || (i < 2 && cut[i] == abs)) {
			free(abs);
			return NULL;
		}
		if (i < 2)
			*cut[i] = '\0'; /* journal.jsonl, then the run id */
	}
	if (strcmp(cut[2] + 1, "runs") != 0) {
		free(abs);
		return NULL;
	}
	cut[2][cut[2] == abs ? 1 : 0] = '\0';
	return abs;
}

int cmd_audit(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "verify") != 0) {
		fprintf(stderr, "usage: drrun audit verify RUN_ID|FILE [--key-file F] "
				"[--state-dir DIR]\n");
		return DRR_EXIT_USAGE;
	}
	struct drr_opts o;
	const char *what = NULL;
	int rc = drr_cli_parse(argc - 1, argv + 1, "audit verify", &o, &what, 0);
	if (rc)
		return rc < 0 ? 0 : rc;
	char path[4200], dir[4096], err[512], *state = NULL;
	struct stat st;
	if (stat(what, &st) == 0 && S_ISREG(st.st_mode)) {
		snprintf(path, sizeof path, "%s", what);
		state = state_dir_of(path);
	} else if (drr_run_find(o.state_dir, what, dir, sizeof dir, err, sizeof err) == 0) {
		snprintf(path, sizeof path, "%s/journal.jsonl", dir);
		state = drr_xstrdup(o.state_dir);
	} else {
		drr_term_line(stderr, "drrun audit verify: %s", err);
		rc = 66;
		goto out;
	}
	struct drr_verify v;
	int r = drr_journal_verify(path, state, o.key, o.klen, 0, &v);
	if (r < 0) {
		drr_term_line(stderr, "drrun audit verify: %s", v.reason);
		rc = 66;
	} else if (r > 0) {
		printf("FAILED: %s: seq %ld: %s\n", path, v.bad_seq, v.reason);
		rc = 1;
	} else {
		printf("ok: %s: %ld records of run %s, hash chain intact", path, v.records, v.run);
		if (o.key)
			printf(", %ld HMACs verified", v.macs);
		else if (v.macs)
			printf(" (records carry HMACs: give the key to check them)");
		printf("%s\n", v.ended ? "" : "; the run has not ended");
		if (state)
			printf("ledger: %ld entries of this run match; ledger head seq %ld hash "
			       "%s\n",
			       v.ledger_entries, v.ledger_seq, v.ledger_head);
		else
			printf("ledger: none (the file is not in a state directory's runs/): "
			       "records cut off its end would not show\n");
		rc = 0;
	}
	free(state);
out:
	drr_redact_clear();
	drr_cli_free_opts(&o);
	return rc;
}
