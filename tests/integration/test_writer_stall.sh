#!/usr/bin/env bash
# test_writer_stall.sh - a writer that stops making progress (SIGSTOP) is visible
# and bounded: ingest answers 503 with Retry-After after commit_timeout_ms (saying
# the write may still be stored), /healthz answers 503 writer_stalled, the master
# logs it, /metrics counts it; after SIGCONT the timed-out request is stored after
# all, /healthz is 200 again and ingest answers 204.

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

require_binaries

readonly ACCOUNT=stallco
readonly SOURCE=tide_gauge
readonly COMMIT_TIMEOUT_MS=1500
readonly STALL_MS=5000   # SHM_WRITER_STALL_MS

write_config "commit_timeout_ms = $COMMIT_TIMEOUT_MS"
start_server
TOKEN=$(new_account "$ACCOUNT")
new_source "$ACCOUNT" "$SOURCE"
ingest "$TOKEN" -d "{\"data_source\":\"$SOURCE\",\"records\":[{\"timestamp\":1,\"name\":\"level\",\"value\":1}]}"
expect_status "ingest before the stall" 204

WRITER=$(writer_pid)
[ -n "$WRITER" ] || die "no writer process found"
kill -STOP "$WRITER"
STOPPED=$SECONDS

t0=$(date +%s%N)
ingest "$TOKEN" -d "{\"data_source\":\"$SOURCE\",\"records\":[{\"timestamp\":2,\"name\":\"level\",\"value\":22}]}"
took_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_error "a stalled commit is answered 503 after commit_timeout_ms" 503 \
	"The write was not confirmed within commit_timeout_ms; it may still be stored. Retry later: a retry is safe (writes are upserts)."
expect_header "the 503 carries Retry-After" Retry-After 1
if [ "$took_ms" -ge $((COMMIT_TIMEOUT_MS - 100)) ] && [ "$took_ms" -lt $((COMMIT_TIMEOUT_MS + 3000)) ]; then
	pass "answered after about commit_timeout_ms ($took_ms ms)"
else
	fail "answered after about commit_timeout_ms" "took $took_ms ms, commit_timeout_ms is $COMMIT_TIMEOUT_MS"
fi

# /healthz says so once the beat is older than the stall threshold.
deadline=$((STOPPED + STALL_MS / 1000 + 5))
while :; do
	req "$BASE/healthz"
	[ "$R_STATUS" = 503 ] && break
	[ $SECONDS -lt $deadline ] || break
	sleep 0.2
done
if [ "$R_STATUS" = 503 ] && json_get "$R_BODY" 'j["status"] == "writer_stalled" and "no progress" in j["detail"]' | grep -qx true; then
	pass "/healthz answers 503 writer_stalled"
else
	fail "/healthz answers 503 writer_stalled" "status $R_STATUS: $(body_text)"
fi
req "$BASE/metrics"
v=$(awk '$1 == "temporis_commit_timeouts_total" { print $2 }' "$R_BODY")
if [ "$v" = 1 ]; then pass "temporis_commit_timeouts_total counts it"; else
	fail "temporis_commit_timeouts_total counts it" "got '$v'"; fi
sleep 0.5
if tail -c +"$((SERVER_LOG_OFFSET + 1))" "$TMP/server.log" | grep -q "the writer (pid $WRITER) has made no progress"; then
	pass "the master logs the stalled writer"
else
	fail "the master logs the stalled writer" "no such line in server.log"
fi

kill -CONT "$WRITER"
deadline=$((SECONDS + 5))
until req "$BASE/healthz"; [ "$R_STATUS" = 200 ] || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
expect_status "/healthz is 200 once the writer moves again" 200
ingest "$TOKEN" -d "{\"data_source\":\"$SOURCE\",\"records\":[{\"timestamp\":3,\"name\":\"level\",\"value\":3}]}"
expect_status "ingest after the stall" 204
req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/$SOURCE/records?name=level"
if [ "$R_STATUS" = 200 ] && json_get "$R_BODY" '[(r["timestamp"], r["value"]) for r in j["records"]] == [(1, 1), (2, 22), (3, 3)]' | grep -qx true; then
	pass "the timed-out request was stored after all, as its 503 said it might be"
else
	fail "the timed-out request was stored after all, as its 503 said it might be" "status $R_STATUS: $(body_text)"
fi
if tail -c +"$((SERVER_LOG_OFFSET + 1))" "$TMP/server.log" | grep -q "the writer is making progress again"; then
	pass "the master logs the recovery"
else
	fail "the master logs the recovery" "no such line in server.log"
fi
stop_server
finish
