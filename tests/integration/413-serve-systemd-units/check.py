#!/usr/bin/env python3
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from serve import *  # noqa: E402,F403

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "contrib",
                   "systemd")
units = {}
for name in ("drrun-serve.service", "drrun-drill@.service", "drrun-drill@.timer"):
    text = open(os.path.join(SRC, name)).read()
    units[name] = text
    # verify needs the binary to exist: the one under test stands in for /usr/bin/drrun
    text = text.replace("/usr/bin/drrun", os.path.abspath(DRRUN))
    out = name.replace("@.", "@weekly.")
    open(os.path.join(RUN, out), "w").write(text)
p = subprocess.run(["systemd-analyze", "verify", "--man=no", "./drrun-serve.service",
                    "./drrun-drill@weekly.service", "./drrun-drill@weekly.timer"], cwd=RUN,
                   capture_output=True, text=True, timeout=60)
expect(p.returncode == 0, f"systemd-analyze verify: {p.returncode}\n{p.stdout}{p.stderr}")
noise = [l for l in (p.stdout + p.stderr).splitlines() if "drrun" in l]
expect(not noise, "systemd-analyze warns:\n" + "\n".join(noise))
s = units["drrun-serve.service"]
for need in ("DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=drrun", "KillMode=mixed",
             "NoNewPrivileges=yes", "ExecStart=/usr/bin/drrun serve --rules /etc/drrun/rules.lua"):
    expect(need in s, f"drrun-serve.service lacks {need}")
for need in ("OnCalendar=", "Persistent=no"):
    expect(need in units["drrun-drill@.timer"], f"the timer lacks {need}")
expect("ExecStart=/usr/bin/drrun drill /etc/drrun/runbooks/%i.lua" in units["drrun-drill@.service"],
       "the drill unit's command")
# the serve command line of the unit is one serve accepts
argv = s.split("ExecStart=/usr/bin/drrun ", 1)[1].split("\n", 1)[0].split()
argv[argv.index("--rules") + 1] = "rules.lua"
argv[argv.index("--listen") + 1] = f"127.0.0.1:{freeport()}"
sv = subprocess.Popen([DRRUN] + argv + ["--state-dir", STATE], cwd=RUN,
                      stderr=subprocess.PIPE, text=True)
wait_for(lambda: os.path.exists(os.path.join(STATE, "serve", "events.jsonl")), "serve to start", 20)
import time
time.sleep(0.3)
sv.terminate()
err = sv.communicate(timeout=20)[1]
expect(sv.returncode == 0 and '"msg":"listening"' in err, f"the unit's serve: {sv.returncode} {err}")
