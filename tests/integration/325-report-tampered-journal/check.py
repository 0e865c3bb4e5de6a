import os, subprocess, sys

case, rundir, state = sys.argv[1:4]
drrun = os.path.abspath(os.environ["DRRUN"])
rid = os.listdir(os.path.join(state, "runs"))[0]
j = os.environ["DRRUN_JOURNAL"]
text = open(j).read()
assert "restored 1204 rows" in text
open(j, "w").write(text.replace("restored 1204 rows", "restored 9999 rows"))
p = subprocess.run([drrun, "report", rid, "--state-dir", state], capture_output=True, text=True,
                   timeout=30)
assert p.returncode == 1, f"md: exit {p.returncode}, want 1: {p.stderr}"
first = p.stdout.splitlines()[0]
assert first.startswith("> **Audit: JOURNAL VERIFICATION FAILED at seq "), first
assert "| restore | restore | completed |" in p.stdout, "the steps are still reported"
assert "the journal does not verify" in p.stderr, p.stderr
h = subprocess.run([drrun, "report", rid, "--format", "html", "--state-dir", state],
                   capture_output=True, text=True, timeout=30)
assert h.returncode == 1, f"html: exit {h.returncode}"
body = h.stdout
at = body.index("<body>")
assert body.index('<div id="audit" class="audit bad">') == at + len("<body>\n"), "audit not first"
assert ".audit.bad{background:#d32f2f" in body, "the failure is not red"
assert "<rect class=\"bar ok\"" in body, "the Gantt still renders"

# a tampered value is text, never markup: a step result that holds HTML or a
# Markdown table's bar is escaped like every other value the journal holds
text = open(j).read()
mark = '"type":"step_end","step":"verify","status":"completed"'
assert mark in text, "the verify step_end"
open(j, "w").write(text.replace(mark, mark[:-len('completed"')] + '<script>x</script>|bar"'))
h = subprocess.run([drrun, "report", rid, "--format", "html", "--state-dir", state],
                   capture_output=True, text=True, timeout=30)
assert h.returncode == 1, f"html: exit {h.returncode}"
assert "<script>x" not in h.stdout, "a tampered result became markup in the HTML"
assert "&lt;script&gt;x&lt;/script&gt;|bar" in h.stdout, "the tampered result is not shown escaped"
m = subprocess.run([drrun, "report", rid, "--state-dir", state], capture_output=True, text=True,
                   timeout=30)
assert "<script>x" not in m.stdout and "\\|bar" in m.stdout, \
    "a tampered result breaks the Markdown table: " + m.stdout
