#!/usr/bin/env python3
"""The scheduler's cost grows linearly with the number of steps, for a
chain and for independent steps alike (a scan of every step per pass and
per completion made it quadratic: a 10,000-step chain took 8x as long as
10,000 independent steps).
CPU time, not wall time, so a slow disk or a busy machine does not count.
Prints "ok NAME" or "FAIL NAME: why" per test.
Usage: scale.py DRRUN SCRATCH"""
import os, shutil, subprocess, sys, tempfile

DRRUN, SCRATCH = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
ENV = dict(os.environ, NO_COLOR="1")
N = 30000


class Fail(Exception):
    pass


def gen(path, chain, n=N):
    with open(path, "w") as f:
        f.write('runbook { name = "scale" }\n')
        f.write(f"for i = 1, {n} do\n")
        f.write('  step("s" .. i) { after = %s, run = function() return i end }\n'
                % ('i > 1 and ("s" .. (i - 1)) or nil' if chain else "nil"))
        f.write("end\n")


def cpu_of_run(rb):
    # the journal's fdatasyncs cost wall time, not CPU; tmpfs keeps the
    # test quick where there is one
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else SCRATCH
    state = tempfile.mkdtemp(prefix="drrun-scale-", dir=base)
    try:
        p = subprocess.Popen([DRRUN, "run", rb, "--state-dir", state], cwd=SCRATCH, env=ENV,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        _, status, ru = os.wait4(p.pid, 0)
        err = p.stderr.read().decode(errors="replace")
        p.stderr.close()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise Fail(f"{os.path.basename(rb)}: exit {code}: {err[-500:]}")
        return ru.ru_utime + ru.ru_stime
    finally:
        shutil.rmtree(state, ignore_errors=True)


def scales_linearly(chain):
    kind = "chained" if chain else "independent"
    small = os.path.join(SCRATCH, f"{kind}-{N // 3}.lua")
    big = os.path.join(SCRATCH, f"{kind}-{N}.lua")
    gen(small, chain, N // 3)
    gen(big, chain, N)
    s, b = cpu_of_run(small), cpu_of_run(big)
    # linear: 3x; quadratic: 9x.  The slack covers start-up and noise.
    if b > 4.5 * s + 0.3:
        raise Fail(f"{N // 3} {kind} steps took {s:.2f}s of CPU, {N} took {b:.2f}s")


def t_a_chain_three_times_longer_costs_three_times_more():
    scales_linearly(True)


def t_three_times_the_independent_steps_cost_three_times_more():
    scales_linearly(False)


TESTS = [t_a_chain_three_times_longer_costs_three_times_more,
         t_three_times_the_independent_steps_cost_three_times_more]


def main():
    os.makedirs(SCRATCH, exist_ok=True)
    bad = 0
    for t in TESTS:
        name = t.__name__[2:].replace("_", "-")
        try:
            t()
            print("ok " + name, flush=True)
        except Exception as e:
            bad += 1
            print(f"FAIL {name}: {type(e).__name__ if not isinstance(e, Fail) else ''}{e}",
                  flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
