#!/usr/bin/env bash
# test_fsync.sh - with `sync = fsync` the WAL is synced before every 204: temporisd
# runs under strace, one client sends sequential ingest requests (each waits for
# its 204), and the trace must show, for every 204 a worker writes to its client,
# an fsync/fdatasync by the writer after the previous 204 and after this request
# woke the writer. With `sync = wal` the same requests show (typically) no sync per
# commit. Prints the counts, then "N passed, M failed"; exits non-zero on failure.
# Needs strace (scripts/deps installs it).

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

readonly REQUESTS=20          # measured requests, after one warm-up request
readonly STRACE_SYSCALLS=fdatasync,fsync,sync_file_range,writev,write,sendmsg

require_binaries
command -v strace >/dev/null || die "strace is required (scripts/deps installs it)"
# strace needs ptrace: a container without CAP_SYS_PTRACE (or yama) forbids it
strace -f -o /dev/null true 2>/dev/null || die "strace cannot trace here (ptrace not permitted)"

TOKEN=""

# start_traced MODE: temporisd with `sync = MODE` under strace, trace in $TMP/trace.MODE.
start_traced() {
	local mode=$1
	write_config "sync = $mode"
	# LeakSanitizer cannot run under ptrace (a sanitizer build would exit 1 on
	# SIGTERM); the other integration tests check leaks.
	TEMPORISD_WRAPPER="env ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
	TEMPORISD_WRAPPER+=" strace -f -tt -s 64 -e trace=$STRACE_SYSCALLS -o $TMP/trace.$mode"
	TEMPORISD_WRAPPER="$TEMPORISD_WRAPPER" start_server
}

# stop_traced MODE: SIGTERM to the master (strace's child); strace exits with its status.
stop_traced() {
	local mode=$1 master rc=0
	master=$(cat /proc/"$SERVER_PID"/task/*/children 2>/dev/null | awk '{print $1}')
	[ -n "$master" ] || die "no temporisd under strace (pid $SERVER_PID)"
	SERVER_CHILDREN=$(collect_children "$SERVER_PID" | tr '\n' ' ')
	kill -TERM "$master"
	wait "$SERVER_PID" || rc=$?
	SERVER_PID=""
	if [ "$rc" -eq 0 ]; then
		pass "sync = $mode: temporisd under strace drains and exits 0"
	else
		fail "sync = $mode: temporisd under strace drains and exits 0" "exit status $rc"
	fi
}

# send_sequential MODE: one warm-up and $REQUESTS measured requests, one at a time.
send_sequential() {
	local mode=$1 i bad=0 ts
	for i in $(seq 0 "$REQUESTS"); do
		ts=$((1700000000 + i))
		ingest "$TOKEN" -H 'Content-Type: application/json' --data-binary \
			"{\"data_source\":\"durable\",\"records\":[{\"timestamp\":$ts,\"name\":\"$mode\",\"value\":$i}]}"
		[ "$R_STATUS" = 204 ] || { bad=$((bad + 1)); echo "request $i: $R_STATUS $(body_text)"; }
	done
	if [ "$bad" -eq 0 ]; then
		pass "sync = $mode: $((REQUESTS + 1)) sequential requests answered 204"
	else
		fail "sync = $mode: $((REQUESTS + 1)) sequential requests answered 204" "$bad were not"
	fi
}

# analyse TRACE WRITER_PID MODE: prints "key value" lines for the shell (see below).
analyse() {
	python3 - "$@" <<'PY'
import re, sys

path, writer, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
LINE = re.compile(r"^(\d+)\s+\S+\s+(.*)$")
CALL = re.compile(r"^(\w+)\((.*)$")
RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
RET = re.compile(r"\)\s+=\s+(-?\d+)")
WAKE = '"\\1\\0\\0\\0\\0\\0\\0\\0", 8'       # an eventfd increment

# Events in trace order: strace stops a tracee at every syscall entry and exit, so a
# line is written before the tracee goes on; the order is causal across processes.
# A 204 counts from its call's entry, a sync from its (successful) completion.
events, pending = [], {}
with open(path, errors="replace") as f:
    for pos, line in enumerate(f):
        m = LINE.match(line.rstrip("\n"))
        if not m:
            continue
        tid, rest = int(m.group(1)), m.group(2)
        r = RESUMED.match(rest)
        if r:
            name, args = r.group(1), pending.pop(tid, ("", ""))[1] + r.group(2)
            ret = RET.search(r.group(2))
            if name in ("fsync", "fdatasync") and tid == writer and ret and ret.group(1) == "0":
                events.append((pos, "sync", tid))
            continue
        c = CALL.match(rest)
        if not c:
            continue                  # signals, exits
        name, args = c.group(1), c.group(2)
        unfinished = args.endswith("<unfinished ...>")
        if name in ("write", "writev", "sendmsg") and "HTTP/1.1 204 " in args:
            events.append((pos, "204", tid))
        elif name == "write" and WAKE in args and tid != writer:
            events.append((pos, "wake", tid))
        if unfinished:
            pending[tid] = (name, args)
        elif name in ("fsync", "fdatasync"):
            ret = RET.search(args)
            if tid == writer and ret and ret.group(1) == "0":
                events.append((pos, "sync", tid))

acks = [e for e in events if e[1] == "204"]
syncs = [e for e in events if e[1] == "sync"]
windows = synced = ordered = 0
per_window = []
for prev, cur in zip(acks, acks[1:]):
    windows += 1
    inside = [e for e in events if prev[0] < e[0] < cur[0]]
    n = sum(1 for e in inside if e[1] == "sync")
    per_window.append(n)
    synced += 1 if n else 0
    # the sync must come after this request woke the writer, not before it arrived
    wakes = [e[0] for e in inside if e[1] == "wake"]
    if wakes and any(e[1] == "sync" and e[0] > wakes[0] for e in inside):
        ordered += 1
print("acks %d" % len(acks))
print("windows %d" % windows)
print("synced %d" % synced)
print("ordered %d" % ordered)
print("writer_syncs %d" % len(syncs))
print("per_window %s" % ",".join(map(str, per_window)))
PY
}

# value KEY FILE: the value of a "key value" line.
value() { awk -v k="$1" '$1 == k {print $2}' "$2"; }

# run_mode MODE: start traced, send, stop, analyse into $TMP/result.MODE.
run_mode() {
	local mode=$1 status writer
	start_traced "$mode"
	if [ -z "$TOKEN" ]; then
		TOKEN=$(new_account durable)
		new_source durable durable
	fi
	status=$(ctl --json status) || die "temporisctl status failed: $status"
	writer=$(json_get - 'j["writer_pid"]' <<<"$status")
	send_sequential "$mode"
	stop_traced "$mode"
	analyse "$TMP/trace.$mode" "$writer" "$mode" >"$TMP/result.$mode" ||
		die "cannot analyse $TMP/trace.$mode"
	echo "sync = $mode: writer pid $writer; $(value acks "$TMP/result.$mode") 204s in the trace," \
		"$(value writer_syncs "$TMP/result.$mode") fsync/fdatasync by the writer;" \
		"$(value synced "$TMP/result.$mode") of $(value windows "$TMP/result.$mode") requests" \
		"have one between the previous 204 and their own (per request:" \
		"$(value per_window "$TMP/result.$mode"))"
}

# ---- sync = fsync: a sync before every 204 -----------------------------------
run_mode fsync
R=$TMP/result.fsync
if [ "$(value acks "$R")" -eq $((REQUESTS + 1)) ]; then
	pass "sync = fsync: the trace shows every 204 written to the client"
else
	fail "sync = fsync: the trace shows every 204 written to the client" \
		"found $(value acks "$R"), want $((REQUESTS + 1))"
fi
if [ "$(value windows "$R")" -eq "$REQUESTS" ] && [ "$(value synced "$R")" -eq "$REQUESTS" ]; then
	pass "sync = fsync: the writer syncs after the previous 204 and before each 204"
else
	fail "sync = fsync: the writer syncs after the previous 204 and before each 204" \
		"$(value synced "$R") of $(value windows "$R") (want $REQUESTS)"
fi
if [ "$(value ordered "$R")" -eq "$REQUESTS" ]; then
	pass "sync = fsync: each sync follows the request's wake-up of the writer"
else
	fail "sync = fsync: each sync follows the request's wake-up of the writer" \
		"$(value ordered "$R") of $REQUESTS"
fi

# ---- sync = wal: the WAL is written, not synced, per commit ---------------------
run_mode wal
R=$TMP/result.wal
if [ "$(value acks "$R")" -eq $((REQUESTS + 1)) ]; then
	pass "sync = wal: the trace shows every 204 written to the client"
else
	fail "sync = wal: the trace shows every 204 written to the client" \
		"found $(value acks "$R"), want $((REQUESTS + 1))"
fi
# A memtable switch or WAL roll may sync once in a while, never per commit.
if [ "$(value synced "$R")" -le $((REQUESTS / 4)) ]; then
	pass "sync = wal: no sync per commit ($(value synced "$R") of $REQUESTS requests)"
else
	fail "sync = wal: no sync per commit" "$(value synced "$R") of $REQUESTS requests had one"
fi

finish
