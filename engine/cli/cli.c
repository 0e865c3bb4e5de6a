/*
 * cli.c - what the run-family verbs (run, plan, check) share: flag parsing,
 * help texts, the state directory default, and "load, validate, bind, print
 * every error" in one call.
 */
#include "cli/cli.h"
#include "report/report.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
	const char *verb, *usage, *text;
} helps[] = {
	{ "run", "drrun run [flags] RUNBOOK.lua   (or just: drrun RUNBOOK.lua)",
	  "Validate the runbook, then run its steps as a dependency graph, journalling\n"
	  "every step to <state-dir>/runs/<run-id>/journal.jsonl.\n" },
	{ "drill", "drrun drill [--env NAME] [flags] RUNBOOK.lua",
	  "Run the runbook as a recovery drill: ctx.drill is true, each step runs its\n"
	  "drill variant (drill = \"skip\" skips it, drill = function(ctx) replaces\n"
	  "run), and the steps of phase teardown run at the end whatever happened.\n"
	  "Refuses to start (exit 65) when a step marked production = true has no\n"
	  "drill variant, or when the env is marked production = true.\n" },
	{ "plan", "drrun plan [flags] RUNBOOK.lua",
	  "Validate the runbook and print the order steps would run in (waves of steps\n"
	  "that can run together), with their phases, gates, timeouts and rollbacks.\n"
	  "Nothing is run.\n" },
	{ "resume",
	  "drrun resume [--yes] [--force] [--on-interrupt rollback|pause] [--state-dir DIR] RUN_ID",
	  "Carry on with an interrupted or crashed run.  Completed steps are not run\n"
	  "again (their outputs come back from the journal); steps in flight when it\n"
	  "stopped run again, but a step marked once asks first (or --yes); a run that\n"
	  "failed finishes its rollbacks.  A torn last record is cut off and reported;\n"
	  "a journal that does not verify (audit verify) is refused, exit 65.\n"
	  "Refuses when the runbook changed since the run started, listing the steps\n"
	  "added, removed and changed, unless --force.  RUN_ID may be a unique prefix.\n" },
	{ "rollback", "drrun rollback [--yes] [--force] [--state-dir DIR] RUN_ID",
	  "Run the rollbacks of the run's completed steps, newest first, journalled in\n"
	  "the same run.  It says what it will undo and asks first (--yes: don't ask;\n"
	  "with no terminal and no --yes it undoes nothing and exits 3).  Exit 0 when\n"
	  "every rollback succeeded, 2 when one failed.\n" },
	{ "approve", "drrun approve RUN_ID [STEP] [--deny] --as NAME [--comment TEXT] [--state-dir DIR]",
	  "Answer a running run's approval gate (approve = { ... }) from another shell\n"
	  "or machine sharing the state directory.  STEP may be left out when only one\n"
	  "step waits.  The run journals the answer with who gave it and from where,\n"
	  "and this waits a few seconds to print what the run made of it.  Exit 0 when\n"
	  "recorded, 65 when refused (NAME is not an approver, already answered, or\n"
	  "nothing waits), 66 when no run has that id, 75 when it cannot be written.\n" },
	{ "status", "drrun status [--json] [--state-dir DIR] [RUN_ID]",
	  "List the runs in the state directory with their state (running, completed,\n"
	  "failed, rolled-back, interrupted, aborted), or one run's steps.\n" },
	{ "log", "drrun log [--json] [--state-dir DIR] RUN_ID",
	  "Print a run's journal for a human; --json prints the records as written.\n" },
	{ "audit", "drrun audit verify [--key-file F] [--state-dir DIR] RUN_ID|FILE",
	  "Check a journal's hash chain: exit 0 and a summary when intact, else exit 1\n"
	  "naming the first bad seq and why (edited, removed, reordered, truncated).\n"
	  "With DRRUN_AUDIT_KEY or --key-file, every record's HMAC is checked too.\n" },
	{ "test",
	  "drrun test [--junit FILE] [--keep] [--jobs N] [--timeout SECONDS] TESTFILE.lua|DIR...",
	  "Run a runbook's test cases (a DIR: every *_test.lua under it).  Each case\n"
	  "runs the runbook in a child drrun with its own state dir, the modules it\n"
	  "fakes, the faults it injects and the approvals it answers, in virtual time\n"
	  "(waits, retries and timeouts take no real time); a call that would reach\n"
	  "the world unfaked fails the case.  Its expectations are checked against\n"
	  "its journal.  TAP on stdout (--junit FILE: JUnit XML too), then the line\n"
	  "\"N passed, N failed\"; exit 0 only when every case passed.  --keep keeps\n"
	  "every case's state dir (a failed case's is always kept); --jobs N runs N\n"
	  "cases at once (default: one per CPU); --timeout SECONDS kills a case after\n"
	  "that much real time (default 60).  See docs/testing.md.\n" },
	{ "check", "drrun check [flags] RUNBOOK.lua",
	  "Validate the runbook: fields, durations, dependencies and cycles, params,\n"
	  "environments and secrets.  Prints every error as file:line: message and\n"
	  "exits 65 if there is any.  Nothing is run.\n" },
};

static const char FLAGS[] =
	"Flags:\n"
	"  --param k=v, -p    set a runbook param (repeatable), checked against its type\n"
	"  --env NAME         select one of the runbook's environments (ctx.env)\n"
	"  --yes              approve every approval gate\n"
	"  --dry-run          run the steps, but side effects only say what they would do\n"
	"  --state-dir DIR    where runs are journalled (also DRRUN_STATE_DIR;\n"
	"                     default $XDG_STATE_HOME/drrun or ~/.local/state/drrun)\n"
	"  --json             print journal records on stdout, one JSON object a line\n"
	"  --max-parallel N   run at most N steps at once (default 32)\n"
	"  --no-rollback      on interrupt, do not run rollbacks\n"
	"  --on-interrupt rollback|pause\n"
	"                     the first SIGINT or SIGTERM when nobody is asked (no\n"
	"                     terminal, or SIGTERM): roll back (default), or pause:\n"
	"                     stop, resumable (on a terminal Ctrl-C asks)\n"
	"  --no-color         no colours (also NO_COLOR)\n"
	"  --force            resume/rollback even though the runbook changed\n"
	"  --key-file F       audit key (else DRRUN_AUDIT_KEY): records carry an HMAC\n"
	"  --trigger FILE     the alert that started the run, a JSON object: ctx.trigger\n"
	"  --lock etcd://H:P  hold the runbook's lock in etcd too (v3 JSON gateway): one\n"
	"                     run of it across every machine sharing the etcd; exit 75\n"
	"                     when it is held or etcd does not answer; a lock lost\n"
	"                     mid-run stops the run before its next step (exit 3,\n"
	"                     resumable)\n"
	"  --lock-ttl D       the etcd lease's TTL (default 10s, 2s..1h): how long a\n"
	"                     dead run's lock outlives it\n";

void drr_cli_help(FILE *out, const char *verb)
{
	if (verb) {
		/* "audit verify" is the audit verb's help: match the first word */
		size_t vlen = strcspn(verb, " ");
		for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++)
			if (strlen(helps[i].verb) == vlen && !strncmp(helps[i].verb, verb, vlen)) {
				/* test has flags of its own, in its text */
				fprintf(out, "usage: %s\n\n%s%s%s", helps[i].usage, helps[i].text,
					strcmp(helps[i].verb, "test") ? "\n" : "",
					strcmp(helps[i].verb, "test") ? FLAGS : "");
				return;
			}
	}
	fprintf(out,
		"drrun %s - runs disaster-recovery runbooks written in Lua\n\n"
		"usage: drrun RUNBOOK.lua [flags]        same as drrun run\n"
		"       drrun run|drill|plan|check RUNBOOK.lua [flags]\n"
		"       drrun resume|rollback|status|log RUN_ID [flags]\n"
		"       drrun audit verify RUN_ID|FILE [flags]\n"
		"       drrun test TESTFILE.lua|DIR [--junit FILE]\n"
		"       drrun serve --rules RULES.lua [serve flags: drrun help serve]\n"
		"       drrun help VERB | --help | --version\n\n"
		"Verbs:\n"
		"  run      run a runbook\n"
		"  drill    run a runbook as a recovery drill (ctx.drill, teardown)\n"
		"  plan     show the order steps would run in\n"
		"  check    validate a runbook, run nothing\n"
		"  resume   carry on with an interrupted or crashed run\n"
		"  rollback run the rollbacks of a run's completed steps\n"
		"  status   list runs, or show one run's steps\n"
		"  log      print a run's journal\n"
		"  audit    verify a journal's hash chain (and HMACs)\n"
		"  test     run a runbook's test cases (fakes, faults, virtual time)\n"
		"  serve    start runbooks from alerts and schedules (check RULES.lua too)\n\n"
		"%s\n"
		"Exit codes: 0 completed; 1 failed and fully rolled back; 2 failed and a\n"
		"rollback failed too; 3 stopped without failing (abort, approval declined,\n"
		"interrupted); 64 usage error; 65 invalid runbook or params; 66 runbook not\n"
		"found; 75 could not start (state dir unwritable, runbook locked, etcd down).\n",
		DRRUN_VERSION, FLAGS);
}

/* $DRRUN_STATE_DIR, $XDG_STATE_HOME/drrun or $HOME/.local/state/drrun; NULL
 * when none is set: a run never journals under whatever directory it
 * happens to be started in. */
static char *default_state_dir(void)
{
	const char *e = getenv("DRRUN_STATE_DIR");
	if (e && *e)
		return drr_xstrdup(e);
	e = getenv("XDG_STATE_HOME");
	if (e && *e)
		return drr_xasprintf("%s/drrun", e);
	e = getenv("HOME");
	if (e && *e)
		return drr_xasprintf("%s/.local/state/drrun", e);
	return NULL;
}

void drr_cli_free_opts(struct drr_opts *o)
{
	free(o->param_kv);
	json_decref(o->trigger);
	if (o->key) {
		memset(o->key, 0, o->klen);
		free(o->key);
	}
	free((char *)o->state_dir);
	memset(o, 0, sizeof *o);
}

/* An audit key is a few dozen bytes: a file longer than this is not one. */
#define KEY_FILE_MAX 4096

/* Read --key-file into b: a regular file of at most KEY_FILE_MAX bytes (so
 * not /dev/zero, a FIFO or a directory).  0, or -1 with a message. */
static int read_key_file(const char *path, const char *verb, struct drr_buf *b)
{
	char err[512];
	b->data = drr_slurp(path, KEY_FILE_MAX, &b->len, err, sizeof err);
	if (b->data)
		return 0;
	const char *why = errno == EISDIR   ? "is a directory, not a key file"
			  : errno == EINVAL ? "not a regular file (give a file holding the key)"
			  : errno == EFBIG  ? "larger than 4096 bytes: not an audit key"
					    : strerror(errno);
	drr_term_line(stderr, "drrun %s: --key-file %s: %s", verb, path, why);
	return -1;
}

static int load_key(struct drr_opts *o, const char *verb)
{
	if (o->key_file) {
		struct drr_buf b = { 0 };
		if (read_key_file(o->key_file, verb, &b) < 0)
			return -1;
		while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
			b.data[--b.len] = '\0';
		if (!b.len) {
			fprintf(stderr, "drrun %s: --key-file %s is empty\n", verb, o->key_file);
			drr_buf_free(&b);
			return -1;
		}
		o->key = b.data;
		o->klen = b.len;
	} else {
		const char *k = getenv("DRRUN_AUDIT_KEY");
		if (k && *k) {
			o->key = drr_xstrdup(k);
			o->klen = strlen(k);
		}
	}
	if (o->key)
		drr_redact_add(o->key);
	return 0;
}

/* An alert is a few kilobytes; a megabyte is plenty. */
#define TRIGGER_MAX ((size_t)1 << 20)

/* --trigger FILE: a JSON object, the alert that started the run.  0; or 64
 * when the file cannot be read, 65 when it is not a JSON object (one line
 * naming the file, and line and column for bad JSON). */
static int load_trigger(struct drr_opts *o, const char *verb)
{
	char err[512];
	size_t len;
	char *text = drr_slurp(o->trigger_file, TRIGGER_MAX, &len, err, sizeof err);
	if (!text) {
		const char *why = errno == EISDIR   ? "is a directory, not a JSON file"
				  : errno == EINVAL ? "not a regular file"
				  : errno == EFBIG  ? "larger than 1 MiB: not an alert"
						    : strerror(errno);
		drr_term_line(stderr, "drrun %s: --trigger %s: %s", verb, o->trigger_file, why);
		return DRR_EXIT_USAGE;
	}
	json_error_t je;
	json_t *t = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	free(text);
	if (!t) {
		drr_term_line(stderr, "drrun %s: %s:%d:%d: --trigger: invalid JSON: %s", verb,
			      o->trigger_file, je.line, je.column, je.text);
		return DRR_EXIT_INVALID;
	}
	if (!json_is_object(t)) {
		drr_term_line(stderr,
			      "drrun %s: %s: --trigger: the alert must be a JSON object "
			      "({\"labels\": ...}), not %s",
			      verb, o->trigger_file,
			      json_is_array(t)	  ? "an array"
			      : json_is_string(t) ? "a string"
			      : json_is_null(t)	  ? "null"
						  : "a number or boolean");
		json_decref(t);
		return DRR_EXIT_INVALID;
	}
	/* the RTO and RPO are measured from it: a time, or empty or null when
	 * the source did not say (they then count from the run's start) */
	json_t *sa = json_object_get(t, "startsAt");
	int64_t us;
	if (sa && !json_is_null(sa) && !(json_is_string(sa) && !*json_string_value(sa)) &&
	    !(json_is_string(sa) && drr_rfc3339_parse(json_string_value(sa), &us) == 0)) {
		char *shown = json_dumps(sa, JSON_ENCODE_ANY | JSON_COMPACT);
		drr_term_line(stderr,
			      "drrun %s: %s: --trigger: startsAt %.60s is not an RFC 3339 time "
			      "(like \"2026-11-30T10:00:00Z\")",
			      verb, o->trigger_file, shown ? shown : "?");
		free(shown);
		json_decref(t);
		return DRR_EXIT_INVALID;
	}
	o->trigger = t;
	return 0;
}

/* The verbs that take a runbook file rather than a run id. */
static int runbook_verb(const char *verb)
{
	return !strcmp(verb, "run") || !strcmp(verb, "drill") || !strcmp(verb, "plan") ||
	       !strcmp(verb, "check");
}

int drr_cli_parse(int argc, char **argv, const char *verb, struct drr_opts *o, const char **file,
		  int flags)
{
	enum {
		O_PARAM = 256,
		O_ENV,
		O_YES,
		O_DRY,
		O_STATE,
		O_JSON,
		O_MAXP,
		O_NOCOLOR,
		O_HELP,
		O_NORB,
		O_FORCE,
		O_KEYFILE,
		O_TRIGGER,
		O_ONINT,
		O_LOCK,
		O_LOCKTTL
	};
	static const struct option lo[] = {
		{ "param", required_argument, NULL, O_PARAM },
		{ "env", required_argument, NULL, O_ENV },
		{ "yes", no_argument, NULL, O_YES },
		{ "dry-run", no_argument, NULL, O_DRY },
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "json", no_argument, NULL, O_JSON },
		{ "max-parallel", required_argument, NULL, O_MAXP },
		{ "no-color", no_argument, NULL, O_NOCOLOR },
		{ "no-rollback", no_argument, NULL, O_NORB },
		{ "force", no_argument, NULL, O_FORCE },
		{ "key-file", required_argument, NULL, O_KEYFILE },
		{ "trigger", required_argument, NULL, O_TRIGGER },
		{ "on-interrupt", required_argument, NULL, O_ONINT },
		{ "lock", required_argument, NULL, O_LOCK },
		{ "lock-ttl", required_argument, NULL, O_LOCKTTL },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	memset(o, 0, sizeof *o);
	o->max_parallel = 0; /* not given: 32, or what a resumed run started with */
	o->lock_ttl = 10;
	o->color = isatty(1) && !getenv("NO_COLOR");
	o->param_kv = drr_xcalloc((size_t)argc + 1, sizeof *o->param_kv);
	char *state = NULL;
	optind = 1;
	opterr = 0;
	for (;;) {
		int c = getopt_long(argc, argv, "+:yp:", lo, NULL);
		if (c == -1) {
			/* flags may also follow the runbook: drrun run rb.lua --yes */
			if (optind < argc && !*file) {
				*file = argv[optind++];
				continue;
			}
			break;
		}
		switch (c) {
		case 'p':
		case O_PARAM:
			o->param_kv[o->nparam_kv++] = optarg;
			break;
		case O_ENV:
			o->env_name = optarg;
			break;
		case 'y':
		case O_YES:
			o->yes = 1;
			break;
		case O_DRY:
			o->dry_run = 1;
			break;
		case O_STATE:
			free(state);
			state = drr_xstrdup(optarg);
			break;
		case O_JSON:
			o->json = 1;
			break;
		case O_NOCOLOR:
			o->color = 0;
			break;
		case O_NORB:
			o->no_rollback = 1;
			break;
		case O_FORCE:
			o->force = 1;
			break;
		case O_KEYFILE:
			o->key_file = optarg;
			break;
		case O_TRIGGER:
			o->trigger_file = optarg;
			break;
		case O_ONINT:
			if (!strcmp(optarg, "rollback")) {
				o->on_interrupt = DRR_INTERRUPT_ROLLBACK;
			} else if (!strcmp(optarg, "pause")) {
				o->on_interrupt = DRR_INTERRUPT_PAUSE;
			} else {
				fprintf(stderr,
					"drrun %s: --on-interrupt wants rollback or pause, not "
					"'%s'\n",
					verb, optarg);
				goto usage;
			}
			break;
		case O_LOCK: {
			char why[256];
			if (drr_etcd_url_check(optarg, why, sizeof why) < 0) {
				fprintf(stderr, "drrun %s: %s\n", verb, why);
				goto usage;
			}
			o->lock = optarg;
			break;
		}
		case O_LOCKTTL:
			if (drr_duration_parse(optarg, &o->lock_ttl) < 0 || o->lock_ttl < 2 ||
			    o->lock_ttl > 3600) {
				fprintf(stderr, "drrun %s: --lock-ttl '%s': give 2s..1h\n", verb,
					optarg);
				goto usage;
			}
			break;
		case O_MAXP: {
			char *end;
			errno = 0;
			long n = strtol(optarg, &end, 10);
			/* digits only: strtol would also take " 5", "+5" and "5\n" */
			if (!isdigit((unsigned char)optarg[0]) || *end || errno || n < 1 ||
			    n > 100000) {
				fprintf(stderr,
					"drrun %s: --max-parallel wants a number from 1 to "
					"100000, not '%s'\n",
					verb, optarg);
				goto usage;
			}
			o->max_parallel = (int)n;
			break;
		}
		case O_HELP:
			drr_cli_help(stdout, verb);
			free(state);
			free(o->param_kv);
			o->param_kv = NULL;
			return -1;
		case ':':
			fprintf(stderr, "drrun %s: %s needs a value\n", verb, argv[optind - 1]);
			goto usage;
		default:
			fprintf(stderr, "drrun %s: unknown flag '%s'\n", verb, argv[optind - 1]);
			goto usage;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "drrun %s: unexpected argument '%s'\n", verb, argv[optind]);
		goto usage;
	}
	if (*file && !**file) {
		/* an empty RUN_ID is a prefix of every run id: never "the only run" */
		fprintf(stderr, "drrun %s: the %s is empty\n", verb,
			runbook_verb(verb) ? "runbook path" : "RUN_ID");
		goto usage;
	}
	if (state && !*state) {
		fprintf(stderr, "drrun %s: --state-dir is empty (give a directory)\n", verb);
		goto usage;
	}
	if (o->lock && strcmp(verb, "run") && strcmp(verb, "drill") && strcmp(verb, "resume") &&
	    strcmp(verb, "rollback")) {
		fprintf(stderr, "drrun %s: --lock is for run, drill, resume and rollback\n", verb);
		goto usage;
	}
	if (!*file && !(flags & DRR_CLI_ARG_OPTIONAL)) {
		fprintf(stderr, "drrun %s: %s\n", verb,
			runbook_verb(verb) ? "which runbook? (give the RUNBOOK.lua file)"
					   : "which run? (give its RUN_ID; drrun status lists them)");
		goto usage;
	}
	o->state_dir = state ? state : default_state_dir();
	if (!o->state_dir && strcmp(verb, "check") && strcmp(verb, "plan")) {
		/* check and plan never touch the state directory */
		fprintf(stderr,
			"drrun %s: no state directory: HOME, XDG_STATE_HOME and DRRUN_STATE_DIR "
			"are all unset; give --state-dir DIR or set DRRUN_STATE_DIR\n",
			verb);
		goto usage;
	}
	int trc = o->trigger_file ? load_trigger(o, verb) : 0;
	if (trc) {
		free((char *)o->state_dir);
		o->state_dir = NULL;
		free(o->param_kv);
		o->param_kv = NULL;
		return trc;
	}
	if (load_key(o, verb) < 0) {
		json_decref(o->trigger);
		o->trigger = NULL;
		free((char *)o->state_dir);
		o->state_dir = NULL;
		free(o->param_kv);
		o->param_kv = NULL;
		return DRR_EXIT_USAGE;
	}
	return 0;
usage:
	free(state);
	free(o->param_kv);
	o->param_kv = NULL;
	fprintf(stderr, "Try 'drrun help %s'.\n", verb);
	return DRR_EXIT_USAGE;
}

int drr_cli_state_and_key(struct drr_opts *o, const char *verb, const char *state,
			  const char *key_file)
{
	memset(o, 0, sizeof *o);
	o->state_dir = state ? drr_xstrdup(state) : default_state_dir();
	if (!o->state_dir) {
		fprintf(stderr, "drrun %s: no state directory: give --state-dir DIR or set "
				"DRRUN_STATE_DIR\n",
			verb);
		return -1;
	}
	o->key_file = key_file;
	if (load_key(o, verb) < 0) {
		drr_cli_free_opts(o);
		return -1;
	}
	return 0;
}

struct drr_runbook *drr_cli_load(const char *file, const struct drr_opts *o, int *rc)
{
	struct drr_diag d = { 0 };
	struct stat st;
	int st_rc = stat(file, &st);
	if (st_rc < 0 || !S_ISREG(st.st_mode)) {
		drr_term_line(stderr, "drrun: %s: %s", file,
			      st_rc < 0		    ? strerror(errno)
			      : S_ISDIR(st.st_mode) ? "is a directory, not a runbook"
						    : "not a regular file");
		*rc = 66;
		return NULL;
	}
	struct drr_runbook *rb = drr_runbook_load(file, o, &d);
	if (rb)
		drr_runbook_bind(rb, o, &d);
	if (rb && d.n > 0) {
		drr_runbook_free(rb);
		rb = NULL;
	}
	if (!rb) {
		for (int i = 0; i < d.n; i++) { /* a message may quote a declared secret */
			char *r = drr_redact(d.msgs[i]);
			drr_term_line(stderr, "%s", r);
			free(r);
		}
		drr_term_line(stderr, "drrun: %d error%s in %s; nothing was run", d.n,
			      d.n == 1 ? "" : "s", file);
		*rc = DRR_EXIT_INVALID;
	}
	drr_diag_free(&d);
	return rb;
}

struct drr_runbook *drr_cli_load_past(struct drr_past *p, struct drr_opts *o, int *rc)
{
	/* the run's own params and env, not the command line's */
	if (o->nparam_kv || (o->env_name && (!p->env || strcmp(o->env_name, p->env) != 0))) {
		fprintf(stderr,
			"drrun: run %s started with %s%s; a resumed run keeps the params and env "
			"it started with, so --param and another --env cannot change them\n",
			p->run_id, p->env ? "--env " : "no --env", p->env ? p->env : "");
		*rc = DRR_EXIT_USAGE;
		return NULL;
	}
	const char *k;
	json_t *v;
	o->param_kv =
		drr_xrealloc(o->param_kv, (json_object_size(p->params) + 1) * sizeof *o->param_kv);
	json_object_foreach(p->params, k, v) {
		char *kv;
		if (json_is_string(v))
			kv = drr_xasprintf("%s=%s", k, json_string_value(v));
		else if (json_is_integer(v))
			kv = drr_xasprintf("%s=%lld", k, (long long)json_integer_value(v));
		else if (json_is_real(v))
			kv = drr_xasprintf("%s=%.17g", k, json_real_value(v));
		else if (json_is_boolean(v))
			kv = drr_xasprintf("%s=%s", k, json_is_true(v) ? "true" : "false");
		else
			continue;
		o->param_kv[o->nparam_kv++] = kv; /* freed with the opts' strings below */
	}
	o->env_name = p->env;
	const char *file = p->path ? p->path : p->file;
	struct drr_runbook *rb = drr_cli_load(file, o, rc);
	if (rb)
		drr_runbook_fingerprints(rb); /* compared with the run's, and recorded again */
	for (int i = 0; i < o->nparam_kv; i++)
		free((char *)o->param_kv[i]);
	o->nparam_kv = 0;
	return rb;
}
