/*
 * runbook/runbook.h - a runbook loaded into immutable C structs: its
 * declarations, its steps and their dependency graph, and the options that
 * bind it to one run.
 */
#ifndef DRR_RUNBOOK_H
#define DRR_RUNBOOK_H

#include "core/core.h"

/* ---- graph.c: the step dependency graph -------------------------------- */

struct drr_gnode {
	const char *name;
	const char **after; /* names this node waits for */
	int nafter;
	int line;
	int *deps; /* resolved indices, filled by drr_graph_resolve */
	int ndeps;
};
/* Resolve names to indices; report duplicate names, unknown dependencies and
 * every cycle ("a -> b -> a") into d.  Returns the number of errors. */
int drr_graph_resolve(struct drr_gnode *nodes, int n, const char *file, struct drr_diag *d);
/* Topological levels (wave numbers) for plan output; level[i] >= 0. */
void drr_graph_levels(const struct drr_gnode *nodes, int n, int *level);

/* ---- runbook.c: loading and validation -------------------------------- */

/* a param's type = "..." (the order of params.c's names) */
enum { DRR_PT_STRING, DRR_PT_NUMBER, DRR_PT_INTEGER, DRR_PT_BOOLEAN, DRR_PT_DURATION, DRR_PT_URL };

struct drr_param {
	char *name;
	char *doc;
	int required;
	int has_default;
	int type; /* DRR_PT_*: declared, else the default's (string without one) */
};

struct drr_retry {
	int attempts;	  /* total attempts, >= 1 */
	double delay;	  /* seconds before attempt 2 */
	double backoff;	  /* multiplier per further attempt */
	double max_delay; /* cap; 0 = none */
};

enum {
	DRR_DRILL_RUN,	/* a drill runs the step's run function (the default) */
	DRR_DRILL_SKIP, /* a drill skips the step */
	DRR_DRILL_FN	/* a drill runs the step's drill function instead */
};

enum {
	DRR_DENY_STOP,	   /* a declined approval stops the run (resumable) */
	DRR_DENY_ROLLBACK /* a declined approval rolls back what was done */
};

/* approve = "question" | function(ctx) | { question, quorum, approvers,
 * timeout, default, on_deny } */
struct drr_gate {
	int question_ref; /* approve = function(ctx): the question; LUA_NOREF */
	int table;	  /* written as a table: answers may come from elsewhere */
	int quorum;	  /* approvals needed, >= 1 */
	char **approvers; /* who may answer; none: anyone */
	int napprovers;
	double timeout;	 /* seconds; 0 = wait for ever */
	int on_timeout;	 /* the default: 1 approve, 0 deny */
	int on_deny;	 /* DRR_DENY_* */
	int notify_ref;	 /* notify = function(ctx, request): LUA_NOREF */
};

struct drr_step {
	char *name;
	char *phase;
	int teardown;	/* phase "teardown": runs last, whatever happened */
	int drill;	/* DRR_DRILL_* */
	int drill_ref;	/* the drill function, or LUA_NOREF */
	int production; /* production = true: a drill must skip it or replace it */
	char *doc;
	char *approve; /* the question, or what to show for a function's; NULL: no gate */
	struct drr_gate gate;
	int once;
	double timeout; /* seconds; 0 = none */
	struct drr_retry retry;
	int line;
	int run_ref, rollback_ref, when_ref; /* LUA_NOREF when absent */
	int exec_env_ref; /* exec.env, the runbook's merged under the step's, or LUA_NOREF */
	struct drr_gnode *g;		     /* this step's graph node */
	char fp[65];			     /* drr_runbook_fingerprints; "" until */
};

/* ---- fingerprint.c: what a step is, for resume's change check ----------- */

/* SHA-256 (hex) of the step's fields and of its functions as stripped
 * bytecode with line numbers zeroed, plus the plain values they capture
 * (a string equal to a declared secret's value counts only as "secret"). */
void drr_step_fingerprint(lua_State *L, const struct drr_step *s, char **secrets, int nsecrets,
			  char out[65]);

struct drr_runbook {
	lua_State *L;
	char *path; /* as given on the command line */
	char *dir;  /* directory of the runbook, for local require */
	char *name, *description;
	int line;	 /* of runbook{} */
	double rto, rpo; /* seconds; 0 = not declared */
	/* what a run is held to: rto/rpo, or the selected env's (drr_runbook_bind) */
	double obj_rto, obj_rpo;
	char *obj_from; /* the env's name when it overrides rto or rpo, else NULL */
	struct drr_budget {
		char *phase;
		double secs;
		int line;
	} *budgets; /* runbook{ budgets = { restore = "20m" } }, sorted by phase */
	int nbudgets;
	char sha256[65];
	struct drr_param *params;
	int nparams;
	char **secrets;
	int nsecrets;
	char **envs; /* declared environment names */
	int nenvs;
	struct drr_step *steps;
	int nsteps;
	struct drr_gnode *graph;
	int env_ref;	/* runbook.env table */
	int params_ref; /* resolved params table, after drr_runbook_bind */
	int ctxenv_ref; /* selected env table */
	int exec_env_ref; /* runbook{ exec = { env = ... } }, or LUA_NOREF */
};

/* Options that shape loading and running. */
/* --on-interrupt: what the first SIGINT or SIGTERM does when it does not ask */
enum { DRR_INTERRUPT_ROLLBACK, DRR_INTERRUPT_PAUSE };

struct drr_opts {
	const char **param_kv; /* "k=v" strings from --param */
	int nparam_kv;
	const char *env_name;
	int yes, dry_run, json, max_parallel, color, drill, no_rollback, force;
	const char *state_dir;
	const char *key_file;
	int secrets_optional;	  /* plan, check: an unset secret is a warning */
	int on_interrupt;	  /* DRR_INTERRUPT_*: the first signal with nobody asked */
	const char *trigger_file; /* --trigger FILE */
	const char *lock;	  /* --lock etcd://HOST:PORT, or NULL: the flock alone */
	double lock_ttl;	  /* --lock-ttl: its lease's seconds (default 10) */
	json_t *trigger;	  /* its JSON object (owned), or NULL: ctx.trigger */
	char *key; /* audit key: DRRUN_AUDIT_KEY or the contents of --key-file */
	size_t klen;
	/* `drrun test`: approvals answered in advance, step name -> "yes" or
	 * "no" (borrowed), or NULL */
	json_t *answers;
};

/* When set (by `drrun test`), called protected on every runbook's fresh
 * lua_State once the built-in modules are in package.preload and before any
 * code loads, the sandbox's included: it installs a test case's fakes.  An
 * error it raises is a load error. */
extern lua_CFunction drr_runbook_preload;

/* Load and validate a runbook, adding every error found to d.  Returns NULL
 * only when the file could not be read or its top-level code failed; else
 * the runbook, which is usable only if d gained no errors.  Nothing has run
 * except the runbook's top-level code.  Its params are bound when runbook{}
 * is called, with o's --param values (o may be NULL: none). */
struct drr_runbook *drr_runbook_load(const char *path, const struct drr_opts *o,
				     struct drr_diag *d);
/* Resolve params, env and secrets against opts/environment; errors to d.
 * Returns the number of errors. */
int drr_runbook_bind(struct drr_runbook *rb, const struct drr_opts *o, struct drr_diag *d);
void drr_runbook_free(struct drr_runbook *rb);
/* Fill every step's fp (drr_step_fingerprint), for the verbs that record or
 * compare them (run, resume, rollback); check and plan never pay for it.
 * Call right after loading, before anything runs. */
void drr_runbook_fingerprints(struct drr_runbook *rb);
/* ---- drill.c: drills, teardown and objectives ------------------------------ */

/* Checks of the loaded steps that span several of them: teardown steps come
 * only after teardown steps and ask no approval, nothing comes after a
 * teardown step, every budget names a phase some step has. */
void drr_runbook_check_phases(struct drr_runbook *rb, const char *file, struct drr_diag *d);
/* At bind: the objectives (the selected env's rto/rpo override the
 * runbook's) and, for a drill, the production guard.  Errors to d. */
void drr_runbook_bind_drill(struct drr_runbook *rb, const struct drr_opts *o, struct drr_diag *d);

/* The line, at or after `from`, where field `name = ` is written, or `from`. */
int drr_runbook_field_line(const struct drr_runbook *rb, int from, const char *name);

/* ---- sandbox_load.c: other files in the runbook language --------------- */

/* Load a file that is written in the runbook language but declares other
 * things (serve's rules): a fresh state with the runbook's sandbox, where
 * each of decls (NULL-terminated) is a global C function with ud as its
 * upvalue 1, and runbook/step raise.  Returns the state, or NULL with the
 * error in d.  The caller lua_close()s it. */
lua_State *drr_sandbox_load(const char *path, const luaL_Reg *decls, void *ud,
			    struct drr_diag *d);
/* A protected call in such a state, bounded to 5 s of CPU, with file:line
 * on errors: LUA_OK, or the message (a string) on top.  [-(nargs+1), +nres|1] */
int drr_sandbox_pcall(lua_State *L, int nargs, int nres);

#endif
