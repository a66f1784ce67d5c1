#!/usr/bin/env bash
# test_clients.sh - the seeds' client examples (curl, Python requests, Node fetch),
# copied verbatim from /work/shared/seeds/*.txt; at run time only the URL
# (https://api.temporis.co) and the token (ts_<token>) are replaced. A small
# preamble around each example records the HTTP status without touching its text.
# Each client has its own account, so each read-back proves that client's write.

# shellcheck source=lib.sh
# shellcheck disable=SC2016 # the examples' $ and ${} are for bash/node at run time
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

require_binaries
require_requests
require_node

write_config ""
start_server

# Every example writes these: the data-sources page (3) and the ingest page (4).
ORDERS='{"1718870400":42,"1718874000":51,"1718877600":47,"1718841600":42,"1718845200":51,"1718848800":47,"1718852400":63}'
EX="$TMP/examples"
mkdir -p "$EX"

# localize FILE TOKEN: point an example at this server and token (the only edits).
localize() {
	sed -i -e "s#https://api.temporis.co#$BASE#g" -e "s#ts_<token>#$2#g" "$1"
}

# run_example NAME TOKEN CMD...: the example's wrapper prints "STATUS <code>" lines
run_example() {
	local name=$1 tok=$2 out rc=0 statuses
	shift 2
	out=$(TEMPORIS_TOKEN=$tok "$@" 2>&1) || rc=$?
	statuses=$(grep '^STATUS ' <<<"$out" | awk '{print $2}' | tr '\n' ' ' || true)
	if [ "$rc" = 0 ] && [ "$statuses" = "204 " ]; then
		pass "$name -> 204"
	else
		fail "$name -> 204" "exit $rc, statuses '$statuses', output: $(tail -n 8 <<<"$out" | tr '\n' ' ')"
	fi
}

# ---- curl --------------------------------------------------------------------------

CURL_TOKEN=$(new_account curlco)
new_source curlco store_metrics
CURL_PRE='curl() { local code; code=$(command curl -s -o "$0.body" -w "%{http_code}" "$@") || return $?; echo "STATUS $code"; [ ! -s "$0.body" ] || { echo "unexpected body: $(cat "$0.body")"; return 1; }; }'

{
	echo "$CURL_PRE"
	cat <<'EXAMPLE'
curl -X POST https://api.temporis.co/v1/data_sources/ingest \
-H "Authorization: Bearer ts_<token>" \
-H "Content-Type: application/json" \
-d '{
"data_source": "store_metrics",
"records": [
{ "timestamp": 1718870400, "name": "orders", "value": 42 },
{ "timestamp": 1718874000, "name": "orders", "value": 51 },
{ "timestamp": 1718877600, "name": "orders", "value": 47 }
]
}'
EXAMPLE
} >"$EX/curl_data_sources.sh"
localize "$EX/curl_data_sources.sh" "$CURL_TOKEN"
run_example "curl: data-sources example" "$CURL_TOKEN" bash "$EX/curl_data_sources.sh"

{
	echo "$CURL_PRE"
	cat <<'EXAMPLE'
curl https://api.temporis.co/v1/data_sources/ingest \
-H "Authorization: Bearer $TEMPORIS_TOKEN" \
-H "Content-Type: application/json" \
-d '{
"data_source": "store_metrics",
"records": [
{ "timestamp": 1718841600, "name": "orders", "value": 42 },
{ "timestamp": 1718845200, "name": "orders", "value": 51 },
{ "timestamp": 1718848800, "name": "orders", "value": 47 },
{ "timestamp": 1718852400, "name": "orders", "value": 63 }
]
}'
EXAMPLE
} >"$EX/curl_ingest.sh"
localize "$EX/curl_ingest.sh" "$CURL_TOKEN"
run_example "curl: ingest-records example (TEMPORIS_TOKEN)" "$CURL_TOKEN" bash "$EX/curl_ingest.sh"

# the "many series in one source" body from the data-sources page, sent like the examples
{
	echo "$CURL_PRE"
	cat <<'EXAMPLE'
curl -X POST https://api.temporis.co/v1/data_sources/ingest \
-H "Authorization: Bearer ts_<token>" \
-H "Content-Type: application/json" \
-d '{
"data_source": "store_metrics",
"records": [
{ "timestamp": 1718870400, "name": "orders", "value": 42 },
{ "timestamp": 1718870400, "name": "revenue", "value": 1284.50 }
]
}'
EXAMPLE
} >"$EX/curl_many_series.sh"
localize "$EX/curl_many_series.sh" "$CURL_TOKEN"
run_example "curl: many-series body (orders + revenue)" "$CURL_TOKEN" bash "$EX/curl_many_series.sh"

run_py "curl readback" expect_series "$CURL_TOKEN" store_metrics orders "$ORDERS" \
	"curl: orders read back"
run_py "curl revenue" expect_series "$CURL_TOKEN" store_metrics revenue '{"1718870400":1284.5}' \
	"curl: revenue 1284.50 read back as a double"

# ---- Python requests ----------------------------------------------------------------

PY_TOKEN=$(new_account pyco)
new_source pyco store_metrics
PY_PRE='import requests as _rq
_orig_send = _rq.sessions.Session.send
def _send(self, *a, **k):
    r = _orig_send(self, *a, **k)
    print("STATUS %d" % r.status_code, flush=True)
    assert r.content == b"", "unexpected body %r" % r.content[:200]
    return r
_rq.sessions.Session.send = _send
# ---- example from the seed, verbatim below ----'

{
	echo "$PY_PRE"
	cat <<'EXAMPLE'
import requests
requests.post(
"https://api.temporis.co/v1/data_sources/ingest",
headers={"Authorization": "Bearer ts_<token>"},
json={
"data_source": "store_metrics",
"records": [
{"timestamp": 1718870400, "name": "orders", "value": 42},
{"timestamp": 1718874000, "name": "orders", "value": 51},
{"timestamp": 1718877600, "name": "orders", "value": 47},
],
},
) # -> 204 No Content
EXAMPLE
} >"$EX/data_sources.py"
localize "$EX/data_sources.py" "$PY_TOKEN"
run_example "python requests: data-sources example" "$PY_TOKEN" python3 "$EX/data_sources.py"

{
	echo "$PY_PRE"
	cat <<'EXAMPLE'
import os, requests
resp = requests.post(
"https://api.temporis.co/v1/data_sources/ingest",
headers={"Authorization": f"Bearer {os.environ['TEMPORIS_TOKEN']}"},
json={
"data_source": "store_metrics",
"records": [
{"timestamp": 1718841600, "name": "orders", "value": 42},
{"timestamp": 1718845200, "name": "orders", "value": 51},
{"timestamp": 1718848800, "name": "orders", "value": 47},
{"timestamp": 1718852400, "name": "orders", "value": 63},
],
},
)
resp.raise_for_status() # 204 No Content on success
EXAMPLE
	echo 'assert resp.status_code == 204, resp.status_code'
} >"$EX/ingest_records.py"
localize "$EX/ingest_records.py" "$PY_TOKEN"
run_example "python requests: ingest-records example (TEMPORIS_TOKEN, raise_for_status)" \
	"$PY_TOKEN" python3 "$EX/ingest_records.py"

run_py "python readback" expect_series "$PY_TOKEN" store_metrics orders "$ORDERS" \
	"python requests: orders read back"

# ---- Node fetch -------------------------------------------------------------------

NODE_TOKEN=$(new_account nodeco)
new_source nodeco store_metrics
NODE_PRE='const _origFetch = globalThis.fetch;
globalThis.fetch = async (...args) => {
  const r = await _origFetch(...args);
  console.log(`STATUS ${r.status}`);
  const text = await r.clone().text();
  if (text !== "") throw new Error(`unexpected body ${text.slice(0, 200)}`);
  return r;
};
// ---- example from the seed, verbatim below ----'

{
	echo "$NODE_PRE"
	cat <<'EXAMPLE'
await fetch("https://api.temporis.co/v1/data_sources/ingest", {
method: "POST",
headers: {
"Authorization": "Bearer ts_<token>",
"Content-Type": "application/json",
},
body: JSON.stringify({
data_source: "store_metrics",
records: [
{ timestamp: 1718870400, name: "orders", value: 42 },
{ timestamp: 1718874000, name: "orders", value: 51 },
{ timestamp: 1718877600, name: "orders", value: 47 },
],
}),
}); // -> 204 No Content
EXAMPLE
} >"$EX/data_sources.mjs"
localize "$EX/data_sources.mjs" "$NODE_TOKEN"
run_example "node fetch: data-sources example" "$NODE_TOKEN" node "$EX/data_sources.mjs"

{
	echo "$NODE_PRE"
	cat <<'EXAMPLE'
const resp = await fetch("https://api.temporis.co/v1/data_sources/ingest", {
method: "POST",
headers: {
"Authorization": `Bearer ${process.env.TEMPORIS_TOKEN}`,
"Content-Type": "application/json",
},
body: JSON.stringify({
data_source: "store_metrics",
records: [
{ timestamp: 1718841600, name: "orders", value: 42 },
{ timestamp: 1718845200, name: "orders", value: 51 },
{ timestamp: 1718848800, name: "orders", value: 47 },
{ timestamp: 1718852400, name: "orders", value: 63 },
],
}),
});
EXAMPLE
	echo 'if (resp.status !== 204) { console.error(`status ${resp.status}`); process.exit(1); }'
} >"$EX/ingest_records.mjs"
localize "$EX/ingest_records.mjs" "$NODE_TOKEN"
run_example "node fetch: ingest-records example (TEMPORIS_TOKEN)" "$NODE_TOKEN" node "$EX/ingest_records.mjs"

run_py "node readback" expect_series "$NODE_TOKEN" store_metrics orders "$ORDERS" \
	"node fetch: orders read back"

# a client error reaches each client as the documented JSON
cat >"$EX/error.py" <<'PY'
import sys, requests
r = requests.post(sys.argv[1] + "/v1/data_sources/ingest",
                  headers={"Authorization": "Bearer " + sys.argv[2]},
                  json={"data_source": "nope", "records": []})
assert r.status_code == 404 and r.json() == {"detail": "Data source not found."}, (r.status_code, r.text)
try:
    r.raise_for_status()
except requests.HTTPError:
    pass
else:
    raise AssertionError("raise_for_status did not raise on 404")
PY
if out=$(python3 "$EX/error.py" "$BASE" "$PY_TOKEN" 2>&1); then
	pass "python requests: 404 detail readable via resp.json()"
else
	fail "python requests: 404 detail readable via resp.json()" "$out"
fi
cat >"$EX/error.mjs" <<'JS'
const r = await fetch(`${process.env.BASE}/v1/data_sources/ingest`, {
  method: "POST",
  headers: { "Authorization": "Bearer ts_wrong", "Content-Type": "application/json" },
  body: JSON.stringify({ data_source: "store_metrics", records: [] }),
});
const j = await r.json();
if (r.status !== 401 || j.detail !== "Invalid access token.") {
  console.error(`got ${r.status} ${JSON.stringify(j)}`);
  process.exit(1);
}
JS
if out=$(BASE=$BASE node "$EX/error.mjs" 2>&1); then
	pass "node fetch: 401 detail readable via r.json()"
else
	fail "node fetch: 401 detail readable via r.json()" "$out"
fi

stop_server
finish
