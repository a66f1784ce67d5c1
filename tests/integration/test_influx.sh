#!/usr/bin/env bash
# test_influx.sh - InfluxDB line protocol on POST /write (1.x) and /api/v2/write (2.x),
# and GET /ping, driven by curl, Debian's python3-influxdb and the influx CLI's
# -import: every way those clients authenticate, the mapping of points to series
# (measurement_field{tags sorted}), precisions, types, and each error in InfluxDB's
# {"error": ...} shape. What is written is read back through the JSON read API.

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

require_binaries
command -v influx >/dev/null || die "influx is missing (scripts/deps installs influxdb-client)"
/usr/bin/python3 -c 'import influxdb' 2>/dev/null ||
	die "python3-influxdb is missing (scripts/deps installs it)"

write_config "max_body_bytes = 1M"
start_server

TOKEN=$(new_account telco)
new_source telco metrics
new_source telco frozen
ctl source archive telco frozen >/dev/null || die "temporisctl source archive failed"
OTHER=$(new_account otherco)
new_source otherco theirs

W1="$BASE/write?db=metrics"
W2="$BASE/api/v2/write?org=any&bucket=metrics"

# read_series NAME: the records of series NAME in "metrics" as "ts:value" lines.
read_series() {
	local q
	q=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$1")
	curl -s -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/metrics/records?name=$q" |
		python3 -c 'import json,sys;[print("%d:%s"%(r["timestamp"],json.dumps(r["value"]))) for r in json.load(sys.stdin)["records"]]'
}

# expect_series LABEL NAME "ts:v ts:v...": exactly those records, values as JSON.
expect_series() {
	local got
	got=$(read_series "$2" | tr '\n' ' ')
	got=${got% }
	if [ "$got" = "$3" ]; then pass "$1"; else fail "$1" "series $2: expected '$3', got '$got'"; fi
}

lp() { req -X POST --data-binary "$1" "${@:2}"; }

section_ping() {
	req "$BASE/ping"
	expect_status "GET /ping -> 204" 204
	expect_header "/ping names an InfluxDB version" X-Influxdb-Version 1.8.10
	req -I "$BASE/ping"
	expect_status "HEAD /ping -> 204" 204
}

section_auth() {
	local basic
	lp 'a1 v=1 1' "$W1&precision=s"
	expect_error "no credentials -> 401" 401 "Missing access token." exact error
	lp 'a1 v=1 1' -H "Authorization: Token $TOKEN" "$W1&precision=s"
	expect_status "Authorization: Token -> 204" 204
	lp 'a1 v=2 2' -H "Authorization: Bearer $TOKEN" "$W1&precision=s"
	expect_status "Authorization: Bearer -> 204" 204
	lp 'a1 v=3 3' -u "telegraf:$TOKEN" "$W1&precision=s"
	expect_status "HTTP Basic with the token as password -> 204" 204
	lp 'a1 v=4 4' "$W1&precision=s&u=telegraf&p=$TOKEN"
	expect_status "?u=&p=TOKEN -> 204" 204
	expect_series "each credential form wrote" 'a1_v' "1:1.0 2:2.0 3:3.0 4:4.0"
	lp 'a1 v=1 1' -H "Authorization: Token ts_nope" "$W1"
	expect_error "unknown token -> 401" 401 "Invalid access token." exact error
	basic=$(printf 'user-without-colon' | base64)
	lp 'a1 v=1 1' -H "Authorization: Basic $basic" "$W1"
	expect_error "Basic without a password -> 401" 401 "Invalid access token." exact error
	lp 'a1 v=1 1' -H "Authorization: Basic !!!!" "$W1"
	expect_error "Basic that is not base64 -> 401" 401 "Invalid access token." exact error
	lp 'a1 v=1 1' -H "Authorization: Token $OTHER" "$W1"
	expect_error "another account's token: its sources only -> 404" 404 "Data source not found." exact error
	local out tid tok
	out=$(new_token telco)
	tok=$(json_get - 'j["token"]' <<<"$out")
	tid=$(json_get - 'j["token_id"]' <<<"$out")
	lp 'a1 v=9 9' -H "Authorization: Token $tok" "$W1&precision=s"
	expect_status "a new token works" 204
	ctl token revoke telco "$tid" >/dev/null || fail "token revoke" "temporisctl failed"
	lp 'a1 v=9 9' -H "Authorization: Token $tok" "$W1&precision=s"
	expect_error "revoked token -> 401" 401 "Invalid access token." exact error
}

section_mapping() {
	local body
	body=$'# a comment, then a blank line\n\ncpu,region=eu,host=a usage_user=12.5,usage_idle=80i,up=true,state="ok" 1718841600\r\n'
	body+=$'cpu,host=a,region=eu usage_user=13.25 1718841660\n'
	body+=$'weather,city=San\\ Jos\\=e,note=a\\,b temp=-3.5e1,count=7u 1718841600\n'
	body+='quoted msg="a \"quoted\" string, with = and spaces",v=1 1718841600'
	lp "$body" -H "Authorization: Token $TOKEN" "$W1&precision=s"
	expect_status "a body of every line-protocol feature -> 204" 204
	expect_empty_body "204 has no body"
	expect_series "tags sorted: one series whatever their order" \
		'cpu_usage_user{host="a",region="eu"}' "1718841600:12.5 1718841660:13.25"
	expect_series "i integer stays an integer" 'cpu_usage_idle{host="a",region="eu"}' "1718841600:80"
	expect_series "boolean true is 1" 'cpu_up{host="a",region="eu"}' "1718841600:1"
	expect_series "string fields are not stored" 'cpu_state{host="a",region="eu"}' ""
	expect_series "escaped space, = and comma in tag values" \
		'weather_temp{city="San Jos=e",note="a,b"}' "1718841600:-35.0"
	expect_series "u integer stored as an integer" 'weather_count{city="San Jos=e",note="a,b"}' "1718841600:7"
	expect_series "a quoted string with spaces, commas and = does not end the line" 'quoted_v' "1718841600:1.0"
}

section_precision() {
	lp 'p_ns v=1 1718841600999999999' -H "Authorization: Token $TOKEN" "$W1"
	expect_status "no precision: nanoseconds -> 204" 204
	expect_series "nanoseconds floored to the second" 'p_ns_v' "1718841600:1.0"
	lp 'p_ms v=1 1718841600500' -H "Authorization: Token $TOKEN" "$W2&precision=ms"
	expect_status "v2 precision=ms -> 204" 204
	expect_series "milliseconds floored" 'p_ms_v' "1718841600:1.0"
	lp 'p_us v=1 1718841600000001' -H "Authorization: Token $TOKEN" "$W1&precision=u"
	expect_status "precision=u -> 204" 204
	expect_series "microseconds floored" 'p_us_v' "1718841600:1.0"
	lp 'p_neg v=1 -1' -H "Authorization: Token $TOKEN" "$W1"
	expect_series "-1 ns is second -1" 'p_neg_v' "-1:1.0"
	lp $'sub v=1 1718841600100000000\nsub v=2 1718841600900000000' -H "Authorization: Token $TOKEN" "$W1"
	expect_status "two points in one second -> 204" 204
	expect_series "sub-second points collapse onto their second, the later line wins" 'sub_v' "1718841600:2.0"
	local before after got
	before=$(date +%s)
	lp 'nots v=5' -H "Authorization: Token $TOKEN" "$W1"
	after=$(date +%s)
	expect_status "no timestamp -> 204" 204
	got=$(read_series nots_v)
	got=${got%%:*}
	if [ -n "$got" ] && [ "$got" -ge "$before" ] && [ "$got" -le "$after" ]; then
		pass "no timestamp: the server's time"
	else
		fail "no timestamp: the server's time" "got '$got', wanted $before..$after"
	fi
	lp 'x v=1 1' -H "Authorization: Token $TOKEN" "$W1&precision=minutes"
	expect_error "unknown precision -> 400" 400 "precision must be one of ns, u (us), ms, s, m, h." exact error
}

section_errors() {
	lp $'ok v=1 1\nok v=2 2\nbad,host=a v= 3' -H "Authorization: Token $TOKEN" "$W1&precision=s"
	expect_error "bad line -> 400 naming line 3" 400 "line 3: unable to parse" prefix error
	expect_series "all-or-nothing: the good lines of a bad body are not stored" 'ok_v' ""
	lp 'big v=18446744073709551615u 1' -H "Authorization: Token $TOKEN" "$W1&precision=s"
	expect_error "u above int64 -> 400" 400 "line 1: " prefix error
	lp 'x v=1 1' -H "Authorization: Token $TOKEN" "$BASE/write?db=no_such"
	expect_error "unknown db -> 404" 404 "Data source not found." exact error
	lp 'x v=1 1' -H "Authorization: Token $TOKEN" "$BASE/write"
	expect_error "no db -> 400" 400 "The data source is required: ?db=SOURCE." exact error
	lp 'x v=1 1' -H "Authorization: Token $TOKEN" "$BASE/api/v2/write?org=o"
	expect_error "v2 without bucket -> 400" 400 "The data source is required: ?bucket=SOURCE." exact error
	lp 'x v=1 1' -H "Authorization: Token $TOKEN" "$BASE/write?db=frozen"
	expect_error "archived source -> 409" 409 "Data source is archived." exact error
	head -c 1100000 /dev/zero | tr '\0' 'x' >"$TMP/big.lp"
	req -X POST --data-binary "@$TMP/big.lp" -H "Authorization: Token $TOKEN" "$W1"
	expect_error "body over max_body_bytes -> 413" 413 "Request body too large." exact error
	local name
	name=$(printf 'n%.0s' $(seq 4100))
	lp "$name v=1 1" -H "Authorization: Token $TOKEN" "$W1&precision=s"
	expect_error "series name over 4096 bytes -> 400" 400 "line 1: " prefix error
	req -X GET -H "Authorization: Token $TOKEN" "$W1"
	expect_status "GET /write -> 405" 405
	printf 'gz v=7 1718841600\n' | gzip >"$TMP/body.gz"
	req -X POST --data-binary "@$TMP/body.gz" -H 'Content-Encoding: gzip' -H "Authorization: Token $TOKEN" "$W1&precision=s"
	expect_status "gzip body -> 204" 204
	expect_series "gzip body stored" 'gz_v' "1718841600:7.0"
}

section_clients() {
	report_helper "python3-influxdb" env PYTHONPATH="$IT_DIR" /usr/bin/python3 \
		"$IT_DIR/influx_client.py" 127.0.0.1 "$PORT" "$TOKEN" metrics
	# influx -import reads a file of DDL and DML sections, as influx_inspect export writes.
	cat >"$TMP/import.txt" <<-IMPORT
	# DDL
	# DML
	# CONTEXT-DATABASE: metrics
	# CONTEXT-RETENTION-POLICY: autogen
	imported,host=c load=0.25 1718841600
	imported,host=c load=0.5 1718841610
	imported,host=c count=3i 1718841620
	IMPORT
	local out rc=0
	out=$(influx -host 127.0.0.1 -port "$PORT" -username telegraf -password "$TOKEN" \
		-import -path "$TMP/import.txt" -precision s 2>&1) || rc=$?
	if [ "$rc" = 0 ] && grep -q 'Processed 3 inserts' <<<"$out" && grep -q 'Failed 0 inserts' <<<"$out"; then
		pass "influx -import -precision s: 3 inserts, 0 failed"
	else
		fail "influx -import -precision s: 3 inserts, 0 failed" "exit $rc: $(tr '\n' ' ' <<<"$out")"
	fi
	expect_series "influx -import: floats read back" 'imported_load{host="c"}' "1718841600:0.25 1718841610:0.5"
	expect_series "influx -import: integers read back" 'imported_count{host="c"}' "1718841620:3"
}

section_ping
section_auth
section_mapping
section_precision
section_errors
section_clients
stop_server
finish
