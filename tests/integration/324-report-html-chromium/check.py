import html.parser, json, os, shutil, subprocess, sys, tempfile

case, rundir, state = sys.argv[1:4]
drrun = os.path.abspath(os.environ["DRRUN"])
rid = os.listdir(os.path.join(state, "runs"))[0]
out = os.path.join(rundir, "report.html")
p = subprocess.run([drrun, "report", rid, "--format", "html", "-o", out, "--state-dir", state],
                   capture_output=True, text=True, timeout=30)
assert p.returncode == 0, f"html: exit {p.returncode}: {p.stderr}"
src = open(out, encoding="utf-8").read()
for bad in ("<script", "http://", "https://", "<link", "@import", "url("):
    if bad in src and not (bad == "http://" and "http://www.w3.org/2000/svg" in src and
                           src.count("http://") == src.count("http://www.w3.org/2000/svg")):
        sys.exit(f"the page is not self-contained: it has {bad!r}")
rep = json.loads(subprocess.run([drrun, "report", rid, "--format", "json", "--state-dir", state],
                                capture_output=True, text=True, timeout=30).stdout)
want = sorted((s["name"], i + 1) for s in rep["steps"] for i, _ in enumerate(s["attempts"]))
assert len(want) == 7, f"attempts in the journal: {want}"

chromium = shutil.which("chromium") or "/usr/bin/chromium"
prof = tempfile.mkdtemp(prefix="chromium-prof-", dir=rundir)
base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--user-data-dir=" + prof]
d = subprocess.run(base + ["--dump-dom", "file://" + out], capture_output=True, text=True,
                   timeout=60)
assert d.returncode == 0 and "<svg" in d.stdout, f"chromium --dump-dom: {d.stderr[-500:]}"


class Bars(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.bars, self.in_gantt, self.audit = [], False, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and a.get("id") == "gantt":
            self.in_gantt = True
        if tag == "rect" and self.in_gantt and "bar" in a.get("class", "").split():
            self.bars.append((a["data-step"], int(a.get("data-attempt", 1)), a["class"]))
        if tag == "div" and a.get("id") == "audit":
            self.audit = a.get("class")

    def handle_endtag(self, tag):
        if tag == "svg":
            self.in_gantt = False


b = Bars()
b.feed(d.stdout)
got = sorted((s, n) for s, n, _ in b.bars)
assert got == want, f"bars in the DOM {got}, attempts in the journal {want}"
classes = [c for s, n, c in b.bars if s == "copy_b"]
assert classes.count("bar failed") == 2 and classes.count("bar ok") == 1, classes
assert b.audit == "audit ok", f"audit banner {b.audit}"
shot = os.path.join(rundir, "report.png")
s = subprocess.run(base + ["--window-size=1200,1400", "--hide-scrollbars",
                           "--screenshot=" + shot, "file://" + out],
                   capture_output=True, text=True, timeout=60)
assert s.returncode == 0 and os.path.getsize(shot) > 10000, f"screenshot: {s.stderr[-500:]}"
if os.environ.get("DRRUN_KEEP_SCREENSHOT"):
    shutil.copy(shot, os.environ["DRRUN_KEEP_SCREENSHOT"])
pdf = os.path.join(rundir, "report.pdf")
# a short TMPDIR: Chromium's sockets under it must fit a unix socket path
tmp = tempfile.mkdtemp(prefix="drt-")
env = dict(os.environ, DRRUN_CHROMIUM=chromium, TMPDIR=tmp)
p = subprocess.run([drrun, "report", rid, "--format", "pdf", "-o", pdf, "--state-dir", state],
                   capture_output=True, text=True, timeout=90, env=env)
assert p.returncode == 0, f"pdf: exit {p.returncode}: {p.stderr}"
data = open(pdf, "rb").read()
assert data.startswith(b"%PDF-") and len(data) > 5000, f"pdf of {len(data)} bytes"
left = os.listdir(tmp)
os.rmdir(tmp)
assert not left, f"pdf left its temporary directory behind: {left}"
