#!/usr/bin/env bash
# test_systemd.sh - the systemd unit, generated from etc/temporisd.service.in as make
# does: `systemd-analyze verify` accepts it, `systemd-analyze security` rates its
# exposure at most MAX_EXPOSURE, and temporisd, traced with strace while it serves
# (started unprivileged, as the unit starts it), makes no system call its
# SystemCallFilter= refuses, opens nothing in /proc that ProcSubset=pid hides and maps
# no executable memory after start (MemoryDenyWriteExecute=). With systemd as PID 1
# (and root), the server also runs in the unit's sandbox (systemd-run) and answers
# /healthz. Exits 77 (skip) without systemd-analyze (package systemd).

if ! command -v systemd-analyze >/dev/null; then
	echo "SKIP: systemd-analyze not found (package systemd)"
	exit 77
fi

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

readonly MAX_EXPOSURE=2.5
# /proc files outside /proc/PID that may be opened, each with a fallback when hidden:
# RocksDB reads a uuid for its DB identity and otherwise generates one (getrandom).
readonly PROC_FALLBACKS='^/proc/sys/kernel/random/uuid$'
readonly SANDBOX_START_TIMEOUT_S=15

require_binaries

UNIT="$TMP/unit/temporisd.service"
ETC="$TMP/etc"

# The unit as make writes it, with bindir the build's src/ and sysconfdir a temp dir
# holding the shipped configuration (filled in the same way).
generate_unit() {
	local subst=(-e "s|@bindir[@]|$top_builddir/src|g" -e "s|@sysconfdir[@]|$ETC|g"
		-e "s|@datadir[@]|/usr/local/share|g" -e "s|@localstatedir[@]|/var|g"
		-e "s|@runstatedir[@]|/run|g")
	mkdir -p "$TMP/unit" "$ETC/temporis"
	sed "${subst[@]}" "$top_srcdir/etc/temporis.conf" >"$ETC/temporis/temporis.conf"
	sed "${subst[@]}" "$top_srcdir/etc/temporisd.service.in" >"$UNIT"
}

# verify looks up the Documentation= pages with man: point MANPATH at the source
# tree's pages (installed only by make install). Without man, skip that lookup.
check_verify() {
	local name="systemd-analyze verify accepts the unit" out rc=0 sect f
	for f in "$top_srcdir"/man/*.[0-9]; do
		sect=${f##*.}
		mkdir -p "$TMP/man/man$sect"
		ln -sf "$f" "$TMP/man/man$sect/"
	done
	if command -v man >/dev/null; then
		out=$(MANPATH="$TMP/man" systemd-analyze verify "$UNIT" 2>&1) || rc=$?
	else
		out=$(systemd-analyze verify --man=no "$UNIT" 2>&1) || rc=$?
	fi
	# no warning is known to be harmless: any output fails
	if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
		pass "$name"
	else
		fail "$name" "status $rc: $(echo "$out" | tail -n 8 | tr '\n' ' ')"
	fi
}

check_exposure() {
	local name="systemd-analyze security: overall exposure <= $MAX_EXPOSURE" out level
	out=$(systemd-analyze security --offline=true "$UNIT" 2>&1 || true)
	level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
	if [ -z "$level" ]; then
		fail "$name" "no exposure level in: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	elif awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l <= m) }'; then
		pass "$name (got $level)"
	else
		fail "$name" "got $level; not satisfied: $(grep '✗' <<<"$out" | awk '{print $2}' | tr '\n' ' ')"
	fi
}

# ---- temporisd under strace -------------------------------------------------

# Start it as systemd does: already unprivileged at exec (strace -u when root), so
# it never calls setuid/setgid; `user =` in the config is then ignored.
start_traced() {
	write_config ""
	TEMPORISD_WRAPPER="strace -f -qq -s 128 -o $TMP/trace"
	[ -z "$RUN_AS" ] || TEMPORISD_WRAPPER+=" -u $RUN_AS"
	TEMPORISD_WRAPPER="$TEMPORISD_WRAPPER" start_server
}

# What a unit's server does: ingest, read back, metrics (/proc of the family), a backup.
exercise() {
	local token
	token=$(new_account acme)
	new_source acme store_metrics
	ingest "$token" -H 'Content-Type: application/json' --data-binary \
		'{"data_source":"store_metrics","records":[{"timestamp":1718841600,"name":"orders","value":42}]}'
	expect_status "traced: ingest answers 204" 204
	req -H "Authorization: Bearer $token" \
		"$BASE/v1/data_sources/store_metrics/records?name=orders"
	expect_status "traced: records read back" 200
	req "$BASE/metrics"
	if [ "$R_STATUS" = 200 ] && grep -q '^process_cpu_seconds_total ' "$R_BODY"; then
		pass "traced: /metrics has process_cpu_seconds_total"
	else
		fail "traced: /metrics has process_cpu_seconds_total" "status $R_STATUS"
	fi
	check "traced: temporisctl backup" ctl backup "$TMP/backup"
}

# SIGTERM to the master (strace's child); strace exits with its status.
stop_traced() {
	local name="traced: temporisd drains and exits 0" master rc=0
	master=$(cat /proc/"$SERVER_PID"/task/*/children 2>/dev/null | awk '{print $1}')
	[ -n "$master" ] || die "no temporisd under strace (pid $SERVER_PID)"
	SERVER_CHILDREN=$(collect_children "$SERVER_PID" | tr '\n' ' ')
	kill -TERM "$master"
	wait "$SERVER_PID" || rc=$?
	SERVER_PID=""
	if [ "$rc" -eq 0 ]; then pass "$name"; else fail "$name" "exit status $rc"; fi
}

# Checks the trace against the unit: prints PASS/FAIL lines for report_helper.
# shellcheck disable=SC2317  # called through report_helper
check_trace() {
	python3 - "$TMP/trace" "$UNIT" "$PROC_FALLBACKS" <<'PY'
import re, subprocess, sys
trace, unit, fallbacks = sys.argv[1], sys.argv[2], re.compile(sys.argv[3])

# systemd's groups, expanded (a group lists syscalls and other groups)
out = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True,
                     text=True, check=True).stdout
groups, cur = {}, None
for line in out.splitlines():
    if line.startswith("@"):
        cur = groups.setdefault(line.split()[0], set())
    elif cur is not None and line.strip() and not line.strip().startswith("#"):
        cur.add(line.strip())
def expand(item):
    return set().union(*(expand(m) for m in groups.get(item, ()))) if item.startswith("@") else {item}

# the unit's allow list: the first SystemCallFilter= sets it, ~ lines take away
allowed = None
for line in open(unit):
    m = re.match(r"SystemCallFilter=(~?)(.*)", line.strip())
    if not m:
        continue
    items = set().union(*(expand(i) for i in m.group(2).split()))
    if m.group(1):
        allowed = (allowed or set()) - items
    else:
        allowed = (allowed or set()) | items
if allowed is None:
    print("FAIL unit has a SystemCallFilter=: none found"); sys.exit(0)

used, proc, wx = set(), set(), []
call = re.compile(r"^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)(?:\(| resumed>)")
for line in open(trace, errors="replace"):
    m = call.match(line)
    if not m:
        continue
    used.add(m.group(1))
    for path in re.findall(r'"(/proc/[^"]*)"', line):
        if not re.match(r"/proc/(self|thread-self|\d+)(/|$)", path) and not fallbacks.search(path):
            proc.add(path)
    if (m.group(1) == "mprotect" and "PROT_EXEC" in line) or \
       (m.group(1) == "mmap" and "PROT_WRITE" in line and "PROT_EXEC" in line):
        wx.append(line.strip()[:120])
print("INFO %d distinct system calls traced" % len(used))
refused = sorted(used - allowed)
print("PASS every traced system call is in the unit's SystemCallFilter=" if not refused
      else "FAIL every traced system call is in the unit's SystemCallFilter=: refused: " + " ".join(refused))
print("PASS /proc: only the processes' own entries (ProcSubset=pid)" if not proc
      else "FAIL /proc: only the processes' own entries (ProcSubset=pid): " + " ".join(sorted(proc)))
print("PASS no writable+executable mapping (MemoryDenyWriteExecute=)" if not wx
      else "FAIL no writable+executable mapping (MemoryDenyWriteExecute=): " + wx[0])
PY
}

check_traced_server() {
	if ! command -v strace >/dev/null; then
		echo "skip strace checks: strace not found (scripts/deps installs it)"
		return 0
	fi
	# strace needs ptrace; a sanitizer or valgrind build makes calls of its own
	if ! strace -f -o /dev/null true 2>/dev/null; then
		echo "skip strace checks: ptrace not permitted here"
		return 0
	fi
	# (ldd's output taken whole first: under pipefail, grep -q leaving early would
	# SIGPIPE ldd and make the test look uninstrumented, now and then)
	local libs
	libs=$(ldd "$TEMPORISD" 2>/dev/null || true)
	if [ -n "${TEMPORISD_WRAPPER:-}" ] || grep -qE 'lib(a|ub|t)san' <<<"$libs"; then
		echo "skip strace checks: instrumented build or wrapper (its runtime makes calls of its own)"
		return 0
	fi
	start_traced
	exercise
	stop_traced
	report_helper "strace trace checks" check_trace
}

# ---- under systemd itself ---------------------------------------------------

# The unit's [Service] sandbox settings as systemd-run properties; the paths of the
# installed layout are replaced by a transient state/runtime directory.
sandbox_properties() {
	sed -n '/^\[Service\]/,/^\[/p' "$UNIT" | grep -E '^[A-Z][A-Za-z]+=' |
		grep -vE '^(Type|ExecStart|ExecReload|User|Group|StateDirectory|StateDirectoryMode|RuntimeDirectory|RuntimeDirectoryMode|ReadWritePaths|Restart|RestartSec)=' |
		sed 's/^/-p\n/'
}

check_under_systemd() {
	local unit="temporisd-it-$$" state cfg code="" deadline props=()
	if [ "$(ps -p 1 -o comm= 2>/dev/null)" != systemd ] || [ "$(id -u)" -ne 0 ] ||
		! command -v systemd-run >/dev/null; then
		echo "skip sandbox run: needs systemd as PID 1 and root (PID 1 is $(ps -p 1 -o comm= 2>/dev/null))"
		return 0
	fi
	state="/var/lib/$unit"
	cfg="$TMP/systemd.conf"
	PORT=$(free_port)
	{
		echo "listen = 127.0.0.1:$PORT"
		echo "workers = 2"
		echo "data_dir = $state"
		echo "admin_socket = /run/$unit/admin.sock"
		echo "ring_size = 8M"
	} >"$cfg"
	chmod 644 "$cfg"
	mapfile -t props < <(sandbox_properties)
	# PrivateTmp= hides $TMP: the config is bound in read-only
	check "systemd-run starts temporisd in the unit's sandbox" \
		systemd-run --quiet --unit="$unit" -p User="$RUN_AS" -p Group="$(id -gn "$RUN_AS")" \
		-p StateDirectory="$unit" -p RuntimeDirectory="$unit" -p ReadWritePaths="$state" \
		-p BindReadOnlyPaths="$cfg:/etc/$unit.conf" "${props[@]}" \
		"$TEMPORISD" --config "/etc/$unit.conf"
	deadline=$((SECONDS + SANDBOX_START_TIMEOUT_S))
	while [ $SECONDS -lt $deadline ]; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/healthz" || true)
		[ "$code" = 200 ] && break
		sleep 0.2
	done
	if [ "$code" = 200 ]; then
		pass "sandboxed temporisd answers /healthz 200"
	else
		fail "sandboxed temporisd answers /healthz 200" \
			"last '$code': $(journalctl -u "$unit" -n 10 --no-pager 2>&1 | tr '\n' ' ')"
	fi
	systemctl stop "$unit" 2>/dev/null || true
	systemctl reset-failed "$unit" 2>/dev/null || true
	rm -rf "$state"
}

generate_unit
check_verify
check_exposure
check_traced_server
check_under_systemd
finish
