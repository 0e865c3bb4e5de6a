#!/usr/bin/env python3
"""Crash torture: a 30-step runbook whose steps append their name to a
ledger file (a real side effect) is killed with SIGKILL at random moments,
then resumed until it completes.  For every trial:
  - the run ends completed and `drrun audit verify` passes;
  - every step is in the ledger at least once;
  - a step that was never in flight at a kill is in the ledger exactly once
    (so a step the journal recorded as completed is never run again);
  - a step in flight at k kills is in the ledger at most 1 + k times.
Usage: torture.py DRRUN SCRATCH [--trials N] [--seed S]
Prints the seed; exits non-zero on the first violated trial."""
import argparse, json, os, random, shutil, signal, subprocess, sys, time

LAYERS, WIDTH = 5, 6  # 30 steps


def runbook(rng):
    lines = ['local exec = require "drrun.exec"', 'runbook { name = "torture" }']
    for layer in range(LAYERS):
        for i in range(WIDTH):
            name = f"s{layer}_{i}"
            after = ""
            if layer:
                deps = rng.sample(range(WIDTH), 2)
                after = "after = { %s }, " % ", ".join(f'"s{layer - 1}_{d}"' for d in deps)
            once = "once = true, " if (layer * WIDTH + i) % 7 == 3 else ""
            ms = rng.randint(30, 90)
            lines.append(
                f'step "{name}" {{ {after}{once}run = function(ctx)\n'
                f'  drrun.sleep("{ms}ms")\n'
                f'  local r = drrun.must(exec.run{{ "sh", "-c", "echo {name} >> ledger" }})\n'
                f'  assert(r.status == 0, r.stderr)\n'
                f'  return {{ step = "{name}", ms = {ms} }}\n'
                f'end }}')
    return "\n".join(lines) + "\n"


def journal(state):
    runs = os.path.join(state, "runs")
    ids = [i for i in (os.listdir(runs) if os.path.isdir(runs) else [])
           if os.path.exists(os.path.join(runs, i, "journal.jsonl"))]
    if len(ids) != 1:
        return None, []
    recs = []
    with open(os.path.join(runs, ids[0], "journal.jsonl"), "rb") as f:
        lines = f.read().split(b"\n")
    for n, line in enumerate(lines, 1):
        try:
            recs.append(json.loads(line))
        except ValueError:
            # only the last line, without its newline, may be torn by a kill
            if n != len(lines):
                raise Torn(f"{ids[0]}: journal line {n} of {len(lines) - 1} is not JSON")
    return ids[0], recs


class Torn(Exception):
    pass


def inflight(recs):
    started, ended = set(), set()
    for r in recs:
        if r.get("type") == "step_start":
            started.add(r["step"]); ended.discard(r["step"])
        elif r.get("type") == "step_end":
            ended.add(r["step"])
    return started - ended, ended


def trial(drrun, d, rng, n):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    with open(os.path.join(d, "rb.lua"), "w") as f:
        f.write(runbook(rng))
    state = os.path.join(d, "state")
    kills, resumes, in_flight_count = 0, 0, {}
    # a sanitizer build's reports go to files, checked at the end of the trial
    san = os.path.join(d, "sanitizer")
    env = dict(os.environ, NO_COLOR="1")
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        env[var] = ":".join(filter(None, [env.get(var), "log_path=" + os.path.join(san, "report")]))

    def start(args):
        return subprocess.Popen([drrun] + args + ["--state-dir", state, "--yes"], cwd=d, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(d, "stderr.txt"), "ab"))

    p = start(["run", "rb.lua"])
    plan = [rng.uniform(0.0, 0.5)] + ([rng.uniform(0.0, 0.3)] if rng.random() < 0.5 else [])
    run_id = None
    for attempt in range(12):
        delay = plan[attempt] if attempt < len(plan) else None
        if delay is not None:
            time.sleep(delay)
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.wait()
            run_id, recs = journal(state)
            for s in inflight(recs)[0]:
                in_flight_count[s] = in_flight_count.get(s, 0) + 1
        else:
            p.wait(timeout=60)
            run_id, recs = journal(state)
        ends = [r for r in recs if r.get("type") in ("run_end", "run_resume")]
        if ends and ends[-1]["type"] == "run_end":
            if ends[-1]["status"] != "completed":
                return f"trial {n}: the run ended {ends[-1]['status']}: {ends[-1].get('reason')}"
            break
        if run_id is None:
            p = start(["run", "rb.lua"])  # killed before its journal existed
            continue
        p = start(["resume", run_id])
        resumes += 1
    else:
        return f"trial {n}: the run did not complete after 12 sessions"
    if p.poll() is None:
        p.wait()
    v = subprocess.run([drrun, "audit", "verify", run_id, "--state-dir", state],
                       capture_output=True, text=True)
    if v.returncode != 0:
        return f"trial {n}: audit verify failed: {v.stdout}{v.stderr}"
    reports = sorted(os.listdir(san)) if os.path.isdir(san) else []
    if reports:
        with open(os.path.join(san, reports[0]), errors="replace") as f:
            return f"trial {n}: sanitizer report: {f.read().strip()[:1500]}"
    counts = {}
    with open(os.path.join(d, "ledger")) as f:
        for line in f:
            counts[line.strip()] = counts.get(line.strip(), 0) + 1
    for layer in range(LAYERS):
        for i in range(WIDTH):
            s = f"s{layer}_{i}"
            c, k = counts.get(s, 0), in_flight_count.get(s, 0)
            if c < 1:
                return f"trial {n}: step {s} never ran"
            if k == 0 and c != 1:
                return f"trial {n}: step {s} ran {c} times but was never in flight at a kill"
            if c > 1 + k:
                return f"trial {n}: step {s} ran {c} times, in flight at only {k} kills"
    return (kills, resumes, sum(in_flight_count.values()), sum(counts.values()) - LAYERS * WIDTH)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("drrun")
    ap.add_argument("scratch")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seed", type=int, default=20261122)
    a = ap.parse_args()
    print(f"torture: {a.trials} trials, seed {a.seed}")
    rng = random.Random(a.seed)
    drrun = os.path.abspath(a.drrun)
    totals = [0, 0, 0, 0]
    if a.trials < 1:
        print(f"FAIL crash-resume: --trials {a.trials}: nothing would be tested")
        return 1
    for n in range(1, a.trials + 1):
        try:
            r = trial(drrun, os.path.join(a.scratch, f"trial-{n:02d}"), rng, n)
        except Torn as e:
            r = f"trial {n}: {e}"
        if isinstance(r, str):
            print("FAIL crash-resume: " + r)
            return 1
        totals = [x + y for x, y in zip(totals, r)]
        shutil.rmtree(os.path.join(a.scratch, f"trial-{n:02d}"), ignore_errors=True)
    if totals[0] == 0 or totals[2] == 0:
        print(f"FAIL crash-resume: {totals[0]} kills, {totals[2]} steps in flight at a kill: "
              "no trial crashed a run in the middle of a step")
        return 1
    print(f"ok crash-resume ({a.trials} trials, seed {a.seed})")
    print(f"torture: {totals[0]} kills, {totals[1]} resumes, {totals[2]} steps in flight "
          f"at a kill, {totals[3]} re-runs of those; every run completed and verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
