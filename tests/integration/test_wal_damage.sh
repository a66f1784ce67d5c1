#!/usr/bin/env bash
# test_wal_damage.sh - after a crash (SIGKILL), a commit log damaged before its end
# is refused at start-up with a message that names the damage and says what to do;
# a torn last record (a crash mid-write) is not; --accept-data-loss starts on what
# precedes the damage, after which a plain restart works again.

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

require_binaries

readonly ACCOUNT=walco
readonly SOURCE=gauge_log
readonly REQUESTS=10
readonly PER_REQUEST=1000

ingest_batch() { # ingest_batch N: request N, PER_REQUEST records of series "v"
	local n=$1
	python3 - "$n" "$PER_REQUEST" "$SOURCE" >"$TMP/body.json" <<'PY'
import json, sys
n, per, src = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
print(json.dumps({"data_source": src, "records": [
    {"timestamp": n * per + j, "name": "v", "value": n * per + j} for j in range(per)]}))
PY
	ingest "$TOKEN" --data-binary @"$TMP/body.json"
}

count_records() { # prints how many records series "v" reads back
	python3 - "$BASE" "$TOKEN" "$SOURCE" <<'PY'
import json, sys, urllib.parse, urllib.request
base, tok, src = sys.argv[1:4]
n, cursor = 0, None
while True:
    url = "%s/v1/data_sources/%s/records?name=v&limit=10000" % (base, src)
    if cursor is not None:
        url += "&cursor=" + urllib.parse.quote(str(cursor))
    j = json.load(urllib.request.urlopen(urllib.request.Request(
        url, headers={"Authorization": "Bearer " + tok})))
    n += len(j["records"])
    cursor = j.get("next_cursor")
    if cursor is None:
        break
print(n)
PY
}

# the newest commit log file that holds something (the one the last writes went to)
newest_log() {
	local f
	for f in $(ls -t "$TMP"/data/*.log 2>/dev/null); do
		[ -s "$f" ] && { echo "$f"; return 0; }
	done
}

# SIGKILL of every process: what was committed is in the commit log only (a graceful
# stop seals it into the store's files).
crash_server() {
	local p left
	SERVER_CHILDREN="$SERVER_CHILDREN $(collect_children "$SERVER_PID" | tr '\n' ' ')"
	kill -KILL "$SERVER_PID" 2>/dev/null || true
	kill_children
	wait "$SERVER_PID" 2>/dev/null || true
	for _ in $(seq 1 100); do
		left=""
		for p in $SERVER_CHILDREN; do [ -e "/proc/$p" ] && left=1; done
		[ -z "$left" ] && break
		sleep 0.05
	done
	SERVER_PID=""
	SERVER_CHILDREN=""
}

write_config ""
start_server
TOKEN=$(new_account "$ACCOUNT")
new_source "$ACCOUNT" "$SOURCE"
for n in $(seq 0 $((REQUESTS - 1))); do
	ingest_batch "$n"
	[ "$R_STATUS" = 204 ] || die "ingest $n answered $R_STATUS"
done
crash_server

# 1. damage a third of the way in: refused, with the reason and what to do
LOG=$(newest_log)
[ -n "$LOG" ] || die "no commit log file in $TMP/data"
size=$(stat -c %s "$LOG")
python3 - "$LOG" $((size / 3)) <<'PY'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = bytearray(f.read(16))
    f.seek(off)
    f.write(bytes(x ^ 0x5A for x in b))
PY
rc=0
timeout 20 "$TEMPORISD" --config "$CFG" 2>"$TMP/refused.log" || rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then pass "a commit log damaged before its end is refused (exit $rc)"; else
	fail "a commit log damaged before its end is refused" "exit status $rc (124: still running after 20 s)"; fi
if grep -q "is damaged" "$TMP/refused.log" && grep -q -- "--accept-data-loss" "$TMP/refused.log" &&
	grep -q "temporisctl backup" "$TMP/refused.log"; then
	pass "the refusal says what is damaged and what to do"
else
	fail "the refusal says what is damaged and what to do" "$(tail -n 5 "$TMP/refused.log" | tr '\n' ' ')"
fi

# 2. --accept-data-loss: starts on what precedes the damage, says so
real_temporisd=$TEMPORISD
TEMPORISD="$TMP/temporisd-accept"
printf '#!/bin/sh\nexec %s --accept-data-loss "$@"\n' "$real_temporisd" >"$TEMPORISD"
chmod +x "$TEMPORISD"
start_server
TEMPORISD=$real_temporisd
got=$(count_records)
if [ "$got" -gt 0 ] && [ "$got" -lt $((REQUESTS * PER_REQUEST)) ]; then
	pass "--accept-data-loss keeps what precedes the damage ($got records)"
else
	fail "--accept-data-loss keeps what precedes the damage" "$got records read back"
fi
if grep -q "accept-data-loss" "$TMP/server.log"; then pass "the start with --accept-data-loss is logged"; else
	fail "the start with --accept-data-loss is logged" "no line in server.log"; fi
ingest_batch 100
expect_status "ingest after --accept-data-loss" 204
stop_server "graceful stop after --accept-data-loss"

# 3. the damage is gone: a plain start works and keeps everything since
start_server
pass "a plain start after --accept-data-loss works"
after=$(count_records)
if [ "$after" = $((got + PER_REQUEST)) ]; then pass "nothing more is lost after the cut ($after records)"; else
	fail "nothing more is lost after the cut" "read $after, expected $((got + PER_REQUEST))"; fi
for n in $(seq 200 $((200 + REQUESTS - 1))); do
	ingest_batch "$n"
	[ "$R_STATUS" = 204 ] || die "ingest $n answered $R_STATUS"
done
crash_server

# 4. a torn tail (the last bytes of the last write never made it): starts as usual
LOG=$(newest_log)
size=$(stat -c %s "$LOG")
truncate -s $((size - 7)) "$LOG"
start_server
pass "a torn last record does not stop the start"
final=$(count_records)
if [ "$final" -ge $((after + (REQUESTS - 1) * PER_REQUEST)) ]; then
	pass "a torn tail loses at most the last request ($final records)"
else
	fail "a torn tail loses at most the last request" "$final records read back, $after before the $REQUESTS requests"
fi
stop_server
finish
