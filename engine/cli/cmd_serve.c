/*
 * cmd_serve.c - `drrun serve --rules rules.lua`: the webhook listener and
 * the schedules (engine/serve/).
 */
#include "cli/cli.h"
#include "serve/serve.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
	"usage: drrun serve --rules RULES.lua [--listen 127.0.0.1:9095] [--state-dir DIR]\n"
	"                   [--tls-cert PEM --tls-key PEM] [--log-format logfmt|json]\n"
	"                   [--max-connections N] [--client-timeout DURATION]\n"
	"                   [--lock etcd://HOST:PORT [--lock-ttl DURATION]]\n";

static const char HELP[] =
	"\n"
	"Listen for Alertmanager, PagerDuty and signed generic webhooks, match the\n"
	"alerts against the rules file, and start the rule's runbook (`drrun run\n"
	"RUNBOOK --trigger FILE`) as a child process, once per dedupe key.  Every\n"
	"accepted alert is fdatasync'd to <state-dir>/serve/ before the 2xx answer.\n"
	"Schedules in the rules file start their runbooks on time.\n"
	"\n"
	"Endpoints: POST /hooks/alertmanager (DRRUN_ALERTMANAGER_TOKEN, Bearer or\n"
	"Basic), POST /hooks/pagerduty (DRRUN_PAGERDUTY_SECRET, comma-separated\n"
	"during rotation), POST /hooks/generic (DRRUN_WEBHOOK_SECRET,\n"
	"X-Drrun-Signature: t=...,v1=...), GET /healthz, /runs, /runs/ID, /metrics.\n"
	"A hook whose secret is not set refuses every request with 401.\n"
	"\n"
	"Flags:\n"
	"  --rules FILE         the rules file (required; check it with drrun check)\n"
	"  --listen HOST:PORT   where to listen (default 127.0.0.1:9095; port 0: any)\n"
	"  --state-dir DIR      as for run (also DRRUN_STATE_DIR)\n"
	"  --tls-cert/--tls-key PEM files: serve HTTPS\n"
	"  --log-format F       logfmt (default) or json, on stderr\n"
	"  --max-connections N  open connections at most (default 256)\n"
	"  --client-timeout D   drop a client silent for D (default 10s)\n"
	"  --lock etcd://H:P    dedupe keys in etcd (v3 JSON gateway): several serve\n"
	"                       instances on one etcd start one run per key; etcd\n"
	"                       down: no activation (fail closed)\n"
	"  --lock-ttl D         the etcd lease's TTL (default 10s): a dead instance's\n"
	"                       keys are free after it\n"
	"SIGTERM or SIGINT: stop accepting; runs already started finish.\n";

int cmd_serve(int argc, char **argv)
{
	enum {
		O_RULES = 256,
		O_LISTEN,
		O_LOCK,
		O_LOCKTTL,
		O_CERT,
		O_KEY,
		O_STATE,
		O_LOG,
		O_MAXC,
		O_CTO,
		O_HELP
	};
	static const struct option lo[] = {
		{ "rules", required_argument, NULL, O_RULES },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "lock", required_argument, NULL, O_LOCK },
		{ "lock-ttl", required_argument, NULL, O_LOCKTTL },
		{ "tls-cert", required_argument, NULL, O_CERT },
		{ "tls-key", required_argument, NULL, O_KEY },
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "log-format", required_argument, NULL, O_LOG },
		{ "max-connections", required_argument, NULL, O_MAXC },
		{ "client-timeout", required_argument, NULL, O_CTO },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct serve_opts o = {
		.listen = "127.0.0.1:9095", .max_conns = 256, .conn_timeout = 10, .lock_ttl = 10
	};
	const char *log = "logfmt";
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		switch (c) {
		case O_RULES: o.rules = optarg; break;
		case O_LISTEN: o.listen = optarg; break;
		case O_LOCK: o.lock = optarg; break;
		case O_LOCKTTL:
			if (drr_duration_parse(optarg, &o.lock_ttl) < 0 || o.lock_ttl < 2 ||
			    o.lock_ttl > 3600) {
				drr_term_line(stderr, "drrun serve: --lock-ttl '%s': give 2s..1h",
					      optarg);
				return DRR_EXIT_USAGE;
			}
			break;
		case O_CERT: o.tls_cert = optarg; break;
		case O_KEY: o.tls_key = optarg; break;
		case O_STATE: o.state_dir = optarg; break;
		case O_LOG: log = optarg; break;
		case O_MAXC: {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > 65536) {
				fprintf(stderr, "drrun serve: --max-connections '%s': give 1..65536\n",
					optarg);
				return DRR_EXIT_USAGE;
			}
			o.max_conns = (int)n;
			break;
		}
		case O_CTO:
			if (drr_duration_parse(optarg, &o.conn_timeout) < 0 || o.conn_timeout < 1 ||
			    o.conn_timeout > 3600) {
				drr_term_line(stderr,
					      "drrun serve: --client-timeout '%s': give 1s..1h",
					      optarg);
				return DRR_EXIT_USAGE;
			}
			break;
		case 'h':
		case O_HELP: printf("%s%s", USAGE, HELP); return 0;
		default:
			drr_term_line(stderr, "drrun serve: unknown or incomplete flag '%s'",
				      argv[optind - 1]);
			fputs(USAGE, stderr);
			return DRR_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		drr_term_line(stderr, "drrun serve: unexpected argument '%s'", argv[optind]);
		return DRR_EXIT_USAGE;
	}
	if (!o.rules) {
		fprintf(stderr, "drrun serve: --rules FILE is required\n%s", USAGE);
		return DRR_EXIT_USAGE;
	}
	if (!!o.tls_cert != !!o.tls_key) {
		fprintf(stderr, "drrun serve: --tls-cert and --tls-key go together\n");
		return DRR_EXIT_USAGE;
	}
	if (!strcmp(log, "json"))
		o.log_json = 1;
	else if (strcmp(log, "logfmt")) {
		drr_term_line(stderr, "drrun serve: --log-format '%s': logfmt or json", log);
		return DRR_EXIT_USAGE;
	}
	char *sd = NULL;
	if (!o.state_dir) { /* as run: $DRRUN_STATE_DIR, $XDG_STATE_HOME/drrun, ~/.local/state/drrun */
		const char *e = getenv("DRRUN_STATE_DIR");
		if (e && *e)
			sd = drr_xstrdup(e);
		else if ((e = getenv("XDG_STATE_HOME")) && *e)
			sd = drr_xasprintf("%s/drrun", e);
		else if ((e = getenv("HOME")) && *e)
			sd = drr_xasprintf("%s/.local/state/drrun", e);
		if (!sd) {
			fprintf(stderr, "drrun serve: no state directory: give --state-dir or set "
					"DRRUN_STATE_DIR\n");
			return DRR_EXIT_USAGE;
		}
		o.state_dir = sd;
	} else if (!*o.state_dir) {
		fprintf(stderr, "drrun serve: --state-dir is empty\n");
		return DRR_EXIT_USAGE;
	}
	int rc = serve_main(&o);
	free(sd);
	return rc;
}
