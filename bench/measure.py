#!/usr/bin/env python3
"""measure.py - run one command and say what it cost, for the benchmarks.

    measure.py TIMEOUT_S STDOUT_FILE -- CMD [ARG...]

Prints one line: "rc wall_s cpu_s maxrss_kb tree_kb"
  rc         the command's exit status (124 when it ran past TIMEOUT_S and
             its process group was killed)
  wall_s     start to exit, from /usr/bin/time (which runs the command)
  cpu_s      user + system time of the command and every descendant it
             waited for (/usr/bin/time: getrusage of the reaped child)
  maxrss_kb  the largest resident set of any single process of the tree
             (ru_maxrss, /usr/bin/time's %M)
  tree_kb    the peak of the summed resident sets of the whole tree,
             sampled every 50 ms through /proc/PID/task/TID/children (what
             a fan-out of 50 ssh processes really holds)
The command runs in a session of its own with stdin from /dev/null and
stdout to STDOUT_FILE (stderr too).  Only the tree under the command is
ever signalled.
"""
import os
import signal
import subprocess
import sys
import threading
import time

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def children(pid):
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return kids


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss(root):
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss_kb(pid)
        todo.extend(children(pid))
    return total


def main():
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        sys.exit("usage: measure.py TIMEOUT_S STDOUT_FILE -- CMD [ARG...]")
    timeout = float(sys.argv[1])
    out = open(sys.argv[2], "wb")
    # /usr/bin/time forks small: a child forked from this Python would
    # carry Python's resident set into ru_maxrss
    tfile = sys.argv[2] + ".time"
    cmd = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", tfile] + sys.argv[4:]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True)
    state = {"peak": 0, "killed": False, "done": False}

    def sampler():  # the RSS samples and the deadline; the main thread waits
        while not state["done"]:
            state["peak"] = max(state["peak"], sum(tree_rss(k) for k in children(p.pid)))
            if not state["killed"] and time.monotonic() - t0 > timeout:
                state["killed"] = True
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    _, status, _ = os.wait4(p.pid, 0)
    state["done"] = True
    th.join()
    rc = os.waitstatus_to_exitcode(status)
    peak, killed = state["peak"], state["killed"]
    wall, cpu, maxrss = 0.0, 0.0, 0
    try:
        with open(tfile) as f:
            last = f.read().strip().splitlines()[-1].split()
        wall, cpu, maxrss = float(last[0]), float(last[1]) + float(last[2]), int(last[3])
        os.unlink(tfile)
    except (OSError, IndexError, ValueError):
        pass
    if killed:
        rc, wall = 124, time.monotonic() - t0
    print(f"{rc} {wall:.3f} {cpu:.3f} {maxrss} {max(peak, maxrss)}")


if __name__ == "__main__":
    main()
