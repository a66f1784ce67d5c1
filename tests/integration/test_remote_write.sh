#!/usr/bin/env bash
# test_remote_write.sh - Prometheus remote_write on POST /api/v1/write: hand-built
# WriteRequests for every rule and error (remote_write_client.py), then Debian's real
# prometheus server, scraping temporisd's /metrics and itself and remote-writing
# to temporisd with a bearer token, run for a bounded time; its up and temporis_*
# series are read back with plausible values.

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

require_binaries
command -v prometheus >/dev/null || die "prometheus is missing (scripts/deps installs it)"

readonly PROM_RUN_S=${PROM_RUN_S:-20}

write_config "max_body_bytes = 1M"
start_server

TOKEN=$(new_account promco)
new_source promco rw
new_source promco frozen
new_source promco prom
ctl source archive promco frozen >/dev/null || die "temporisctl source archive failed"

report_helper "remote_write requests" env PYTHONPATH="$IT_DIR" python3 \
	"$IT_DIR/remote_write_client.py" "$BASE" "$TOKEN" rw frozen

# ---- the real Prometheus --------------------------------------------------------

PROM_PORT=$(free_port)
mkdir -p "$TMP/prom"
[ -z "$RUN_AS" ] || chown "$RUN_AS" "$TMP/prom"
cat >"$TMP/prometheus.yml" <<-YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: temporis
    static_configs:
      - targets: ["127.0.0.1:$PORT"]
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:$PROM_PORT"]
remote_write:
  - url: "$BASE/api/v1/write?data_source=prom"
    authorization:
      credentials: "$TOKEN"
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
YAML
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom" \
	--web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$TMP/prometheus.log" 2>&1 &
PROM_PID=$!

# series_json: the series names of "prom" as a JSON list.
series_json() {
	curl -s -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/prom/series" |
		python3 -c '
import json, sys
j = json.load(sys.stdin)
s = j.get("series", j) if isinstance(j, dict) else j
print(json.dumps([x if isinstance(x, str) else x["name"] for x in s]))'
}

UP='up{instance="127.0.0.1:'$PORT'",job="temporis"}'
deadline=$((SECONDS + PROM_RUN_S))
while [ $SECONDS -lt $deadline ]; do
	if series_json | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if sys.argv[1] in s and any(n.startswith("temporis_http_requests_total{") for n in s) else 1)' "$UP" 2>/dev/null; then
		sleep 3   # a few more samples
		break
	fi
	sleep 1
done
kill "$PROM_PID" 2>/dev/null || true
wait "$PROM_PID" 2>/dev/null || true

series_json >"$TMP/series.json"
check "prometheus remote_wrote its up series of temporisd" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert sys.argv[2] in s, "no %s among %d series: %r" % (sys.argv[2], len(s), s[:20])' "$TMP/series.json" "$UP"
check "prometheus remote_wrote temporisd's own temporis_* series" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
t = [n for n in s if n.startswith("temporis_")]
assert len(t) >= 10, "only %r" % t
assert any(n.startswith("temporis_build_info{") for n in t), t' "$TMP/series.json"

# read NAME: the records of NAME in "prom" as JSON [[ts, value], ...].
read_prom() {
	local q
	q=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$1")
	curl -s -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/prom/records?name=$q" |
		python3 -c 'import json,sys; print(json.dumps([[r["timestamp"],r["value"]] for r in json.load(sys.stdin)["records"]]))'
}
read_prom "$UP" >"$TMP/up.json"
check "up of temporisd is 1.0 at recent seconds" python3 -c '
import json, sys, time
r = json.load(open(sys.argv[1]))
now = time.time()
assert len(r) >= 2, r
assert all(v == 1.0 for _, v in r), r
assert all(now - 120 < t <= now + 1 for t, _ in r), r' "$TMP/up.json"
name=$(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print([n for n in s if n.startswith("temporis_http_requests_total{") and "route=\"metrics\"" in n and "status=\"200\"" in n][0])' "$TMP/series.json" 2>/dev/null || true)
if [ -n "$name" ]; then
	read_prom "$name" >"$TMP/metrics.json"
	check "the scrapes of /metrics count up in temporis_http_requests_total" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
v = [x for _, x in r]
assert len(v) >= 2 and v == sorted(v) and v[-1] >= 1, r' "$TMP/metrics.json"
else
	fail "the scrapes of /metrics count up in temporis_http_requests_total" "no such series in $(head -c 400 "$TMP/series.json")"
fi
longest=$(python3 -c 'import json,sys; print(max(len(n.encode()) for n in json.load(open(sys.argv[1]))))' "$TMP/series.json")
echo "info the longest series name Prometheus wrote: $longest bytes"
if grep -q 'level=error' "$TMP/prometheus.log"; then
	fail "prometheus logged no remote_write error" "$(grep 'level=error' "$TMP/prometheus.log" | head -3 | tr '\n' ' ')"
else
	pass "prometheus logged no remote_write error"
fi

stop_server
finish
