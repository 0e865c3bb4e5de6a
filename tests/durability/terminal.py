#!/usr/bin/env python3
"""What the operator sees on a real terminal: drrun runs inside tmux (a
terminal emulator with a fixed size, on a private server socket), the test
types Ctrl-C with send-keys and reads the screen with capture-pane.
Prints "ok NAME" or "FAIL NAME: why" per test.
Usage: terminal.py DRRUN SCRATCH"""
import json
import os
import shutil
import subprocess
import sys
import time

DRRUN, SCRATCH = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
STARTS = 0
SOCKET = None  # one tmux server per test: a server that is exiting refuses new sessions

LIVE_RB = r'''local exec = require "drrun.exec"
runbook { name = "live" }
step "a" { run = function(ctx) ctx.log("a is done") end }
step "b" { after = "a",
  run = function(ctx) ctx.log("waiting for b") exec.run { "sleep", "60" } end,
  rollback = function() end }
step "c" { after = "b", run = function() end }
step "d" { after = "a",
  run = function(ctx) ctx.log("\r\27[2Kresult: completed") drrun.sleep("60s") end }
'''


QUESTION = "Interrupt: [r]oll back, [p]ause (resumable: drrun resume), or [k]eep going?"


class Fail(Exception):
    pass


def expect(cond, why):
    if not cond:
        raise Fail(why)


def tmux(*args):
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=20)


def screen():
    return tmux("capture-pane", "-p", "-J").stdout


def wait_for(pred, what, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = screen()
        if pred(s):
            return s
        time.sleep(0.1)
    raise Fail(f"timed out waiting for {what}; screen:\n{screen()}")


def start(d, *args):
    """drrun in a 100x30 terminal, on a tmux server of its own; the pane
    stays after it exits.  bash, not sh: dash exits on the Ctrl-C that drrun
    handles."""
    global SOCKET, STARTS
    STARTS += 1
    SOCKET = f"drrun-terminal-{os.getpid()}-{os.path.basename(d)}-{STARTS}"
    cmd = (f"cd {d} && TERM=xterm {DRRUN} {' '.join(args)} --state-dir state; "
           "echo EXIT=$?; sleep 60")
    r = tmux("new-session", "-d", "-x", "100", "-y", "30", "-s", "t",
             "env", "-u", "NO_COLOR", "bash", "-c", cmd)
    expect(r.returncode == 0, f"tmux new-session: {r.stderr}")


def case_dir(name, text):
    d = os.path.join(SCRATCH, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    with open(os.path.join(d, "rb.lua"), "w") as f:
        f.write(text)
    return d


def frame_rows(s):
    """The step rows of the screen, before the summary."""
    head = s.split("Summary of", 1)[0]
    return [l for l in head.splitlines() if l[:1] in "abcd" and l[1:2] == " "]


def t_live_view_escapes():
    d = case_dir("escapes", LIVE_RB)
    try:
        start(d, "run", "rb.lua", "--no-color")
        s = wait_for(lambda s: "waiting for b" in s and "result" in s, "the live view")
        row = [l for l in s.splitlines() if l.startswith("d ")]
        expect(row and row[0].endswith(r"\r\x1b[2Kresult: completed"),
               f"row d shows the log escaped: {row}")
        expect(not any(l.startswith("result:") for l in s.splitlines()),
               f"no fake result line:\n{s}")
        tmux("send-keys", "-t", "t", "C-c")
        wait_for(lambda s: QUESTION in s, "the question")
        tmux("send-keys", "-t", "t", "r", "Enter")
        wait_for(lambda s: "EXIT=" in s, "drrun to exit")
    finally:
        tmux("kill-server")


def t_interrupt_message_above_view():
    d = case_dir("interrupt", LIVE_RB)
    try:
        start(d, "run", "rb.lua", "--no-color")
        wait_for(lambda s: "waiting for b" in s, "step b to run")
        tmux("send-keys", "-t", "t", "C-c")
        wait_for(lambda s: QUESTION in s, "the question")
        tmux("send-keys", "-t", "t", "r", "Enter")
        s = wait_for(lambda s: "EXIT=" in s, "drrun to exit")
        lines = s.splitlines()
        msg = [i for i, l in enumerate(lines) if l.startswith("drrun: Interrupt: stopping")]
        expect(len(msg) == 1, f"the interrupt message is on screen once:\n{s}")
        rows = frame_rows(s)
        expect([r[0] for r in rows] == ["a", "b", "c", "d"],
               f"one row per step, no stale rows left above:\n{s}")
        first = next(i for i, l in enumerate(lines) if l.startswith("a "))
        expect(msg[0] < first, f"the message is above the frame:\n{s}")
        expect("EXIT=3" in s, f"interrupted run exits 3:\n{s}")
    finally:
        tmux("kill-server")


ROLLBACK_RB = """runbook { name = "undo" }
step "a" { run = function() return {} end,
  rollback = function() require("drrun.exec").run { "sh", "-c", "echo undo-a >> ledger" } end }
step "b" { after = "a", run = function() return {} end }
step "c" { after = "b", run = function() return {} end,
  rollback = function() require("drrun.exec").run { "sh", "-c", "echo undo-c >> ledger" } end }
"""


def t_rollback_asks_first():
    d = case_dir("rollback-asks", ROLLBACK_RB)
    r = subprocess.run([DRRUN, "run", "rb.lua", "--state-dir", "state"], cwd=d,
                       capture_output=True, stdin=subprocess.DEVNULL, timeout=30)
    expect(r.returncode == 0, f"the run: exit {r.returncode}: {r.stderr!r}")
    ledger = os.path.join(d, "ledger")
    for answer, undone in (("n", False), ("y", True)):
        try:
            start(d, "rollback", "last", "--no-color")
            s = wait_for(lambda s: "[y/N]" in s, "the question")
            expect("will undo c, a" in s and "(no rollback): b" in s,
                   f"it says what it will undo, newest first:\n{s}")
            expect(not os.path.exists(ledger), "nothing was undone before the answer")
            tmux("send-keys", "-t", "t", answer, "Enter")
            s = wait_for(lambda s: "EXIT=" in s, "drrun to exit")
            if undone:
                expect("EXIT=0" in s and open(ledger).read() == "undo-c\nundo-a\n",
                       f"y rolls back, c then a:\n{s}")
            else:
                expect("EXIT=3" in s and "not confirmed" in s and not os.path.exists(ledger),
                       f"n undoes nothing and exits 3:\n{s}")
        finally:
            tmux("kill-server")


ASK_RB = """local exec = require "drrun.exec"
runbook { name = "ask" }
local function note(line) exec.run { "sh", "-c", "echo \\"$1\\" >> ledger", "sh", line } end
step "a" { run = function() note("a") end, rollback = function() note("undo a") end }
step "b" { after = "a", run = function(ctx)
  ctx.log("waiting for b")
  exec.run { "sh", "-c", "until [ -e go ]; do sleep 0.05; done" }
  note("b") end }
step "c" { after = "b", approve = "go on with c?", run = function() note("c") end }
"""


def journal(d):
    runs = os.path.join(d, "state", "runs")
    (rid,) = os.listdir(runs)
    with open(os.path.join(runs, rid, "journal.jsonl")) as f:
        return [json.loads(l) for l in f]


def ledger(d):
    p = os.path.join(d, "ledger")
    return open(p).read() if os.path.exists(p) else ""


def ask(d):
    start(d, "run", "ask.lua", "--no-color")
    wait_for(lambda s: "waiting for b" in s, "step b to run")
    tmux("send-keys", "-t", "t", "C-c")
    return wait_for(lambda s: QUESTION in s, "the question")


def t_interrupt_asks_pause():
    d = case_dir("ask-pause", "")
    with open(os.path.join(d, "ask.lua"), "w") as f:
        f.write(ASK_RB)
    try:
        ask(d)
        tmux("send-keys", "-t", "t", "p", "Enter")
        s = wait_for(lambda s: "EXIT=" in s, "drrun to exit")
        expect("EXIT=3" in s and "pausing; cancelling running steps" in s,
               f"pause stops at once, exit 3:\n{s}")
        recs = journal(d)
        expect(any(r["type"] == "run_pause" and r["by"] == "terminal" for r in recs),
               "run_pause by terminal is journalled")
        expect(not any(r["type"] in ("run_interrupt", "rollback_start") for r in recs),
               "nothing is rolled back")
        expect(recs[-1].get("resumable") is True, f"resumable: {recs[-1]}")
        expect(ledger(d) == "a\n", f"ledger: {ledger(d)!r}")
    finally:
        tmux("kill-server")


def t_interrupt_asks_keep_going():
    d = case_dir("ask-keep", "")
    with open(os.path.join(d, "ask.lua"), "w") as f:
        f.write(ASK_RB)
    try:
        ask(d)
        tmux("send-keys", "-t", "t", "what", "Enter")  # not an answer: asked again
        wait_for(lambda s: s.count("[k]eep going?") == 2, "the question again")
        tmux("send-keys", "-t", "t", "k", "Enter")
        wait_for(lambda s: "going on" in s, "going on")
        open(os.path.join(d, "go"), "w").close()
        s = wait_for(lambda s: "go on with c? [y/N]" in s, "c's approval")
        # Ctrl-C over the approval question: asked, kept going, asked again
        tmux("send-keys", "-t", "t", "C-c")
        wait_for(lambda s: s.count(QUESTION) == 3, "the question over the approval")
        tmux("send-keys", "-t", "t", "k", "Enter")
        wait_for(lambda s: s.count("go on with c? [y/N]") == 2, "the approval asked again")
        tmux("send-keys", "-t", "t", "y", "Enter")
        s = wait_for(lambda s: "EXIT=" in s, "drrun to exit")
        expect("EXIT=0" in s and ledger(d) == "a\nb\nc\n",
               f"keep going goes on to the end:\n{s}\nledger {ledger(d)!r}")
        recs = journal(d)
        expect([r["status"] for r in recs if r["type"] == "approval"] == ["approved"],
               "c's approval was answered once, yes")
    finally:
        tmux("kill-server")


def t_second_ctrl_c_while_asking():
    d = case_dir("ask-twice", "")
    with open(os.path.join(d, "ask.lua"), "w") as f:
        f.write(ASK_RB + 'step "d" { run = function() note("d") end }\n')
    try:
        # one step at a time: d waits for b's slot, and must not take it
        start(d, "run", "ask.lua", "--no-color", "--max-parallel", "1")
        wait_for(lambda s: "waiting for b" in s, "step b to run")
        tmux("send-keys", "-t", "t", "C-c")
        wait_for(lambda s: QUESTION in s, "the question")
        tmux("send-keys", "-t", "t", "C-c")
        s = wait_for(lambda s: "EXIT=" in s, "drrun to exit")
        expect("EXIT=3" in s and "second Interrupt: stopping now" in s,
               f"a second Ctrl-C stops at once:\n{s}")
        recs = journal(d)
        expect(recs[-1].get("resumable") is True and not any(
            r["type"] == "rollback_start" for r in recs), f"resumable, no rollback: {recs[-1]}")
        expect(not any(r["type"] == "step_start" and r["step"] == "d" for r in recs),
               "no step starts after the stop: " + ledger(d))
    finally:
        tmux("kill-server")


def t_sigterm_pauses_over_approval():
    """SIGTERM follows --on-interrupt even on a terminal; a pause leaves an
    open approval question unanswered (not declined), for resume to ask."""
    d = case_dir("term-pause", "")
    with open(os.path.join(d, "ask.lua"), "w") as f:
        f.write(ASK_RB)
    open(os.path.join(d, "go"), "w").close()
    try:
        start(d, "run", "ask.lua", "--no-color", "--on-interrupt", "pause")
        wait_for(lambda s: "go on with c? [y/N]" in s, "c's approval")
        pid = next(r["pid"] for r in journal(d) if r["type"] == "run_start")
        os.kill(pid, 15)
        s = wait_for(lambda s: "EXIT=" in s, "drrun to exit")
        expect("EXIT=3" in s and "(paused)" in s and QUESTION not in s,
               f"SIGTERM pauses without asking:\n{s}")
        recs = journal(d)
        expect(not any(r["type"] == "approval" and r["status"] == "declined" for r in recs),
               "the approval is not recorded as declined")
        expect(any(r["type"] == "run_pause" and r["signal"] == "SIGTERM" for r in recs),
               "run_pause SIGTERM")
    finally:
        tmux("kill-server")


WRAP_RB = r'''runbook { name = "wrap" }
step "pick" { run = function(ctx) ctx.log("replica db-2 is 0 bytes behind, lsn 0/3000060") end }
step "promote" { after = "pick",
  approve = { "Promote the replica db-2 in eu-west-1 to primary, repoint the 14 application "
              .. "pools at it, and fence the old primary db-1 so that it never takes writes "
              .. "again? Only answer yes once the incident commander agrees END-OF-QUESTION",
              approvers = { "alice" } },
  run = function(ctx) ctx.log("promoted") end }
'''


def t_approval_question_wraps():
    d = case_dir("wrap", WRAP_RB)
    try:
        start(d, "run", "rb.lua", "--no-color")
        s = wait_for(lambda s: "END-OF-QUESTION" in s, "the whole question below the view")
        rows = s.split("steps done", 1)[1].splitlines()
        expect(all(len(l) <= 100 for l in rows), f"a row wider than the terminal:\n{s}")
        words = " ".join(l.strip() for l in rows)
        expect("fence the old primary db-1 so that it never takes writes again?" in words,
               f"the question is cut, not wrapped:\n{s}")
        expect("pick: replica db-2 is 0 bytes behind, lsn 0/3000060" in words,
               f"what the gate's dependency logged:\n{s}")
        r = subprocess.run([DRRUN, "approve", "last", "--as", "alice", "--state-dir",
                            os.path.join(d, "state")], capture_output=True, text=True,
                           timeout=30)
        expect(r.returncode == 0, f"drrun approve: {r.stdout}{r.stderr}")
        s = wait_for(lambda s: "EXIT=" in s, "drrun to exit")
        expect("EXIT=0" in s, f"exit:\n{s}")
    finally:
        tmux("kill-server")


TESTS = [t_live_view_escapes, t_approval_question_wraps, t_interrupt_message_above_view, t_rollback_asks_first,
         t_interrupt_asks_pause, t_interrupt_asks_keep_going, t_second_ctrl_c_while_asking,
         t_sigterm_pauses_over_approval]


def main():
    if not shutil.which("tmux"):
        print("FAIL terminal: tmux is missing (tests/deps.sh installs it)", flush=True)
        return 1
    os.makedirs(SCRATCH, exist_ok=True)
    bad = 0
    for t in TESTS:
        name = t.__name__[2:].replace("_", "-")
        try:
            t()
            print("ok " + name, flush=True)
        except Exception as e:  # a failed expectation or a crash of the test itself
            bad += 1
            print(f"FAIL {name}: {type(e).__name__ if not isinstance(e, Fail) else ''}{e}",
                  flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
