#!/usr/bin/env bash
# run.sh - drrun's test runner; `make test` calls it from the repo root as
#   BUILD=build/rel SAN= tests/run.sh [FILTER...]
# Runs every cmocka test of every unit binary ($BUILD/tests/test_*, one line
# per test) and every integration case (tests/integration/NNN-slug/, one line
# per case, run by tests/integration/harness.py), every Lua spec, and the
# suites (fakes, docs, runbooks, durable, torture).  A FILTER runs only the
# unit binaries and cases whose name contains it.  Scratch files go to
# tests/tmp/run-<pid>/ (gitignored), kept only when something failed.  Ends with "N passed, N failed"; exit 0 only when
# nothing failed.  Needs bash, timeout(1) and python3; reads no stdin.
set -u

cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build/rel}
SAN=${SAN:-}
DRRUN=${DRRUN:-./drrun}
CASE_TIMEOUT=120
TMP=tests/tmp

if [ -n "$SAN" ]; then
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

passed=0
failed=0

selected() { # NAME -> true if no filter or NAME contains one of them
	[ $# -gt 0 ] || return 1
	local name=$1
	shift
	[ "${#FILTERS[@]}" -eq 0 ] && return 0
	local f
	for f in "${FILTERS[@]}"; do
		case "$name" in *"$f"*) return 0 ;; esac
	done
	return 1
}
FILTERS=("$@")

ok() {
	printf 'ok   %s\n' "$1"
	passed=$((passed + 1))
}

fail() { # NAME REASON [DETAIL-FILE]
	printf 'FAIL %s: %s\n' "$1" "$2"
	failed=$((failed + 1))
	if [ $# -ge 3 ] && [ -s "$3" ]; then
		sed 's/^/    /' "$3"
	fi
}

sanitizer_hit() { # FILE -> true if a sanitizer reported something
	grep -qE 'ERROR: AddressSanitizer|LeakSanitizer|runtime error:' "$1"
}

# A spec or a suite runs drrun processes whose stderr it may never look at
# (nested runs, status queries, signalled runs): under SAN their sanitizer
# reports go to files in DIR, which san_reports then collects.
san_logs() { # DIR COMMAND... -> runs COMMAND, reports to DIR/report.PID
	local dir=$1
	shift
	if [ -z "$SAN" ]; then
		"$@"
		return
	fi
	mkdir -p "$dir"
	ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$dir/report" \
		UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$dir/report" "$@"
}
san_reports() { # DIR OUT -> true if DIR holds a report; their text in OUT
	[ -d "$1" ] && [ -n "$(ls -A "$1")" ] || return 1
	head -c 4000 "$1"/* >"$2"
}

# ---- unit tests: one line per cmocka test, via its TAP output -------------

run_unit() { # SOURCE
	local name bin out rc plan seen line
	name=$(basename "$1" .c)
	bin=$BUILD/tests/$name
	out=$WORK/unit/$name.out
	if [ ! -x "$bin" ]; then
		fail "$name" "not built ($bin missing; run make unit)"
		return
	fi
	CMOCKA_MESSAGE_OUTPUT=TAP timeout "$CASE_TIMEOUT" "$bin" </dev/null >"$out" 2>&1
	rc=$?
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$out" | head -n 1)
	seen=0
	while IFS= read -r line; do
		case "$line" in
		"ok "*)
			seen=$((seen + 1))
			ok "$name/${line#ok * - }"
			;;
		"not ok "*)
			seen=$((seen + 1))
			local t=${line#not ok * - }
			printf 'FAIL %s/%s: assertion failed\n' "$name" "$t"
			failed=$((failed + 1))
			# what the test printed before its result, and the "# ..." after it
			awk -v want="$line" '
				f && /^# / { print "    " $0; next }
				{ f = 0 }
				$0 == want { printf "%s", buf; f = 1 }
				/^(ok|not ok) [0-9]+ - / || /^1\.\./ { buf = ""; next }
				{ buf = buf "    " $0 "\n" }' "$out"
			;;
		esac
	done < <(grep -E '^(ok|not ok) [0-9]+ - ' "$out")
	if [ "$rc" -eq 124 ]; then
		fail "$name" "timed out after ${CASE_TIMEOUT}s" "$out"
	elif sanitizer_hit "$out"; then
		fail "$name" "sanitizer report" "$out"
	elif [ -z "$plan" ] || [ "$seen" -lt "$plan" ]; then
		fail "$name" "crashed or stopped early (exit $rc, ${seen}/${plan:-?} tests reported)" "$out"
	elif [ "$rc" -ne 0 ] && [ "$seen" -gt 0 ] && ! grep -q '^not ok ' "$out"; then
		fail "$name" "exit status $rc although every test passed" "$out"
	fi
}

# ---- integration cases ----------------------------------------------------

run_case() { # DIR
	local name out rc reason
	name=$(basename "$1")
	out=$WORK/cases/$name.out
	timeout "$CASE_TIMEOUT" python3 tests/integration/harness.py \
		"$1" "$WORK/cases/$name" "$DRRUN" </dev/null >"$out" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ]; then
		ok "$name"
		return
	fi
	if [ "$rc" -eq 124 ]; then
		reason="timed out after ${CASE_TIMEOUT}s"
	else
		reason=$(head -n 1 "$out")
		[ -n "$reason" ] || reason="harness exit $rc"
		sed -i 1d "$out"
	fi
	fail "$name" "$reason" "$out"
}

# One scratch dir per invocation, so concurrent runs never share files;
# drop those left by runs that are gone, keep ours only when something failed.
for old in "$TMP"/run-*; do
	[ -d "$old" ] || continue
	kill -0 "${old##*-}" 2>/dev/null || rm -rf "$old"
done
WORK=$TMP/run-$$
mkdir -p "$WORK/unit" "$WORK/cases" || exit 2

for src in tests/unit/test_*.c; do
	[ -e "$src" ] || continue
	selected "$(basename "$src" .c)" && run_unit "$src"
done

# the fuzz harnesses over their seeds (and every prefix of each): fuzzing runs
# outside make test, but a harness must keep building and its seeds passing
for src in fuzz/*.c; do
	[ -e "$src" ] || continue
	name=fuzz-seeds/$(basename "$src" .c)
	selected "$name" || continue
	bin=$BUILD/tests/fuzz-seeds-$(basename "$src" .c)
	out=$WORK/unit/$(basename "$src" .c).fuzz.out
	if [ ! -x "$bin" ]; then
		fail "$name" "not built ($bin missing; run make unit)"
	elif ! timeout "$CASE_TIMEOUT" "$bin" fuzz/corpus/"$(basename "$src" .c)"/* </dev/null >"$out" 2>&1; then
		fail "$name" "a seed failed" "$out"
	elif [ -n "$SAN" ] && sanitizer_hit "$out"; then
		fail "$name" "sanitizer report" "$out"
	else
		ok "$name ($(tail -n 1 "$out"))"
	fi
done

if [ ! -x "$DRRUN" ]; then
	echo "warning: $DRRUN is not built; integration cases will fail" >&2
fi
for dir in tests/integration/[0-9][0-9][0-9]-*/; do
	[ -d "$dir" ] || continue
	dir=${dir%/}
	selected "$(basename "$dir")" && run_case "$dir"
done

# ---- Lua specs: each tests/lua/*_spec.lua is a runbook that must complete --

# A spec may add to ASAN_OPTIONS for its own run with a line
#   -- asan-options: NAME=VALUE[:...]
# (aws_s3_stream_spec bounds drrun's peak RSS, which ASan's quarantine of
# freed blocks would otherwise inflate by up to 256 MiB).
run_spec() { # FILE
	local f=$1 base name out rc asan
	base=$(basename "$f" .lua)
	name=lua/$base
	out=$WORK/lua/$base.out
	asan=${ASAN_OPTIONS:-}
	if [ -n "$SAN" ]; then
		asan=$asan$(sed -n 's/^-- asan-options: \([A-Za-z_]*=[^ ]*\)$/:\1/p' "$f" | head -n 1)
	fi
	(cd "$(dirname "$f")" && ASAN_OPTIONS=$asan san_logs "$ABS_WORK/lua/san-$base" \
		timeout "$CASE_TIMEOUT" "$ABS_DRRUN" run --no-color \
		--state-dir "$ABS_WORK/lua/state-$base" "$(basename "$f")" </dev/null) >"$out" 2>&1
	rc=$?
	if [ "$rc" -ne 0 ]; then
		tail -n 40 "$out" >"$out.tail"
		san_reports "$WORK/lua/san-$base" "$out.san" && cat "$out.san" >>"$out.tail"
		fail "$name" "exit $rc (want 0)" "$out.tail"
	elif [ -n "$SAN" ] && sanitizer_hit "$out"; then
		fail "$name" "sanitizer report" "$out"
	elif san_reports "$WORK/lua/san-$base" "$out.san"; then
		fail "$name" "sanitizer report from a drrun it ran" "$out.san"
	else
		ok "$name"
	fi
}

# ---- suites: scripts that print "ok NAME" / "FAIL NAME: why" per test ------

run_suite() { # NAME COMMAND...
	local name=$1 out rc line n=0
	shift
	out=$WORK/suite-$name.out
	san_logs "$ABS_WORK/san-$name" timeout 900 "$@" </dev/null >"$out" 2>&1
	rc=$?
	while IFS= read -r line; do
		case "$line" in
		"ok "*) ok "$name/${line#ok }"; n=$((n + 1)) ;;
		"FAIL "*) printf 'FAIL %s/%s\n' "$name" "${line#FAIL }"; failed=$((failed + 1)); n=$((n + 1)) ;;
		esac
	done <"$out"
	if [ "$n" -eq 0 ]; then
		fail "$name" "exit $rc and no result lines" "$out"
	elif [ "$rc" -ne 0 ] || { [ -n "$SAN" ] && sanitizer_hit "$out"; }; then
		grep -vE '^(ok|FAIL) ' "$out" | tail -n 40 >"$out.tail"
		fail "$name" "exit $rc" "$out.tail"
	fi
	if san_reports "$WORK/san-$name" "$out.san"; then
		fail "$name" "sanitizer report from a drrun it ran" "$out.san"
	fi
}

ABS_DRRUN=$(cd "$(dirname "$DRRUN")" && pwd)/$(basename "$DRRUN")
ABS_WORK=$(pwd)/$WORK
mkdir -p "$WORK/lua"
# the real servers the specs talk to (nginx, ...), on loopback; stopped on exit
if [ -x tests/servers.sh ]; then
	if tests/servers.sh start "$ABS_WORK/servers" >"$WORK/servers.log" 2>&1; then
		# shellcheck disable=SC1091
		. "$ABS_WORK/servers/env"
		trap 'tests/servers.sh stop "$ABS_WORK/servers" >/dev/null 2>&1' EXIT
	else
		fail "servers" "could not start the test servers" "$WORK/servers.log"
		tests/servers.sh stop "$ABS_WORK/servers" >/dev/null 2>&1
	fi
fi
for f in tests/lua/*_spec.lua; do
	[ -e "$f" ] || continue
	selected "lua/$(basename "$f" .lua)" && run_spec "$f"
done
if selected fakes; then
	run_suite fakes python3 tests/fakes/selftest.py
fi
if selected docs; then
	run_suite docs python3 tests/docs.py
fi
if selected runbooks; then
	run_suite runbooks tests/runbooks/suite.sh "$ABS_DRRUN" "$ABS_WORK/runbooks"
fi
if selected durable; then
	run_suite durable python3 tests/durability/durable.py "$ABS_DRRUN" "$ABS_WORK/durable"
fi
if selected terminal; then
	run_suite terminal python3 tests/durability/terminal.py "$ABS_DRRUN" "$ABS_WORK/terminal"
fi
if selected tamper; then
	run_suite tamper python3 tests/durability/tamper.py "$ABS_DRRUN" "$ABS_WORK/tamper"
fi
if selected scale; then
	run_suite scale python3 tests/perf/scale.py "$ABS_DRRUN" "$ABS_WORK/scale"
fi
if selected torture; then
	run_suite torture python3 tests/durability/torture.py "$ABS_DRRUN" "$ABS_WORK/torture" \
		--trials "${TORTURE_TRIALS:-40}"
fi

# stop the servers before their directory goes
if [ -x tests/servers.sh ] && [ -d "$ABS_WORK/servers" ]; then
	tests/servers.sh stop "$ABS_WORK/servers" >/dev/null 2>&1
	trap - EXIT
fi
if [ "$failed" -eq 0 ]; then
	rm -rf "$WORK"
else
	echo "scratch files of this run: $WORK"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
