#!/usr/bin/env bash
# test_api.sh - the public HTTP API of a real temporisd against SPEC sections 3-4:
# every row of the ingest error table (status, detail, Content-Type), upserts,
# pagination, isolation, archive, restart, large and concurrent ingest, keep-alive,
# exact numbers, downsampled reads (step/agg). Phase A runs with default limits, phase B
# (after a restart on the same data dir) with max_body_bytes = 64K and
# max_records_per_request = 1000.

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

require_binaries
require_requests

SRC=store_metrics
ONE='{"data_source":"store_metrics","records":[{"timestamp":1718841600,"name":"orders","value":42}]}'
R='{"timestamp":1718841600,"name":"orders","value":1}'
# body whose records[3] is $1 (three valid records before it)
rec3() { echo "{\"data_source\":\"$SRC\",\"records\":[$R,$R,$R,$1]}"; }
JSON_H='Content-Type: application/json'

# ---- phase A: default limits -------------------------------------------------

write_config ""
start_server
TOKEN=$(new_account acme)
new_source acme "$SRC"

section_basics() {
	req "$BASE/healthz"
	expect_status "GET /healthz 200" 200
	check "GET /healthz body is {\"status\":\"ok\"}" \
		python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))=={"status":"ok"}, open(sys.argv[1]).read()' "$R_BODY"
	if check_json_ctype; then
		pass "GET /healthz Content-Type application/json"
	else
		fail "GET /healthz Content-Type application/json" "got '$R_CTYPE'"
	fi

	req "$BASE/nope"
	expect_error "unknown path /nope -> 404" 404 "Not found."
	req -H "Authorization: Bearer $TOKEN" "$BASE/v1/nothing/here"
	expect_error "unknown path /v1/nothing/here -> 404" 404 "Not found."
	req -X POST -H "Authorization: Bearer $TOKEN" -d "$ONE" "$BASE/v1/data_sources/ingest/extra"
	expect_error "unknown path below ingest -> 404" 404 "Not found."

	local m
	for m in GET PUT DELETE; do
		req -X "$m" "$BASE/v1/data_sources/ingest"
		expect_error "$m ingest -> 405" 405 "Method not allowed."
		expect_header "$m ingest -> Allow: POST" Allow POST
	done
	req -X PUT -H "Authorization: Bearer $TOKEN" -d "$ONE" "$BASE/v1/data_sources/ingest"
	expect_error "PUT ingest with token and body -> 405 (method checked first)" 405 "Method not allowed."
}

section_auth() {
	req -X POST -d "$ONE" "$BASE/v1/data_sources/ingest"
	expect_error "no Authorization -> 401 missing" 401 "Missing access token."
	req -X POST -d 'not json' "$BASE/v1/data_sources/ingest"
	expect_error "no Authorization + invalid JSON -> 401 missing (auth before parse)" 401 "Missing access token."
	req -X POST -H "Authorization: Basic x" -d "$ONE" "$BASE/v1/data_sources/ingest"
	expect_error "Authorization: Basic x -> 401 invalid" 401 "Invalid access token."
	req -X POST -H "Authorization: Bearer" -d "$ONE" "$BASE/v1/data_sources/ingest"
	expect_error "Authorization: Bearer (no token) -> 401 invalid" 401 "Invalid access token."
	req -X POST -H "Authorization: Bearer ts_thisTokenDoesNotExist0123456789" -d "$ONE" "$BASE/v1/data_sources/ingest"
	expect_error "unknown token -> 401 invalid" 401 "Invalid access token."
	req -X POST -H "Authorization: Bearer $TOKEN$TOKEN" -d "$ONE" "$BASE/v1/data_sources/ingest"
	expect_error "token with extra suffix -> 401 invalid" 401 "Invalid access token."
	req -X POST -H "Authorization: Bearer ts_bad" -d 'not json' "$BASE/v1/data_sources/ingest"
	expect_error "unknown token + invalid JSON -> 401 invalid (auth before parse)" 401 "Invalid access token."

	local out tid tok
	out=$(new_token acme)
	tok=$(json_get - 'j["token"]' <<<"$out")
	tid=$(json_get - 'j["token_id"]' <<<"$out")
	ingest "$tok" -d "$ONE"
	expect_status "second token works before revoke" 204
	ctl token revoke acme "$tid" >/dev/null || fail "token revoke" "temporisctl failed"
	ingest "$tok" -d "$ONE"
	expect_error "revoked token -> 401 invalid at once" 401 "Invalid access token."
	REVOKED=$tok
	ingest "$TOKEN" -d "$ONE"
	expect_status "the other token of the account still works" 204
}

section_json() {
	ingest "$TOKEN" -d '{'
	expect_error "truncated JSON -> 400" 400 "Request body is not valid JSON." prefix
	ingest "$TOKEN" -d 'not json'
	expect_error "not JSON -> 400" 400 "Request body is not valid JSON." prefix
	ingest "$TOKEN" --data-binary ''
	expect_error "empty body -> 400" 400 "Request body is not valid JSON." prefix
	ingest "$TOKEN" -d "$ONE x"
	expect_error "trailing garbage -> 400" 400 "Request body is not valid JSON." prefix
	ingest "$TOKEN" -d "$ONE$ONE"
	expect_error "two JSON objects -> 400" 400 "Request body is not valid JSON." prefix
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"name":"n","value":NaN}')"
	expect_error "NaN -> 400" 400 "Request body is not valid JSON." prefix
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"name":"n","value":Infinity}')"
	expect_error "Infinity -> 400" 400 "Request body is not valid JSON." prefix
	ingest "$TOKEN" -d "{'data_source':'$SRC','records':[]}"
	expect_error "single quotes -> 400" 400 "Request body is not valid JSON." prefix
	ingest "$TOKEN" -d "{\"data_source\":\"$SRC\",\"records\":[],}"
	expect_error "trailing comma -> 400" 400 "Request body is not valid JSON." prefix
	ingest "$TOKEN" -d "$ONE" -H "$JSON_H"
	expect_status "valid body with trailing nothing -> 204" 204
	ingest "$TOKEN" --data-binary "$ONE"$'\n'
	expect_status "valid body with trailing newline -> 204" 204
}

section_schema() {
	local name4096 name4097 e2048 e2049
	ingest "$TOKEN" -d '[]'
	expect_error "body is a list -> 422" 422 "Request body must be a JSON object."
	ingest "$TOKEN" -d '"text"'
	expect_error "body is a string -> 422" 422 "Request body must be a JSON object."
	ingest "$TOKEN" -d '42'
	expect_error "body is a number -> 422" 422 "Request body must be a JSON object."
	ingest "$TOKEN" -d '{}'
	expect_error "empty object -> 422 data_source" 422 "data_source must be a string."
	ingest "$TOKEN" -d '{"records":[]}'
	expect_error "data_source missing -> 422" 422 "data_source must be a string."
	ingest "$TOKEN" -d '{"data_source":5,"records":[]}'
	expect_error "data_source a number -> 422" 422 "data_source must be a string."
	ingest "$TOKEN" -d '{"data_source":null,"records":[]}'
	expect_error "data_source null -> 422" 422 "data_source must be a string."
	ingest "$TOKEN" -d "{\"data_source\":\"$SRC\"}"
	expect_error "records missing -> 422" 422 "records must be a list."
	ingest "$TOKEN" -d "{\"data_source\":\"$SRC\",\"records\":{}}"
	expect_error "records an object -> 422" 422 "records must be a list."
	ingest "$TOKEN" -d "{\"data_source\":\"$SRC\",\"records\":null}"
	expect_error "records null -> 422" 422 "records must be a list."
	ingest "$TOKEN" -d "$(rec3 5)"
	expect_error "records[3] a number -> 422" 422 "records[3] must be an object."
	ingest "$TOKEN" -d "$(rec3 '[1,"a",2]')"
	expect_error "records[3] a list -> 422" 422 "records[3] must be an object."
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1718841600.5,"name":"n","value":1}')"
	expect_error "timestamp 1718841600.5 -> 422" 422 "records[3].timestamp must be an integer."
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":"1718841600","name":"n","value":1}')"
	expect_error "timestamp as string -> 422" 422 "records[3].timestamp must be an integer."
	ingest "$TOKEN" -d "$(rec3 '{"name":"n","value":1}')"
	expect_error "timestamp missing -> 422" 422 "records[3].timestamp must be an integer."
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":null,"name":"n","value":1}')"
	expect_error "timestamp null -> 422" 422 "records[3].timestamp must be an integer."
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1e9,"name":"n","value":1}')"
	expect_error "timestamp 1e9 -> 422" 422 "records[3].timestamp must be an integer."
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":99999999999999999999,"name":"n","value":1}')"
	expect_error "timestamp beyond int64 -> 422" 422 "records[3].timestamp must be an integer."

	local nmsg="records[3].name must be a non-empty string of at most 4096 bytes without control characters."
	name4096=$(printf 'a%.0s' $(seq 4096))
	name4097=$(printf 'a%.0s' $(seq 4097))
	e2048=$(printf '\xc3\xa9%.0s' $(seq 2048))
	e2049=$(printf '\xc3\xa9%.0s' $(seq 2049))
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"name":"","value":1}')"
	expect_error "name empty -> 422" 422 "$nmsg"
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"value":1}')"
	expect_error "name missing -> 422" 422 "$nmsg"
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"name":5,"value":1}')"
	expect_error "name a number -> 422" 422 "$nmsg"
	ingest "$TOKEN" -d "$(rec3 "{\"timestamp\":1,\"name\":\"$name4097\",\"value\":1}")"
	expect_error "name of 4097 bytes -> 422" 422 "$nmsg"
	ingest "$TOKEN" --data-binary "$(rec3 "{\"timestamp\":1,\"name\":\"$e2049\",\"value\":1}")"
	expect_error "name of 2049 x 2-byte chars (4098 bytes) -> 422" 422 "$nmsg"
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"name":"a\nb","value":1}')"
	expect_error "name with \\n -> 422" 422 "$nmsg"
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"name":"a\u0001b","value":1}')"
	expect_error "name with \\u0001 -> 422" 422 "$nmsg"
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"name":"a\tb","value":1}')"
	expect_error "name with tab -> 422" 422 "$nmsg"
	ingest "$TOKEN" -d "{\"data_source\":\"$SRC\",\"records\":[{\"timestamp\":7,\"name\":\"$name4096\",\"value\":1}]}"
	expect_status "name of exactly 4096 bytes -> 204" 204
	ingest "$TOKEN" --data-binary "{\"data_source\":\"$SRC\",\"records\":[{\"timestamp\":7,\"name\":\"$e2048\",\"value\":1}]}"
	expect_status "name of 2048 x 2-byte chars (4096 bytes) -> 204" 204

	local vmsg="records[3].value must be a number."
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"name":"n","value":"42"}')"
	expect_error "value as string -> 422" 422 "$vmsg"
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"name":"n","value":null}')"
	expect_error "value null -> 422" 422 "$vmsg"
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"name":"n","value":true}')"
	expect_error "value true -> 422" 422 "$vmsg"
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"name":"n"}')"
	expect_error "value missing -> 422" 422 "$vmsg"
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"name":"n","value":[1]}')"
	expect_error "value a list -> 422" 422 "$vmsg"
	local imsg="records[3].value must be an integer within the 64-bit range."
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"name":"n","value":9223372036854775808}')"
	expect_error "value 2^63 -> 422" 422 "$imsg"
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"name":"n","value":-9223372036854775809}')"
	expect_error "value -2^63-1 -> 422" 422 "$imsg"
	ingest "$TOKEN" -d "$(rec3 '{"timestamp":1,"name":"n","value":100000000000000000000000}')"
	expect_error "value 1e23 written as an integer -> 422" 422 "$imsg"

	# the first check that fails answers
	ingest "$TOKEN" -d '{"data_source":"no_such_source","records":[1]}'
	expect_error "schema error + unknown source -> 422 (schema before lookup)" 422 "records[0] must be an object."
	# all-or-nothing
	ingest "$TOKEN" -d "{\"data_source\":\"$SRC\",\"records\":[{\"timestamp\":1,\"name\":\"aon\",\"value\":1},{\"timestamp\":2,\"name\":\"aon\",\"value\":2},{\"timestamp\":3,\"name\":\"aon\",\"value\":3},{\"timestamp\":4,\"name\":\"aon\",\"value\":\"x\"}]}"
	expect_error "request with bad records[3] -> 422" 422 "$vmsg"
	run_py "all-or-nothing" expect_series "$TOKEN" "$SRC" aon '{}' \
		"all-or-nothing: no record of a rejected request is stored"
	# unknown fields are ignored; any Content-Type works
	ingest "$TOKEN" -H 'Content-Type: text/plain' \
		-d "{\"data_source\":\"$SRC\",\"extra\":{\"a\":[1]},\"records\":[{\"timestamp\":5,\"name\":\"unk\",\"value\":5,\"unit\":\"x\"}]}"
	expect_status "unknown fields ignored, Content-Type text/plain -> 204" 204
	run_py "unknown fields" expect_series "$TOKEN" "$SRC" unk '{"5":5}' "unknown fields: record read back"
}

section_sources() {
	ingest "$TOKEN" -d '{"data_source":"no_such_source","records":[{"timestamp":1,"name":"n","value":1}]}'
	expect_error "unknown data source -> 404" 404 "Data source not found."
	ingest "$TOKEN" -d '{"data_source":"no_such_source","records":[]}'
	expect_error "unknown data source with records [] -> 404" 404 "Data source not found."
	ingest "$TOKEN" -d "{\"data_source\":\"$SRC\",\"records\":[]}"
	expect_status "records [] -> 204" 204
	expect_empty_body "records [] -> empty body"
	ingest "$TOKEN" -d "$ONE"
	expect_status "one record -> 204" 204
	expect_empty_body "204 has an empty body"

	# isolation between accounts
	TOKEN_B=$(new_account beta)
	new_source acme acme_private
	new_source beta "$SRC"
	ingest "$TOKEN" -d '{"data_source":"acme_private","records":[{"timestamp":10,"name":"secret","value":1}]}'
	expect_status "owner ingests into acme_private" 204
	ingest "$TOKEN_B" -d '{"data_source":"acme_private","records":[{"timestamp":10,"name":"secret","value":2}]}'
	expect_error "isolation: other account's source on ingest -> 404" 404 "Data source not found."
	req -H "Authorization: Bearer $TOKEN_B" "$BASE/v1/data_sources/acme_private/records?name=secret"
	expect_error "isolation: GET records of another account's source -> 404" 404 "Data source not found."
	req -H "Authorization: Bearer $TOKEN_B" "$BASE/v1/data_sources/acme_private/series"
	expect_error "isolation: GET series of another account's source -> 404" 404 "Data source not found."
	req -H "Authorization: Bearer $TOKEN_B" "$BASE/v1/data_sources/acme_private"
	expect_error "isolation: GET another account's source -> 404" 404 "Data source not found."
	req -H "Authorization: Bearer $TOKEN_B" "$BASE/v1/data_sources"
	check "isolation: list of beta does not show acme_private" python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
names=[s["name"] for s in j["data_sources"]]
assert "acme_private" not in names and names == ["store_metrics"], names' "$R_BODY"
	ingest "$TOKEN_B" -d '{"data_source":"store_metrics","records":[{"timestamp":10,"name":"iso","value":222}]}'
	expect_status "beta ingests into its own store_metrics" 204
	ingest "$TOKEN" -d '{"data_source":"store_metrics","records":[{"timestamp":10,"name":"iso","value":111}]}'
	expect_status "acme ingests into its own store_metrics" 204
	run_py "isolation A" expect_series "$TOKEN" "$SRC" iso '{"10":111}' "isolation: same source name, acme sees only its value"
	run_py "isolation B" expect_series "$TOKEN_B" "$SRC" iso '{"10":222}' "isolation: same source name, beta sees only its value"
	run_py "isolation A2" expect_series "$TOKEN" acme_private secret '{"10":1}' "isolation: beta's rejected write left acme_private unchanged"

	# archive / unarchive through temporisctl
	new_source acme arch_src
	ingest "$TOKEN" -d '{"data_source":"arch_src","records":[{"timestamp":1,"name":"a","value":1}]}'
	expect_status "arch_src before archive -> 204" 204
	ctl source archive acme arch_src >/dev/null || fail "ctl source archive" "non-zero exit"
	ingest "$TOKEN" -d '{"data_source":"arch_src","records":[{"timestamp":2,"name":"a","value":2}]}'
	expect_error "archived source -> 409" 409 "Data source is archived."
	ingest "$TOKEN" -d '{"data_source":"arch_src","records":[{"timestamp":2,"name":"a","value":"x"}]}'
	expect_error "archived source + schema error -> 422 (schema first)" 422 "records[0].value must be a number."
	ingest "$TOKEN" -d '{"data_source":"arch_src","records":[]}'
	expect_error "archived source with records [] -> 409" 409 "Data source is archived."
	run_py "archived readable" expect_series "$TOKEN" arch_src a '{"1":1}' "archived source stays readable, rejected write not stored"
	ctl source unarchive acme arch_src >/dev/null || fail "ctl source unarchive" "non-zero exit"
	ingest "$TOKEN" -d '{"data_source":"arch_src","records":[{"timestamp":3,"name":"a","value":3}]}'
	expect_status "unarchived source -> 204" 204
	run_py "unarchived" expect_series "$TOKEN" arch_src a '{"1":1,"3":3}' "unarchived source keeps old and new data"
	new_source acme frozen
	ctl source archive acme frozen >/dev/null || fail "ctl source archive frozen" "non-zero exit"
}

section_encoding() {
	TEMPORIS_URL=$BASE python3 "$TCLIENT" gzbody "$SRC" gz 300 "$TMP/gz.body"
	ingest "$TOKEN" -H 'Content-Encoding: gzip' -H "$JSON_H" --data-binary "@$TMP/gz.body"
	expect_status "Content-Encoding: gzip -> 204" 204
	run_py "gzip readback" verify_gz "$TOKEN" "$SRC" gz 300 "gzip body: all 300 records read back"
	ingest "$TOKEN" -H 'Content-Encoding: br' -d "$ONE"
	expect_error "Content-Encoding: br -> 415" 415 "Unsupported Content-Encoding."
	ingest "$TOKEN" -H 'Content-Encoding: identity' -d "$ONE"
	expect_status "Content-Encoding: identity -> 204" 204
	printf 'this is not gzip' >"$TMP/notgz.body"
	ingest "$TOKEN" -H 'Content-Encoding: gzip' --data-binary "@$TMP/notgz.body"
	if [ "$R_STATUS" = 400 ] || [ "$R_STATUS" = 415 ]; then
		expect_error "corrupt gzip body -> JSON error" "$R_STATUS" "" prefix
	else
		fail "corrupt gzip body -> 400" "got $R_STATUS ($(body_text))"
	fi
}

section_big() {
	TEMPORIS_URL=$BASE python3 "$TCLIENT" genbody "$SRC" big 20000 "$TMP/big.body"
	ingest "$TOKEN" -H "$JSON_H" -H 'Expect: 100-continue' --data-binary "@$TMP/big.body"
	expect_status "20,000 records in one request (Expect: 100-continue) -> 204" 204
	run_py "big readback" verify_seq "$TOKEN" "$SRC" big 20000 "20,000 records read back"
}

section_mgmt() {
	req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources"
	expect_status "GET /v1/data_sources -> 200" 200
	check "GET /v1/data_sources shape" python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert set(j)=={"data_sources"}, j
for s in j["data_sources"]:
    assert set(s)=={"name","archived","created_at","retention_s"} and s["retention_s"]==0, s
    assert isinstance(s["archived"],bool) and isinstance(s["created_at"],int), s
assert "store_metrics" in [s["name"] for s in j["data_sources"]], j' "$R_BODY"
	req -X POST -H "Authorization: Bearer $TOKEN" -d '{"name":"grid_load_eu"}' "$BASE/v1/data_sources"
	expect_status "POST /v1/data_sources -> 201" 201
	check "POST /v1/data_sources returns the object" python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert j["name"]=="grid_load_eu" and j["archived"] is False and isinstance(j["created_at"],int), j' "$R_BODY"
	ingest "$TOKEN" -d '{"data_source":"grid_load_eu","records":[{"timestamp":1,"name":"mw","value":3.5}]}'
	expect_status "source created over HTTP takes ingest at once" 204
	req -X POST -H "Authorization: Bearer $TOKEN" -d '{"name":"grid_load_eu"}' "$BASE/v1/data_sources"
	expect_error "POST existing source -> 409" 409 "Data source already exists."
	local bad
	for bad in Store-Metrics 2024data "" "a_name_that_is_longer_than_forty_eight_characters_x"; do
		req -X POST -H "Authorization: Bearer $TOKEN" -d "{\"name\":\"$bad\"}" "$BASE/v1/data_sources"
		expect_error "POST invalid name '$bad' -> 422" 422 "" prefix
	done
	req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/grid_load_eu"
	expect_status "GET /v1/data_sources/grid_load_eu -> 200" 200
	check "GET one source has its series" python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert j["name"]=="grid_load_eu" and "series" in j and [s["name"] for s in j["series"]]==["mw"], j' "$R_BODY"
	req -X POST -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/grid_load_eu/archive"
	expect_status "POST archive -> 200" 200
	check "archive returns archived true" python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["archived"] is True' "$R_BODY"
	ingest "$TOKEN" -d '{"data_source":"grid_load_eu","records":[]}'
	expect_error "archived over HTTP -> 409" 409 "Data source is archived."
	req -X POST -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/grid_load_eu/unarchive"
	expect_status "POST unarchive -> 200" 200
	ingest "$TOKEN" -d '{"data_source":"grid_load_eu","records":[]}'
	expect_status "unarchived over HTTP -> 204" 204
	# The int64 edges: a record acknowledged at either end is readable.
	ingest "$TOKEN" -d '{"data_source":"grid_load_eu","records":[{"timestamp":9223372036854775807,"name":"edge","value":5},{"timestamp":-9223372036854775808,"name":"edge","value":-5}]}'
	expect_status "records at INT64_MAX and INT64_MIN -> 204" 204
	local R="$BASE/v1/data_sources/grid_load_eu/records?name=edge"
	req -H "Authorization: Bearer $TOKEN" "$R"
	check "no end: both edges read back, INT64_MAX included" python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert [(r["timestamp"],r["value"]) for r in j["records"]]==[(-9223372036854775808,-5),(9223372036854775807,5)], j' "$R_BODY"
	req -H "Authorization: Bearer $TOKEN" "$R&start=9223372036854775807"
	check "start=INT64_MAX reads the record there" python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert [r["timestamp"] for r in j["records"]]==[9223372036854775807] and j["next_cursor"] is None, j' "$R_BODY"
	req -H "Authorization: Bearer $TOKEN" "$R&end=9223372036854775807"
	check "end stays exclusive: end=INT64_MAX stops before it" python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert [r["timestamp"] for r in j["records"]]==[-9223372036854775808], j' "$R_BODY"
	req -H "Authorization: Bearer $TOKEN" "$R&end=-9223372036854775808"
	check "end=INT64_MIN is an empty range" python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert j["records"]==[] and j["next_cursor"] is None, j' "$R_BODY"
	req -H "Authorization: Bearer $TOKEN" "$R&limit=1"
	check "a cursor can page to INT64_MAX" python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert [r["timestamp"] for r in j["records"]]==[-9223372036854775808] and j["next_cursor"]=="9223372036854775807", j' "$R_BODY"
	req -H "Authorization: Bearer $TOKEN" "$R&limit=1&cursor=9223372036854775807"
	check "the last page holds INT64_MAX" python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert [r["timestamp"] for r in j["records"]]==[9223372036854775807] and j["next_cursor"] is None, j' "$R_BODY"
	req "$BASE/v1/data_sources/$SRC/records?name=orders"
	expect_error "GET records without token -> 401" 401 "Missing access token."
	req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/no_such_source/records?name=x"
	expect_error "GET records of unknown source -> 404" 404 "Data source not found."
	req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/no_such_source/series"
	expect_error "GET series of unknown source -> 404" 404 "Data source not found."
	req "$BASE/metrics"
	expect_status "GET /metrics -> 200" 200
	if grep -q -e acme -e store_metrics -e "$TOKEN" "$R_BODY"; then
		fail "/metrics names no tenant" "found a tenant or source name"
	else
		pass "/metrics names no tenant"
	fi
}

section_basics
section_auth
section_json
section_schema
section_sources
section_encoding
section_mgmt
run_py "upsert" upsert "$TOKEN" "$SRC"
run_py "dupkey" dupkey "$TOKEN" "$SRC"
run_py "numbers" numbers "$TOKEN" "$SRC"
run_py "readapi" readapi "$TOKEN" "$SRC"
run_py "downsample" downsample "$TOKEN" "$SRC"
run_py "history" history "$TOKEN" "$SRC" "$TMP/model.json"
section_big
run_py "concurrent" concurrent "$TOKEN" "$SRC" 8 6 250
run_py "keepalive" keepalive "$TOKEN" "$SRC"
run_py "protocol" protocol "$TOKEN"
run_py "chunked" chunked "$TOKEN" "$SRC"
if out=$(curl -sv -o /dev/null -o /dev/null "$BASE/healthz" "$BASE/healthz" 2>&1) &&
	grep -q -i "Re-using existing connection" <<<"$out"; then
	pass "keep-alive: curl re-uses the connection for a second request"
else
	fail "keep-alive: curl re-uses the connection for a second request" "no 'Re-using existing connection' in curl -v"
fi

# ---- restart: data, sources, tokens survive -------------------------------------

write_config "max_body_bytes = 64K" "max_records_per_request = 1000"
restart_server

ingest "$TOKEN" -d "$ONE"
expect_status "after restart: token still valid" 204
ingest "$TOKEN_B" -d '{"data_source":"store_metrics","records":[]}'
expect_status "after restart: second account's token still valid" 204
ingest "$REVOKED" -d "$ONE"
expect_error "after restart: revoked token still 401" 401 "Invalid access token."
ingest "$TOKEN" -d '{"data_source":"frozen","records":[]}'
expect_error "after restart: archived source still 409" 409 "Data source is archived."
run_py "restart history" verify_model "$TOKEN" "$SRC" "$TMP/model.json" "after restart: history"
run_py "restart big" verify_seq "$TOKEN" "$SRC" big 20000 "after restart: 20,000 records"
run_py "restart iso" expect_series "$TOKEN_B" "$SRC" iso '{"10":222}' "after restart: beta's data"

# ---- phase B: limits ----------------------------------------------------------

python3 -c '
import json,sys
pad = "x" * (100 * 1024)
open(sys.argv[1],"w").write(json.dumps({"data_source":"store_metrics","records":[],"pad":pad}))
pad = "x" * (60 * 1024)
open(sys.argv[2],"w").write(json.dumps({"data_source":"store_metrics","records":[],"pad":pad}))
recs = lambda n: [{"timestamp":1800000000+i,"name":"lim","value":i} for i in range(n)]
open(sys.argv[3],"w").write(json.dumps({"data_source":"store_metrics","records":recs(1001)}))
open(sys.argv[4],"w").write(json.dumps({"data_source":"store_metrics","records":recs(1000)}))
open(sys.argv[5],"w").write(json.dumps({"data_source":"no_such_source","records":recs(1001)}))
r = recs(1001); r[500] = {"timestamp":1,"name":"lim","value":"x"}
open(sys.argv[6],"w").write(json.dumps({"data_source":"store_metrics","records":r}))
' "$TMP/100k.body" "$TMP/60k.body" "$TMP/1001.body" "$TMP/1000.body" "$TMP/1001nosrc.body" "$TMP/1001bad.body"

ingest "$TOKEN" -H 'Expect: 100-continue' --data-binary "@$TMP/100k.body"
expect_error "100 KB body with Expect: 100-continue -> 413" 413 "Request body too large."
ingest "$TOKEN" -H 'Expect:' --data-binary "@$TMP/100k.body"
expect_error "100 KB body without Expect -> 413" 413 "Request body too large."
ingest "$TOKEN" --data-binary "@$TMP/100k.body"
expect_error "100 KB body with curl's default headers -> 413" 413 "Request body too large."
req -X POST -H "Authorization: Bearer ts_unknown" --data-binary "@$TMP/100k.body" "$BASE/v1/data_sources/ingest"
expect_error "100 KB body + unknown token -> 401 (auth before size)" 401 "Invalid access token."
req -X POST --data-binary "@$TMP/100k.body" "$BASE/v1/data_sources/ingest"
expect_error "100 KB body + no token -> 401 (auth before size)" 401 "Missing access token."
ingest "$TOKEN" --data-binary "@$TMP/60k.body"
expect_status "60 KB body (under 64K, unknown field) -> 204" 204
python3 -c '
import gzip,json,sys
body = json.dumps({"data_source":"store_metrics","records":[],"pad":"0"*(1<<20)}).encode()
open(sys.argv[1],"wb").write(gzip.compress(body))' "$TMP/bomb.body"
ingest "$TOKEN" -H 'Content-Encoding: gzip' --data-binary "@$TMP/bomb.body"
expect_error "gzip body inflating to 1 MB (limit 64K) -> 413" 413 "Request body too large."
ingest "$TOKEN" --data-binary "@$TMP/1001.body"
expect_error "1001 records (limit 1000) -> 413" 413 "Too many records in one request."
ingest "$TOKEN" --data-binary "@$TMP/1001nosrc.body"
expect_error "1001 records to unknown source -> 413 (count before lookup)" 413 "Too many records in one request."
ingest "$TOKEN" --data-binary "@$TMP/1001bad.body"
expect_error "1001 records with a bad one -> 422 (schema before count)" 422 "records[500].value must be a number."
run_py "limit none stored" expect_series "$TOKEN" "$SRC" lim '{}' "rejected 1001-record request stored nothing"
ingest "$TOKEN" --data-binary "@$TMP/1000.body"
expect_status "1000 records (at the limit) -> 204" 204
req "$BASE/healthz"
expect_status "server healthy after the limit tests" 200

stop_server
finish
