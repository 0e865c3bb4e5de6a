/*
 * test/test.h - `drrun test`: runbook tests.  The parent (cli/cmd_test.c)
 * reads a test file, runs every case in a child drrun and checks the case's
 * journal; the child (case.c) runs one case with the real loader and
 * scheduler, fakes installed, faults injected, approvals answered and time
 * virtual.  stdlib/drrun/test.lua is the Lua half of both.
 */
#ifndef DRR_TEST_H
#define DRR_TEST_H

#include "run/run.h"

/* The child: run case `index` (1-based) of test_file against runbook, with
 * state_dir as its state directory.  Returns the run's exit code (or 64, 65,
 * 66, 75 as `drrun run` would).  The calls the guards stopped go to
 * <state_dir>/unfaked.txt, one a line. */
int drr_test_case_run(const char *test_file, int index, const char *runbook,
		      const char *state_dir);

/* Read a test file into L (a plain state with the built-in modules) with a
 * global `drrun`; leaves nothing on the stack.  LUA_OK, or an error code
 * with the message on the stack.  [-0, +(0|1), -] */
int drr_test_load_file(lua_State *L, const char *test_file);

#endif
