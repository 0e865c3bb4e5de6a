#!/usr/bin/env python3
"""harness.py - run one integration case of drrun and check what it did.

Usage: harness.py CASE_DIR SCRATCH_DIR DRRUN_BINARY

A case is a folder holding a runbook (and any files it needs) plus a `case`
file of directives, one per line; README.md in this folder documents them.
The harness copies the folder to SCRATCH_DIR/run (the runbook's cwd), runs
drrun once with a fresh state dir SCRATCH_DIR/state, then checks every
directive, then runs the folder's check.py if there is one.

Exit 0 when the case passes.  Otherwise exit 1 and print the reason on the
first line of stdout, then details (every failed check, stdout/stderr tails,
the journal).  Python 3 standard library only.
"""
import datetime
import hashlib
import hmac
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

DEFAULT_TIMEOUT = 60
SANITIZER = ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
HASH_RE = re.compile(rb',"hash":"([0-9a-f]{64})"(,"mac":"[0-9a-f]{64}")?\}$')
# key, optional operator and value: "status=completed", "error~timeout",
# "duration<10", "output.results=[1,2]", "!error" (absent), "output" (present)
TOKEN_RE = re.compile(r"^(!?)([A-Za-z_][\w.]*)(?:(=~|!=|<=|>=|=|~|<|>)(.*))?$", re.S)


class CaseError(Exception):
    """The case file itself is wrong (not a drrun failure)."""


# ---- parsing -------------------------------------------------------------

def unescape(s):
    """Decode \\n, \\t and \\\\ in raw text arguments."""
    return re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m.group(1)], s)


def split_words(s):
    """Shell-like word splitting; backslashes are literal (for regexes)."""
    lex = shlex.shlex(s, posix=True)
    lex.whitespace_split = True
    lex.escape = ""
    lex.commenters = ""
    try:
        return list(lex)
    except ValueError as e:
        raise CaseError(str(e))


class Filter:
    """A conjunction of key/operator/value tests against one journal record."""

    def __init__(self, words, where):
        if not words:
            raise CaseError(f"{where}: empty record filter")
        self.text = " ".join(words)
        self.tests = []
        for w in words:
            m = TOKEN_RE.match(w)
            if not m or (m.group(1) and m.group(3)):
                raise CaseError(f"{where}: bad filter term {w!r}")
            neg, key, op, val = m.groups()
            if op in ("=~",):
                try:
                    val = re.compile(val, re.S)
                except re.error as e:
                    raise CaseError(f"{where}: bad regex {val!r}: {e}")
            if op in ("<", ">", "<=", ">="):
                try:
                    val = float(val)
                except ValueError:
                    raise CaseError(f"{where}: {w!r} needs a number")
            self.tests.append((bool(neg), key, op, val))

    def __str__(self):
        return self.text

    def matches(self, rec):
        return all(term_matches(rec, *t) for t in self.tests)


def lookup(rec, key):
    """(present, value) for a dotted key; a literal key with dots wins."""
    if isinstance(rec, dict) and key in rec:
        return True, rec[key]
    cur = rec
    for part in key.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return False, None
    return True, cur


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def as_text(v):
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def equal(v, want):
    if is_num(v):
        try:
            return float(v) == float(want)
        except ValueError:
            return False
    return as_text(v) == want


def term_matches(rec, neg, key, op, val):
    present, v = lookup(rec, key)
    if op is None:
        return present != neg
    if op == "!=":
        return not present or not equal(v, val)
    if not present:
        return False
    if op == "=":
        return equal(v, val)
    if op == "~":
        return val in as_text(v)
    if op == "=~":
        return val.search(as_text(v)) is not None
    if not is_num(v):
        return False
    return {"<": v < val, ">": v > val, "<=": v <= val, ">=": v >= val}[op]


def two_filters(words, where):
    """FILTER ; FILTER"""
    if ";" not in words:
        raise CaseError(f"{where}: expected FILTER ; FILTER")
    i = words.index(";")
    return Filter(words[:i], where), Filter(words[i + 1:], where)


def parse_case(path):
    """[(lineno, directive, rest-of-line)]; full-line # comments only."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            name, _, rest = s.partition(" ")
            out.append((n, name, rest.strip()))
    return out


# ---- the run ---------------------------------------------------------------

class Run:
    def __init__(self, case_dir, scratch, drrun):
        self.case_dir = case_dir
        self.scratch = scratch
        self.rundir = os.path.join(scratch, "run")
        self.state = os.path.join(scratch, "state")
        self.drrun = drrun
        self.args = ["run", "runbook.lua"]
        self.raw_args = None  # expanded when the run starts (@RUNID@)
        self.befores = []  # (where, exit wanted, raw words): sessions run first
        self.env = {}
        self.timeout = DEFAULT_TIMEOUT
        self.signals = []  # (signal number, file in the run dir that triggers it)
        self.exit = None
        self.stdout = ""
        self.stderr = ""
        self.output = ""
        self.cmdline = ""
        self._journal = None
        self.failures = []

    # placeholders usable in args/env/filters: @STATE@ @RUN@ @CASE@ @SHA256:file@
    def expand(self, s):
        s = s.replace("@STATE@", self.state).replace("@RUN@", self.rundir)
        if "@RUNID@" in s:
            ids = self.run_dirs()
            if len(ids) != 1:
                raise CaseError(f"@RUNID@ needs exactly one run, found {ids}")
            s = s.replace("@RUNID@", ids[0])
        s = s.replace("@CASE@", self.case_dir)

        def sha(m):
            p = os.path.join(self.case_dir, m.group(1))
            with open(p, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()
        return re.sub(r"@SHA256:([^@]+)@", sha, s)

    def words(self, rest):
        return [self.expand(w) for w in split_words(rest)]

    def base_env(self):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.rundir,
            "LANG": "C.UTF-8",
            "DRRUN_STATE_DIR": self.state,
        }
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TMPDIR"):
            if k in os.environ:
                env[k] = os.environ[k]
        env.update(self.env)
        return {k: v for k, v in env.items() if v is not None}

    def run_before(self, k, where, want, raw):
        """One earlier session: drrun WORDS to its end; its exit must be want."""
        words = self.words(raw)
        env = self.base_env()
        while words and re.match(r"[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            name, _, val = words.pop(0).partition("=")
            env[name] = val  # this session's environment only
        argv = [self.drrun] + words
        out_p = os.path.join(self.scratch, f"before-{k}.out")
        with open(out_p, "wb") as o:
            try:
                p = subprocess.run(argv, cwd=self.rundir, stdin=subprocess.DEVNULL, stdout=o,
                                   stderr=subprocess.STDOUT, env=env,
                                   timeout=self.timeout, start_new_session=True)
                code = p.returncode
            except subprocess.TimeoutExpired:
                code = None
        if code != want:
            with open(out_p, "rb") as f:
                out = f.read().decode("utf-8", "replace")
            raise CaseError(f"{where}: before: drrun {raw} exited {describe_exit(code)}, want "
                            f"{describe_exit(want)}\n{tail(out, 15)}")

    def execute(self):
        shutil.rmtree(self.scratch, ignore_errors=True)
        os.makedirs(self.scratch)
        shutil.copytree(self.case_dir, self.rundir)
        try:
            for k, (where, want, raw) in enumerate(self.befores, 1):
                self.run_before(k, where, want, raw)
            if self.raw_args is not None:
                self.args = self.words(self.raw_args)
        except CaseError as e:
            self.failures.append(f"bad case: {e}" if "before:" not in str(e) else str(e))
            return None
        out_p = os.path.join(self.scratch, "stdout")
        err_p = os.path.join(self.scratch, "stderr")
        argv = [self.drrun] + self.args
        env = self.base_env()
        shown = ["DRRUN_STATE_DIR=" + os.path.relpath(self.state, self.rundir)]
        shown += [f"{k}={v}" for k, v in self.env.items()]
        shown += [os.path.relpath(self.drrun, self.rundir)] + self.args
        self.cmdline = "(cd " + shlex.quote(os.path.relpath(self.rundir)) + " && " + \
            " ".join(shlex.quote(a) for a in shown) + " </dev/null)"
        # Files, not pipes: a stray grandchild holding a pipe cannot hang us.
        with open(out_p, "wb") as o, open(err_p, "wb") as e:
            try:
                p = subprocess.Popen(argv, cwd=self.rundir, stdin=subprocess.DEVNULL,
                                     stdout=o, stderr=e, env=env,
                                     start_new_session=True)
            except OSError as ex:
                self.failures.append(f"cannot start drrun: {ex}")
                return None
            deadline = time.monotonic() + self.timeout
            pending = list(self.signals)
            while True:
                left = deadline - time.monotonic()
                try:
                    self.exit = p.wait(timeout=min(left, 0.02) if pending else max(left, 0))
                    break
                except subprocess.TimeoutExpired:
                    pass
                if time.monotonic() >= deadline:
                    kill_group(p.pid)
                    p.wait()
                    self.exit = None
                    self.failures.append(f"drrun did not finish within {self.timeout}s")
                    break
                for sig, name in list(pending):
                    if os.path.exists(os.path.join(self.rundir, name)):
                        os.kill(p.pid, sig)  # drrun only, not its children
                        pending.remove((sig, name))
            for sig, name in pending:
                self.failures.append(f"{signal.Signals(sig).name} never sent: {name} did not appear")
        with open(out_p, "rb") as f:
            self.stdout = f.read().decode("utf-8", "replace")
        with open(err_p, "rb") as f:
            self.stderr = f.read().decode("utf-8", "replace")
        self.output = self.stdout + "\n" + self.stderr
        for pat in SANITIZER:
            if pat in self.stderr:
                self.failures.append(f"sanitizer report in stderr ({pat})")
                break
        return p.pid

    # ---- journal ----
    def run_dirs(self):
        runs = os.path.join(self.state, "runs")
        if not os.path.isdir(runs):
            return []
        return sorted(os.listdir(runs))

    def journal(self):
        """(path, raw bytes, [records]) of the single run's journal."""
        if self._journal is None:
            dirs = self.run_dirs()
            if len(dirs) != 1:
                raise Failure(f"expected exactly one run under state/runs, found {len(dirs)}")
            path = os.path.join(self.state, "runs", dirs[0], "journal.jsonl")
            if not os.path.isfile(path):
                raise Failure(f"no journal at runs/{dirs[0]}/journal.jsonl")
            with open(path, "rb") as f:
                raw = f.read()
            recs = []
            for n, line in enumerate(raw.splitlines(), 1):
                try:
                    rec = json.loads(line)
                except ValueError as e:
                    raise Failure(f"journal line {n} is not JSON: {e}")
                if not isinstance(rec, dict):
                    raise Failure(f"journal line {n} is not an object")
                recs.append(rec)
            self._journal = (path, raw, recs)
        return self._journal

    def records(self):
        return self.journal()[2]


class Failure(Exception):
    pass


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def parse_ts(s):
    if not isinstance(s, str) or not TS_RE.match(s):
        raise Failure(f"bad ts {s!r}")
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def verify_chain(raw, run_dir_name, key=None):
    """Every problem with the journal's format and hash chain (and, with the
    audit key, every record's mac)."""
    errs = []
    if not raw:
        return ["journal is empty"]
    if not raw.endswith(b"\n"):
        errs.append("journal does not end with a newline")
    prev = "0" * 64
    run = None
    last_ts = None
    for n, line in enumerate(raw.split(b"\n")[:-1] if raw.endswith(b"\n")
                             else raw.split(b"\n"), 1):
        where = f"journal line {n}"
        m = HASH_RE.search(line)
        if not m:
            errs.append(f"{where}: does not end with ,\"hash\":\"<64 hex>\"}}")
            continue
        found = m.group(1).decode()
        body = line[:m.start()] + b"}"
        if hashlib.sha256(body).hexdigest() != found:
            errs.append(f"{where}: hash does not match the line's bytes")
        if key is not None:
            want = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
            if not m.group(2):
                errs.append(f"{where}: no mac, with an audit key")
            elif m.group(2)[8:-1].decode() != want:
                errs.append(f"{where}: mac does not match under the audit key")
        try:
            pairs = json.loads(line, object_pairs_hook=lambda p: p)
        except ValueError as e:
            errs.append(f"{where}: not JSON: {e}")
            prev = found
            continue
        keys = [k for k, _ in pairs]
        rec = dict(pairs)
        if len(set(keys)) != len(keys):
            errs.append(f"{where}: duplicate members")
        if keys[:4] != ["seq", "ts", "run", "type"]:
            errs.append(f"{where}: members start {keys[:4]}, want seq, ts, run, type")
        want_end = ["prev", "hash", "mac"] if m.group(2) else ["prev", "hash"]
        if keys[-len(want_end):] != want_end:
            errs.append(f"{where}: members end {keys[-len(want_end):]}, want {', '.join(want_end)}")
        if rec.get("seq") != n:
            errs.append(f"{where}: seq is {rec.get('seq')!r}, want {n}")
        if rec.get("prev") != prev:
            errs.append(f"{where}: prev does not link to the previous line's hash")
        try:
            ts = parse_ts(rec.get("ts"))
            if last_ts is not None and ts < last_ts:
                errs.append(f"{where}: ts goes backwards")
            last_ts = ts
        except Failure as e:
            errs.append(f"{where}: {e}")
        if run is None:
            run = rec.get("run")
            if run != run_dir_name:
                errs.append(f"{where}: run {run!r} is not the run directory {run_dir_name!r}")
        elif rec.get("run") != run:
            errs.append(f"{where}: run id changes to {rec.get('run')!r}")
        prev = found
        if len(errs) > 8:
            errs.append("...")
            break
    return errs


# ---- directives ------------------------------------------------------------
# Each check returns None on success or raises Failure(reason).

def select(run, flt):
    return [r for r in run.records() if flt.matches(r)]


def describe_exit(code):
    if code is None:
        return "no exit status (killed by the harness)"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def d_exit(run, rest, where):
    want = int(rest)
    if run.exit != want:
        raise Failure(f"{describe_exit(run.exit)}, want exit status {want}")


def text_check(stream, has):
    def check(run, rest, where):
        text = getattr(run, stream)
        needle = unescape(rest)
        if (needle in text) != has:
            raise Failure(f"{stream} {'lacks' if has else 'has'} {needle!r}")
    return check


def match_check(stream, has):
    def check(run, rest, where):
        if (re.search(rest, getattr(run, stream), re.M) is not None) != has:
            raise Failure(f"{stream} {'does not match' if has else 'matches'} /{rest}/")
    return check


def count_check(stream):
    def check(run, rest, where):
        n, _, rx = rest.partition(" ")
        got = len([l for l in getattr(run, stream).splitlines() if re.search(rx, l)])
        if got != int(n):
            raise Failure(f"{got} {stream} lines match /{rx}/, want {n}")
    return check


def order_check(stream):
    def check(run, rest, where):
        text = getattr(run, stream)
        pos = -1
        for w in split_words(rest):
            i = text.find(w, pos + 1)
            if i < 0:
                raise Failure(f"{stream}: {w!r} not found after position {pos} (want order {rest})")
            pos = i
    return check


def d_journal_text(has):
    def check(run, rest, where):
        raw = run.journal()[1].decode("utf-8", "replace")
        needle = unescape(rest)
        if (needle in raw) != has:
            raise Failure(f"journal text {'lacks' if has else 'has'} {needle!r}")
    return check


def d_journal_has(run, rest, where):
    flt = Filter(run.words(rest), where)
    if not select(run, flt):
        raise Failure(f"no journal record matches {flt}")


def d_journal_lacks(run, rest, where):
    flt = Filter(run.words(rest), where)
    hits = select(run, flt)
    if hits:
        raise Failure(f"journal record seq {hits[0].get('seq')} matches {flt}")


def d_journal_count(run, rest, where):
    words = run.words(rest)
    flt = Filter(words[:-1], where)
    got = len(select(run, flt))
    if got != int(words[-1]):
        raise Failure(f"{got} journal records match {flt}, want {words[-1]}")


def d_journal_first_last(index):
    def check(run, rest, where):
        flt = Filter(run.words(rest), where)
        recs = run.records()
        if not recs or not flt.matches(recs[index]):
            got = recs[index].get("type") if recs else None
            raise Failure(f"{'first' if index == 0 else 'last'} journal record "
                          f"(type {got!r}) does not match {flt}")
    return check


def d_journal_order(run, rest, where):
    words = run.words(rest)
    if ":" in words:
        i = words.index(":")
        fw, want = words[:i], words[i + 1:]
    else:
        i = next((k for k, w in enumerate(words) if w.endswith(":")), None)
        if i is None:
            raise CaseError(f"{where}: journal-order FILTER : STEP...")
        fw, want = words[:i] + [words[i][:-1]], words[i + 1:]
    flt = Filter(fw, where)
    got = [r.get("step") for r in select(run, flt)]
    if got != want:
        raise Failure(f"steps of records matching {flt} are {got}, want {want}")


def d_journal_before(run, rest, where):
    a, b = two_filters(run.words(rest), where)
    ra, rb = select(run, a), select(run, b)
    if not ra or not rb:
        raise Failure(f"journal-before needs records for both '{a}' ({len(ra)}) and '{b}' ({len(rb)})")
    last_a = max(ra, key=lambda r: r["seq"])
    first_b = min(rb, key=lambda r: r["seq"])
    if last_a["seq"] >= first_b["seq"]:
        raise Failure(f"record seq {last_a['seq']} ({a}) comes after seq {first_b['seq']} ({b})")
    if parse_ts(last_a["ts"]) > parse_ts(first_b["ts"]):
        raise Failure(f"ts of seq {last_a['seq']} ({a}) is later than seq {first_b['seq']} ({b})")


def d_span(is_max):
    def check(run, rest, where):
        words = run.words(rest)
        limit = float(words[0])
        a, b = two_filters(words[1:], where)
        ra, rb = select(run, a), select(run, b)
        if not ra or not rb:
            raise Failure(f"span needs records for both '{a}' and '{b}'")
        span = parse_ts(rb[-1]["ts"]) - parse_ts(ra[0]["ts"])
        if is_max and span > limit:
            raise Failure(f"{span:.3f}s from '{a}' to '{b}', want at most {limit}s")
        if not is_max and span < limit:
            raise Failure(f"{span:.3f}s from '{a}' to '{b}', want at least {limit}s")
    return check


def d_in_flight_peak(run, rest, where):
    """Walk the journal in order; a step is in flight from START to END."""
    words = run.words(rest)
    want = int(words[0])
    a, b = two_filters(words[1:], where)
    inflight, peak, last_ts = set(), 0, None
    for r in run.records():
        ts = parse_ts(r.get("ts"))
        if last_ts is not None and ts < last_ts:
            raise Failure(f"ts goes backwards at seq {r.get('seq')}")
        last_ts = ts
        if a.matches(r):
            inflight.add(r.get("step"))
            peak = max(peak, len(inflight))
        elif b.matches(r):
            if r.get("step") not in inflight:
                raise Failure(f"seq {r.get('seq')}: '{b}' for step {r.get('step')!r} that was not in flight")
            inflight.discard(r.get("step"))
    if peak != want:
        raise Failure(f"at most {peak} steps were in flight at once, want a peak of exactly {want}")


# The journal's record types: required members in order, and allowed values.
ANY = None
SCHEMA = {
    "run_start": [("runbook", str), ("file", str), ("sha256", "hex64"), ("params", dict),
                  ("env", (str, type(None))), ("dry_run", bool), ("pid", int), ("host", str),
                  ("version", str), ("rto", "num?"), ("rpo", "num?"), ("steps", int)],
    "step_start": [("step", str), ("phase", str), ("attempt", int)],
    "step_attempt": [("step", str), ("attempt", int), ("status", {"failed"}), ("error", str),
                     ("retry_in", "num")],
    "step_log": [("step", str), ("msg", str)],
    "step_end": [("step", str), ("status", {"completed", "failed", "aborted", "cancelled"}),
                 ("attempts", int),
                 ("duration", "num")],
    "step_skipped": [("step", str), ("reason", str)],
    "approval": [("step", str), ("question", str),
                 ("status", {"approved", "declined", "needed", "waiting", "answered", "ignored",
                             "withdrawn"}),
                 ("by", {"--yes", "terminal", "drrun approve", "link", "quorum", "timeout",
                         None})],
    "rollback_start": [("step", str)],
    "rollback_end": [("step", str), ("status", {"completed", "failed"}), ("duration", "num")],
    "run_end": [("status", {"completed", "rolled-back", "failed", "aborted", "interrupted"}),
                ("exit", int), ("duration", "num")],
    "recovery_point": [("step", str), ("at", str), ("epoch", "num")],
    "run_interrupt": [("signal", {"SIGINT", "SIGTERM"}), ("rollback", bool)],
    "run_pause": [("signal", {"SIGINT", "SIGTERM"}), ("by", {"terminal", "--on-interrupt"})],
    "run_resume": [("mode", {"continue", "rollback"}), ("pid", int), ("sha256", "hex64"),
                   ("version", str), ("repaired_bytes", int), ("completed", list),
                   ("rerun", list)],
}
# rolled-back: 1 after a failure, 0 after `drrun rollback`; failed: 2, or 75
# when the journal itself could not be written
# completed: 4 when an objective was missed; rolled-back: 65 when a step
# failed on a value drrun refused (ctx.recovery_point)
RUN_END_EXIT = {"completed": {0, 4}, "rolled-back": {0, 1, 65}, "failed": {2, 75}, "aborted": {3},
                "interrupted": {3}}


def type_ok(v, t):
    if t == "num":
        return is_num(v) and v >= 0
    if t == "num?":
        return v is None or (is_num(v) and v >= 0)
    if t == "hex64":
        return isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None
    if isinstance(t, set):
        return (v is None or isinstance(v, str)) and v in t
    if t is int:
        return isinstance(v, int) and not isinstance(v, bool)
    return isinstance(v, t)


def schema_errors(raw):
    errs = []
    for n, line in enumerate(raw.splitlines(), 1):
        rec = json.loads(line)  # dicts keep the file's member order
        keys = list(rec)
        typ = rec.get("type")
        where = f"line {n} ({typ})"
        spec = SCHEMA.get(typ)
        if spec is None:
            errs.append(f"{where}: unknown record type")
            continue
        pos = -1
        for key, t in spec:
            if key not in rec:
                errs.append(f"{where}: missing {key}")
                continue
            if not type_ok(rec[key], t):
                errs.append(f"{where}: {key}={rec[key]!r} is not {sorted(t, key=str) if isinstance(t, set) else t}")
            if keys.index(key) < pos:
                errs.append(f"{where}: {key} out of order")
            pos = keys.index(key)
        if typ == "run_start":
            rx = r"\d{8}T\d{6}\.\d{3}Z-" + re.escape(str(rec.get("runbook"))) + r"-[0-9a-z]+"
            if not re.fullmatch(rx, str(rec.get("run"))):
                errs.append(f"{where}: run id {rec.get('run')!r} is not <time>-<runbook>-<suffix>")
        if typ == "step_end":
            if rec.get("status") == "completed" and ("output" not in rec or "error" in rec):
                errs.append(f"{where}: completed step_end needs output and no error")
            if rec.get("status") == "aborted" and ("reason" not in rec or "output" in rec):
                errs.append(f"{where}: aborted step_end needs a reason and no output")
            if rec.get("status") in ("failed", "cancelled") and ("error" not in rec or "output" in rec):
                errs.append(f"{where}: failed step_end needs error and no output")
        if typ == "run_end" and rec.get("status") in RUN_END_EXIT:
            if rec.get("exit") not in RUN_END_EXIT[rec["status"]]:
                errs.append(f"{where}: status {rec['status']} with exit {rec.get('exit')}")
        if len(errs) > 8:
            errs.append("...")
            break
    return errs


def d_schema_ok(run, rest, where):
    errs = schema_errors(run.journal()[1].decode("utf-8", "replace"))
    if errs:
        raise Failure("journal schema: " + "; ".join(errs))


def d_chain_ok(run, rest, where):
    path, raw, _ = run.journal()
    errs = verify_chain(raw, os.path.basename(os.path.dirname(path)),
                        run.env.get("DRRUN_AUDIT_KEY"))
    if errs:
        raise Failure("journal chain/format: " + "; ".join(errs))


def d_stdout_is_journal(run, rest, where):
    raw = run.journal()[1].decode("utf-8", "replace")
    if run.stdout != raw:
        a, b = run.stdout.splitlines(), raw.splitlines()
        for i in range(max(len(a), len(b))):
            x = a[i] if i < len(a) else "<missing>"
            y = b[i] if i < len(b) else "<missing>"
            if x != y:
                raise Failure(f"stdout line {i + 1} differs from the journal: {x[:200]!r} vs {y[:200]!r}")
        raise Failure("stdout differs from the journal (trailing newline?)")


def d_no_runs(run, rest, where):
    if os.path.exists(os.path.join(run.state, "runs")):
        raise Failure(f"state/runs was created ({len(run.run_dirs())} run(s)): something was started")


def d_runs(run, rest, where):
    got = len(run.run_dirs())
    if got != int(rest):
        raise Failure(f"{got} run directories, want {rest}")


def d_state_lacks(run, rest, where):
    needle = unescape(rest).encode()
    for root, _, files in os.walk(run.state):
        for fn in files:
            p = os.path.join(root, fn)
            with open(p, "rb") as f:
                if needle in f.read():
                    raise Failure(f"{os.path.relpath(p, run.state)} contains {rest!r}")


def file_path(run, rest):
    name, _, text = rest.partition(" ")
    return os.path.join(run.rundir, name), name, unescape(text)


def read_text(p, name):
    if not os.path.isfile(p):
        raise Failure(f"file {name} does not exist")
    with open(p, encoding="utf-8", errors="replace") as f:
        return f.read()


def d_file_has(has):
    def check(run, rest, where):
        p, name, text = file_path(run, rest)
        if (text in read_text(p, name)) != has:
            raise Failure(f"file {name} {'lacks' if has else 'has'} {text!r}")
    return check


def d_file_equals(run, rest, where):
    p, name, text = file_path(run, rest)
    got = read_text(p, name)
    if got != text:
        raise Failure(f"file {name} is {got!r}, want {text!r}")


def d_file_exists(exists):
    def check(run, rest, where):
        p = os.path.join(run.rundir, rest)
        if os.path.lexists(p) != exists:
            raise Failure(f"file {rest} {'does not exist' if exists else 'exists'}")
    return check


CHECKS = {
    "exit": d_exit,
    "stdout-has": text_check("stdout", True),
    "stdout-lacks": text_check("stdout", False),
    "stderr-has": text_check("stderr", True),
    "stderr-lacks": text_check("stderr", False),
    "output-has": text_check("output", True),
    "output-lacks": text_check("output", False),
    "stdout-match": match_check("stdout", True),
    "stderr-match": match_check("stderr", True),
    "stdout-nomatch": match_check("stdout", False),
    "stderr-nomatch": match_check("stderr", False),
    "stdout-count": count_check("stdout"),
    "stderr-count": count_check("stderr"),
    "stdout-order": order_check("stdout"),
    "stderr-order": order_check("stderr"),
    "stdout-is-journal": d_stdout_is_journal,
    "journal-text-has": d_journal_text(True),
    "journal-text-lacks": d_journal_text(False),
    "journal-has": d_journal_has,
    "journal-lacks": d_journal_lacks,
    "journal-count": d_journal_count,
    "journal-first": d_journal_first_last(0),
    "journal-last": d_journal_first_last(-1),
    "journal-order": d_journal_order,
    "journal-before": d_journal_before,
    "journal-span-max": d_span(True),
    "journal-span-min": d_span(False),
    "in-flight-peak": d_in_flight_peak,
    "journal-chain-ok": d_chain_ok,
    "journal-schema-ok": d_schema_ok,
    "no-runs": d_no_runs,
    "runs": d_runs,
    "state-lacks": d_state_lacks,
    "file-has": d_file_has(True),
    "file-lacks": d_file_has(False),
    "file-equals": d_file_equals,
    "file-exists": d_file_exists(True),
    "file-absent": d_file_exists(False),
}


def tail(text, n):
    lines = text.splitlines()
    cut = lines[-n:]
    pre = [f"    ... ({len(lines) - n} earlier lines)"] if len(lines) > n else []
    return "\n".join(pre + ["    " + l[:400] for l in cut]) or "    <empty>"


def main():
    if len(sys.argv) != 4:
        print("usage: harness.py CASE_DIR SCRATCH_DIR DRRUN")
        return 2
    case_dir, scratch, drrun = (os.path.abspath(a) for a in sys.argv[1:])
    case_file = os.path.join(case_dir, "case")
    run = Run(case_dir, scratch, drrun)
    try:
        if not os.path.isfile(case_file):
            raise CaseError("no case file")
        directives = parse_case(case_file)
        checks = []
        for n, name, rest in directives:
            where = f"case:{n}"
            if name == "args":
                run.raw_args = rest
            elif name == "before":
                want, _, words = rest.partition(" ")
                try:
                    code = -int(signal.Signals["SIG" + want]) if want.isalpha() else int(want)
                except (KeyError, ValueError):
                    raise CaseError(f"{where}: before EXIT WORDS..., EXIT a number or KILL")
                run.befores.append((where, code, words.strip()))
            elif name == "env":
                k, eq, v = rest.partition("=")
                if not eq:
                    raise CaseError(f"{where}: env NAME=VALUE")
                run.env[k] = run.expand(v)
            elif name == "timeout":
                run.timeout = float(rest)
            elif name == "signal":
                words = split_words(rest)
                try:
                    sig = signal.Signals["SIG" + words[0]]
                except (KeyError, IndexError):
                    raise CaseError(f"{where}: signal NAME FILE, e.g. signal INT child.pid")
                if len(words) != 2:
                    raise CaseError(f"{where}: signal NAME FILE")
                run.signals.append((int(sig), words[1]))
            elif name in CHECKS:
                checks.append((where, name, rest))
            else:
                raise CaseError(f"{where}: unknown directive {name!r}")
        if not any(name == "exit" for _, name, _ in checks):
            checks.insert(0, ("default", "exit", "0"))
    except (CaseError, OSError, ValueError) as e:
        print(f"bad case: {e}")
        return 1

    pgid = run.execute()
    try:
        for where, name, rest in checks:
            try:
                CHECKS[name](run, rest, where)
            except Failure as e:
                run.failures.append(f"{where}: {name}: {e}")
            except CaseError as e:
                run.failures.append(f"bad case: {e}")
            except (KeyError, TypeError, ValueError) as e:  # e.g. a record without seq/ts
                run.failures.append(f"{where}: {name}: cannot evaluate: {type(e).__name__}: {e}")
        hook = os.path.join(case_dir, "check.py")
        if os.path.isfile(hook):
            env = dict(os.environ, DRRUN=run.drrun)
            try:
                env["DRRUN_JOURNAL"] = run.journal()[0]
            except Failure:
                pass
            try:
                p = subprocess.run([sys.executable, hook, case_dir, run.rundir, run.state],
                                   stdin=subprocess.DEVNULL, capture_output=True,
                                   text=True, timeout=60, env=env)
                if p.returncode != 0:
                    msg = (p.stdout + p.stderr).strip() or f"exit {p.returncode}"
                    run.failures.append("check.py: " + msg.replace("\n", "\n    "))
            except subprocess.TimeoutExpired:
                run.failures.append("check.py timed out")
    finally:
        if pgid:
            kill_group(pgid)  # leftovers of the run, after check.py looked at them

    if not run.failures:
        return 0
    print(run.failures[0])
    print("  failed checks:")
    for f in run.failures:
        print("    " + f)
    print(f"  command: {run.cmdline}")
    print(f"  exit: {describe_exit(run.exit)}")
    try:
        same = run.stdout != "" and run.stdout.encode() == run.journal()[1]
    except Failure:
        same = False
    print("  stdout:\n" + ("    <identical to the journal>" if same else tail(run.stdout, 25)))
    print("  stderr:\n" + tail(run.stderr, 25))
    dirs = run.run_dirs()
    for d in dirs[:2]:
        jp = os.path.join(run.state, "runs", d, "journal.jsonl")
        if os.path.isfile(jp):
            with open(jp, encoding="utf-8", errors="replace") as f:
                print(f"  journal runs/{d}/journal.jsonl:\n" + tail(f.read(), 40))
    return 1


if __name__ == "__main__":
    sys.exit(main())
