# shellcheck shell=bash
# lib.sh - harness for the integration tests: starts a real temporisd on a free
# loopback port in a temp dir, drives it with curl/temporisctl/python, and keeps
# the pass/fail counters. Sourced by tests/integration/test_*.sh.
#
# Env: top_builddir/top_srcdir (set by automake), DATA_DIR (default $TMP/data), TEMPORISD_WRAPPER (optional
# command prefix for the server, e.g. "valgrind -q"), KEEP_TMP=1 keeps the temp dir.

set -euo pipefail

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_srcdir:=$(cd "$IT_DIR/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
TEMPORISD="$top_builddir/src/temporisd"
TEMPORISCTL="$top_builddir/src/temporisctl"
TCLIENT="$IT_DIR/tclient.py"

readonly START_TIMEOUT_S=15
readonly STOP_TIMEOUT_S=15

PASSED=0
FAILED=0
SETUP_FAILED=0
FINISHED=0
SERVER_PID=""
SERVER_CHILDREN=""
SERVER_LOG_OFFSET=0
PORT=""
BASE=""
TMP=$(mktemp -d "${TMPDIR:-/tmp}/temporis-it.XXXXXX")
CFG="$TMP/temporis.conf"
# temporisd refuses to serve as root: started by root (CI), it switches to
# RUN_AS, which then owns the temp dir (data, admin socket).
RUN_AS=""
if [ "$(id -u)" -eq 0 ]; then
	RUN_AS=${TEMPORIS_TEST_USER:-nobody}
	chown "$RUN_AS" "$TMP"
fi

# ---- counters -------------------------------------------------------------

pass() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() {
	FAILED=$((FAILED + 1))
	echo "FAIL $1: $2"
}
setup_fail() {
	SETUP_FAILED=1
	echo "SETUP FAILED: $*"
}

# Print the summary line and exit non-zero on any failure.
finish() {
	FINISHED=1
	echo "$PASSED passed, $FAILED failed"
	if [ "$FAILED" -gt 0 ] || [ "$SETUP_FAILED" -ne 0 ]; then
		exit 1
	fi
	exit 0
}

# A setup step that cannot go on: print to stderr (callers may be inside $(...))
# and stop; the EXIT trap of the main shell prints the log and the summary.
die() {
	echo "SETUP FAILED: $*" >&2
	exit 1
}

# ---- requirements ----------------------------------------------------------

require_binaries() {
	[ -x "$TEMPORISD" ] || die "server binary $TEMPORISD not found (build first)"
	[ -x "$TEMPORISCTL" ] || die "ctl binary $TEMPORISCTL not found (build first)"
	command -v curl >/dev/null || die "curl is required (scripts/deps installs it)"
	command -v python3 >/dev/null || die "python3 is required (scripts/deps installs it)"
}

require_requests() {
	python3 -c 'import requests' 2>/dev/null ||
		die "python3-requests is missing (scripts/deps installs it)"
}

require_node() {
	command -v node >/dev/null || die "node is missing (scripts/deps installs nodejs >= 18)"
	local major
	major=$(node -p 'process.versions.node.split(".")[0]')
	[ "$major" -ge 18 ] || die "node >= 18 is required for global fetch (found $(node --version))"
}

# ---- server lifecycle -----------------------------------------------------

free_port() {
	python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# write_config [extra lines...]: the base config plus per-test overrides.
write_config() {
	[ -n "$PORT" ] || PORT=$(free_port)
	BASE="http://127.0.0.1:$PORT"
	{
		echo "# written by tests/integration/lib.sh"
		echo "listen = 127.0.0.1:$PORT"
		echo "workers = 2"
		echo "data_dir = ${DATA_DIR:-$TMP/data}"
		echo "admin_socket = $TMP/admin.sock"
		echo "ring_size = 8M"
		echo "log_level = warn"
		[ -z "$RUN_AS" ] || echo "user = $RUN_AS"
		local line
		for line in "$@"; do [ -z "$line" ] || echo "$line"; done
	} >"$CFG"
}

server_alive() {
	[ -n "$SERVER_PID" ] || return 1
	[ -e "/proc/$SERVER_PID" ] || return 1
	# a zombie still answers kill -0: look at the state instead
	local state
	state=$(awk '{print $3}' "/proc/$SERVER_PID/stat" 2>/dev/null) || return 1
	[ "$state" != "Z" ]
}

# Direct and indirect children of the server (writer, workers).
collect_children() {
	local pid=$1 kids k
	kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
	for k in $kids; do
		echo "$k"
		collect_children "$k"
	done
}

# The writer process among the server's children (its process title says so).
writer_pid() {
	local p
	for p in $(collect_children "$SERVER_PID"); do
		if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q 'temporisd: writer'; then
			echo "$p"
			return 0
		fi
	done
}

start_server() {
	[ -f "$CFG" ] || write_config ""
	SERVER_LOG_OFFSET=$(stat -c %s "$TMP/server.log" 2>/dev/null || echo 0)
	# shellcheck disable=SC2086
	${TEMPORISD_WRAPPER:-} "$TEMPORISD" --config "$CFG" 2>>"$TMP/server.log" &
	SERVER_PID=$!
	local deadline=$((SECONDS + START_TIMEOUT_S)) code=""
	while [ $SECONDS -lt $deadline ]; do
		if ! server_alive; then
			local rc=0
			wait "$SERVER_PID" || rc=$?
			SERVER_PID=""
			die "temporisd exited during start-up (status $rc)"
		fi
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/healthz" || true)
		if [ "$code" = 200 ] && [ -S "$TMP/admin.sock" ]; then
			SERVER_CHILDREN=$(collect_children "$SERVER_PID" | tr '\n' ' ')
			return 0
		fi
		sleep 0.1
	done
	die "temporisd did not answer GET /healthz with 200 within ${START_TIMEOUT_S}s (last: '$code')"
}

# SIGTERM, wait for exit, assert status 0 and that no child is left behind.
stop_server() {
	local name=${1:-server drains and exits 0 on SIGTERM}
	[ -n "$SERVER_PID" ] || return 0
	SERVER_CHILDREN="$SERVER_CHILDREN $(collect_children "$SERVER_PID" | tr '\n' ' ')"
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	local deadline=$((SECONDS + STOP_TIMEOUT_S))
	while server_alive && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	if server_alive; then
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=""
		kill_children
		die "$name: temporisd still running ${STOP_TIMEOUT_S}s after SIGTERM (killed)"
	fi
	local rc=0
	wait "$SERVER_PID" || rc=$?
	SERVER_PID=""
	if [ "$rc" -eq 0 ]; then pass "$name"; else fail "$name" "expected exit status 0, got $rc"; fi
	local left="" p
	deadline=$((SECONDS + 5))
	while [ $SECONDS -lt $deadline ]; do
		left=""
		for p in $SERVER_CHILDREN; do
			if [ -e "/proc/$p" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]; then
				left="$left $p"
			fi
		done
		[ -z "$left" ] && break
		sleep 0.1
	done
	if [ -n "$left" ]; then
		fail "children exit with the master" "still running:$left"
		kill_children
	fi
	SERVER_CHILDREN=""
	check_memory_reports
}

# ASan/UBSan builds and TEMPORISD_WRAPPER="valgrind ..." report into server.log;
# a report from any process (workers and writer too) fails the run.
check_memory_reports() {
	local hits frames
	tail -c +"$((SERVER_LOG_OFFSET + 1))" "$TMP/server.log" >"$TMP/server.log.run" 2>/dev/null || true
	hits=$(grep -E 'AddressSanitizer|LeakSanitizer|runtime error:|^==[0-9]+== (Invalid|Conditional jump|Use of uninitialised|Syscall param|Mismatched|Source and destination|[0-9,]+ bytes in [0-9,]+ blocks are definitely)' \
		"$TMP/server.log.run" | sed -E 's/^==[0-9]+== //' | sort | uniq -c | head -n 5 || true)
	if [ -z "$hits" ]; then
		pass "no sanitizer or valgrind report in server.log"
		return 0
	fi
	# where in our code: per report, the first frame in a file of src/
	frames=$(python3 - "$TMP/server.log.run" "$top_srcdir/src" <<'PY' || true
import collections, os, re, sys
own = set(os.listdir(sys.argv[2])) if os.path.isdir(sys.argv[2]) else set()
kind, seen = None, collections.Counter()
for line in open(sys.argv[1], errors="replace"):
    line = re.sub(r"^==\d+== ", "", line.rstrip())
    m = re.search(r"(Invalid \w+ of size \d+|Conditional jump|Use of uninitialised value|"
                  r"AddressSanitizer: [\w-]+|runtime error: .*|definitely lost)", line)
    if m:
        kind = m.group(1)
        continue
    f = re.search(r"(?:by|at) 0x[0-9A-F]+: (\S+) \((?:src/)?([\w.]+\.c):(\d+)\)", line) or \
        re.search(r"#\d+ 0x[0-9a-f]+ in (\S+) \S*?([\w.]+\.c):(\d+)", line)
    if kind and f and f.group(2) in own:
        seen["%s at %s (%s:%s)" % (kind, f.group(1), f.group(2), f.group(3))] += 1
        kind = None
for k, n in seen.most_common(6):
    print("%dx %s;" % (n, k))
PY
)
	fail "no sanitizer or valgrind report in server.log" \
		"$(echo "$hits" | tr -s ' \n' ' ') | in our code: $(echo "$frames" | tr '\n' ' ')"
}

kill_children() {
	local p
	for p in $SERVER_CHILDREN; do kill -KILL "$p" 2>/dev/null || true; done
}

restart_server() {
	stop_server "server drains and exits 0 on SIGTERM (restart)"
	start_server
}

cleanup() {
	local rc=$?
	if [ -n "$SERVER_PID" ]; then
		SERVER_CHILDREN="$SERVER_CHILDREN $(collect_children "$SERVER_PID" | tr '\n' ' ')"
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	kill_children
	# a test's own undo (say, unmounting what it mounted under $TMP), after the server
	[ -z "${CLEANUP_HOOK:-}" ] || "$CLEANUP_HOOK" || true
	if { [ "$FAILED" -gt 0 ] || [ "$FINISHED" -eq 0 ]; } && [ -s "$TMP/server.log" ]; then
		echo "---- server.log (last 40 lines) ----"
		tail -n 40 "$TMP/server.log" || true
		echo "------------------------------------"
	fi
	if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
	if [ "$FINISHED" -eq 0 ]; then
		echo "aborted: a setup step failed (see SETUP FAILED above)"
		echo "$PASSED passed, $((FAILED + 1)) failed"
		[ "$rc" -ne 0 ] || rc=1
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- temporisctl ------------------------------------------------------------

ctl() { "$TEMPORISCTL" --socket "$TMP/admin.sock" "$@"; }

# json_get FILE_OR_- PYEXPR: evaluate PYEXPR with the parsed JSON bound to j.
json_get() {
	local src=$1 expr=$2
	if [ "$src" = - ]; then
		python3 -c "import json,sys; j=json.load(sys.stdin); v=($expr); print(json.dumps(v) if not isinstance(v,str) else v)"
	else
		python3 -c "import json,sys; j=json.load(open(sys.argv[1])); v=($expr); print(json.dumps(v) if not isinstance(v,str) else v)" "$src"
	fi
}

# new_account NAME: creates it and prints its first token.
new_account() {
	local out
	out=$(ctl --json account create "$1") || die "temporisctl --json account create $1 failed: $out"
	json_get - 'j["token"]' <<<"$out" || die "no token in: $out"
}

new_token() {
	local out
	out=$(ctl --json token create "$1") || die "temporisctl --json token create $1 failed: $out"
	echo "$out"
}

new_source() {
	local out
	out=$(ctl --json source create "$1" "$2") || die "temporisctl source create $1 $2 failed: $out"
}

# ---- HTTP ----------------------------------------------------------------

# req [curl args...]: sets R_STATUS, R_CTYPE; body in $R_BODY, headers in $R_HDRS.
R_BODY="$TMP/resp.body"
R_HDRS="$TMP/resp.hdrs"
R_STATUS=""
R_CTYPE=""
req() {
	local out
	: >"$R_BODY"
	: >"$R_HDRS"
	out=$(curl -s --max-time 60 -o "$R_BODY" -D "$R_HDRS" -w '%{http_code} %{content_type}' "$@" || true)
	R_STATUS=${out%% *}
	R_CTYPE=${out#* }
	[ "$R_CTYPE" != "$out" ] || R_CTYPE=""
}

# ingest TOKEN [curl args]: POST to the ingest endpoint (body via -d/--data-binary).
ingest() {
	local tok=$1
	shift
	req -X POST -H "Authorization: Bearer $tok" "$@" "$BASE/v1/data_sources/ingest"
}

body_text() { head -c 300 "$R_BODY" | tr '\n' ' '; }

expect_status() {
	local name=$1 want=$2
	if [ "$R_STATUS" = "$want" ]; then
		pass "$name"
	else
		fail "$name" "expected status $want, got $R_STATUS (body: $(body_text))"
	fi
}

# The media type must be application/json (parameters such as charset allowed).
check_json_ctype() {
	local mt=${R_CTYPE%%;*}
	mt=$(echo "$mt" | tr '[:upper:]' '[:lower:]' | tr -d ' ')
	[ "$mt" = application/json ]
}

# expect_error NAME STATUS DETAIL [exact|prefix [KEY]]: status, Content-Type and
# {"KEY": DETAIL} (KEY "detail" unless given: "error" for InfluxDB's routes).
expect_error() {
	local name=$1 want=$2 detail=$3 mode=${4:-exact} key=${5:-detail} errs=""
	[ "$R_STATUS" = "$want" ] || errs="status: expected $want, got $R_STATUS;"
	check_json_ctype || errs="$errs Content-Type: expected application/json, got '$R_CTYPE';"
	local got
	if ! got=$(python3 -c '
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except Exception as e:
    print("body is not JSON: %r" % open(sys.argv[1], "rb").read()[:200]); sys.exit(1)
key = sys.argv[4]
if not isinstance(j, dict) or not isinstance(j.get(key), str) or len(j) != 1:
    print("not exactly one string %s in %r" % (key, j)); sys.exit(1)
d = j[key]
ok = d == sys.argv[2] if sys.argv[3] == "exact" else d.startswith(sys.argv[2])
if not ok:
    print("%s: expected %r, got %r" % (key, sys.argv[2], d)); sys.exit(1)
' "$R_BODY" "$detail" "$mode" "$key"); then
		errs="$errs $got"
	fi
	if [ -z "$errs" ]; then pass "$name"; else fail "$name" "$errs"; fi
}

# header_value NAME: value of a response header (last response in $R_HDRS).
header_value() {
	python3 -c '
import sys
name = sys.argv[2].lower()
val = None
for line in open(sys.argv[1], encoding="latin-1"):
    if ":" in line and not line.startswith("HTTP/"):
        k, v = line.split(":", 1)
        if k.strip().lower() == name:
            val = v.strip()
print(val if val is not None else "")
' "$R_HDRS" "$1"
}

expect_header() {
	local name=$1 hdr=$2 want=$3 got
	got=$(header_value "$hdr")
	if [ "$got" = "$want" ]; then pass "$name"; else fail "$name" "header $hdr: expected '$want', got '$got'"; fi
}

expect_empty_body() {
	local name=$1
	if [ ! -s "$R_BODY" ]; then pass "$name"; else fail "$name" "expected empty body, got: $(body_text)"; fi
}

# check NAME CMD...: pass if CMD exits 0, else fail with its output.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(echo "$out" | tail -n 5 | tr '\n' ' ')"; fi
}

# run_py LABEL ARGS...: run tclient.py; its "PASS x"/"FAIL x: msg" lines count as tests.
# report_helper LABEL CMD...: run a helper that prints "PASS name" / "FAIL name: why"
# per check (and "INFO text" / "screenshot: path", echoed); every PASS and FAIL counts
# here, and a helper that dies without a FAIL line or reports nothing fails LABEL.
report_helper() {
	local label=$1 out rc=0 line seen=0
	shift
	out=$("$@" 2>&1) || rc=$?
	while IFS= read -r line; do
		case "$line" in
		"PASS "*) pass "${line#PASS }"; seen=1 ;;
		"FAIL "*) FAILED=$((FAILED + 1)); echo "$line"; seen=1 ;;
		"INFO "*) echo "info ${line#INFO }" ;;
		"screenshot: "*) echo "     $line" ;;
		esac
	done <<<"$out"
	if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' <<<"$out"; then
		fail "$label" "helper exited $rc: $(echo "$out" | tail -n 8 | tr '\n' ' ')"
	elif [ "$seen" -eq 0 ]; then
		fail "$label" "helper reported nothing: $(echo "$out" | tail -n 8 | tr '\n' ' ')"
	fi
}

run_py() {
	local label=$1
	shift
	report_helper "$label" env TEMPORIS_URL="$BASE" python3 "$TCLIENT" "$@"
}
