#!/usr/bin/env bash
# test_admin_load.sh - 100 clients reading 10,000-record ranges in a loop: past the
# writer's read capacity they wait their turn and every read is answered 200, never
# 503 or 500; meanwhile temporisctl always gets in (slots reserved for it). Then, with
# the writer stopped (SIGSTOP), the reads beyond the workers' share of its connections
# wait 5 s at most and get 503 with Retry-After; after SIGCONT the others get 200, and
# clients that left while their read waited in line leave the server healthy.

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

require_binaries

readonly ACCOUNT=readco
readonly SOURCE=busy_reads
readonly READERS=100
readonly SECONDS_OF_LOAD=4
readonly WORKER_CONNS=64       # ADMIN_WORKER_CONNS: the workers' share of the writer's
readonly WAIT_MS=5000          # CALL_WAIT_MS: how long a read waits for one of them
readonly STALLED_READERS=100
readonly LEAVERS=20            # clients that leave while their read waits in line

write_config ""   # lib.sh sets workers = 2
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
            t0 = time.monotonic()
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
            took = time.monotonic() - t0
        except Exception as e:
            st, took = type(e).__name__, 0
        with lock:
            counts[str(st)] += 1
            slowest[0] = max(slowest[0], took)
slowest = [0.0]
threads = [threading.Thread(target=reader) for _ in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"counts": counts, "retry_after": retry_ok[0], "slowest_s": slowest[0]}))
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
if json_get "$TMP/readers.json" 'set(j["counts"]) == {"200"}' | grep -qx true; then
	pass "$READERS readers in a loop: every read answered 200 (past capacity they wait their turn)"
else
	fail "$READERS readers in a loop: every read answered 200" "$(cat "$TMP/readers.json")"
fi

# ---- the writer stopped: the share's connections hang, the rest wait, then 503 ----
WRITER=$(writer_pid)
[ -n "$WRITER" ] || die "no writer process found"
kill -STOP "$WRITER"
python3 - "$BASE" "$TOKEN" "$SOURCE" "$STALLED_READERS" "$LEAVERS" >"$TMP/stalled.json" <<'PY' &
import http.client, json, sys, threading, time, urllib.parse
base, tok, src, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
LEAVERS = int(sys.argv[5])
u = urllib.parse.urlsplit(base)
out, lock = [], threading.Lock()
def reader():
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        c.request("GET", "/v1/data_sources/%s/records?name=r&limit=10" % src,
                  headers={"Authorization": "Bearer " + tok})
        r = c.getresponse()
        r.read()
        res = (r.status, r.getheader("Retry-After"), time.monotonic() - t0)
    except Exception as e:
        res = (type(e).__name__, None, time.monotonic() - t0)
    with lock:
        out.append(res)
def leaver():
    # waits in line behind the share, then leaves: its call must never be made
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.request("GET", "/v1/data_sources/%s/records?name=r&limit=10" % src,
              headers={"Authorization": "Bearer " + tok})
    time.sleep(1)
    c.close()
threads = [threading.Thread(target=reader) for _ in range(n)]
for t in threads: t.start()
time.sleep(0.5)
leavers = [threading.Thread(target=leaver) for _ in range(LEAVERS)]
for t in leavers: t.start()
for t in threads + leavers: t.join()
print(json.dumps(out))
PY
stalled=$!
sleep $((WAIT_MS / 1000 + 2))
kill -CONT "$WRITER"
wait "$stalled" || die "the stalled readers failed"
echo "     stalled readers (status, Retry-After, seconds): $(head -c 600 "$TMP/stalled.json")"
if json_get "$TMP/stalled.json" "all(s == 503 and ra == '1' and t >= $WAIT_MS / 1000 - 0.5 and t < $WAIT_MS / 1000 + 1.5 for s, ra, t in j if s != 200)" | grep -qx true; then
	pass "writer stopped: reads beyond the share wait ${WAIT_MS} ms, then 503 with Retry-After"
else
	fail "writer stopped: reads beyond the share wait ${WAIT_MS} ms, then 503 with Retry-After" "$(cat "$TMP/stalled.json")"
fi
if json_get "$TMP/stalled.json" "0 < sum(s == 200 for s, _, _ in j) <= $WORKER_CONNS and sum(s == 503 for s, _, _ in j) >= $STALLED_READERS - $WORKER_CONNS" | grep -qx true; then
	pass "writer stopped: the reads that held a connection are answered 200 after SIGCONT"
else
	fail "writer stopped: the reads that held a connection are answered 200 after SIGCONT" "$(cat "$TMP/stalled.json")"
fi
if [ "$(writer_pid)" = "$WRITER" ]; then
	pass "$LEAVERS clients that left while waiting in line: the writer is the same process"
else
	fail "$LEAVERS clients that left while waiting in line: the writer is the same process" \
		"was $WRITER, now $(writer_pid)"
fi
req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/$SOURCE/records?name=r&limit=5"
expect_status "after the stall a read is answered 200" 200
stop_server
finish
