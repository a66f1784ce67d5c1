#!/usr/bin/env bash
# Processes: titles, privilege drop, refusal to serve as root, live
# reconfiguration with SIGHUP (workers added and retired without a refused
# connection; a broken config keeps the old one), respawn of a killed worker,
# and the SIGINT drain.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_binaries
require_requests

titles() { # the server's process titles, sorted
	local p
	for p in $SERVER_PID $(collect_children "$SERVER_PID"); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | sed 's/ *$//'
		echo
	done | grep . | sort
}

worker_pids() {
	local p
	for p in $(collect_children "$SERVER_PID"); do
		if grep -q '^temporisd: worker' "/proc/$p/cmdline" 2>/dev/null; then echo "$p"; fi
	done
	return 0
}

# wait_for NAME SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
	local name=$1 limit=$2 start=$SECONDS
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		if [ $((SECONDS - start)) -ge "$limit" ]; then
			fail "$name" "not true after ${limit}s"
			return 1
		fi
		sleep 0.05
	done
	pass "$name"
}

count_workers() { [ "$(worker_pids | wc -l)" -eq "$1" ]; }

write_config
sed -i 's/^log_level = .*/log_level = info/' "$CFG"
start_server
TOKEN=$(new_account tenantzq)
new_source tenantzq secretsrc

want=$(printf '%s\n' "temporisd: master" "temporisd: worker 1" "temporisd: worker 2" "temporisd: writer" | sort)
got=$(titles)
if [ "$got" = "$want" ]; then pass "process titles name the roles"; else fail "process titles name the roles" "got: $(echo "$got" | tr '\n' '|')"; fi

if [ -n "$RUN_AS" ]; then
	uid=$(id -u "$RUN_AS")
	bad=""
	for p in $SERVER_PID $(collect_children "$SERVER_PID"); do
		[ "$(awk '/^Uid:/ {print $2 $3}' "/proc/$p/status")" = "$uid$uid" ] || bad="$bad $p"
	done
	if [ -z "$bad" ]; then pass "every process runs as $RUN_AS, not root"; else fail "every process runs as $RUN_AS" "root or other uid:$bad"; fi
	perm=$(stat -c '%U %a' "$TMP/admin.sock")
	if [ "$perm" = "$RUN_AS 600" ]; then pass "admin socket owned by $RUN_AS, mode 0600"; else fail "admin socket owner/mode" "$perm"; fi

	# Without `user =`, root is refused.
	sed '/^user =/d; s/^listen = .*/listen = 127.0.0.1:1/' "$CFG" >"$TMP/root.conf"
	rc=0
	"$TEMPORISD" --config "$TMP/root.conf" 2>"$TMP/root.log" || rc=$?
	if [ "$rc" -eq 1 ] && grep -q "refusing to run as root" "$TMP/root.log"; then
		pass "started as root without user =: refuses (exit 1)"
	else
		fail "root without user = is refused" "exit $rc: $(tail -n 2 "$TMP/root.log")"
	fi
fi

# A killed worker is replaced within 1 s.
victim=$(worker_pids | sed -n 1p)
kill -KILL "$victim"
replaced() { [ "$(worker_pids | wc -l)" -eq 2 ] && ! worker_pids | grep -qx "$victim"; }
wait_for "killed worker replaced within 1 s" 1 replaced

# SIGHUP: workers 2 -> 3 -> 1 under a load of fresh connections; none refused.
load_out="$TMP/hup-load.txt"
python3 - "$BASE" "$TOKEN" 6 >"$load_out" 2>&1 <<'PY' &
import sys, time, requests
base, token, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
ok = bad = 0
errors = []
t0 = time.time(); ts = 0
while time.time() - t0 < seconds:
    ts += 1
    body = {"data_source": "secretsrc", "records": [{"timestamp": ts, "name": "hup", "value": ts}]}
    try:
        r = requests.post(base + "/v1/data_sources/ingest", json=body,
                          headers={"Authorization": "Bearer " + token, "Connection": "close"}, timeout=10)
        if r.status_code == 204: ok += 1
        else: bad += 1; errors.append(str(r.status_code))
    except Exception as e:
        bad += 1; errors.append(type(e).__name__)
print(ok, bad, " ".join(errors[:5]))
PY
load_pid=$!
sleep 1
sed -i 's/^workers = .*/workers = 3/' "$CFG"
kill -HUP "$SERVER_PID"
wait_for "SIGHUP workers = 3 starts a third worker" 3 count_workers 3
sleep 1
sed -i 's/^workers = .*/workers = 1/' "$CFG"
kill -HUP "$SERVER_PID"
wait_for "SIGHUP workers = 1 retires two workers" 5 count_workers 1
wait "$load_pid" || true
read -r ok bad errs <"$load_out" || true
if [ "${bad:-1}" = 0 ] && [ "${ok:-0}" -gt 0 ]; then
	pass "no refused or failed request during the changes ($ok requests)"
else
	fail "no refused request during SIGHUP" "ok=$ok failed=$bad: $errs"
fi

# A broken config on reload is logged and the running one stays.
cp "$CFG" "$TMP/good.conf"
echo "bogus_key = 1" >>"$CFG"
kill -HUP "$SERVER_PID"
sleep 0.5
if grep -q "reload failed, keeping the running configuration: .*unknown key 'bogus_key'" "$TMP/server.log"; then
	pass "bad config on SIGHUP is logged with FILE:LINE"
else
	fail "bad config on SIGHUP is logged" "$(tail -n 3 "$TMP/server.log")"
fi
ingest "$TOKEN" -d '{"data_source":"secretsrc","records":[{"timestamp":1,"name":"after","value":7}]}'
expect_status "server keeps serving after a failed reload" 204
count_workers 1 && pass "worker count unchanged by the failed reload" || fail "worker count unchanged" "$(worker_pids | wc -l) workers"
cp "$TMP/good.conf" "$CFG"

# SIGINT (Ctrl-C) drains: exit 0, and what was acknowledged is there after a restart.
kill -INT "$SERVER_PID"
rc=0
for _ in $(seq 1 150); do server_alive || break; sleep 0.1; done
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
if [ "$rc" -eq 0 ]; then pass "SIGINT drains and exits 0"; else fail "SIGINT drains and exits 0" "exit $rc"; fi
start_server
req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/secretsrc/records?name=after"
if [ "$(json_get "$R_BODY" 'j["records"][0]["value"]' 2>/dev/null)" = 7 ]; then
	pass "acknowledged record present after the SIGINT restart"
else
	fail "acknowledged record present after restart" "$(body_text)"
fi
stop_server
# Logs at info level never name a tenant or a source, and never print a token.
if grep -q -e tenantzq -e secretsrc -e "$TOKEN" "$TMP/server.log"; then
	fail "no tenant, source or token in the info-level log" "$(grep -m 3 -e tenantzq -e secretsrc -e ts_ "$TMP/server.log")"
else
	pass "no tenant, source or token in the info-level log ($(wc -l <"$TMP/server.log") lines)"
fi
finish
