#!/usr/bin/env bash
# test_limits.sh - limits and overload against a real temporisd (one worker):
# max_connections (the oldest idle connection makes room), slow and idle clients
# (idle_timeout_s, header_timeout_s), connection exhaustion, pipelining, hostile
# requests (huge headers, deep nesting, bad UTF-8, NUL bytes, cut bodies, a million
# records), and a flood on a tiny ring (the writer is SIGSTOPped for a second in the
# middle, so the ring fills on any machine). After every hostile case the worker and
# writer must be the same processes and a normal ingest must still get 204 fast.
# The client side is limits_client.py; it prints the measured figures as "info" lines.
# Env: LIMITS_MANY_RECORDS overrides the size of the million-record request.

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

require_binaries

LIMITS_CLIENT="$IT_DIR/limits_client.py"
SRC=store_metrics
MAX_CONNECTIONS=4
IDLE_TIMEOUT_S=2
PIPELINE_REQUESTS=50
# a 37 MB body; the worker peaks near 1.1 GB parsing it (1.8 GB under ASan)
MANY_RECORDS=${LIMITS_MANY_RECORDS:-1000000}
FLOOD_THREADS=16
FLOOD_SECONDS=3
FLOOD_BODY_KB=300
ENQUEUE_TIMEOUT_MS=200
WRITER_PAUSE_S=1
# 5,000 idle sockets, then 3,000 slowloris ones, against 2 workers of 500 connections
EXHAUST_MAX_CONNECTIONS=500
EXHAUST_IDLE=5000
EXHAUST_SLOW=3000
EXHAUST_SECONDS=4
HEADER_TIMEOUT_S=2

# limits_config KEY=VALUE...: lib.sh's base config with these keys replaced (the
# config parser refuses a key given twice).
limits_config() {
	write_config ""
	local line key
	for line in "$@"; do
		key=${line%% =*}
		sed -i "/^$key = /d" "$CFG"
		echo "$line" >>"$CFG"
	done
}

# Start the server, create the account and source, and remember who its children are.
limits_start() {
	limits_config "$@"
	start_server
	TOKEN=$(new_account acme)
	new_source acme "$SRC"
	WRITER_PID=$(ctl --json status | json_get - 'j["writer_pid"]') || die "temporisctl status failed"
}

# run_limits LABEL ARGS...: run limits_client.py; PASS/FAIL lines count, INFO lines print.
run_limits() {
	local label=$1
	shift
	report_helper "$label" env TEMPORIS_URL="$BASE" LIMITS_TOKEN="$TOKEN" LIMITS_SOURCE="$SRC" \
		LIMITS_MASTER_PID="$SERVER_PID" LIMITS_CHILDREN="$SERVER_CHILDREN" \
		LIMITS_WRITER_PID="$WRITER_PID" python3 "$LIMITS_CLIENT" "$@"
}

# ---- phase 1: connection limits, slow clients, pipelining, hostile requests --------

limits_start "workers = 1" "max_connections = $MAX_CONNECTIONS" \
	"idle_timeout_s = $IDLE_TIMEOUT_S" "header_timeout_s = $IDLE_TIMEOUT_S" "max_body_bytes = 64M"
run_limits "max_connections" conns "$MAX_CONNECTIONS"
run_limits "slow clients" slow "$IDLE_TIMEOUT_S"
run_limits "pipelining" pipeline "$PIPELINE_REQUESTS"
run_limits "hostile requests" hostile "$MANY_RECORDS"
stop_server

# ---- phase 2: connection exhaustion (idle sockets, then slowloris) -------------------

rm -rf "$TMP/data"
limits_start "max_connections = $EXHAUST_MAX_CONNECTIONS" "header_timeout_s = $HEADER_TIMEOUT_S"
run_limits "connection exhaustion" exhaust "$EXHAUST_IDLE" "$EXHAUST_SLOW" "$EXHAUST_SECONDS"
stop_server

# ---- phase 3: a flood of large requests on a tiny ring -----------------------------

rm -rf "$TMP/data"
limits_start "workers = 1" "ring_size = 1M" "enqueue_timeout_ms = $ENQUEUE_TIMEOUT_MS"
run_limits "flood" flood "$FLOOD_THREADS" "$FLOOD_SECONDS" "$FLOOD_BODY_KB" \
	"$ENQUEUE_TIMEOUT_MS" "$WRITER_PAUSE_S"
stop_server

finish
