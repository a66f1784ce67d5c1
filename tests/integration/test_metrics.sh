#!/usr/bin/env bash
# test_metrics.sh - GET /metrics of a real temporisd after known traffic: the text
# passes `promtool check metrics`, every counter moved by exactly what was sent
# (requests by route and status, records, bytes, commits), and no account, data
# source, token or token label appears in it.

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

require_binaries
command -v promtool >/dev/null || die "promtool is required (Debian package prometheus; scripts/deps installs it)"

readonly ACCOUNT=zephyrco
readonly SOURCE=quasar_readings
readonly LABEL=obsidian_label
readonly INGESTS=7
readonly RECORDS_EACH=3
readonly BAD_TOKENS=2

write_config ""
start_server
TOKEN=$(new_account "$ACCOUNT")
SECOND=$(ctl --json token create "$ACCOUNT" --label "$LABEL" | json_get - 'j["token"]') ||
	die "token create --label failed"
new_source "$ACCOUNT" "$SOURCE"

# scrape FILE: GET /metrics into FILE (asserts 200 and the exposition media type).
scrape() {
	req "$BASE/metrics"
	[ "$R_STATUS" = 200 ] || die "GET /metrics answered $R_STATUS"
	cp "$R_BODY" "$1"
}

# delta NAME SERIES WANT: the series grew by exactly WANT between the two scrapes
# (a series absent from a scrape counts as 0).
delta() {
	local name=$1 series=$2 want=$3 got
	got=$(python3 - "$TMP/before.txt" "$TMP/after.txt" "$series" <<'PY'
import sys
def parse(path):
    out = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        key, _, val = line.rstrip("\n").rpartition(" ")
        out[key] = float(val)
    return out
a, b = parse(sys.argv[1]), parse(sys.argv[2])
d = b.get(sys.argv[3], 0.0) - a.get(sys.argv[3], 0.0)
print(int(d) if d == int(d) else d)
PY
)
	if [ "$got" = "$want" ]; then pass "$name"; else fail "$name" "$series grew by $got, expected $want"; fi
}

body_of() { # body_of N: ingest body number N with RECORDS_EACH records
	local n=$1 i recs=""
	for i in $(seq 1 "$RECORDS_EACH"); do
		recs="$recs${recs:+,}{\"timestamp\":$((1718841600 + n * 10 + i)),\"name\":\"orders\",\"value\":$i}"
	done
	echo "{\"data_source\":\"$SOURCE\",\"records\":[$recs]}"
}

# Warm-up outside the measured window: the first scrape shows the first count.
scrape "$TMP/warm.txt"
scrape "$TMP/before.txt"

bytes=0
for n in $(seq 1 "$INGESTS"); do
	b=$(body_of "$n")
	ingest "$TOKEN" --data-binary "$b"
	[ "$R_STATUS" = 204 ] || fail "ingest $n" "expected 204, got $R_STATUS ($(body_text))"
	bytes=$((bytes + ${#b}))
done
bad='{"data_source":"'"$SOURCE"'","records":[{"timestamp":"x","name":"a","value":1}]}'
ingest "$SECOND" --data-binary "$bad"
expect_status "schema error -> 422" 422
bytes=$((bytes + ${#bad}))
for n in $(seq 1 "$BAD_TOKENS"); do
	ingest "ts_not_a_real_token_$n" --data-binary "$(body_of 0)"
	expect_status "unknown token $n -> 401" 401
done
req -X POST --data-binary "$(body_of 0)" "$BASE/v1/data_sources/ingest"
expect_status "no token -> 401" 401
req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/$SOURCE/records?name=orders"
expect_status "read records -> 200" 200
req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/$SOURCE/series"
expect_status "read series -> 200" 200
req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/no_such_source/series"
expect_status "series of an unknown source -> 404" 404
req "$BASE/no/such/path"
expect_status "unknown path -> 404" 404
req "$BASE/healthz"
expect_status "healthz -> 200" 200

scrape "$TMP/after.txt"

R='temporis_http_requests_total{route='
delta "ingest 204 counted once per request" "${R}\"ingest\",status=\"204\"}" "$INGESTS"
delta "401 counted under status=\"401\"" "${R}\"ingest\",status=\"401\"}" $((BAD_TOKENS + 1))
delta "422 counted under ingest" "${R}\"ingest\",status=\"422\"}" 1
delta "records read counted" "${R}\"records\",status=\"200\"}" 1
delta "series read counted" "${R}\"series\",status=\"200\"}" 1
delta "unknown source counted as series 404" "${R}\"series\",status=\"404\"}" 1
delta "unknown path counted as other 404" "${R}\"other\",status=\"404\"}" 1
delta "healthz counted" "${R}\"healthz\",status=\"200\"}" 1
delta "the scrape before is counted" "${R}\"metrics\",status=\"200\"}" 1
delta "records committed" temporis_records_committed_total $((INGESTS * RECORDS_EACH))
delta "requests committed" temporis_requests_committed_total "$INGESTS"
delta "ingest bytes = bodies that reached the handler" temporis_ingest_bytes_received_total "$bytes"
delta "commit batch histogram sums the records" temporis_commit_batch_records_sum \
	$((INGESTS * RECORDS_EACH))
delta "commit batch histogram counts every commit" temporis_commit_batch_records_count \
	"$(python3 -c '
import sys
def v(p):
    for l in open(p):
        if l.startswith("temporis_commits_total "): return int(l.split()[1])
    return 0
print(v(sys.argv[2]) - v(sys.argv[1]))' "$TMP/before.txt" "$TMP/after.txt")"
delta "no commit failed" temporis_commit_failures_total 0
D='temporis_http_request_duration_seconds'
delta "request durations: one per answered ingest request" "${D}_count{route=\"ingest\"}" \
	$((INGESTS + BAD_TOKENS + 1 + 1))
delta "request durations: one per records read" "${D}_count{route=\"records\"}" 1
check "request durations: cumulative buckets, +Inf = count, plausible sum" python3 - "$TMP/after.txt" <<'PY'
import sys
b, sums, counts = {}, {}, {}
for l in open(sys.argv[1]):
    if l.startswith("temporis_http_request_duration_seconds_bucket{"):
        k, _, x = l.rpartition(" ")
        route = k.split('route="')[1].split('"')[0]
        b.setdefault(route, []).append(float(x))
    elif l.startswith("temporis_http_request_duration_seconds_sum{"):
        sums[l.split('route="')[1].split('"')[0]] = float(l.split()[-1])
    elif l.startswith("temporis_http_request_duration_seconds_count{"):
        counts[l.split('route="')[1].split('"')[0]] = float(l.split()[-1])
assert "ingest" in b and "metrics" in b, sorted(b)
for route, v in b.items():
    assert v == sorted(v) and v[-1] == counts[route], (route, v, counts[route])
    assert 0 <= sums[route] < 60 * counts[route], (route, sums[route])
PY

# The store's state reaches /metrics within about a second: every committed record
# is either in the head or sealed, and RocksDB is not stopping writes.
store_ok() {
	python3 - "$1" <<'PY'
import sys
v = {}
for l in open(sys.argv[1]):
    if not l.startswith("#") and l.strip():
        k, _, x = l.rpartition(" ")
        v[k] = float(x)
need = ["temporis_store_head_records", "temporis_store_sealed_records_total",
        "temporis_store_seals_total", "temporis_store_seal_failures_total",
        "temporis_store_sst_bytes", "temporis_store_memtable_bytes",
        "temporis_store_pending_compaction_bytes", "temporis_store_write_stopped",
        "temporis_store_delayed_write_rate_bytes", "temporis_store_room_waits_total",
        "temporis_store_seal_files_total", "temporis_store_wal_bytes"]
missing = [n for n in need if n not in v]
assert not missing, missing
held = v["temporis_store_head_records"] + v["temporis_store_sealed_records_total"]
assert held == v["temporis_records_committed_total"] > 0, (held, v["temporis_records_committed_total"])
assert v["temporis_store_write_stopped"] == 0 and v["temporis_store_seal_failures_total"] == 0
assert v["temporis_store_memtable_bytes"] > 0
assert v["temporis_store_wal_bytes"] > 0  # the records committed are in the WAL until flushed
PY
}
tries=0
until scrape "$TMP/store.txt"; store_ok "$TMP/store.txt" 2>"$TMP/store.err"; do
	tries=$((tries + 1))
	if [ "$tries" -ge 10 ]; then
		fail "store state in /metrics: head + sealed records = committed" "$(tail -n 1 "$TMP/store.err")"
		break
	fi
	sleep 0.5
done
[ "$tries" -ge 10 ] || pass "store state in /metrics: head + sealed records = committed"

check "ring fill ratio is within 0..1" python3 -c '
import sys
v = [float(l.split()[1]) for l in open(sys.argv[1]) if l.startswith("temporis_ring_fill_ratio ")]
assert len(v) == 1 and 0.0 <= v[0] <= 1.0, v' "$TMP/after.txt"
check "every sample is a temporis_* or standard process_* metric" python3 -c '
import sys
bad = [l for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")
       and not l.startswith("temporis_") and not l.startswith("process_")]
assert not bad, bad' "$TMP/after.txt"
# the server process figures: every process of it counted (master, writer, workers)
check "process_* and build_info describe the running server" python3 - "$TMP/after.txt" "$SERVER_PID" <<'PY'
import os, sys, time
v = {}
for l in open(sys.argv[1]):
    if not l.startswith("#") and l.strip():
        k, _, x = l.rpartition(" ")
        v[k] = float(x)
master = int(sys.argv[2])
kids = open("/proc/%d/task/%d/children" % (master, master)).read().split()
rss = sum(int(open("/proc/%s/stat" % p).read().rpartition(")")[2].split()[21])
          for p in [master] + kids) * os.sysconf("SC_PAGE_SIZE")
assert v["process_cpu_seconds_total"] > 0, v["process_cpu_seconds_total"]
# every process counted: within a factor of the sum seen now (memory moves a little)
assert 0.5 * rss < v["process_resident_memory_bytes"] < 2 * rss, (v["process_resident_memory_bytes"], rss)
assert abs(v["process_start_time_seconds"] - time.time()) < 600, v["process_start_time_seconds"]
assert [k for k in v if k.startswith("temporis_build_info{version=")] , "no build_info"
# open descriptors: what root sees in /proc/PID/fd of each process (only root may look into
# the server's, which are not dumpable), within slack for what opened or closed meanwhile
if os.geteuid() == 0:
    fds = sum(len(os.listdir("/proc/%s/fd" % p)) for p in [master] + kids)
    assert 0.5 * fds <= v["process_open_fds"] <= 2 * fds + 16, (v["process_open_fds"], fds)
assert v["process_open_fds"] > 0, v["process_open_fds"]
assert v["process_max_fds"] >= 1024, v["process_max_fds"]
PY

if out=$(promtool check metrics <"$TMP/after.txt" 2>&1); then
	pass "promtool check metrics exits 0"
else
	fail "promtool check metrics exits 0" "$(echo "$out" | head -n 5 | tr '\n' ' ')"
fi

leaks=$(grep -F -o -e "$ACCOUNT" -e "$SOURCE" -e "$LABEL" "$TMP/after.txt" | sort -u | tr '\n' ' ' || true)
if grep -q -F -e "$TOKEN" -e "$SECOND" "$TMP/after.txt"; then leaks="$leaks a token"; fi
if [ -z "$leaks" ]; then
	pass "no account, source, token or label in /metrics"
else
	fail "no account, source, token or label in /metrics" "found: $leaks"
fi

stop_server
finish
