#!/usr/bin/env bash
# suite.sh DRRUN WORK - the "runbooks" suite of tests/run.sh: every runbook's
# tests (tests/runbooks/*_test.lua, run by `drrun test`), then the
# meta-tests: test files in meta/ that must fail, each for its own reason.
# Prints "ok NAME" or "FAIL NAME: why" per check.
set -u
cd "$(dirname "$0")/../.." || exit 2
DRRUN=$1
WORK=$2
mkdir -p "$WORK"
export TMPDIR="$WORK" # the cases' state dirs: kept under WORK when one fails

# ---- the runbooks' own tests, one line per case ------------------------------
out=$WORK/runbooks.tap
"$DRRUN" test --junit "$WORK/junit.xml" tests/runbooks/ >"$out" 2>"$WORK/runbooks.err"
rc=$?
awk '
	/^ok [0-9]+ - / { sub(/^ok [0-9]+ - /, ""); print "ok " $0; next }
	/^not ok [0-9]+ - / { sub(/^not ok [0-9]+ - /, ""); name = $0; getline why;
		sub(/^#   /, "", why); print "FAIL " name ": " why; next }
' "$out"
last=$(tail -n 1 "$out")
if [ "$rc" -ne 0 ] && ! grep -q '^not ok' "$out"; then
	echo "FAIL drrun-test-exit: exit $rc with no failed case: $(tail -n 3 "$WORK/runbooks.err" | tr '\n' ' ')"
fi
case "$last" in
*" passed, 0 failed") [ "$rc" -eq 0 ] && echo "ok summary-line-and-exit-0" ;;
*" passed, "*" failed") [ "$rc" -eq 1 ] && echo "ok summary-line-and-exit-1" ;;
*) echo "FAIL summary-line: the last line is '$last'" ;;
esac
# every runbook has its test file
for rb in runbooks/*.lua runbooks/examples/*.lua; do
	base=$(basename "$rb" .lua)
	if [ -f "tests/runbooks/${base}_test.lua" ]; then
		echo "ok has-tests/$base"
	else
		echo "FAIL has-tests/$base: no tests/runbooks/${base}_test.lua"
	fi
done
# the JUnit file agrees with the TAP
/usr/bin/python3 - "$WORK/junit.xml" "$out" <<'PY'
import re, sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception as e:
    print("FAIL junit-xml: %s" % e)
    sys.exit(0)
tap = open(sys.argv[2]).read()
cases = root.findall("./testsuite/testcase")
fails = [c for c in cases if c.find("failure") is not None]
n_ok = len(re.findall(r"^ok \d+ - ", tap, re.M))
n_bad = len(re.findall(r"^not ok \d+ - ", tap, re.M))
if root.tag != "testsuites" or len(cases) != n_ok + n_bad or len(fails) != n_bad \
        or root.get("tests") != str(n_ok + n_bad) or root.get("failures") != str(n_bad):
    print("FAIL junit-xml: %d cases, %d failures; the TAP says %d and %d"
          % (len(cases), len(fails), n_ok + n_bad, n_bad))
else:
    print("ok junit-xml")
PY

# ---- meta-tests: what must fail, fails, and says why ---------------------------
meta() { # NAME FILE WANT-LAST-LINE PATTERN... : exit 1, that last line, each pattern
	local name=$1 file=$2 want=$3 o=$WORK/meta-$1.out rc p missing=""
	shift 3
	DRRUN_META_MARKER=$WORK/marker "$DRRUN" test "$file" >"$o" 2>&1
	rc=$?
	for p in "$@"; do
		grep -qF -- "$p" "$o" || missing="$missing '$p'"
	done
	if [ "$rc" -ne 1 ]; then
		echo "FAIL meta/$name: exit $rc, want 1"
	elif [ "$(tail -n 1 "$o")" != "$want" ]; then
		echo "FAIL meta/$name: last line '$(tail -n 1 "$o")', want '$want'"
	elif [ -n "$missing" ]; then
		echo "FAIL meta/$name: the output lacks$missing"
	else
		echo "ok meta/$name"
	fi
}
M=tests/runbooks/meta
meta wrong-expectation $M/wrong_expect.lua "0 passed, 1 failed" \
	"not ok 1 - $M/wrong_expect.lua: wrong on purpose" \
	"result: expected rolled-back, got completed" "exit: expected 1, got 0" \
	'completed: expected ["touch","wait"], got ["wait","touch"]' \
	'outputs.wait: expected {"waited":"2h"}, got {' "elapsed: expected 0..1800"
meta unfaked-call $M/unfaked.lua "0 passed, 1 failed" \
	"unfaked call: drrun.exec.run at $M/tiny.lua:20"
if [ -e "$WORK/marker" ]; then
	echo "FAIL meta/unfaked-call-touches-nothing: the runbook created $WORK/marker"
else
	echo "ok meta/unfaked-call-touches-nothing"
fi
meta unfaked-below-the-stdlib $M/unfaked_stdlib.lua "0 passed, 1 failed" \
	"unfaked call: drrun.http.core.request, from drrun.statuspage.incident at runbooks/heroku-netlify.lua:148"
meta one-of-two $M/mixed.lua "1 passed, 1 failed" \
	"ok 1 - $M/mixed.lua: passes with exec faked" "exit: expected 3, got 0"
meta bad-case $M/bad_case.lua "0 passed, 1 failed" \
	"$M/bad_case.lua:5: case \"a typo\": unknown field 'expext'"
meta no-runbook $M/no_runbook.lua "0 passed, 1 failed" \
	"t.runbook: $M/no-such-runbook.lua: No such file or directory"
# a failed case keeps its state dir, with its journal, and says where
kept=$(sed -n 's/^#   state dir: //p' "$WORK/meta-wrong-expectation.out" | head -n 1)
if [ -n "$kept" ] && ls "$kept"/runs/*/journal.jsonl >/dev/null 2>&1; then
	echo "ok meta/failed-case-keeps-its-journal"
else
	echo "FAIL meta/failed-case-keeps-its-journal: no journal under '$kept'"
fi
# usage
"$DRRUN" test >/dev/null 2>&1
rc=$?
[ "$rc" -eq 64 ] && echo "ok usage-exit-64" || echo "FAIL usage-exit-64: exit $rc"
"$DRRUN" test "$WORK/no-such-dir" >/dev/null 2>&1
rc=$?
[ "$rc" -eq 66 ] && echo "ok missing-exit-66" || echo "FAIL missing-exit-66: exit $rc"
exit 0
