#!/usr/bin/env bash
# test_admin_load.sh - 100 clients reading 10,000-record ranges in a loop: reads are
# answered 200 or, past the writer's read capacity, 503 with Retry-After, never
# 500; meanwhile temporisctl always gets in (slots reserved for it).

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

require_binaries

readonly ACCOUNT=readco
readonly SOURCE=busy_reads
readonly READERS=100
readonly SECONDS_OF_LOAD=4

write_config ""
start_server
TOKEN=$(new_account "$ACCOUNT")
new_source "$ACCOUNT" "$SOURCE"
python3 - "$SOURCE" >"$TMP/body.json" <<'PY'
import json, sys
print(json.dumps({"data_source": sys.argv[1], "records": [
    {"timestamp": t, "name": "r", "value": t} for t in range(10000)]}))
PY
ingest "$TOKEN" --data-binary @"$TMP/body.json"
expect_status "10,000 records ingested" 204

python3 - "$BASE" "$TOKEN" "$SOURCE" "$READERS" "$SECONDS_OF_LOAD" >"$TMP/readers.json" <<'PY' &
import collections, http.client, json, sys, threading, time, urllib.parse
base, tok, src, n, secs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
u = urllib.parse.urlsplit(base)
stop = time.monotonic() + secs
counts, lock, retry_ok = collections.Counter(), threading.Lock(), [True]
def reader():
    while time.monotonic() < stop:
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            c.request("GET", "/v1/data_sources/%s/records?name=r&limit=10000" % src,
                      headers={"Authorization": "Bearer " + tok})
            r = c.getresponse()
            body = r.read()
            st = r.status
            if st == 200 and len(json.loads(body)["records"]) != 10000:
                st = "short"
            if st == 503 and not r.getheader("Retry-After"):
                retry_ok[0] = False
            c.close()
        except Exception as e:
            st = type(e).__name__
        with lock:
            counts[str(st)] += 1
threads = [threading.Thread(target=reader) for _ in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"counts": counts, "retry_after": retry_ok[0]}))
PY
readers=$!
sleep 1
ok=0
for _ in $(seq 1 10); do
	if ctl status >/dev/null 2>"$TMP/ctl.err"; then ok=$((ok + 1)); else cat "$TMP/ctl.err"; fi
	sleep 0.2
done
wait "$readers" || die "the readers failed"
echo "     readers: $(cat "$TMP/readers.json")"
if [ "$ok" = 10 ]; then pass "temporisctl status succeeds 10 of 10 times under read load"; else
	fail "temporisctl status succeeds 10 of 10 times under read load" "$ok of 10"; fi
if json_get "$TMP/readers.json" 'set(j["counts"]) <= {"200", "503"} and j["counts"].get("200", 0) > 0' | grep -qx true; then
	pass "reads under load answer 200 or 503, never 500"
else
	fail "reads under load answer 200 or 503, never 500" "$(cat "$TMP/readers.json")"
fi
if json_get "$TMP/readers.json" 'j["retry_after"]' | grep -qx true; then pass "every 503 carries Retry-After"; else
	fail "every 503 carries Retry-After" "$(cat "$TMP/readers.json")"; fi
stop_server
finish
