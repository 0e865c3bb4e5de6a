#!/usr/bin/env python3
"""Durable runs: tamper detection, the per-runbook lock, signals, a journal
that fills up at each kind of record, the order of journal writes and syncs
against the steps' side effects (strace), torn tails, changed runbooks, and
the rollback/status/log verbs.
Prints "ok NAME" or "FAIL NAME: why" per test.
Usage: durable.py DRRUN SCRATCH"""
import json, os, re, shutil, signal, subprocess, sys, time

DRRUN, SCRATCH = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
ENV = dict(os.environ, NO_COLOR="1")
ENV.pop("DRRUN_AUDIT_KEY", None)
# A sanitizer build's reports go to files, whatever a test does with drrun's
# stderr (many only look at its exit status or stdout); main() fails the
# test after which one appears.
SAN_LOGS = os.path.join(SCRATCH, "sanitizer")
for _var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
    ENV[_var] = ":".join(filter(None, [ENV.get(_var), "log_path=" + os.path.join(SAN_LOGS, "report")]))

LEDGER_RB = '''local exec = require "drrun.exec"
runbook { name = "%(name)s" }
local function mk(name, after, ms)
  step(name) { after = after,
    run = function(ctx)
      drrun.sleep(ms or "50ms")
      drrun.must(exec.run{ "sh", "-c", "echo " .. name .. " >> ledger" })
      return { n = name }
    end,
    rollback = function(ctx, out)
      drrun.sleep("%(rbms)s")
      drrun.must(exec.run{ "sh", "-c", "echo undo-" .. out.n .. " >> ledger" })
    end }
end
mk("a"); mk("b", "a"); mk("c", "a"); mk("d", { "b", "c" }, "%(dms)s"); mk("e", "d")
'''


class Fail(Exception):
    pass


def case_dir(name):
    d = os.path.join(SCRATCH, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def write_rb(d, name="durable", dms="50ms", text=None, rbms="0ms"):
    with open(os.path.join(d, "rb.lua"), "w") as f:
        f.write(text if text is not None else LEDGER_RB % {"name": name, "dms": dms, "rbms": rbms})


def drrun(d, *args, env=None, timeout=60):
    return subprocess.run([DRRUN, *args], cwd=d, env=env or ENV, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def run_id(d):
    ids = sorted(os.listdir(os.path.join(d, "state", "runs")))
    if len(ids) != 1:
        raise Fail(f"want one run, found {ids}")
    return ids[0]


def journal_path(d):
    return os.path.join(d, "state", "runs", run_id(d), "journal.jsonl")


def records(d):
    with open(journal_path(d)) as f:
        return [json.loads(l) for l in f if l.strip()]


def ledger(d):
    p = os.path.join(d, "ledger")
    return open(p).read().split() if os.path.exists(p) else []


def expect(cond, why):
    if not cond:
        raise Fail(why)


def verify(d, *extra, env=None):
    return drrun(d, "audit", "verify", run_id(d), "--state-dir", "state", *extra, env=env)


def completed_run(d, env=None):
    write_rb(d)
    r = drrun(d, "run", "rb.lua", "--state-dir", "state", env=env)
    expect(r.returncode == 0, f"run exit {r.returncode}: {r.stderr}")
    return r


def rewrite(d, lines):
    with open(journal_path(d), "w") as f:
        f.writelines(lines)


def raw_lines(d):
    with open(journal_path(d)) as f:
        return f.readlines()


def seal(rec, prev):
    """A journal or ledger line as someone without the key would write it."""
    import hashlib
    rec.pop("hash", None); rec.pop("mac", None)
    rec["prev"] = prev
    body = json.dumps(rec, separators=(",", ":"))
    h = hashlib.sha256(body.encode()).hexdigest()
    return body[:-1] + ',"hash":"' + h + '"}\n', h


def rewrite_ledger(d, hashes):
    """Rewrite the state dir's ledger so that its entries for this run name
    the journal hashes given (record k has hashes[k-1]), chain and all."""
    p = os.path.join(d, "state", "ledger.jsonl")
    out, prev = [], "0" * 64
    for line in open(p).readlines():
        rec = json.loads(line)
        if rec["run"] == run_id(d):
            rec["head"] = hashes[rec["records"] - 1]
        line, prev = seal(rec, prev)
        out.append(line)
    open(p, "w").writelines(out)


def expect_bad(d, seq, word, env=None, extra=()):
    v = verify(d, *extra, env=env)
    expect(v.returncode == 1, f"verify exit {v.returncode}, want 1: {v.stdout}{v.stderr}")
    m = re.search(r"seq (\d+): (.*)", v.stdout)
    expect(m and int(m.group(1)) == seq, f"want seq {seq}: {v.stdout.strip()}")
    expect(word in m.group(2), f"want '{word}' in the reason: {v.stdout.strip()}")


# ---- tamper ---------------------------------------------------------------

def t_verify_intact():
    d = case_dir("intact")
    completed_run(d)
    v = verify(d)
    expect(v.returncode == 0 and v.stdout.startswith("ok:"), v.stdout + v.stderr)
    expect("hash chain intact" in v.stdout, v.stdout)
    v = drrun(d, "audit", "verify", journal_path(d))  # by file too
    expect(v.returncode == 0, v.stdout + v.stderr)


def t_tamper_edit():
    d = case_dir("edit")
    completed_run(d)
    lines = raw_lines(d)
    lines[4] = lines[4].replace('"attempt":1', '"attempt":7', 1) if '"attempt":1' in lines[4] \
        else lines[4].replace('"completed"', '"failed"', 1)
    rewrite(d, lines)
    expect_bad(d, 5, "edited")


def t_tamper_delete():
    d = case_dir("delete")
    completed_run(d)
    lines = raw_lines(d)
    del lines[3]
    rewrite(d, lines)
    expect_bad(d, 4, "removed")


def t_tamper_swap():
    d = case_dir("swap")
    completed_run(d)
    lines = raw_lines(d)
    lines[5], lines[6] = lines[6], lines[5]
    rewrite(d, lines)
    expect_bad(d, 6, "reordered")


def t_tamper_truncate():
    d = case_dir("truncate")
    completed_run(d)
    lines = raw_lines(d)
    n = len(lines)
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
    rewrite(d, lines)
    expect_bad(d, n, "truncated")


def t_tamper_rewrite_chain():
    """Someone without the key rewrites a record and recomputes every hash:
    the plain chain verifies, the HMACs do not."""
    d = case_dir("rewrite")
    env = dict(ENV, DRRUN_AUDIT_KEY="audit-key-for-tests")
    completed_run(d, env=env)
    v = verify(d, env=env)
    expect(v.returncode == 0 and "HMACs verified" in v.stdout, v.stdout + v.stderr)
    import hashlib
    out, prev = [], "0" * 64
    for line in raw_lines(d):
        rec = json.loads(line)
        if rec["type"] == "step_end" and rec["step"] == "b":
            rec["duration"] = 0.5
        rec.pop("hash"); rec.pop("mac", None)
        rec["prev"] = prev
        body = json.dumps(rec, separators=(",", ":"))
        h = hashlib.sha256(body.encode()).hexdigest()
        out.append(body[:-1] + ',"hash":"' + h + '"}\n')
        prev = h
    rewrite(d, out)
    # the ledger still holds the old heads: even without the key, that shows
    v = verify(d)
    expect(v.returncode == 1 and "ledger" in v.stdout, f"the ledger shows the rewrite: {v.stdout}")
    rewrite_ledger(d, [json.loads(l)["hash"] for l in out])
    v = verify(d)  # no key: both chains rewritten consistently pass, as documented
    expect(v.returncode == 0, "a rewritten chain without the key should pass the plain check")
    expect_bad(d, 1, "mac", env=env)
    kf = os.path.join(d, "key")
    open(kf, "w").write("audit-key-for-tests\n")
    expect_bad(d, 1, "mac", extra=("--key-file", kf))


def t_key_never_journalled():
    d = case_dir("keysecret")
    env = dict(ENV, DRRUN_AUDIT_KEY="k-9f8e7d6c5b4a")
    r = completed_run(d, env=env)
    expect("k-9f8e7d6c5b4a" not in open(journal_path(d)).read(), "audit key in the journal")
    expect("k-9f8e7d6c5b4a" not in r.stdout + r.stderr, "audit key in the output")


# ---- the lock ---------------------------------------------------------------

def t_lock():
    d = case_dir("lock")
    write_rb(d, dms="2s")
    p = subprocess.Popen([DRRUN, "run", "rb.lua", "--state-dir", "state"], cwd=d, env=ENV,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.isdir(os.path.join(d, "state", "runs")) and os.listdir(os.path.join(d, "state", "runs")):
                break
            time.sleep(0.02)
        rid = run_id(d)
        r = drrun(d, "run", "rb.lua", "--state-dir", "state")
        expect(r.returncode == 75, f"second run exit {r.returncode}, want 75")
        expect(rid in r.stderr and str(p.pid) in r.stderr, f"names run and pid: {r.stderr}")
        s = drrun(d, "status", "--state-dir", "state")
        expect(re.search(rid + r".*running", s.stdout), f"status shows running: {s.stdout}")
        r = drrun(d, "resume", rid, "--state-dir", "state")
        expect(r.returncode == 75, f"resume of a running run exit {r.returncode}, want 75")
        # kill it in d's 2 s, never while a is in flight: a step in flight at a
        # crash runs again on resume (at least once), which is not what this
        # test counts.  b and c start only once a's step_end is on disk.
        for _ in range(500):
            if "b" in ledger(d) and "c" in ledger(d):
                break
            time.sleep(0.01)
        expect("b" in ledger(d) and "c" in ledger(d), f"b and c never ran: {ledger(d)}")
        p.send_signal(signal.SIGKILL)
        p.wait()
        s = drrun(d, "status", "--state-dir", "state")
        expect(re.search(rid + r".*crashed \(resumable\)", s.stdout), f"status after kill: {s.stdout}")
        r = drrun(d, "resume", rid, "--state-dir", "state")  # the lock died with the process
        expect(r.returncode == 0, f"resume after a crash: exit {r.returncode}: {r.stderr}")
        expect(sorted(ledger(d)).count("a") == 1, f"a ran once: {ledger(d)}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# ---- signals ----------------------------------------------------------------

def start_and_wait_for(d, step, *extra):
    p = subprocess.Popen([DRRUN, "run", "rb.lua", "--state-dir", "state", *extra], cwd=d, env=ENV,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    for _ in range(500):
        if step in ledger(d):
            return p
        time.sleep(0.01)
    p.kill()
    raise Fail(f"step {step} never ran")


def t_sigint_rolls_back():
    d = case_dir("sigint")
    write_rb(d, dms="3s")
    p = start_and_wait_for(d, "c")
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    expect(p.returncode == 3, f"exit {p.returncode}, want 3")
    recs = records(d)
    expect(recs[-1]["type"] == "run_end" and recs[-1]["status"] == "interrupted", recs[-1])
    rb = [r["step"] for r in recs if r["type"] == "rollback_start"]
    expect(set(rb) == {"a", "b", "c"} and rb[-1] == "a", f"rollbacks {rb}")
    expect("d" not in ledger(d), "d was cancelled before its side effect")
    expect(verify(d).returncode == 0, "verify")


def t_sigint_no_rollback():
    d = case_dir("sigint-norb")
    write_rb(d, dms="3s")
    p = start_and_wait_for(d, "c", "--no-rollback")
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=30)
    expect(p.returncode == 3, f"exit {p.returncode}")
    expect(not [r for r in records(d) if r["type"] == "rollback_start"], "no rollback ran")


def expect_rolled_back(d, before_resume):
    """After the resumed session: what the first session had done is undone,
    newest first, and nothing ran forward again."""
    led = ledger(d)
    expect(led[:len(before_resume)] == before_resume, f"the ledger only grew: {led}")
    new = led[len(before_resume):]
    expect(all(x.startswith("undo-") for x in new), f"the resume only rolled back: {new}")
    for s in "abcde":
        last_do = max((i for i, x in enumerate(led) if x == s), default=-1)
        last_undo = max((i for i, x in enumerate(led) if x == "undo-" + s), default=-1)
        expect(last_do < last_undo or last_do == -1, f"{s} ends undone: {led}")
    recs = records(d)
    res = [r for r in recs if r["type"] == "run_resume"]
    expect(res and res[-1]["mode"] == "rollback" and res[-1]["rerun"] == [], f"run_resume {res}")
    after = recs[recs.index(res[-1]):]
    expect(not [r for r in after if r["type"] == "step_start"], "no step started after resume")
    expect(recs[-1]["type"] == "run_end" and recs[-1]["status"] == "interrupted",
           f"the resumed run ends interrupted: {recs[-1]}")


def t_double_sigint_resumable():
    """A second signal stops the rollback at once; resume finishes the
    rollback (it never completes the run the operator cancelled)."""
    d = case_dir("sigint2")
    write_rb(d, dms="3s", rbms="1s")  # the second signal lands mid-rollback
    p = start_and_wait_for(d, "c")
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=30)
    expect(p.returncode == 3, f"exit {p.returncode}")
    end = records(d)[-1]
    expect(end["type"] == "run_end" and end["status"] == "interrupted" and end.get("resumable"),
           f"last record {end}")
    before = ledger(d)
    r = drrun(d, "resume", run_id(d), "--state-dir", "state")
    expect(r.returncode == 3, f"resume exit {r.returncode}, want 3: {r.stderr}")
    expect_rolled_back(d, before)
    expect(verify(d).returncode == 0, "verify")


def t_sigkill_during_rollback_resumes_rollback():
    """SIGTERM, the rollback begins, SIGKILL in the middle of it, resume: the
    rollback goes on from where it stopped; d (cancelled) and e never run."""
    d = case_dir("kill-in-rollback")
    write_rb(d, dms="3s", rbms="1s")
    p = start_and_wait_for(d, "c")
    time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    for _ in range(300):
        if any(x.startswith("undo-") for x in ledger(d)):
            break
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=30)
    recs = records(d)
    expect(recs[-1]["type"] != "run_end", "killed before run_end")
    expect([r for r in recs if r["type"] == "run_interrupt" and r["signal"] == "SIGTERM"],
           "the interrupt is journalled")
    before = ledger(d)
    s = drrun(d, "status", "--state-dir", "state")
    r = drrun(d, "resume", run_id(d), "--state-dir", "state")
    expect(r.returncode == 3, f"resume exit {r.returncode}, want 3: {r.stdout}{r.stderr}")
    expect_rolled_back(d, before)
    undos = [x for x in ledger(d) if x.startswith("undo-")]
    expect(sorted(set(undos)) == ["undo-a", "undo-b", "undo-c"] and undos[-1] == "undo-a",
           f"b and c undone, then a: {undos}")
    expect("d" not in ledger(d) and "e" not in ledger(d), f"nothing went forward: {ledger(d)}")
    expect(verify(d).returncode == 0, "verify")
    r = drrun(d, "resume", run_id(d), "--state-dir", "state")
    expect(r.returncode == 65, f"a finished rollback is not resumed again: {r.returncode}")


def append_record(d, rec):
    """Append a record with a correct chain, as drrun would have (no key)."""
    import hashlib
    last = json.loads(raw_lines(d)[-1])
    body = dict(seq=last["seq"] + 1, ts=last["ts"], run=last["run"])
    body.update(rec)
    body["prev"] = last["hash"]
    text = json.dumps(body, separators=(",", ":"))
    h = hashlib.sha256(text.encode()).hexdigest()
    with open(journal_path(d), "a") as f:
        f.write(text[:-1] + ',"hash":"' + h + '"}\n')


def t_crash_after_interrupt_before_rollback():
    """A crash between the interrupt and the first rollback_start (steps still
    being cancelled): resume rolls back, and does not re-run what was in flight."""
    d = case_dir("kill-after-interrupt")
    write_rb(d, dms="3s")
    p = start_and_wait_for(d, "c")
    for _ in range(300):
        if [r for r in records(d) if r["type"] == "step_start" and r["step"] == "d"]:
            break
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=30)
    append_record(d, {"type": "run_interrupt", "signal": "SIGTERM", "rollback": True})
    before = ledger(d)
    r = drrun(d, "resume", run_id(d), "--state-dir", "state")
    expect(r.returncode == 3, f"resume exit {r.returncode}, want 3: {r.stdout}{r.stderr}")
    expect_rolled_back(d, before)
    expect("d" not in ledger(d) and "e" not in ledger(d), f"d not re-run: {ledger(d)}")
    ends = [r for r in records(d) if r["type"] == "step_end" and r["step"] == "d"]
    expect(ends and ends[-1]["status"] == "cancelled", f"d closed as cancelled: {ends}")
    expect(verify(d).returncode == 0, "verify")


# ---- a full state dir -----------------------------------------------------------

def crashed(r):
    """Why a finished drrun looks crashed or hung, or None."""
    if r.returncode == 124:
        return "did not stop within its time (a hang or a busy loop)"
    if r.returncode < 0 or r.returncode > 128:
        return f"killed by signal {abs(r.returncode) % 128} (exit {r.returncode})"
    for word in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "Segmentation"):
        if word in r.stderr:
            return f"{word} in its stderr"
    return None


def says_journal_failed(r, reason):
    """The run said, in one line of stderr, that the journal could not be
    written, and the OS's reason."""
    lines = [l for l in r.stderr.splitlines() if "journal" in l and reason in l]
    expect(lines, f"no stderr line names the journal and '{reason}': {r.stderr.strip()[-600:]}")


def leftovers(state):
    """Files under STATE that a finished run must not leave: a journal still
    under its temporary name, or any other temporary file."""
    out = []
    for root, _, files in os.walk(state):
        out += [os.path.join(root, f) for f in files if f.endswith(".new") or ".tmp" in f]
    return out


def on_tmpfs(d, size, *args, timeout=60):
    """drrun ARGS --state-dir fs, with fs a tmpfs of SIZE of its own: a real
    filesystem that fills up.  The mount lives in a private mount namespace
    (unshare), so it goes away with the process, however the test ends.  The
    state dir is then copied to d/state, where the checks look."""
    script = ('mount -t tmpfs -o size="$1",mode=0700 drrun-test fs || exit 97\n'
              'shift; timeout -k 5 "$0" "$@" --state-dir fs; rc=$?\n'
              'cp -a fs/. state/ || exit 98\n'
              'exit $rc\n')
    os.makedirs(os.path.join(d, "fs"))
    os.makedirs(os.path.join(d, "state"))
    ns = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        ns[1:1] = ["--user", "--map-root-user"]
    r = subprocess.run(ns + ["bash", "-c", script, str(timeout), size, DRRUN, *args], cwd=d,
                       env=ENV, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout + 30)
    expect(r.returncode not in (97, 98), "cannot run drrun on a tmpfs of its own "
           f"(needs root or user namespaces): {r.stderr.strip()}")
    return r


FULL_RB = '''local exec = require "drrun.exec"
runbook { name = "full" }
step "before" { run = function() return "ok" end }
step "chatty" { after = "before", run = function(ctx)
  for i = 1, 5000 do ctx.log("line %d %s", i, string.rep("x", 200)) end
  drrun.must(exec.run { "sh", "-c", "echo chatty >> ledger" })
end }
step "later" { after = "chatty", run = function()
  drrun.must(exec.run { "sh", "-c", "echo later >> ledger" })
end }
'''


def t_state_dir_full():
    """The state dir's filesystem fills up in the middle of a step's ctx.log
    calls (a 64 KiB tmpfs; the step logs 1.3 MB): exit 75 with the reason, no
    crash, a journal that verifies up to its last whole record, and nothing
    done after the failed write."""
    d = case_dir("full")
    write_rb(d, text=FULL_RB)
    r = on_tmpfs(d, "64k", "run", "rb.lua")
    why = crashed(r)
    expect(not why, f"{why}: {r.stderr.strip()[-600:]}")
    expect(r.returncode == 75, f"exit {r.returncode}, want 75: {r.stderr.strip()[-600:]}")
    says_journal_failed(r, "No space left on device")
    raw = open(journal_path(d), "rb").read()
    expect(raw.endswith(b"\n"), "no half-written record")
    expect(len(raw) <= 64 * 1024, "within the filesystem's size")
    v = verify(d)
    expect(v.returncode == 0, f"what was written verifies: {v.stdout}{v.stderr}")
    recs = records(d)
    logs = [x for x in recs if x["type"] == "step_log" and x.get("step") == "chatty"]
    expect(len(logs) >= 10, f"the disk filled in the middle of ctx.log: {len(logs)} lines logged")
    expect(recs[-1] is logs[-1], f"the last record is a log line, not {recs[-1]['type']}")
    started = {x["step"] for x in recs if x["type"] == "step_start"}
    expect(started == {"before", "chatty"}, f"it stopped part-way: started {sorted(started)}")
    expect(not ledger(d), f"nothing ran after the failed write: {ledger(d)}")
    expect(not leftovers(os.path.join(d, "state")), f"left {leftovers(os.path.join(d, 'state'))}")


def t_file_limit_at_start():
    """A 4 KiB file-size limit with 40 independent steps: the journal fills up
    while the first pass records their step_starts, before any step runs."""
    d = case_dir("fsize")
    steps = "\n".join(f'step "s{i}" {{ run = function(ctx) ctx.log("%s", string.rep("x", 200)) '
                      f'return {{ pad = string.rep("y", 300) }} end }}' for i in range(40))
    write_rb(d, text='runbook { name = "full" }\n' + steps + "\n")
    # a 4 KiB file-size limit: the journal fills up part-way through
    r = subprocess.run(["bash", "-c", f"ulimit -f 4; exec {DRRUN} run rb.lua --state-dir state"],
                       cwd=d, env=ENV, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=60)
    expect(r.returncode == 75, f"exit {r.returncode}, want 75: {r.stderr}")
    expect("journal" in r.stderr, f"says why: {r.stderr}")
    raw = open(journal_path(d), "rb").read()
    expect(raw.endswith(b"\n"), "no half-written record")
    expect(len(raw) <= 4096, "within the limit")
    v = verify(d)
    expect(v.returncode == 0, f"what was written verifies: {v.stdout}")
    recs = records(d)
    started = {r["step"] for r in recs if r["type"] == "step_start"}
    expect(len(started) < 40, "it stopped part-way")
    expect(not [x for x in recs if x["type"] in ("step_log", "step_end")], "no step ran")


# The journal fills up at each kind of record: a file-size limit
# (RLIMIT_FSIZE, exact to the byte) in the middle of that record, as found
# in a reference run of the same runbook.  The records are long enough that
# the few bytes which differ between runs (pid, durations) cannot move the
# fill point into another record; the test checks that they did not.
POINTS_RB = '''local exec = require "drrun.exec"
runbook { name = "fill" }
step "one" { run = function(ctx)
  ctx.log("%s", string.rep("l", 1000))
  drrun.must(exec.run { "sh", "-c", "echo one >> ledger" })
  return { pad = string.rep("o", 1000) }
end }
step "two" { after = "one", run = function(ctx)
  drrun.must(exec.run { "sh", "-c", "echo two >> ledger" })
end }
'''
_points_ref = []


def points_reference():
    """[(type, step, offset, length)] of the records of a whole run of POINTS_RB."""
    if not _points_ref:
        d = case_dir("points-ref")
        write_rb(d, text=POINTS_RB)
        r = drrun(d, "run", "rb.lua", "--state-dir", "state")
        expect(r.returncode == 0, f"reference run exit {r.returncode}: {r.stderr}")
        off = 0
        for line in raw_lines(d):
            rec, n = json.loads(line), len(line.encode())
            _points_ref.append((rec["type"], rec.get("step"), off, n))
            off += n
    return _points_ref


def disk_full_at(rtype, step, want_ledger):
    """A test: the journal fills up in the middle of the RTYPE record (of
    STEP): exit 75 with the reason, no crash or hang, exactly the records
    before it on disk, verifying, and the side effects WANT_LEDGER."""
    def t():
        ref = points_reference()
        k = next(i for i, x in enumerate(ref) if x[:2] == (rtype, step))
        limit = ref[k][2] + ref[k][3] // 2
        d = case_dir(f"points-{rtype}-{step}")
        write_rb(d, text=POINTS_RB)

        def limited():
            import resource
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        r = subprocess.run(["timeout", "-k", "5", "30", DRRUN, "run", "rb.lua", "--state-dir",
                            "state"], cwd=d, env=ENV, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60, preexec_fn=limited)
        why = crashed(r)
        expect(not why, f"{why}: {r.stderr.strip()[-600:]}")
        expect(r.returncode == 75, f"exit {r.returncode}, want 75: {r.stderr.strip()[-600:]}")
        says_journal_failed(r, "File too large")
        expect(ledger(d) == want_ledger, f"side effects {ledger(d)}, want {want_ledger}")
        state = os.path.join(d, "state")
        expect(not leftovers(state), f"left {leftovers(state)}")
        if k == 0:  # not even run_start: no journal at all
            runs = os.path.join(state, "runs")
            found = [os.path.join(p, f) for p, _, fs in os.walk(runs) for f in fs]
            expect(not found, f"a run whose first record failed left {found}")
            return
        raw = open(journal_path(d), "rb").read()
        expect(raw.endswith(b"\n") and len(raw) <= limit, "no half-written record")
        v = verify(d)
        expect(v.returncode == 0, f"what was written verifies: {v.stdout}{v.stderr}")
        got = [(x["type"], x.get("step")) for x in records(d)]
        expect(got == [x[:2] for x in ref[:k]], f"records {got}, want those before {rtype}")
    t.__name__ = f"t_disk_full_at_{rtype}" + (f"_{step}" if step else "")
    return t


# ---- power loss: the order of writes and syncs ------------------------------------

ORDER_RB = '''local exec = require "drrun.exec"
runbook { name = "order" }
local function mk(name, after)
  step(name) { after = after, run = function(ctx)
    ctx.log("%s running", name)
    drrun.must(exec.run { "sh", "-c", "echo " .. name .. " >> ledger" })
    return name
  end }
end
mk("a"); mk("b", "a"); mk("c", "a"); mk("d", { "b", "c" }); mk("e", "d")
'''
DEPS = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["d"]}
SYSCALLS = "write,pwrite64,writev,fdatasync,fsync,sync_file_range,rename,renameat2,link,linkat," \
    "unlink,openat,execve,clone,clone3,vfork,fork,exit_group"


def strace_events(path):
    """The syscalls of an `strace -f -y` log as [(at, pid, name, text, ret,
    began)], in the order they happened.  A call strace shows in two parts
    (<unfinished ...> and <... resumed>) is one event; `at` is where it began
    for a spawn or an exec (a side effect starts there), where it returned for
    everything else (a write or a sync counts once it is done); `began` is
    where it began, whatever it is (a sync covers only what was written
    before it started)."""
    events, pending = [], {}
    line_re = re.compile(r"^(\d+)\s+(.*)$")
    for i, line in enumerate(open(path, errors="replace")):
        m = line_re.match(line.rstrip("\n"))
        if not m:
            continue
        pid, rest = int(m.group(1)), m.group(2)
        if rest.startswith("<... "):
            name = rest[5:].split(" ", 1)[0]
            start, text = pending.pop((pid, name), (i, ""))
            text += rest.split("resumed>", 1)[1]
        elif rest.endswith("<unfinished ...>"):
            name = rest.split("(", 1)[0]
            pending[(pid, name)] = (i, rest[: -len("<unfinished ...>")])
            continue
        elif "(" in rest and not rest.startswith(("---", "+++")):
            name, start, text = rest.split("(", 1)[0], i, rest
        else:
            continue
        ret = text.rsplit("= ", 1)[1].split()[0] if "= " in text else "?"
        at = start if name in ("clone", "clone3", "vfork", "fork", "execve") else i
        events.append((at, pid, name, text, ret, start))
    return sorted(events, key=lambda e: e[0])


def t_sync_order():
    """Power-loss ordering, from the syscalls of a real run (strace -f): a
    step's side effect starts only after its step_start record was written
    and then synced, and after the step_end of each of its dependencies was
    written and synced; the journal's name is linked and its directory synced
    before the first step runs; run_end is synced before the process exits.
    Unsynced records of one pass may share one fdatasync: until it returns,
    none of the steps they start has done anything, so a power cut at any
    moment leaves a journal that holds at least what happened."""
    d = case_dir("order")
    write_rb(d, text=ORDER_RB)
    trace = os.path.join(d, "trace")
    # LeakSanitizer cannot run under ptrace; the same paths are leak-checked
    # by every other test of a sanitizer build
    env = dict(ENV, ASAN_OPTIONS=ENV["ASAN_OPTIONS"] + ":detect_leaks=0")
    r = subprocess.run(["strace", "-f", "-y", "-qq", "-s", "256", "-e", "trace=" + SYSCALLS,
                        "-o", trace, DRRUN, "run", "rb.lua", "--state-dir", "state"],
                       cwd=d, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=120)
    expect(r.returncode == 0, f"exit {r.returncode} under strace: {r.stderr.strip()[-600:]}")
    expect(sorted(ledger(d)) == sorted(DEPS), f"every step ran once: {ledger(d)}")
    ev = strace_events(trace)
    main = ev[0][1]  # strace's first event is drrun's execve
    journal_fd = re.compile(r"^\w+\(\d+<[^>]*/journal\.jsonl(\.new)?>")
    rec_re = re.compile(r'\\"type\\":\\"(\w+)\\"(?:,\\"step\\":\\"([^\\"]+)\\")?')
    writes, syncs, spawns, child_cmd = {}, [], {}, {}
    for at, pid, name, text, ret, began in ev:
        if name in ("write", "pwrite64", "writev") and journal_fd.match(text):
            m = rec_re.search(text)
            expect(m, f"a journal write strace shows no record type in: {text[:200]}")
            expect(ret.isdigit() and int(ret) > 0, f"a journal write failed: {text[:200]}")
            writes.setdefault((m.group(1), m.group(2)), at)
        elif name in ("fdatasync", "fsync") and journal_fd.match(text) and ret == "0":
            syncs.append((began, at))
        elif name in ("clone", "clone3", "vfork", "fork") and pid == main and ret.isdigit():
            spawns[int(ret)] = at
        elif name == "execve":
            m = re.search(r'\["sh", "-c", "echo (\w+) >> ledger"\]', text)
            if m:
                child_cmd[m.group(1)] = pid
    expect(syncs, "the journal was never fdatasync'd")

    def synced_after(at):
        # the first sync that began after the write and has returned: with the
        # group commit on the thread pool, a sync already under way when the
        # record was written does not cover it
        return next((end for began, end in sorted(syncs, key=lambda x: x[1]) if began > at), None)
    first_side = None
    for s, deps in DEPS.items():
        expect(s in child_cmd and child_cmd[s] in spawns, f"no spawn of {s}'s command in the trace")
        side = spawns[child_cmd[s]]
        first_side = side if first_side is None else min(first_side, side)
        w = writes.get(("step_start", s))
        expect(w is not None, f"no step_start of {s} written")
        sy = synced_after(w)
        expect(sy is not None and sy < side,
               f"{s}'s command was spawned before its step_start was synced")
        for dep in deps:
            w = writes.get(("step_end", dep))
            expect(w is not None and w < writes[("step_start", s)],
                   f"{dep}'s step_end is not before {s}'s step_start in the journal")
            sy = synced_after(w)
            expect(sy is not None and sy < side,
                   f"{s}'s command was spawned before {dep}'s step_end was synced")
    # the journal's own name is durable before anything happens
    links = [at for at, pid, name, text, ret, _ in ev
             if name in ("link", "linkat", "rename", "renameat2") and "journal.jsonl" in text
             and ret == "0"]
    expect(links and links[0] < first_side, "the journal was not linked in before the first step")
    dirsync = [at for at, pid, name, text, ret, _ in ev if name in ("fsync", "fdatasync")
               and re.match(r"^\w+\(\d+<[^>]*/runs/[^/>]+>\)", text) and at > links[0]]
    expect(dirsync and dirsync[0] < first_side,
           "the run's directory was not fsync'd after the journal was linked, before the first step")
    w = writes.get(("run_end", None))
    expect(w is not None, "no run_end written")
    exits = [at for at, pid, name, text, ret, _ in ev if name == "exit_group" and pid == main]
    sy = synced_after(w)
    expect(sy is not None and exits and sy < exits[0], "run_end was not synced before the exit")


FILL_RB = '''local exec = require "drrun.exec"
runbook { name = "fill" }
for i = 1, 12 do
  step("s" .. i) {
    after = i > 4 and ("s" .. (i - 4)) or nil,
    run = function(ctx)
      for k = 1, 4 do
        ctx.log("log %d of step %d %s", k, i, string.rep("x", 120))
        exec.run { "true" } -- in a dry run: a "would run" log line from exec
        drrun.sleep("1ms")
      end
      drrun.parallel({ 1, 2, 3 }, function(x)
        ctx.log("item %d of step %d", x, i)
        exec.run { "true" }
        return x
      end)
      return { i = i }
    end }
end
'''


def t_journal_full_inside_steps():
    """The journal stops taking writes while steps run, at many fill points:
    inside ctx.log, inside exec's log line, inside drrun.parallel's items, at
    a step_start or step_end.  Every time: exit 75 saying why, no crash, no
    hang, and what was written is whole and verifies."""
    d = case_dir("fill")
    write_rb(d, text=FILL_RB)
    r = drrun(d, "run", "rb.lua", "--dry-run", "--state-dir", "state")
    expect(r.returncode == 0, f"unlimited run exit {r.returncode}: {r.stderr}")
    size = os.path.getsize(journal_path(d))
    expect(size > 16 * 1024, f"the journal is big enough to sweep: {size}")
    for kib in list(range(2, 12)) + list(range(12, size // 1024, 3)):
        shutil.rmtree(os.path.join(d, "state"))
        try:
            r = subprocess.run(["bash", "-c", f"ulimit -f {kib}; exec {DRRUN} run rb.lua "
                                "--dry-run --state-dir state"], cwd=d, env=ENV,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=30)
        except subprocess.TimeoutExpired:
            raise Fail(f"{kib} KiB: drrun hung")
        expect(r.returncode == 75, f"{kib} KiB: exit {r.returncode}, want 75: {r.stderr[-600:]}")
        expect("journal" in r.stderr, f"{kib} KiB: says why: {r.stderr[-300:]}")
        expect("Sanitizer" not in r.stderr and "runtime error" not in r.stderr,
               f"{kib} KiB: {r.stderr[-2000:]}")
        raw = open(journal_path(d), "rb").read()
        expect(raw.endswith(b"\n"), f"{kib} KiB: no half-written record")
        v = verify(d)
        expect(v.returncode == 0, f"{kib} KiB: what was written verifies: {v.stdout}")


def t_syncs_off_the_loop():
    """The group commit that lets each step start runs on the thread pool,
    not on the loop's thread: only run_start and run_end sync there."""
    d = case_dir("offloop")
    write_rb(d, text='runbook { name = "offloop" }\n'
             'for i = 1, 6 do step("s" .. i) { after = i > 1 and ("s" .. (i - 1)) or nil, '
             'run = function(ctx) ctx.log("step %d", i) return i end } end\n')
    tr = os.path.join(d, "trace")
    # LeakSanitizer cannot run under ptrace; the other tests cover leaks
    env = dict(ENV, ASAN_OPTIONS=(ENV.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":"))
    r = subprocess.run(["strace", "-f", "-y", "-e", "trace=fdatasync", "-o", tr, DRRUN, "run",
                        "rb.lua", "--state-dir", "state"], cwd=d, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    expect(r.returncode == 0, f"exit {r.returncode}: {r.stderr[-500:]}")
    main_tid, on_loop, off_loop = None, 0, 0
    for line in open(tr):
        m = re.match(r"(\d+) +fdatasync\(\d+<[^>]*journal\.jsonl", line)
        if not m:
            continue
        tid = int(m.group(1))
        main_tid = main_tid or tid  # run_start's sync is the first, on the loop
        if tid == main_tid:
            on_loop += 1
        else:
            off_loop += 1
    expect(main_tid, "no fdatasync of the journal was traced")
    expect(on_loop <= 2, f"{on_loop} syncs on the loop's thread (want run_start and run_end)")
    expect(off_loop >= 6, f"{off_loop} syncs on the thread pool, want one per step at least")


def t_state_dir_unwritable():
    d = case_dir("unwritable")
    write_rb(d)
    open(os.path.join(d, "blocker"), "w").close()
    r = drrun(d, "run", "rb.lua", "--state-dir", "blocker/state")
    expect(r.returncode == 75, f"exit {r.returncode}")
    expect(not ledger(d), "nothing ran")


# ---- torn tails, changed runbooks, rollback, status, log -----------------------

def t_torn_tail_repaired():
    d = case_dir("torn")
    write_rb(d)
    p = start_and_wait_for(d, "b")
    p.send_signal(signal.SIGKILL)
    p.wait()
    with open(journal_path(d), "a") as f:
        f.write('{"seq":99,"ts":"2026-01-01T00:00:00.000000Z","run":"x","ty')  # a crash mid-write
    v = verify(d)
    expect(v.returncode == 1 and "truncated" in v.stdout, v.stdout)
    s = drrun(d, "status", run_id(d), "--state-dir", "state")
    expect(s.returncode == 0 and "torn" in s.stdout, s.stdout + s.stderr)
    r = drrun(d, "resume", run_id(d), "--state-dir", "state")
    expect(r.returncode == 0, f"resume exit {r.returncode}: {r.stderr}")
    expect("torn" in r.stderr, f"says it repaired: {r.stderr}")
    res = [x for x in records(d) if x["type"] == "run_resume"]
    expect(res and res[0]["repaired_bytes"] > 0, f"journalled the repair: {res}")
    expect(verify(d).returncode == 0, "verifies after the repair")


def t_changed_runbook_refused():
    d = case_dir("changed")
    write_rb(d)
    p = start_and_wait_for(d, "b")
    p.send_signal(signal.SIGKILL)
    p.wait()
    text = open(os.path.join(d, "rb.lua")).read()
    text = text.replace('mk("e", "d")', 'mk("e2", "d")').replace('"50ms"', '"60ms"', 1)
    text += 'step "z" { after = "a", run = function() end }\n'
    write_rb(d, text=text)
    r = drrun(d, "resume", run_id(d), "--state-dir", "state")
    expect(r.returncode == 65, f"exit {r.returncode}, want 65: {r.stderr}")
    expect(re.search(r"added:.*\be2\b.*\bz\b", r.stderr), f"lists added: {r.stderr}")
    expect(re.search(r"removed:.*\be\b", r.stderr), f"lists removed: {r.stderr}")
    expect("--force" in r.stderr, r.stderr)
    r = drrun(d, "resume", run_id(d), "--state-dir", "state", "--force")
    expect(r.returncode == 0, f"--force exit {r.returncode}: {r.stderr}")
    done = {r["step"] for r in records(d) if r["type"] == "step_end" and r["status"] == "completed"}
    expect({"e2", "z"} <= done, f"the new steps ran with --force: {done}")


def t_rollback_verb():
    d = case_dir("rollback")
    completed_run(d)
    r = drrun(d, "rollback", run_id(d), "--yes", "--state-dir", "state")
    expect(r.returncode == 0, f"exit {r.returncode}: {r.stderr}")
    led = ledger(d)
    undos = [x for x in led if x.startswith("undo-")]
    expect(undos[0] == "undo-e" and undos[-1] == "undo-a" and len(undos) == 5, f"order {undos}")
    end = records(d)[-1]
    expect(end["type"] == "run_end" and end["status"] == "rolled-back", end)
    r = drrun(d, "resume", run_id(d), "--state-dir", "state")
    expect(r.returncode != 0, "a rolled-back run is not resumed")
    expect(verify(d).returncode == 0, "verify")


def t_status_and_log():
    d = case_dir("status")
    completed_run(d)
    rid = run_id(d)
    s = drrun(d, "status", "--state-dir", "state")
    expect(re.search(rid + r"\s+durable\s+\S+\s+completed", s.stdout), s.stdout)
    s = drrun(d, "status", "--json", "--state-dir", "state")
    lst = json.loads(s.stdout)
    expect(lst[0]["run"] == rid and lst[0]["state"] == "completed", lst)
    s = drrun(d, "status", rid[:20], "--state-dir", "state")  # a unique prefix
    expect(s.returncode == 0 and re.search(r"\bd\s+completed\s+1", s.stdout), s.stdout)
    lg = drrun(d, "log", rid, "--state-dir", "state")
    expect(lg.returncode == 0 and "run_start" in lg.stdout and "step_end" in lg.stdout, lg.stdout)
    lj = drrun(d, "log", "--json", rid, "--state-dir", "state")
    expect(lj.stdout == open(journal_path(d)).read(), "log --json is the journal as written")
    s = drrun(d, "status", "nope", "--state-dir", "state")
    expect(s.returncode == 66, f"unknown run exit {s.returncode}")


TESTS = [t_verify_intact, t_tamper_edit, t_tamper_delete, t_tamper_swap, t_tamper_truncate,
         t_tamper_rewrite_chain, t_key_never_journalled, t_lock, t_sigint_rolls_back,
         t_sigint_no_rollback, t_double_sigint_resumable,
         t_sigkill_during_rollback_resumes_rollback, t_crash_after_interrupt_before_rollback,
         t_state_dir_full, t_file_limit_at_start, t_journal_full_inside_steps,
         disk_full_at("run_start", None, []),
         disk_full_at("step_start", "one", []),
         disk_full_at("step_log", "one", []),
         disk_full_at("step_end", "one", ["one"]),
         disk_full_at("step_start", "two", ["one"]),
         disk_full_at("run_end", None, ["one", "two"]),
         t_sync_order, t_syncs_off_the_loop, t_state_dir_unwritable, t_torn_tail_repaired, t_changed_runbook_refused,
         t_rollback_verb, t_status_and_log]


def sanitizer_reports():
    return sorted(os.listdir(SAN_LOGS)) if os.path.isdir(SAN_LOGS) else []


def main():
    os.makedirs(SCRATCH, exist_ok=True)
    shutil.rmtree(SAN_LOGS, ignore_errors=True)
    os.makedirs(SAN_LOGS)
    bad = 0
    for t in TESTS:
        name = t.__name__[2:].replace("_", "-")
        try:
            seen = sanitizer_reports()
            t()
            new = [f for f in sanitizer_reports() if f not in seen]
            if new:
                with open(os.path.join(SAN_LOGS, new[0]), errors="replace") as f:
                    raise Fail(f"sanitizer report ({len(new)}): " + f.read().strip()[:1500])
            print("ok " + name, flush=True)
        except Exception as e:  # a failed expectation or a crash of the test itself
            bad += 1
            print(f"FAIL {name}: {type(e).__name__ if not isinstance(e, Fail) else ''}{e}",
                  flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
