#!/usr/bin/env bash
# test_load.sh - temporis-load against a real temporisd: a 50,000-row CSV load read back
# through the records API (paginated), gzip bodies, NDJSON from stdin, bad input stopping
# with FILE:LINE before its batch is sent, a server 4xx stopping with the batch's line range,
# retries giving up on a dead server (each retry saying why), a server that is down when the
# load starts and comes back (the load completes), the missing-token usage error, CSV quoted
# fields with newlines and "" (RFC 4180), and InfluxDB line protocol (--format line, .lp):
# an influx export with comments, DDL and a quoted newline read back series by series, and a
# bad line named as FILE:LINE.
# Prints "N passed, M failed" last and exits non-zero on any failure.

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

LOAD="$top_builddir/src/temporis-load"
readonly ROWS=50000
readonly SERIES=10

require_binaries
[ -x "$LOAD" ] || die "loader binary $LOAD not found (build first)"
write_config ""
start_server
TOKEN=$(new_account acme)
printf '%s\n' "$TOKEN" >"$TMP/token"
for s in history gz ndj bad rejected units lp lpgz lpbad quoted outage; do new_source acme "$s"; done

# load ARGS...: run the loader against the test server; status in L_RC, stderr in $TMP/load.err
L_RC=0
load() {
	L_RC=0
	"$LOAD" --url "$BASE" --token-file "$TMP/token" "$@" 2>"$TMP/load.err" || L_RC=$?
}
load_err() { tail -n 5 "$TMP/load.err" | tr '\n' ' '; }

expect_rc() {
	local name=$1 want=$2
	if [ "$L_RC" -eq "$want" ]; then pass "$name"; else fail "$name" "exit $L_RC, want $want: $(load_err)"; fi
}

expect_stderr() {
	local name=$1 want=$2
	if grep -qF -- "$want" "$TMP/load.err"; then pass "$name"; else fail "$name" "stderr lacks '$want': $(load_err)"; fi
}

# gen_csv FILE N [SERIES]: header + N rows; even rows integer values, odd rows doubles.
gen_csv() {
	python3 - "$1" "$2" "${3:-$SERIES}" <<'EOF'
import sys
path, n, series = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "w") as f:
    f.write("timestamp,name,value\n")
    for i in range(n):
        v = str(i * 7 - 1000) if i % 2 == 0 else repr(i / 3.0)
        f.write("%d,s%d,%s\n" % (1700000000 + i // series, i % series, v))
EOF
}

# verify SOURCE FILE: every record of FILE (CSV or NDJSON) reads back with the same type and
# value through GET /v1/data_sources/SOURCE/records, paginated with next_cursor.
verify() {
	python3 - "$BASE" "$TOKEN" "$1" "$2" <<'EOF'
import csv, json, sys, urllib.parse, urllib.request
base, token, source, path = sys.argv[1:5]
want = {}
if path.endswith(".csv"):
    with open(path) as f:
        for row in csv.DictReader(f):
            v = row["value"]
            want[(int(row["timestamp"]), row["name"])] = int(v) if v.lstrip("-").isdigit() else float(v)
else:
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            want[(r["timestamp"], r["name"])] = r["value"]
got, pages = {}, 0
for name in sorted({k[1] for k in want}):
    cursor = None
    while True:
        q = {"name": name, "limit": "10000"}
        if cursor:
            q["cursor"] = cursor
        req = urllib.request.Request("%s/v1/data_sources/%s/records?%s" % (base, source, urllib.parse.urlencode(q)),
                                     headers={"Authorization": "Bearer " + token})
        page = json.load(urllib.request.urlopen(req, timeout=60))
        pages += 1
        for r in page["records"]:
            got[(r["timestamp"], r["name"])] = r["value"]
        cursor = page["next_cursor"]
        if not cursor:
            break
if len(got) != len(want):
    sys.exit("count: read %d, loaded %d" % (len(got), len(want)))
for k, v in want.items():
    g = got.get(k)
    if type(g) is not type(v) or g != v:
        sys.exit("record %r: read %r, loaded %r" % (k, g, v))
print("%d records in %d pages" % (len(got), pages))
EOF
}

# count SOURCE: records stored in SOURCE over all series.
count() {
	python3 - "$BASE" "$TOKEN" "$1" <<'EOF'
import json, sys, urllib.parse, urllib.request
base, token, source = sys.argv[1:4]
def get(path):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
    return json.load(urllib.request.urlopen(req, timeout=60))
total = 0
for s in get("/v1/data_sources/%s/series" % source)["series"]:
    cursor = None
    while True:
        q = {"name": s["name"], "limit": "10000"}
        if cursor:
            q["cursor"] = cursor
        page = get("/v1/data_sources/%s/records?%s" % (source, urllib.parse.urlencode(q)))
        total += len(page["records"])
        cursor = page["next_cursor"]
        if not cursor:
            break
print(total)
EOF
}

# ---- a 50,000-row CSV, 4 connections, batches of 1000 ----------------------------------
gen_csv "$TMP/history.csv" "$ROWS"
load --source history --batch 1000 --concurrency 4 "$TMP/history.csv"
expect_rc "csv load of $ROWS rows exits 0" 0
expect_stderr "summary counts every record and request" "$ROWS records, $((ROWS / 1000)) requests"
check "all $ROWS csv records read back with their types (paginated)" verify history "$TMP/history.csv"

# ---- gzip bodies ---------------------------------------------------------------------------
gen_csv "$TMP/gz.csv" 5000 3
load --source gz --gzip --batch 700 --concurrency 2 "$TMP/gz.csv"
expect_rc "gzip load exits 0" 0
check "gzip-loaded records read back" verify gz "$TMP/gz.csv"

# ---- NDJSON from stdin ---------------------------------------------------------------------
python3 - "$TMP/ndj.ndjson" <<'EOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(3000):
        v = i if i % 3 else i + 0.25
        f.write(json.dumps({"timestamp": 1600000000 + i, "name": "n%d" % (i % 4), "value": v}) + "\n")
    f.write("\n")
EOF
L_RC=0
"$LOAD" --url "$BASE" --token-file "$TMP/token" --source ndj --format ndjson --batch 250 - \
	<"$TMP/ndj.ndjson" 2>"$TMP/load.err" || L_RC=$?
expect_rc "ndjson from stdin exits 0" 0
check "ndjson records read back with their types" verify ndj "$TMP/ndj.ndjson"

# ---- bad input: stops with FILE:LINE before sending that batch -------------------------------
gen_csv "$TMP/bad.csv" 2000
sed -i '1204s/,[^,]*$/,12abc/' "$TMP/bad.csv"
load --source bad --batch 100 --concurrency 1 "$TMP/bad.csv"
expect_rc "a bad value exits 1" 1
expect_stderr "a bad value is reported as FILE:LINE" "$TMP/bad.csv:1204: value is not a number"
got=$(count bad)
if [ "$got" = 1200 ]; then pass "batches before the bad line are stored, its own is not"; else
	fail "batches before the bad line are stored, its own is not" "stored $got, want 1200"; fi

# ---- server 4xx: stops at once with the batch's line range and the record's line ------------
gen_csv "$TMP/rejected.csv" 500
long=$(printf 'x%.0s' $(seq 4097)) # one byte past the longest name
sed -i "305s/,s[0-9]*,/,$long,/" "$TMP/rejected.csv"
load --source rejected --batch 100 --concurrency 1 "$TMP/rejected.csv"
expect_rc "a record the server rejects exits 1" 1
expect_stderr "the 422 names the batch's lines and the record's line" \
	"$TMP/rejected.csv:LINES 302-401: 422 records[3].name must be a non-empty string of at most 4096 bytes without control characters. (record at $TMP/rejected.csv:305)"
got=$(count rejected)
if [ "$got" = 300 ]; then pass "nothing after the rejected batch is sent"; else
	fail "nothing after the rejected batch is sent" "stored $got, want 300"; fi

load --source no_such_source "$TMP/gz.csv"
expect_rc "an unknown data source exits 1" 1
expect_stderr "an unknown data source is a 404 with the line range" \
	"$TMP/gz.csv:LINES 2-5001: 404 Data source not found."

# ---- retries: a server that is not there ---------------------------------------------------
dead=$(free_port)
L_RC=0
"$LOAD" --url "http://127.0.0.1:$dead" --token-file "$TMP/token" --source history --retries 2 \
	"$TMP/gz.csv" 2>"$TMP/load.err" || L_RC=$?
expect_rc "an unreachable server exits 1 after the retries" 1
expect_stderr "the last error is reported after --retries" "giving up after 3 attempts"
expect_stderr "a retry says why, which attempt and when next" \
	"$TMP/gz.csv:LINES 2-5001: connection refused (127.0.0.1:$dead) (attempt 1 of 3, retrying in"

# ---- retries: 503/507 answers are retried, honouring Retry-After ---------------------------
# A stand-in server answers the first two POSTs 503 (Retry-After: 1) and 507 (its detail in
# the {"error": ...} shape of /write), then 204.
fake_port=$(free_port)
python3 - "$fake_port" "$TMP/fake.log" <<'EOF' &
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
answers = [(503, "detail", "Server is busy, retry later."),
           (507, "error", "Insufficient storage: the disk is full.")]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        with open(sys.argv[2], "a") as log:
            log.write("%s %s\n" % (self.path, self.headers.get("Authorization", "")[:7]))
        code, key, detail = answers.pop(0) if answers else (204, None, None)
        body = json.dumps({key: detail}).encode() if detail else b""
        self.send_response(code)
        if code == 503:
            self.send_header("Retry-After", "1")
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
fake_pid=$!
for _ in $(seq 50); do
	curl -s -o /dev/null "http://127.0.0.1:$fake_port/" && break
	sleep 0.1
done
L_RC=0
"$LOAD" --url "http://127.0.0.1:$fake_port" --token-file "$TMP/token" --source history \
	--concurrency 1 --retries 3 "$TMP/gz.csv" 2>"$TMP/load.err" || L_RC=$?
expect_rc "503 and 507 answers are retried until the batch is accepted" 0
expect_stderr "the summary counts the retries" "5000 records, 3 requests, 2 retries"
expect_stderr "a 503 retry shows the server's detail and the wait" \
	"$TMP/gz.csv:LINES 2-5001: 503 Server is busy, retry later. (attempt 1 of 4, retrying in 1.0 s)"
expect_stderr "a 507 retry shows the server's error text" \
	"$TMP/gz.csv:LINES 2-5001: 507 Insufficient storage: the disk is full. (attempt 2 of 4, retrying in"
# without Retry-After the two back-offs would take under 0.3 s
took=$(sed -n 's/.* retries, \([0-9.]*\) s,.*/\1/p' "$TMP/load.err")
if awk -v t="$took" 'BEGIN { exit !(t >= 1.0) }'; then pass "Retry-After: 1 is honoured"; else
	fail "Retry-After: 1 is honoured" "finished in '$took' s"; fi
if [ "$(sort -u "$TMP/fake.log")" = "/v1/data_sources/ingest Bearer " ]; then
	pass "every attempt posts to the ingest path with a bearer token"
else
	fail "every attempt posts to the ingest path with a bearer token" "$(sort -u "$TMP/fake.log")"
fi
kill "$fake_pid" 2>/dev/null || true
wait "$fake_pid" 2>/dev/null || true

# ---- usage ---------------------------------------------------------------------------------
L_RC=0
env -u TEMPORIS_TOKEN "$LOAD" --url "$BASE" --source history "$TMP/gz.csv" 2>"$TMP/load.err" ||
	L_RC=$?
expect_rc "no token exits 2" 2
expect_stderr "no token says how to give one" "no access token"

# ---- timestamp units ------------------------------------------------------------------------
printf 'timestamp,name,value\n1718841600000,ms,1\n1718841601500,ms,2\n' >"$TMP/ms.csv"
load --source units "$TMP/ms.csv"
expect_rc "millisecond timestamps read as seconds are refused (exit 1)" 1
expect_stderr "the refusal names the line and --time-unit" "ms.csv:2"
expect_stderr "the refusal says to pass --time-unit" "--time-unit ms"
load --source units --time-unit ms "$TMP/ms.csv"
expect_rc "--time-unit ms loads them" 0
printf '{"timestamp":"2024-06-20T00:00:02+00:00","name":"ms","value":3}\n' >"$TMP/rfc.ndjson"
load --source units "$TMP/rfc.ndjson"
expect_rc "an RFC 3339 timestamp loads" 0
req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/units/records?name=ms"
if json_get "$R_BODY" '[(r["timestamp"], r["value"]) for r in j["records"]] == [(1718841600, 1), (1718841601, 2), (1718841602, 3)]' | grep -qx true; then
	pass "stored in seconds: ms divided, RFC 3339 converted"
else
	fail "stored in seconds: ms divided, RFC 3339 converted" "$(body_text)"
fi

# ---- line protocol: an influx export, sent as it is to /write ---------------------------
# lp_series SOURCE NAME: the records of series NAME as "ts:value" (values as JSON), read
# with curl through the records API.
lp_series() {
	local q
	q=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$2")
	curl -s -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/$1/records?name=$q" |
		python3 -c 'import json,sys;print(" ".join("%d:%s"%(r["timestamp"],json.dumps(r["value"])) for r in json.load(sys.stdin).get("records",[])))'
}

expect_lp_series() {
	local name=$1 source=$2 series=$3 want=$4 got
	got=$(lp_series "$source" "$series")
	if [ "$got" = "$want" ]; then pass "$name"; else fail "$name" "series $series: got '$got', want '$want'"; fi
}

cat >"$TMP/export.lp" <<'LP'
# INFLUXDB EXPORT: 1677-09-21T00:12:43Z - 2262-04-11T23:47:16Z
# DDL
CREATE DATABASE telegraf WITH NAME autogen
CREATE RETENTION POLICY "autogen" ON "telegraf" DURATION 0s REPLICATION 1
# DML
# CONTEXT-DATABASE: telegraf
# CONTEXT-RETENTION-POLICY: autogen
# writing tsm data
cpu,region=eu,host=a usage=12.5,n=3i 1718841600

cpu,region=eu,host=a usage=13,n=4i 1718841601
mem,host=a,dc=x free=1024i,used=0.5 1718841600
disk,mount=/data,host=b free=7i,label="root disk" 1718841600
log,host=a msg="first line
second line",code=2i 1718841602
LP
load --source lp --time-unit s --batch 2 "$TMP/export.lp"
expect_rc "an influx export (.lp) loads, exit 0" 0
expect_stderr "the summary counts lines, not records" "5 lines, 3 requests"
expect_stderr "a CONTEXT-DATABASE other than --source is noted" \
	"$TMP/export.lp:6: note: CONTEXT-DATABASE is 'telegraf'; loading into --source lp"
expect_lp_series "a float field is a double series named with its sorted tags" lp \
	'cpu_usage{host="a",region="eu"}' "1718841600:12.5 1718841601:13.0"
expect_lp_series "an i integer field is an integer series" lp 'cpu_n{host="a",region="eu"}' \
	"1718841600:3 1718841601:4"
expect_lp_series "a second measurement's fields are series too" lp 'mem_free{dc="x",host="a"}' \
	"1718841600:1024"
expect_lp_series "mem_used keeps its double" lp 'mem_used{dc="x",host="a"}' "1718841600:0.5"
expect_lp_series "a line with a string field stores its numbers" lp \
	'disk_free{host="b",mount="/data"}' "1718841600:7"
expect_lp_series "a string field is not stored" lp 'disk_label{host="b",mount="/data"}' ""
expect_lp_series "a string with a newline keeps its line whole" lp 'log_code{host="a"}' \
	"1718841602:2"

# the same from stdin with --format line, gzip bodies and the default precision (ns)
sed 's/ \(17188416[0-9][0-9]\)$/ \1000000000/' "$TMP/export.lp" >"$TMP/export_ns.txt"
L_RC=0
"$LOAD" --url "$BASE" --token-file "$TMP/token" --source lpgz --format line --gzip - \
	<"$TMP/export_ns.txt" 2>"$TMP/load.err" || L_RC=$?
expect_rc "--format line from stdin with --gzip exits 0" 0
expect_lp_series "nanoseconds are line protocol's default precision" lpgz \
	'cpu_usage{host="a",region="eu"}' "1718841600:12.5 1718841601:13.0"
expect_lp_series "gzip line-protocol bodies are stored" lpgz 'log_code{host="a"}' "1718841602:2"

# ---- line protocol: a bad line in the second batch ----------------------------------------
# batch 1 is lines 2-3; batch 2 is lines 5-7, whose 3rd body line is input line 7 (the string
# on line 5 holds a newline); batch 3 is never sent.
cat >"$TMP/bad.lp" <<'LP'
# batches of two lines
m v=1 1
m v=2 2

s note="a
b",v=3 3
m v=oops 4
m v=5 5
m v=6 6
LP
load --source lpbad --time-unit s --batch 2 --concurrency 1 "$TMP/bad.lp"
expect_rc "a line the server refuses exits 1" 1
expect_stderr "the 400 names the batch's lines and the server's line" \
	"$TMP/bad.lp:LINES 5-7: 400 line 3: unable to parse 'm v=oops 4'"
expect_stderr "the refused line is named as FILE:LINE" "(line at $TMP/bad.lp:7)"
expect_stderr "the summary counts the refused batch's lines" "2 lines, 2 rejected"
expect_lp_series "the first batch's points are stored" lpbad 'm_v' "1:1.0 2:2.0"
expect_lp_series "nothing of the refused batch is stored" lpbad 's_v' ""

load --source lp "$TMP/export.lp" "$TMP/gz.csv"
expect_rc "line protocol mixed with CSV in one run is a usage error (exit 2)" 2
expect_stderr "the mix is refused saying why" "cannot be loaded together with CSV"

# ---- a server that is down when the load starts and comes back ---------------------------
# The loader retries "connection refused" with back-off while the server is stopped; once
# it is back every batch goes in.
gen_csv "$TMP/outage.csv" 3000 3
stop_server "server stops for the outage test"
L_RC=0
"$LOAD" --url "$BASE" --token-file "$TMP/token" --source outage --batch 500 --concurrency 2 \
	--retries 30 "$TMP/outage.csv" 2>"$TMP/load.err" &
load_pid=$!
sleep 1.5
start_server
wait "$load_pid" || L_RC=$?
expect_rc "a load started while the server is down completes once it is back" 0
expect_stderr "while it is down the retries say connection refused" "connection refused (127.0.0.1:$PORT)"
expect_stderr "the summary counts every record after the outage" "3000 records"
check "every record loaded across the outage reads back" verify outage "$TMP/outage.csv"

# ---- CSV: quoted fields with newlines and "" (RFC 4180) -----------------------------------
# An export with a free-text comment column: the loader maps time,name,value and joins the
# physical lines of a record while a quote is open; a bad value in a joined record is named
# with its lines, and a quote left open with the line it opened on.
printf '%s\n' 'time,name,value,comment' \
	'1700000000,"rack 1, left",1,"first line' \
	'second line with a ""quote""' \
	'' \
	'fourth line"' \
	'1700000001,plain,2.5,"one line, with a comma"' \
	'1700000002,"rack 1, left",3,"a' \
	'b"' \
	'1700000003,plain,4,' >"$TMP/quoted.csv"
load --source quoted --csv-columns time,name,value "$TMP/quoted.csv"
expect_rc "a CSV with quoted newlines in an unmapped column loads, exit 0" 0
expect_stderr "every record of the multi-line CSV is counted" "4 records, 1 requests"
expect_lp_series "a quoted comma stays in the name; records after a quoted newline are whole" \
	quoted 'rack 1, left' "1700000000:1 1700000002:3"
expect_lp_series "records after the joined lines keep their values" quoted plain \
	"1700000001:2.5 1700000003:4"
printf '%s\n' 'time,name,value,comment' '1,a,1,ok' '2,a,zz,"x' 'y"' >"$TMP/quoted_bad.csv"
load --source quoted --csv-columns time,name,value "$TMP/quoted_bad.csv"
expect_rc "a bad value in a joined record exits 1" 1
expect_stderr "the bad record is named with all its lines" \
	"$TMP/quoted_bad.csv:LINES 3-4: value is not a number"
printf '%s\n' 'time,name,value,comment' '1,a,1,ok' '2,a,2,"never closed' '3,a,3,x' >"$TMP/quoted_open.csv"
load --source quoted --csv-columns time,name,value "$TMP/quoted_open.csv"
expect_rc "a quote open at the end of the input exits 1" 1
expect_stderr "the open quote is named by the line it opened on" \
	"$TMP/quoted_open.csv:3: the quoted field opened on this line is not closed at the end of the input"

stop_server
finish
