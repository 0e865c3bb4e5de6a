#!/usr/bin/env python3
"""Journal tampering against resume, rollback and audit verify, with and
without an audit key: an edited record in the middle, a deleted middle line,
the last records cut off, an emptied journal, a resumed run cut back to its
first run_end, and a journal copied into another run's directory.  Each must
make resume and rollback refuse (exit 65, naming the seq) and leave the
journal and the ledger byte-for-byte as they were (checked by hash), with no
step run again; and `audit verify` must fail.  Also: journals that hold NUL
bytes and runbook paths that are not UTF-8 still resume, and concurrent runs
share the ledger.
Prints "ok NAME" or "FAIL NAME: why" per test.
Usage: tamper.py DRRUN SCRATCH"""
import hashlib, json, os, re, shutil, subprocess, sys

DRRUN, SCRATCH = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
BASE = dict(os.environ, NO_COLOR="1")
BASE.pop("DRRUN_AUDIT_KEY", None)
KEY = "audit-key-for-tamper-tests"

# a run that stops, resumable, at an approval gate (no terminal, no --yes)
RB = '''local exec = require "drrun.exec"
runbook { name = "%(name)s" }
local function mk(name, after, extra)
  local def = { after = after,
    run = function(ctx)
      drrun.must(exec.run{ "sh", "-c", "echo " .. name .. " >> effects" })
      return { n = name }
    end,
    rollback = function(ctx, out)
      drrun.must(exec.run{ "sh", "-c", "echo undo-" .. out.n .. " >> effects" })
    end }
  for k, v in pairs(extra or {}) do def[k] = v end
  step(name)(def)
end
mk("a"); mk("b", "a"); mk("c", "b")
mk("gate", "c", { approve = "go on?" })
'''


class Fail(Exception):
    pass


def expect(cond, why):
    if not cond:
        raise Fail(why)


def case_dir(name):
    d = os.path.join(SCRATCH, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def env_for(key):
    return dict(BASE, DRRUN_AUDIT_KEY=key) if key else BASE


def drrun(d, *args, key=None, timeout=60):
    return subprocess.run([DRRUN, *args], cwd=d, env=env_for(key), stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)


def out(r):
    return (r.stdout + r.stderr).decode(errors="replace")


def run_ids(d):
    return sorted(os.listdir(os.path.join(d, "state", "runs")))


def jpath(d, rid):
    return os.path.join(d, "state", "runs", rid, "journal.jsonl")


def digest(path):
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def effects(d):
    p = os.path.join(d, "effects")
    return open(p).read().split() if os.path.exists(p) else []


def stopped_run(d, key, name="tamper", rb="rb.lua"):
    """A run stopped at its gate: run_end says resumable."""
    with open(os.path.join(d, rb), "w") as f:
        f.write(RB % {"name": name})
    r = drrun(d, "run", rb, "--state-dir", "state", key=key)
    expect(r.returncode == 3, f"run exit {r.returncode}, want 3: {out(r)}")
    rid = [x for x in run_ids(d) if name in x][-1]
    end = [json.loads(l) for l in open(jpath(d, rid), "rb")][-1]
    expect(end["type"] == "run_end" and end.get("resumable"), f"resumable end: {end}")
    return rid


def lines(d, rid):
    with open(jpath(d, rid), "rb") as f:
        return f.readlines()


def put(d, rid, ls):
    with open(jpath(d, rid), "wb") as f:
        f.writelines(ls)


def expect_refused(d, rid, key, seq=None, word=None):
    """resume, rollback and resume --force refuse; nothing changes."""
    before = digest(jpath(d, rid))
    ledger = os.path.join(d, "state", "ledger.jsonl")
    lbefore = digest(ledger)
    done = effects(d)
    for args in (("resume", rid, "--yes"), ("rollback", rid, "--yes"), ("resume", rid, "--yes", "--force")):
        r = drrun(d, *args, "--state-dir", "state", key=key)
        expect(r.returncode == 65, f"{' '.join(args[:1] + args[2:])}: exit {r.returncode}, "
                                   f"want 65: {out(r)}")
        err = r.stderr.decode(errors="replace")
        m = re.search(r"seq (\d+): (.*)", err)
        expect(m, f"{args[0]} names the seq: {err}")
        if seq is not None:
            expect(int(m.group(1)) == seq, f"{args[0]}: want seq {seq}: {err.strip()}")
        if word:
            expect(word in m.group(2), f"{args[0]}: want '{word}' in: {err.strip()}")
        expect(digest(jpath(d, rid)) == before, f"{args[0]} changed the journal")
        expect(digest(ledger) == lbefore, f"{args[0]} changed the ledger")
        expect(effects(d) == done, f"{args[0]} ran steps: {effects(d)}")
    v = drrun(d, "audit", "verify", rid, "--state-dir", "state", key=key)
    expect(v.returncode == 1 and b"FAILED" in v.stdout, f"verify exit {v.returncode}: {out(v)}")
    v = drrun(d, "audit", "verify", jpath(d, rid), key=key)  # by file: the same
    expect(v.returncode == 1, f"verify by file exit {v.returncode}: {out(v)}")


# ---- the tampering ------------------------------------------------------------

def edit_middle(d, rid, key):
    ls = lines(d, rid)
    i = next(i for i, l in enumerate(ls) if b'"step":"b"' in l and b'"step_end"' in l)
    ls[i] = ls[i].replace(b'"n":"b"', b'"n":"B"')
    put(d, rid, ls)
    return i + 1, "edited"


def edit_middle_rehashed(d, rid, key):
    """The edited line gets a fresh hash: the next line's prev no longer links."""
    ls = lines(d, rid)
    i = next(i for i, l in enumerate(ls) if b'"step":"b"' in l and b'"step_end"' in l)
    rec = json.loads(ls[i])
    rec["output"]["n"] = "B"
    rec.pop("hash")
    rec.pop("mac", None)
    body = json.dumps(rec, separators=(",", ":")).encode()
    ls[i] = body[:-1] + b',"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'"}\n'
    put(d, rid, ls)
    return (i + 1, "mac") if key else (i + 2, "chain broken")


def delete_middle(d, rid, key):
    ls = lines(d, rid)
    del ls[3]
    put(d, rid, ls)
    return 4, "removed"


def delete_last(d, rid, key):
    """Cut the approval and run_end: the run looks as if it crashed."""
    ls = lines(d, rid)
    put(d, rid, ls[:-2])
    return len(ls) - 1, "cut short"


def empty(d, rid, key):
    put(d, rid, [])
    return 1, "empty"


def t_tamper(kind, fn, key):
    d = case_dir(f"{kind}-{'key' if key else 'nokey'}")
    rid = stopped_run(d, key)
    seq, word = fn(d, rid, key)
    expect_refused(d, rid, key, seq, word)


def t_copied(key):
    """Run 1's journal copied over run 2's: run id and directory disagree."""
    d = case_dir(f"copied-{'key' if key else 'nokey'}")
    first = stopped_run(d, key)
    r = drrun(d, "resume", first, "--yes", "--state-dir", "state", key=key)
    expect(r.returncode == 0, f"resume exit {r.returncode}: {out(r)}")
    second = stopped_run(d, key)
    shutil.copyfile(jpath(d, first), jpath(d, second))
    expect_refused(d, second, key, 1, "copied")


def t_cut_back_to_first_end(key):
    """A resumed run cut back to its first session's run_end."""
    d = case_dir(f"cutback-{'key' if key else 'nokey'}")
    rid = stopped_run(d, key)
    first = len(lines(d, rid))
    r = drrun(d, "resume", rid, "--yes", "--state-dir", "state", key=key)
    expect(r.returncode == 0, f"resume exit {r.returncode}: {out(r)}")
    v = drrun(d, "audit", "verify", rid, "--state-dir", "state", key=key)
    expect(v.returncode == 0, f"intact before the cut: {out(v)}")
    put(d, rid, lines(d, rid)[:first])
    v = drrun(d, "audit", "verify", rid, "--state-dir", "state", key=key)
    expect(v.returncode == 1 and b"cut short" in v.stdout, f"verify after the cut: {out(v)}")
    m = re.search(rb"seq (\d+)", v.stdout)
    expect(m and int(m.group(1)) == first + 1, f"names the first missing seq: {out(v)}")


# ---- bytes the journal must keep --------------------------------------------

NUL_RB = '''local exec = require "drrun.exec"
runbook { name = "nul", secrets = { "API_TOKEN" } }
step "dump" { run = function(ctx)
  drrun.must(exec.run{ "sh", "-c", "echo dump >> effects" })
  local r = drrun.must(exec.run{ "sh", "-c", [[printf 'env\\0API_TOKEN=%s\\0' "$T"]],
                                 env = { T = ctx.secret("API_TOKEN") } })
  return { stdout = r.stdout }
end }
step "gate" { after = "dump", approve = "go on?", run = function() end }
'''


def t_nul_output_resumes():
    """A step output with NULs: the run reads back as it ended, and resume
    carries on without running the completed step again."""
    d = case_dir("nul")
    open(os.path.join(d, "rb.lua"), "w").write(NUL_RB)
    env = dict(BASE, API_TOKEN="tok-nul-4242")
    r = subprocess.run([DRRUN, "run", "rb.lua", "--state-dir", "state"], cwd=d, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    expect(r.returncode == 3, f"run exit {r.returncode}: {out(r)}")
    rid = run_ids(d)[0]
    raw = open(jpath(d, rid), "rb").read()
    expect(b"tok-nul-4242" not in raw, "the secret after a NUL is in the journal")
    expect(b"\\u0000API_TOKEN=***\\u0000" in raw, "the NULs are kept")
    s = subprocess.run([DRRUN, "status", rid, "--state-dir", "state"], cwd=d, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    expect(s.returncode == 0 and re.search(rb"\bdump\s+completed", s.stdout),
           f"status shows dump completed: {out(s)}")
    r = subprocess.run([DRRUN, "resume", rid, "--yes", "--state-dir", "state"], cwd=d, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    expect(r.returncode == 0, f"resume exit {r.returncode}: {out(r)}")
    expect(effects(d) == ["dump"], f"dump ran once: {effects(d)}")
    v = drrun(d, "audit", "verify", rid, "--state-dir", "state")
    expect(v.returncode == 0, f"verify: {out(v)}")


def t_non_utf8_path_resumes():
    """A runbook whose path is not UTF-8: the journal keeps the path (escaped,
    and its exact bytes), and resume finds the file again."""
    d = case_dir("path")
    name = b"rb-\xff.lua"
    with open(os.path.join(os.fsencode(d), name), "w") as f:
        f.write(RB % {"name": "badpath"})
    r = subprocess.run([os.fsencode(DRRUN), b"run", name, b"--state-dir", b"state"], cwd=d,
                       env=BASE, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    expect(r.returncode == 3, f"run exit {r.returncode}: {out(r)}")
    rid = run_ids(d)[0]
    start = json.loads(lines(d, rid)[0])
    expect(start.get("file") == "rb-\\xff.lua", f"file member: {start.get('file')!r}")
    expect(start.get("path", "").endswith("rb-\\xff.lua"), f"path member: {start.get('path')!r}")
    expect(bytes.fromhex(start.get("path_hex", "")).endswith(name), f"path_hex: {start}")
    r = drrun(d, "resume", rid, "--yes", "--state-dir", "state")
    expect(r.returncode == 0, f"resume exit {r.returncode}: {out(r)}")
    expect(effects(d) == ["a", "b", "c", "gate"], f"effects: {effects(d)}")


def t_concurrent_runs_share_the_ledger():
    d = case_dir("concurrent")
    procs = []
    for i in range(4):
        open(os.path.join(d, f"rb{i}.lua"), "w").write(RB % {"name": f"par{i}"})
        procs.append(subprocess.Popen([DRRUN, "run", f"rb{i}.lua", "--state-dir", "state"],
                                      cwd=d, env=env_for(KEY), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for p in procs:
        expect(p.wait(timeout=60) == 3, f"a run exited {p.returncode}")
    ids = run_ids(d)
    expect(len(ids) == 4, f"runs: {ids}")
    for rid in ids:
        v = drrun(d, "audit", "verify", rid, "--state-dir", "state", key=KEY)
        expect(v.returncode == 0 and b"2 entries of this run" in v.stdout, f"{rid}: {out(v)}")
    led = [json.loads(l) for l in open(os.path.join(d, "state", "ledger.jsonl"))]
    expect([e["seq"] for e in led] == list(range(1, 9)), f"ledger seqs {[e['seq'] for e in led]}")
    expect(all("mac" in e for e in led), "every ledger entry has a mac")


def t_ledger_edit_detected():
    d = case_dir("ledger-edit")
    rid = stopped_run(d, None)
    p = os.path.join(d, "state", "ledger.jsonl")
    ls = open(p, "rb").readlines()
    ls[0] = ls[0].replace(b'"records":1', b'"records":2')
    open(p, "wb").writelines(ls)
    v = drrun(d, "audit", "verify", rid, "--state-dir", "state")
    expect(v.returncode == 1 and b"ledger's entry 1" in v.stdout, f"verify: {out(v)}")


TESTS = []
for kind, fn in (("edit-middle", edit_middle), ("edit-middle-rehashed", edit_middle_rehashed),
                 ("delete-middle", delete_middle), ("delete-last", delete_last),
                 ("empty", empty)):
    for key in (None, KEY):
        TESTS.append((f"{kind}-{'key' if key else 'nokey'}",
                      lambda kind=kind, fn=fn, key=key: t_tamper(kind, fn, key)))
for key in (None, KEY):
    tag = "key" if key else "nokey"
    TESTS.append((f"copied-{tag}", lambda key=key: t_copied(key)))
    TESTS.append((f"cut-back-to-first-end-{tag}", lambda key=key: t_cut_back_to_first_end(key)))
TESTS += [("nul-output-resumes", t_nul_output_resumes),
          ("non-utf8-path-resumes", t_non_utf8_path_resumes),
          ("concurrent-runs-share-the-ledger", t_concurrent_runs_share_the_ledger),
          ("ledger-edit-detected", t_ledger_edit_detected)]


def main():
    os.makedirs(SCRATCH, exist_ok=True)
    bad = 0
    for name, t in TESTS:
        try:
            t()
            print("ok " + name, flush=True)
        except Exception as e:  # a failed expectation or a crash of the test itself
            bad += 1
            print(f"FAIL {name}: {'' if isinstance(e, Fail) else type(e).__name__ + ': '}{e}",
                  flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
