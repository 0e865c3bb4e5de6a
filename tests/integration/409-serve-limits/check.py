#!/usr/bin/env python3
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from serve import *  # noqa: E402,F403

s = Serve(args=["--client-timeout", "1s", "--max-connections", "4"])
# slow loris: half a request, then silence
c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
c.sendall(b"POST /hooks/generic HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n")
t0 = time.monotonic()
got = c.recv(100)
dt = time.monotonic() - t0
c.close()
expect(got == b"" or got.startswith(b"HTTP/1.1 408"), f"a silent client got {got!r}")
expect(0.8 <= dt < 5, f"a silent client was dropped after {dt:.2f}s (timeout 1s)")
# four idle connections fill the listener: a fifth is not served
held = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(4)]
time.sleep(0.2)
probe = socket.create_connection(("127.0.0.1", s.port), timeout=10)
probe.settimeout(0.5)  # well before the held ones time out (1s)
probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
try:
    got = probe.recv(100)
except socket.timeout:
    got = None
probe.close()
expect(not got or not got.startswith(b"HTTP/1.1 200"),
       f"a fifth connection was served over --max-connections 4: {got!r}")
for h in held:
    h.close()
time.sleep(0.3)
st, _ = s.get("/healthz")
expect(st == 200, f"after the idle connections closed: {st}")
# an idle keep-alive connection is dropped too, freeing its slot
held = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(4)]
time.sleep(2.5)
st, _ = s.get("/healthz")
expect(st == 200, f"idle connections were not dropped after 1s: {st}")
for h in held:
    h.close()
s.stop()
