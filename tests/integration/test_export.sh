#!/usr/bin/env bash
# test_export.sh - GET /v1/data_sources/{name}/export against a real temporisd: 1,000,000
# records of 4,000 series (line protocol's name form; ints and awkward doubles: 0.1, 1e-300,
# -0.0, 5e-324, DBL_MAX, 2^53+1 and the int64 ends as integers) loaded, exported as NDJSON
# (checked record by record, values bit for bit), CSV and line protocol; each export
# imported with temporis-load into a fresh source and exported again, byte for byte the
# same; the name=, start and end filters; the worker's peak RSS during the 1 M export
# against a 10 k one; a client that leaves mid-export (the export stops, the server goes
# on); and the errors: 401, 404 (unknown, another account's), 422 (format, start, a series
# line protocol cannot name).
# EXPORT_SERIES and EXPORT_POINTS (default 4000 x 250) shrink it by hand.
# Prints "N passed, M failed" last and exits non-zero on any failure.

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

LOAD="$top_builddir/src/temporis-load"
GEN="$IT_DIR/gen_export.py"
readonly SERIES=${EXPORT_SERIES:-4000}
readonly POINTS=${EXPORT_POINTS:-250}
readonly RECORDS=$((SERIES * POINTS))
readonly SMALL_SERIES=40 SMALL_POINTS=250          # 10,000 records
# The worker's peak RSS may grow this much more for 100 times the records (it holds a page).
readonly RSS_SLACK_KB=$((12 * 1024))

require_binaries
[ -x "$LOAD" ] || die "loader binary $LOAD not found (build first)"
write_config ""
sed -i 's/^workers = .*/workers = 1/' "$CFG"    # one worker: the one whose memory is measured
start_server
TOKEN=$(new_account acme)
OTHER=$(new_account other)
printf '%s\n' "$TOKEN" >"$TMP/token"
for s in big small from_ndjson from_csv from_line jsonnames; do new_source acme "$s"; done
new_source other theirs

load() {
	"$LOAD" --url "$BASE" --token-file "$TMP/token" --quiet "$@" 2>"$TMP/load.err" ||
		setup_fail "temporis-load $*: $(tail -n 3 "$TMP/load.err" | tr '\n' ' ')"
}

# export SOURCE QUERY FILE: GET .../export?QUERY into FILE; status in R_STATUS.
export_to() {
	local src=$1 query=$2 out=$3
	R_STATUS=$(curl -s --max-time 120 -o "$out" -D "$R_HDRS" -w '%{http_code}' \
		-H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/$src/export?$query" || true)
}

# that NAME EXPR: pass when the shell expression EXPR holds.
that() {
	if eval "$2"; then pass "$1"; else fail "$1" "$2"; fi
}

worker_pid() {
	local p
	for p in $(collect_children "$SERVER_PID"); do
		if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q 'temporisd: worker'; then
			echo "$p"
			return 0
		fi
	done
}
WORKER=$(worker_pid)
[ -n "$WORKER" ] || setup_fail "no worker process found"
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$WORKER/status"; }
# Peak RSS from now on (Linux >= 4.0): what the worker holds now, then its peak.
hwm_reset() { echo 5 >"/proc/$WORKER/clear_refs"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$WORKER/stat"; }

python3 "$GEN" gen "$TMP/big.ndjson" "$SERIES" "$POINTS"
python3 "$GEN" gen "$TMP/small.ndjson" "$SMALL_SERIES" "$SMALL_POINTS"
t0=$SECONDS
load --source big "$TMP/big.ndjson"
load --source small "$TMP/small.ndjson"
echo "# loaded $RECORDS + $((SMALL_SERIES * SMALL_POINTS)) records in $((SECONDS - t0)) s"

# ---- 1 M records out, in each format, and back in -------------------------------------------

hwm_reset
t0=$(date +%s.%N)
export_to big "format=ndjson" "$TMP/big.out.ndjson"
t1=$(date +%s.%N)
big_hwm=$(hwm_kb)
that "the 1 M export answers 200" '[ "$R_STATUS" = 200 ]'
that "it is chunked NDJSON" 'grep -qi "^Transfer-Encoding: chunked" "$R_HDRS" && grep -qi "^Content-Type: application/x-ndjson" "$R_HDRS"'
n=$(python3 "$GEN" check "$TMP/big.ndjson" "$TMP/big.out.ndjson" 2>&1 || true)
that "NDJSON holds every record once, in name then time order, values bit for bit ($n)" '[ "$n" = "$RECORDS" ]'
echo "# NDJSON export of $RECORDS records: $(python3 -c "print('%.2f' % ($t1 - $t0))") s, $(stat -c %s "$TMP/big.out.ndjson") bytes"

for fmt in csv line; do
	t0=$(date +%s.%N)
	export_to big "format=$fmt" "$TMP/big.out.$fmt"
	t1=$(date +%s.%N)
	that "the $fmt export answers 200" '[ "$R_STATUS" = 200 ]'
	echo "# $fmt export: $(python3 -c "print('%.2f' % ($t1 - $t0))") s, $(stat -c %s "$TMP/big.out.$fmt") bytes"
done
that "CSV starts with its header" '[ "$(head -n 1 "$TMP/big.out.csv")" = "timestamp,name,value"$'"'"'\r'"'"' ]'
that "CSV has a line per record" '[ "$(wc -l <"$TMP/big.out.csv")" = $((RECORDS + 1)) ]'
that "line protocol has a line per record" '[ "$(wc -l <"$TMP/big.out.line")" = "$RECORDS" ]'
that "line protocol writes ints with i and seconds" 'grep -q "^net3 recv=0i 1700000000$" "$TMP/big.out.line"'

t0=$SECONDS
load --source from_ndjson --format ndjson "$TMP/big.out.ndjson"
load --source from_csv --format csv "$TMP/big.out.csv"
load --source from_line --format line --time-unit s "$TMP/big.out.line"
echo "# imported the three exports in $((SECONDS - t0)) s"
for fmt in ndjson csv line; do
	export_to "from_$fmt" "format=$fmt" "$TMP/again.$fmt"
	that "$fmt: exported, imported and exported again, byte for byte the same" \
		'[ "$R_STATUS" = 200 ] && cmp -s "$TMP/big.out.$fmt" "$TMP/again.$fmt"'
done

# ---- memory: the worker's peak for 100 times the records -----------------------------------

hwm_reset
export_to small "format=ndjson" "$TMP/small.out"
small_hwm=$(hwm_kb)
that "the 10 k export holds every record" '[ "$(wc -l <"$TMP/small.out")" = $((SMALL_SERIES * SMALL_POINTS)) ]'
echo "# worker peak RSS: $small_hwm kB exporting 10 k records, $big_hwm kB exporting $RECORDS"
if grep -aq __asan_init "$TEMPORISD"; then
	# ASan's quarantine holds freed memory back (up to 256 MB): RSS then grows with
	# what was ever allocated, not with what is held.
	echo "# sanitizer build: peak RSS reported, not compared"
else
	that "the worker's peak RSS does not grow with the export ($big_hwm kB vs $small_hwm kB)" \
		'[ "$big_hwm" -le $((small_hwm + RSS_SLACK_KB)) ]'
fi

# ---- filters --------------------------------------------------------------------------------

one='disk_free{path="/mnt/a,b=c\\d 5"}'
enc=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$one")
export_to big "name=$enc" "$TMP/one.ndjson"
n=$(python3 "$GEN" check "$TMP/big.ndjson" "$TMP/one.ndjson" "$one" -9223372036854775808 9223372036854775807 2>&1 || true)
that "name= exports that series alone ($n records)" '[ "$R_STATUS" = 200 ] && [ "$n" = "$POINTS" ]'
export_to big "start=1700000100&end=1700000200" "$TMP/range.ndjson"
n=$(python3 "$GEN" check "$TMP/big.ndjson" "$TMP/range.ndjson" "" 1700000100 1700000200 2>&1 || true)
that "start is inclusive, end exclusive, across every series ($n records)" '[ "$n" = $((SERIES * 10)) ]'
export_to big "name=$enc&start=1700000100&end=1700000101&format=csv" "$TMP/point.csv"
that "name= with a one-second range is one CSV record, the name quoted by RFC 4180" \
	'[ "$(cat "$TMP/point.csv")" = "timestamp,name,value'$'\r''
1700000100,\"disk_free{path=\"\"/mnt/a,b=c\\\\d 5\"\"}\",$(sed -n 2p "$TMP/point.csv" | cut -d, -f4 | tr -d "\r")'$'\r''" ]'
export_to big "name=nosuch" "$TMP/none.ndjson"
that "an unknown series is an empty export" '[ "$R_STATUS" = 200 ] && [ ! -s "$TMP/none.ndjson" ]'

# ---- a client that leaves ----------------------------------------------------------------

curl -s -N -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/big/export?format=line" 2>/dev/null |
	head -c 200000 >/dev/null || true
sleep 0.5
c0=$(cpu_ticks)
sleep 1
c1=$(cpu_ticks)
that "the export stops when its client leaves (worker CPU $((c1 - c0)) ticks in 1 s)" '[ $((c1 - c0)) -le 5 ]'
req -H "Authorization: Bearer $TOKEN" "$BASE/healthz"
expect_status "the server answers after the client left" 200
ingest "$TOKEN" -H 'Content-Type: application/json' \
	--data-binary '{"data_source":"small","records":[{"timestamp":1,"name":"x","value":1}]}'
expect_status "ingest goes on after the client left" 204
that "the worker did not restart" '[ "$(worker_pid)" = "$WORKER" ]'

# ---- errors ---------------------------------------------------------------------------------

req "$BASE/v1/data_sources/big/export"
expect_error "no token is 401" 401 "Missing access token."
req -H "Authorization: Bearer nope" "$BASE/v1/data_sources/big/export"
expect_error "a bad token is 401" 401 "Invalid access token."
req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/nosuch/export"
expect_error "an unknown source is 404" 404 "Data source not found."
req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/theirs/export"
expect_error "another account's source is 404" 404 "Data source not found."
req -H "Authorization: Bearer $OTHER" "$BASE/v1/data_sources/theirs/export"
expect_status "its own account exports it" 200
req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/big/export?format=xml"
expect_error "an unknown format is 422" 422 "format must be ndjson, csv or line."
req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/big/export?start=abc"
expect_error "a bad start is 422" 422 "start must be an integer."
req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/big/export?end=1.5"
expect_error "a bad end is 422" 422 "end must be an integer."
ingest "$TOKEN" -H 'Content-Type: application/json' \
	--data-binary '{"data_source":"jsonnames","records":[{"timestamp":1,"name":"a_b","value":1},{"timestamp":1,"name":"cpu.load","value":0.5}]}'
expect_status "a JSON-API name is stored" 204
req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/jsonnames/export?format=line"
expect_error "a line export with a name line protocol cannot write is 422, naming it" 422 \
	"Series cpu.load cannot be exported as line protocol: the metric has no '_' between a measurement and a field; export this source as ndjson or csv."
req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/jsonnames/export?format=line&name=a_b"
expect_status "the same source exports the series it can name" 200
that "as a line" '[ "$(cat "$R_BODY")" = "a b=1i 1" ]'

stop_server
finish
