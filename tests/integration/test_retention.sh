#!/usr/bin/env bash
# test_retention.sh - per-source retention against a real temporisd: 2,000,000 records of
# 1,000 series spread over the last 60 days are loaded (line protocol) into a source that
# gets default_retention (90d); `temporisctl source set ... --retention 7d` then hides
# everything older at once from every read (records, series first_timestamp, the
# Prometheus API, export), and within RETENTION_WAIT_S the source's SST bytes on disk go
# down (printed before and after); a restart keeps the retention and the reads; the
# management API's PATCH /v1/data_sources/{name} and its 400/404/422; temporisctl's
# errors. RETENTION_SERIES and RETENTION_POINTS (default 1000 x 2000) shrink it by hand.
# Prints "N passed, M failed" last and exits non-zero on any failure.

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

LOAD="$top_builddir/src/temporis-load"
readonly SERIES=${RETENTION_SERIES:-1000}
readonly POINTS=${RETENTION_POINTS:-2000}
readonly SPAN_S=$((60 * 86400))
readonly STEP_S=$((SPAN_S / POINTS))
readonly DAY=86400
readonly WEEK=$((7 * DAY))
readonly RETENTION_WAIT_S=30
# The reads are answered a moment after the set: cutoffs that far apart are the same.
readonly SLACK_S=5

require_binaries
[ -x "$LOAD" ] || die "loader binary $LOAD not found (build first)"
write_config "default_retention = 90d"
sed -i 's/^log_level = .*/log_level = info/' "$CFG"    # the writer's "retention: ... freed"
start_server
TOKEN=$(new_account acme)
printf '%s\n' "$TOKEN" >"$TMP/token"
new_source acme big
new_source acme small

# that NAME EXPR: pass when the shell expression EXPR holds.
that() {
	if eval "$2"; then pass "$1"; else fail "$1" "$2"; fi
}

auth=(-H "Authorization: Bearer $TOKEN")
# A series of the line protocol below: m,s=7 v=..i is m_v{s="7"}.
SERIES7='m_v{s="7"}'
SERIES7_Q=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$SERIES7")

# ---- 60 days of data ---------------------------------------------------------------------------

NOW=$(date +%s)
T0=$((NOW - SPAN_S))
python3 - "$TMP/big.lp" "$SERIES" "$POINTS" "$T0" "$STEP_S" <<'EOF'
import sys
path, series, points, t0, step = sys.argv[1], *map(int, sys.argv[2:])
with open(path, "w") as f:
    for k in range(points):
        base = t0 + k * step
        f.write("".join("m,s=%d v=%di %d\n" % (i, (i * 2654435761 + k * 40503) % 1000003,
                                               base + i % step) for i in range(series)))
EOF
t0=$SECONDS
"$LOAD" --url "$BASE" --token-file "$TMP/token" --quiet --source big --format line \
	--time-unit s "$TMP/big.lp" 2>"$TMP/load.err" ||
	setup_fail "temporis-load: $(tail -n 3 "$TMP/load.err" | tr '\n' ' ')"
echo "# loaded $((SERIES * POINTS)) records over 60 days in $((SECONDS - t0)) s"

# sst_bytes SOURCE: what temporisctl source list says the source takes on disk.
sst_bytes() {
	ctl --json source list acme | json_get - "[s['sst_bytes'] for s in j['data_sources'] if s['name'] == '$1'][0]"
}
retention_of() {
	ctl --json source list acme | json_get - "[s['retention_s'] for s in j['data_sources'] if s['name'] == '$1'][0]"
}

that "a source created without a retention gets default_retention (90d)" \
	'[ "$(retention_of big)" = $((90 * DAY)) ]'
ctl source list acme >"$TMP/list.txt"
that "temporisctl source list shows the retention as a duration" 'grep -q "big .* 90d " "$TMP/list.txt"'

# A clean restart seals the head and flushes: the records are in SST files.
restart_server
before=$(sst_bytes big)
du_before=$(du -sk "$TMP/data" | cut -f1)
echo "# source big: $before SST bytes before the retention is set (data dir ${du_before} KiB)"
that "the 2 M records take measurable SST bytes" '[ "$before" -gt $((2 * 1024 * 1024)) ]'

# all_records SERIES_Q: every record of the series as "ts" lines (pages of 10000).
count_records() {
	req "${auth[@]}" "$BASE/v1/data_sources/big/records?name=$1&limit=10000"
	json_get "$R_BODY" 'len(j["records"]) if j["next_cursor"] is None else -1'
}
first_record() {
	req "${auth[@]}" "$BASE/v1/data_sources/big/records?name=$1&limit=1"
	json_get "$R_BODY" 'j["records"][0]["timestamp"]'
}
prom_count() {
	req "${auth[@]}" --data-urlencode "query=count_over_time(${SERIES7}[61d])" \
		--data-urlencode "time=$(date +%s)" "$BASE/prometheus/big/api/v1/query"
	json_get "$R_BODY" 'int(j["data"]["result"][0]["value"][1]) if j["data"]["result"] else 0'
}
that "before: series 7 holds all its points" '[ "$(count_records "$SERIES7_Q")" = "$POINTS" ]'
that "before: the Prometheus API counts them all" '[ "$(prom_count)" = "$POINTS" ]'

# ---- the retention set: every read at once -------------------------------------------------------

out=$(ctl source set acme big --retention 7d)
SET_AT=$(date +%s)
that "temporisctl source set says what it keeps" '[ "$out" = "data source big of account acme keeps 7d" ]'
CUT=$((SET_AT - WEEK))
want=$(python3 -c "
t0, step, n, cut = $T0, $STEP_S, $POINTS, $CUT
print(sum(1 for k in range(n) if t0 + k * step + 7 % step >= cut))")

got=$(count_records "$SERIES7_Q")
that "records: only the last 7 days ($want of $POINTS, got $got)" \
	'[ "$got" -ge $((want - 1)) ] && [ "$got" -le $((want + 1)) ]'
first=$(first_record "$SERIES7_Q")
that "records: the first one is inside the retention" \
	'[ "$first" -ge $((CUT - SLACK_S)) ] && [ "$first" -lt $((CUT + STEP_S + SLACK_S)) ]'
req "${auth[@]}" "$BASE/v1/data_sources/big/records?name=$SERIES7_Q&step=86400&agg=count&limit=100"
buckets=$(json_get "$R_BODY" 'len(j["records"])')
that "downsampled records: 7 or 8 daily buckets, not 60 ($buckets)" '[ "$buckets" -le 8 ]'
req "${auth[@]}" "$BASE/v1/data_sources/big/series"
oldest=$(json_get "$R_BODY" 'min(s["first_timestamp"] for s in j["series"])')
nseries=$(json_get "$R_BODY" 'len(j["series"])')
that "series: every first_timestamp is clamped to the retention" '[ "$oldest" -ge $((CUT - SLACK_S)) ]'
that "series: all $SERIES still listed" '[ "$nseries" = "$SERIES" ]'
got=$(prom_count)
that "the Prometheus API counts only the last 7 days ($got)" \
	'[ "$got" -ge $((want - 1)) ] && [ "$got" -le $((want + 1)) ]'
req "${auth[@]}" "$BASE/v1/data_sources/big/export?format=ndjson&name=$SERIES7_Q"
got=$(wc -l <"$R_BODY")
that "export: only the last 7 days ($got)" '[ "$got" -ge $((want - 1)) ] && [ "$got" -le $((want + 1)) ]'
req "${auth[@]}" "$BASE/v1/data_sources/big"
that "GET /v1/data_sources/big says retention_s" \
	'[ "$(json_get "$R_BODY" "j[\"retention_s\"]")" = "$WEEK" ]'

# ---- and from disk -------------------------------------------------------------------------------

deadline=$((SECONDS + RETENTION_WAIT_S))
after=$before
while [ "$SECONDS" -lt "$deadline" ]; do
	after=$(sst_bytes big)
	[ "$after" -ge $((before / 4)) ] || break
	sleep 1
done
du_after=$(du -sk "$TMP/data" | cut -f1)
echo "# source big: $before SST bytes before, $after after $((SECONDS - deadline + RETENTION_WAIT_S)) s (data dir ${du_before} KiB -> ${du_after} KiB)"
that "the expired partitions leave the disk within ${RETENTION_WAIT_S} s ($before -> $after bytes)" \
	'[ "$after" -lt $((before / 4)) ]'
that "the writer logged what it freed" 'grep -q "retention: source .* SST bytes freed" "$TMP/server.log"'

# ---- a restart keeps it --------------------------------------------------------------------------

restart_server
that "the retention survives a restart" '[ "$(retention_of big)" = "$WEEK" ]'
got=$(count_records "$SERIES7_Q")
that "after the restart the reads still hold only the last 7 days ($got)" \
	'[ "$got" -ge $((want - 2)) ] && [ "$got" -le $((want + 1)) ]'
req "${auth[@]}" "$BASE/v1/data_sources/big/series"
oldest=$(json_get "$R_BODY" 'min(s["first_timestamp"] for s in j["series"])')
that "after the restart no first_timestamp is older (stale index)" '[ "$oldest" -ge $((CUT - SLACK_S)) ]'
ctl source get acme big >"$TMP/get.txt"
that "temporisctl source get shows it" 'grep -q "^retention  7d$" "$TMP/get.txt"'

# ---- the management API --------------------------------------------------------------------------

patch() { req "${auth[@]}" -X PATCH -H 'Content-Type: application/json' --data-binary "$2" \
	"$BASE/v1/data_sources/$1"; }
patch small '{"retention": "30d"}'
expect_status "PATCH retention 30d is 200" 200
that "the answer is the source with retention_s" \
	'[ "$(json_get "$R_BODY" "j[\"retention_s\"]")" = $((30 * DAY)) ]'
patch small '{"retention": 3600}'
that "PATCH with seconds" '[ "$(json_get "$R_BODY" "j[\"retention_s\"]")" = 3600 ]'
req "${auth[@]}" "$BASE/v1/data_sources"
that "GET /v1/data_sources lists retention_s" \
	'[ "$(json_get "$R_BODY" "[s[\"retention_s\"] for s in j[\"data_sources\"] if s[\"name\"] == \"small\"][0]")" = 3600 ]'
patch small '{"retention": "forever"}'
that "PATCH forever clears it" '[ "$(json_get "$R_BODY" "j[\"retention_s\"]")" = 0 ]'
RULE='retention must be a duration: an integer with a unit s, m, h, d or w (30d), a number of seconds, or 0 or "forever" to keep everything; at most 1000 years.'
patch small '{"retention": "7x"}'
expect_error "PATCH retention 7x is 422" 422 "$RULE"
patch small '{"retention": -1}'
expect_error "PATCH retention -1 is 422" 422 "$RULE"
patch small '{"name": "small"}'
expect_error "PATCH without retention is 422" 422 "retention is required" prefix
patch small '{"retention": '
expect_error "PATCH with a broken body is 400" 400 "Request body is not valid JSON."
patch nope '{"retention": "1d"}'
expect_error "PATCH of an unknown source is 404" 404 "Data source not found."
req -X PATCH --data-binary '{"retention": "1d"}' "$BASE/v1/data_sources/small"
expect_status "PATCH without a token is 401" 401
req "${auth[@]}" -X POST -H 'Content-Type: application/json' \
	--data-binary '{"name": "fresh", "retention": "2w"}' "$BASE/v1/data_sources"
that "POST /v1/data_sources takes a retention" \
	'[ "$R_STATUS" = 201 ] && [ "$(json_get "$R_BODY" "j[\"retention_s\"]")" = $((14 * DAY)) ]'

# ---- temporisctl's errors ------------------------------------------------------------------------

if out=$(ctl source set acme small --retention 3y 2>&1); then
	fail "source set --retention 3y fails" "exit 0: $out"
else
	that "source set --retention 3y fails with the rule" 'grep -q "retention must be a duration" <<<"$out"'
fi
if ctl source set acme small >/dev/null 2>&1; then
	fail "source set without --retention is a usage error" "exit 0"
else
	pass "source set without --retention is a usage error"
fi
ctl source set acme small --retention=0 >/dev/null
that "--retention=0 keeps forever" '[ "$(retention_of small)" = 0 ]'

finish
