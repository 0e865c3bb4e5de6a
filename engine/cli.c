/*
 * cli.c - what the run-family verbs (run, plan, check) share: flag parsing,
 * help texts, the state directory default, and "load, validate, bind, print
 * every error" in one call.
 */
#include "drrun.h"

#include <errno.h>
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
	{ "plan", "drrun plan [flags] RUNBOOK.lua",
	  "Validate the runbook and print the order steps would run in (waves of steps\n"
	  "that can run together), with their phases, gates, timeouts and rollbacks.\n"
	  "Nothing is run.\n" },
	{ "check", "drrun check [flags] RUNBOOK.lua",
	  "Validate the runbook: fields, durations, dependencies and cycles, params,\n"
	  "environments and secrets.  Prints every error as file:line: message and\n"
	  "exits 65 if there is any.  Nothing is run.\n" },
};

static const char FLAGS[] =
	"Flags:\n"
	"  --param k=v        set a runbook param (repeatable)\n"
	"  --env NAME         select one of the runbook's environments (ctx.env)\n"
	"  --yes              approve every approval gate\n"
	"  --dry-run          run the steps, but side effects only say what they would do\n"
	"  --state-dir DIR    where runs are journalled (also DRRUN_STATE_DIR;\n"
	"                     default $XDG_STATE_HOME/drrun or ~/.local/state/drrun)\n"
	"  --json             print journal records on stdout, one JSON object a line\n"
	"  --max-parallel N   run at most N steps at once (default 32)\n"
	"  --no-rollback      on interrupt, do not run rollbacks\n"
	"  --no-color         no colours (also NO_COLOR)\n";

void drr_cli_help(FILE *out, const char *verb)
{
	if (verb) {
		for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++)
			if (!strcmp(helps[i].verb, verb)) {
				fprintf(out, "usage: %s\n\n%s\n%s", helps[i].usage, helps[i].text,
					FLAGS);
				return;
			}
	}
	fprintf(out,
		"drrun %s - runs disaster-recovery runbooks written in Lua\n\n"
		"usage: drrun RUNBOOK.lua [flags]        same as drrun run\n"
		"       drrun run|plan|check RUNBOOK.lua [flags]\n"
		"       drrun help VERB | --help | --version\n\n"
		"Verbs:\n"
		"  run      run a runbook\n"
		"  plan     show the order steps would run in\n"
		"  check    validate a runbook, run nothing\n\n"
		"%s\n"
		"Exit codes: 0 completed; 1 failed and fully rolled back; 2 failed and a\n"
		"rollback failed too; 3 stopped without failing (abort, approval declined,\n"
		"interrupted); 64 usage error; 65 invalid runbook or params; 66 runbook not\n"
		"found; 75 could not start (state dir unwritable).\n",
		DRRUN_VERSION, FLAGS);
}

static char *default_state_dir(void)
{
	const char *e = getenv("DRRUN_STATE_DIR");
	if (e && *e)
		return drr_xstrdup(e);
	e = getenv("XDG_STATE_HOME");
	if (e && *e)
		return drr_xasprintf("%s/drrun", e);
	e = getenv("HOME");
	return drr_xasprintf("%s/.local/state/drrun", e && *e ? e : ".");
}

void drr_cli_free_opts(struct drr_opts *o)
{
	free(o->param_kv);
	free((char *)o->state_dir);
	memset(o, 0, sizeof *o);
}

int drr_cli_parse(int argc, char **argv, const char *verb, struct drr_opts *o,
		  const char **file)
{
	enum { O_PARAM = 256, O_ENV, O_YES, O_DRY, O_STATE, O_JSON, O_MAXP, O_NOCOLOR, O_HELP,
	       O_NORB };
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
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	memset(o, 0, sizeof *o);
	o->max_parallel = 32;
	o->color = isatty(1) && !getenv("NO_COLOR");
	o->param_kv = drr_xcalloc((size_t)argc + 1, sizeof *o->param_kv);
	char *state = NULL;
	optind = 1;
	opterr = 0;
	for (;;) {
		int c = getopt_long(argc, argv, "+:y", lo, NULL);
		if (c == -1) {
			/* flags may also follow the runbook: drrun run rb.lua --yes */
			if (optind < argc && !*file) {
				*file = argv[optind++];
				continue;
			}
			break;
		}
		switch (c) {
		case O_PARAM: o->param_kv[o->nparam_kv++] = optarg; break;
		case O_ENV: o->env_name = optarg; break;
		case 'y':
		case O_YES: o->yes = 1; break;
		case O_DRY: o->dry_run = 1; break;
		case O_STATE: free(state); state = drr_xstrdup(optarg); break;
		case O_JSON: o->json = 1; break;
		case O_NOCOLOR: o->color = 0; break;
		case O_NORB: o->no_rollback = 1; break;
		case O_MAXP: {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > 100000) {
				fprintf(stderr, "drrun %s: --max-parallel wants a number from 1 to "
					"100000, not '%s'\n", verb, optarg);
				goto usage;
			}
			o->max_parallel = (int)n;
			break;
		}
		case O_HELP:
			drr_cli_help(stdout, verb);
			free(state);
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
	if (!*file) {
		fprintf(stderr, "drrun %s: which runbook? (drrun %s RUNBOOK.lua)\n", verb, verb);
		goto usage;
	}
	o->state_dir = state ? state : default_state_dir();
	return 0;
usage:
	free(state);
	fprintf(stderr, "Try 'drrun help %s'.\n", verb);
	return DRR_EXIT_USAGE;
}

struct drr_runbook *drr_cli_load(const char *file, const struct drr_opts *o, int *rc)
{
	struct drr_diag d = { 0 };
	struct stat st;
	if (stat(file, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "drrun: %s: %s\n", file,
			errno ? strerror(errno) : "not a regular file");
		*rc = 66;
		return NULL;
	}
	struct drr_runbook *rb = drr_runbook_load(file, &d);
	if (rb)
		drr_runbook_bind(rb, o, &d);
	if (rb && d.n > 0) {
		drr_runbook_free(rb);
		rb = NULL;
	}
	if (!rb) {
		for (int i = 0; i < d.n; i++)
			fprintf(stderr, "%s\n", d.msgs[i]);
		fprintf(stderr, "drrun: %d error%s in %s; nothing was run\n", d.n,
			d.n == 1 ? "" : "s", file);
		*rc = DRR_EXIT_INVALID;
	}
	drr_diag_free(&d);
	return rb;
}
