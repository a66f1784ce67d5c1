#!/usr/bin/env bash
# test_prometheus.sh - the Prometheus query API under /prometheus/SOURCE/api/v1/ against
# Debian's prometheus as the reference: the same points (prom_query_client.py gen) go to
# temporisd through the JSON API and into prometheus's TSDB through promtool tsdb
# create-blocks-from; then every query of the set (instant at five times, range at four
# steps) and the metadata calls are asked of both and compared value by value
# (prom_query_client.py compare); promtool query instant|range|series|labels runs
# against temporisd and must print what it prints against the reference; and the
# bounds (query_max_series, query_max_points: 422), unsupported PromQL (400 bad_data)
# and bad parameters are checked.

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

require_binaries
command -v prometheus >/dev/null || die "prometheus is missing (scripts/deps installs it)"
command -v promtool >/dev/null || die "promtool is missing (scripts/deps installs it)"

readonly SOURCE=metrics
readonly CLIENT="$IT_DIR/prom_query_client.py"
# two hours of data ending an hour ago, on a whole minute
T0=$(( ($(date +%s) - 3 * 3600) / 60 * 60 ))

write_config "query_max_series = 25" "query_max_points = 50000"
start_server
TOKEN=$(new_account promq)
new_source promq "$SOURCE"
OURS="$BASE/prometheus/$SOURCE"

mkdir -p "$TMP/gen"
report_helper "data generated" /usr/bin/python3 "$CLIENT" gen "$TMP/gen" "$T0" "$SOURCE"
n=0
for body in "$TMP"/gen/ours-*.json; do
	ingest "$TOKEN" --data-binary @"$body"
	[ "$R_STATUS" = 204 ] || die "ingest of $body answered $R_STATUS: $(body_text)"
	n=$((n + 1))
done
pass "the data ingested through the JSON API ($n batches)"

# ---- the reference: the same points in prometheus's own storage ----
REF_PORT=$(free_port)
REF="http://127.0.0.1:$REF_PORT"
mkdir -p "$TMP/ref"
promtool tsdb create-blocks-from openmetrics -q "$TMP/gen/ref.om" "$TMP/ref" \
	>"$TMP/blocks.log" 2>&1 || die "promtool tsdb create-blocks-from failed: $(tail -3 "$TMP/blocks.log")"
printf 'global:\n  scrape_interval: 1m\n' >"$TMP/ref.yml"
prometheus --config.file="$TMP/ref.yml" --storage.tsdb.path="$TMP/ref" \
	--storage.tsdb.retention.time=10y --web.listen-address="127.0.0.1:$REF_PORT" \
	--log.level=warn >"$TMP/ref.log" 2>&1 &
REF_PID=$!
stop_ref() { kill "$REF_PID" 2>/dev/null; wait "$REF_PID" 2>/dev/null || true; }
CLEANUP_HOOK=stop_ref
for _ in $(seq 1 100); do
	curl -sf "$REF/-/ready" >/dev/null && break
	sleep 0.2
done
curl -sf "$REF/-/ready" >/dev/null || die "the reference prometheus did not start: $(tail -5 "$TMP/ref.log")"

report_helper "answers compared with prometheus" env PROM_TOKEN="$TOKEN" \
	/usr/bin/python3 "$CLIENT" compare "$OURS" "$REF" "$T0"

# ---- promtool, pointed at temporisd (the token as the Basic password) ----
AUTHED="http://promtool:$TOKEN@127.0.0.1:$PORT/prometheus/$SOURCE"
at=$((T0 + 3600))
promtool_pair() {   # promtool_pair LABEL SUBCOMMAND ARGS... (SERVER marks the URL)
	local label=$1 ours ref
	shift
	local a=("$@") b=("$@") i
	for i in "${!a[@]}"; do
		[ "${a[$i]}" = SERVER ] && a[$i]=$AUTHED && b[$i]=$REF
	done
	ours=$(promtool query "${a[@]}" 2>&1) || true
	ref=$(promtool query "${b[@]}" 2>&1) || true
	if [ -n "$ref" ] && [ "$(sort <<<"$ours")" = "$(sort <<<"$ref")" ]; then
		pass "promtool query $label prints what it prints against prometheus"
	else
		fail "promtool query $label prints what it prints against prometheus" \
			"ours: $(head -c 300 <<<"$ours") reference: $(head -c 300 <<<"$ref")"
	fi
}
promtool_pair "instant" instant --time="$at" SERVER 'sum by (job) (rate(http_requests_total[5m]))'
promtool_pair "range" range --start="$T0" --end="$((T0 + 600))" --step=60s SERVER \
	'avg(temperature_celsius)'
promtool_pair "series" series --match='http_requests_total{code="500"}' \
	--start="$T0" --end="$((T0 + 7200))" SERVER
promtool_pair "labels" labels --match=temperature_celsius --start="$T0" --end="$((T0 + 7200))" \
	SERVER room

report_helper "limits and refusals" env PROM_TOKEN="$TOKEN" /usr/bin/python3 "$CLIENT" limits "$OURS" "$T0"

stop_server
finish
