/*
 * runbook/internal.h - what the files of runbook/ share (runbook.c: source,
 * declarations, validation, loading; sandbox.c; bind.c; params.c).  Not for the rest
 * of the engine: runbook/runbook.h is the public header.
 */
#ifndef DRR_RUNBOOK_INTERNAL_H
#define DRR_RUNBOOK_INTERNAL_H

#include "runbook/runbook.h"

#define RUNBOOK_MAX ((size_t)64 << 20) /* a runbook, or a module it requires */

/* registry keys of the loading state */
#define K_RB "drrun.runbook"
#define K_RBLINE "drrun.runbook_line"
#define K_STEPS "drrun.steps"
#define K_ENV "drrun.sandbox"
#define K_DIR "drrun.dir"
#define K_LOADED "drrun.local_loaded"

/* the runbook's text, indexed by line */
struct src {
	char *text;
	size_t len;
	int *starts; /* line i (1-based) begins at text + starts[i-1] */
	int nlines;
};
extern struct src *drr_rb_src; /* the runbook being loaded (one at a time) */
extern int drr_rb_limit;       /* the line where runbook{}'s fields end */

int drr_rb_is_ident(int c);
/* The line, from `from` up to `to` (0: the end), where `name =` is written. */
int drr_rb_find_field(const struct src *s, int from, int to, const char *name);
/* Build the sandbox (globals, print, require, read-only tables).  [-0, +1, e] */
int drr_rb_build_sandbox(lua_State *L);
/* runbook{} and step "name" {}, the two declarations.  */
int drr_rb_l_runbook(lua_State *L);
int drr_rb_l_step(lua_State *L);
/* A protected call under the load CPU bound; msgh as lua_pcall's. */
int drr_rb_bounded(lua_State *L, int nargs, int nres, int msgh);
/* The error on top of L as a diagnostic "file:line: when: message". */
void drr_rb_diag_lua_error(lua_State *L, struct drr_diag *d, const char *file, const char *when);
/* Message handler: the error with a traceback.  */
int drr_rb_traceback(lua_State *L);

/* What the readers of runbook{} and step{} fields share while loading. */
struct ld {
	struct drr_runbook *rb;
	struct drr_diag *d;
	const char *file;
	lua_State *L;
	int rb_line;
	int *lines, *sorted; /* step lines, freed by the loader even if reading raised */
};

/* Report keys of the table at idx that are not in `known`. */
void drr_rb_check_fields(struct ld *ld, int idx, const char *const *known, int line, int limit,
			 const char *what);
/* An optional duration field of the table at idx; dflt when absent or bad. */
double drr_rb_get_duration(struct ld *ld, int idx, const char *field, int line, int limit,
			   const char *what, double dflt, int allow_zero);
/* gate.c: the step's `approve` field, into s->approve and s->gate. */
void drr_rb_parse_gate(struct ld *ld, int idx, struct drr_step *s, int limit, const char *what);
/* An optional string field of the table at idx (malloc'ed), or NULL. */
char *drr_rb_get_string(struct ld *ld, int idx, const char *field, int line, int limit,
			const char *what);

/* ---- execenv.c ---------------------------------------------------------------- */

/* The `exec` field of the table at idx (runbook{} or a step, declared at
 * line): a registry ref to its env merged over the one of ref base (which
 * is returned as it is when the field is absent or wrong), or LUA_NOREF
 * when neither has one.  Errors to ld->d.  [-0, +0, e] */
int drr_rb_parse_exec(struct ld *ld, int idx, int line, int limit, const char *what, int base);

/* ---- params.c ---------------------------------------------------------------- */

/* runbook{ params = { ... } }, the table at idx written at line. */
void drr_rb_parse_params(struct ld *ld, int idx, int line);
/* The load of rb begins: runbook{} will bind its params with o's --param
 * values (o may be NULL: none), errors to d. */
void drr_rb_params_begin(struct drr_runbook *rb, const struct drr_opts *o, struct drr_diag *d);
/* runbook{} (written at line) was called: read its params and bind them
 * now, so the top-level code after it can read them.  [-0, +0, e] */
int drr_rb_params_declared(lua_State *L, int line);
/* The global `params`: a read-only view of the bound params.  [-0, +1, m] */
void drr_rb_push_params(lua_State *L);
/* The run's params table, from defaults and --param, into rb->params_ref;
 * errors to d.  -1 when there is no runbook{}.  [-0, +0, e] */
int drr_rb_bind_params(lua_State *L, struct drr_runbook *rb, const struct drr_opts *o,
		       struct drr_diag *d);

#endif
