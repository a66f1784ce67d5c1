#!/usr/bin/env bash
# test_ctl.sh - temporisctl against a real temporisd (SPEC section 5, api.md):
# every command in human and --json form with the exact JSON key sets, exit codes
# 0/1/2, the admin socket's mode, catalog changes in force for the very next HTTP
# request, and the temporisd command line (--version, --help, bad config).

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

require_binaries

OUT="$TMP/ctl.out"
ERR="$TMP/ctl.err"
CTL_RC=0

# run_ctl NAME WANT_RC ARGS...: run temporisctl (with --socket), check the exit code.
run_ctl() {
	local name=$1 want=$2
	shift 2
	CTL_RC=0
	ctl "$@" >"$OUT" 2>"$ERR" || CTL_RC=$?
	if [ "$CTL_RC" = "$want" ]; then
		pass "$name: exit $want"
	else
		fail "$name: exit $want" "got $CTL_RC (stdout: $(head -c 200 "$OUT" | tr '\n' ' ') stderr: $(head -c 200 "$ERR" | tr '\n' ' '))"
	fi
}

# shape NAME PYCODE: PYCODE asserts on j (stdout parsed as one JSON object).
shape() {
	local name=$1 code=$2 out
	if out=$(python3 -c '
import json, sys, time
raw = open(sys.argv[1]).read()
try:
    j = json.loads(raw)
except ValueError:
    print("stdout is not one JSON object: %r" % raw[:300]); sys.exit(1)
now = int(time.time())
def keys(o, want):
    assert isinstance(o, dict) and set(o) == set(want), "keys %r, expected %r" % (sorted(o) if isinstance(o, dict) else o, sorted(want))
def recent(t):
    assert isinstance(t, int) and not isinstance(t, bool) and now - 600 <= t <= now + 5, "created_at %r is not Unix seconds of now" % (t,)
try:
    exec(sys.argv[2])
except AssertionError as e:
    print("%s (stdout %r)" % (e, raw[:300])); sys.exit(1)
' "$OUT" "$code" 2>&1); then
		pass "$name"
	else
		fail "$name" "$out"
	fi
}

# stdout_has NAME TEXT...: human output mentions each TEXT.
stdout_has() {
	local name=$1 t missing=""
	shift
	for t in "$@"; do grep -qF -- "$t" "$OUT" || missing="$missing '$t'"; done
	if [ -z "$missing" ]; then pass "$name"; else fail "$name" "stdout lacks$missing: $(head -c 300 "$OUT" | tr '\n' ' ')"; fi
}

stderr_has() {
	local name=$1 t missing=""
	shift
	for t in "$@"; do grep -qF -- "$t" "$ERR" || missing="$missing '$t'"; done
	if [ -z "$missing" ]; then pass "$name"; else fail "$name" "stderr lacks$missing: $(head -c 300 "$ERR" | tr '\n' ' ')"; fi
}

stderr_nonempty() {
	if [ -s "$ERR" ]; then pass "$1"; else fail "$1" "expected a message on stderr, got none"; fi
}

json_error() {
	shape "$1" 'keys(j, ["error"]); assert isinstance(j["error"], str) and j["error"], "empty error"'
}

# ---- temporisd command line (no server needed) ---------------------------------

rc=0
"$TEMPORISD" --version >"$OUT" 2>&1 || rc=$?
if [ "$rc" = 0 ] && [ -s "$OUT" ]; then pass "temporisd --version exits 0 with output"; else fail "temporisd --version exits 0 with output" "rc $rc"; fi
rc=0
"$TEMPORISD" --help >"$OUT" 2>&1 || rc=$?
if [ "$rc" = 0 ] && grep -q -- --config "$OUT"; then pass "temporisd --help exits 0 and mentions --config"; else fail "temporisd --help exits 0 and mentions --config" "rc $rc: $(head -c 200 "$OUT")"; fi
printf 'listen = 127.0.0.1:1\n# comment\nno_such_key = 1\n' >"$TMP/bad.conf"
rc=0
timeout 10 "$TEMPORISD" --config "$TMP/bad.conf" >"$OUT" 2>&1 || rc=$?
if [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -qF "$TMP/bad.conf:3:" "$OUT"; then
	pass "temporisd: unknown config key stops start-up with FILE:LINE"
else
	fail "temporisd: unknown config key stops start-up with FILE:LINE" "rc $rc, output: $(head -c 300 "$OUT" | tr '\n' ' ')"
fi
printf 'workers = lots\n' >"$TMP/bad2.conf"
rc=0
timeout 10 "$TEMPORISD" --config "$TMP/bad2.conf" >"$OUT" 2>&1 || rc=$?
if [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -qF "$TMP/bad2.conf:1:" "$OUT"; then
	pass "temporisd: bad value stops start-up with FILE:LINE"
else
	fail "temporisd: bad value stops start-up with FILE:LINE" "rc $rc, output: $(head -c 300 "$OUT" | tr '\n' ' ')"
fi

# ---- server not running ------------------------------------------------------------

CTL_RC=0
"$TEMPORISCTL" --socket "$TMP/nothing.sock" status >"$OUT" 2>"$ERR" || CTL_RC=$?
if [ "$CTL_RC" = 1 ]; then pass "server not running: exit 1"; else fail "server not running: exit 1" "got $CTL_RC"; fi
stderr_nonempty "server not running: message on stderr"
CTL_RC=0
"$TEMPORISCTL" --socket "$TMP/nothing.sock" --json status >"$OUT" 2>"$ERR" || CTL_RC=$?
if [ "$CTL_RC" = 1 ]; then pass "server not running --json: exit 1"; else fail "server not running --json: exit 1" "got $CTL_RC"; fi
json_error "server not running --json: {\"error\"} on stdout"

# ---- with a server -----------------------------------------------------------------

write_config ""
start_server

mode=$(stat -c %a "$TMP/admin.sock")
if [ "$mode" = 600 ]; then pass "admin socket mode is 0600"; else fail "admin socket mode is 0600" "got $mode"; fi

# usage errors: exit 2
run_ctl "no command" 2
run_ctl "unknown command" 2 frobnicate
stderr_has "unknown command is named before the usage" "temporisctl: unknown command 'frobnicate'"
run_ctl "unknown subcommand" 2 account frobnicate
stderr_has "unknown subcommand is named" "temporisctl: unknown command 'account frobnicate'"
run_ctl "unknown option" 2 --no-such-option status
# a server that cannot be reached: where the path came from, and how to point elsewhere
CTL_RC=0
"$TEMPORISCTL" --socket "$TMP/nowhere.sock" status >"$OUT" 2>"$ERR" || CTL_RC=$?
if [ "$CTL_RC" = 1 ]; then pass "unreachable server: exit 1"; else fail "unreachable server: exit 1" "got $CTL_RC"; fi
stderr_has "unreachable server: the message says where the path came from and what to do" \
	"cannot reach temporisd at $TMP/nowhere.sock (given by --socket)" "--config FILE"
run_ctl "account create without NAME" 2 account create
run_ctl "token create without ACCOUNT" 2 token create
run_ctl "token list without ACCOUNT" 2 token list
run_ctl "token revoke without TOKEN_ID" 2 token revoke acme
run_ctl "source create without NAME" 2 source create acme
run_ctl "source archive without NAME" 2 source archive acme
run_ctl "source unarchive without NAME" 2 source unarchive acme
run_ctl "account create with an extra argument" 2 account create acme extra
run_ctl "token create --label without TEXT" 2 token create acme --label

# account create
run_ctl "account create (human)" 0 account create acme
stdout_has "account create (human) shows the account and a token" acme ts_
HUMAN_TOKEN=$(grep -o 'ts_[A-Za-z0-9_-]*' "$OUT" | head -n 1 || true)
run_ctl "account create --json" 0 --json account create beta
shape "account create --json shape" 'keys(j, ["account","token","token_id"]); assert j["account"]=="beta" and j["token"].startswith("ts_") and isinstance(j["token_id"], str) and j["token_id"], j'
TOKEN_B=$(json_get "$OUT" 'j["token"]')
run_ctl "account create duplicate" 1 account create acme
stderr_nonempty "account create duplicate: message on stderr"
run_ctl "account create duplicate --json" 1 --json account create acme
json_error "account create duplicate --json: {\"error\"}"
run_ctl "account create invalid name --json" 1 --json account create Bad-Name
shape "account create invalid name: the rules" 'assert j == {"error": "Invalid name: use 1-48 characters, start with a lowercase letter, then lowercase letters, digits or underscores."}, j'
run_ctl "account create 2024data" 1 account create 2024data

# account list
run_ctl "account list (human)" 0 account list
stdout_has "account list (human) shows both accounts" acme beta
run_ctl "account list --json" 0 --json account list
shape "account list --json shape" 'keys(j, ["accounts"])
for a in j["accounts"]:
    keys(a, ["name","created_at"]); recent(a["created_at"])
assert sorted(a["name"] for a in j["accounts"]) == ["acme","beta"], j'

# token create / list / revoke
run_ctl "token create --label (human)" 0 token create acme --label ci
stdout_has "token create (human) shows a token" ts_
T2=$(grep -o 'ts_[A-Za-z0-9_-]*' "$OUT" | head -n 1 || true)
run_ctl "token create --json" 0 --json token create acme --label deploy
shape "token create --json shape" 'keys(j, ["token","token_id"]); assert j["token"].startswith("ts_") and j["token_id"], j'
T3=$(json_get "$OUT" 'j["token"]')
T3_ID=$(json_get "$OUT" 'j["token_id"]')
run_ctl "token create --json without label" 0 --json token create acme
T4=$(json_get "$OUT" 'j["token"]')
T4_ID=$(json_get "$OUT" 'j["token_id"]')
run_ctl "token create unknown account" 1 token create nosuch
stderr_nonempty "token create unknown account: message on stderr"
run_ctl "token create unknown account --json" 1 --json token create nosuch
json_error "token create unknown account --json: {\"error\"} on stdout"

run_ctl "token list (human)" 0 token list acme
stdout_has "token list (human) shows labels and ids" ci deploy "$T3_ID"
no_secrets() {
	local name=$1 t leak=""
	for t in "$HUMAN_TOKEN" "$T2" "$T3" "$T4" "$TOKEN_B"; do
		if [ -n "$t" ] && grep -qF -- "${t#ts_}" "$OUT"; then leak="$leak ${t:0:8}..."; fi
	done
	if [ -z "$leak" ]; then pass "$name"; else fail "$name" "found$leak"; fi
}
no_secrets "token list (human) never shows a secret"
run_ctl "token list --json" 0 --json token list acme
shape "token list --json shape" 'keys(j, ["tokens"])
assert len(j["tokens"]) == 4, "expected 4 tokens, got %d" % len(j["tokens"])
for t in j["tokens"]:
    keys(t, ["id","label","created_at"]); recent(t["created_at"]); assert isinstance(t["label"], str)
assert {"ci","deploy"} <= {t["label"] for t in j["tokens"]}, j'
no_secrets "token list --json never shows a secret"
run_ctl "token list unknown account" 1 token list nosuch
run_ctl "token list beta --json" 0 --json token list beta
shape "token list is per account" 'assert len(j["tokens"]) == 1, j'

# the catalog is in force for the very next request
run_ctl "source create (human)" 0 source create acme store_metrics
stdout_has "source create (human) shows the source" store_metrics
req -X POST -H "Authorization: Bearer $T3" \
	-d '{"data_source":"store_metrics","records":[{"timestamp":1718841600,"name":"orders","value":42}]}' \
	"$BASE/v1/data_sources/ingest"
expect_status "source created by ctl takes the very next ingest (204)" 204
for t in "$HUMAN_TOKEN" "$T2" "$T4"; do
	req -X POST -H "Authorization: Bearer $t" -d '{"data_source":"store_metrics","records":[]}' \
		"$BASE/v1/data_sources/ingest"
	expect_status "each created token works (${t:0:6}...)" 204
done
run_ctl "source create --json" 0 --json source create acme grid_load_eu
shape "source create --json shape" 'keys(j, ["account","name","archived","created_at","retention_s"]); recent(j["created_at"])
assert j["account"]=="acme" and j["name"]=="grid_load_eu" and j["archived"] is False, j'
req -X POST -H "Authorization: Bearer $T3" -d '{"data_source":"grid_load_eu","records":[]}' "$BASE/v1/data_sources/ingest"
expect_status "second new source: very next ingest 204" 204
run_ctl "source create duplicate" 1 source create acme store_metrics
run_ctl "source create duplicate --json" 1 --json source create acme store_metrics
json_error "source create duplicate --json: {\"error\"}"
run_ctl "source create invalid name" 1 --json source create acme Store-Metrics
shape "source create invalid name: the rules" 'assert j == {"error": "Invalid name: use 1-48 characters, start with a lowercase letter, then lowercase letters, digits or underscores."}, j'
run_ctl "source create 49 characters" 1 source create acme "a$(printf 'b%.0s' $(seq 48))"
run_ctl "source create 48 characters" 0 source create acme "a$(printf 'b%.0s' $(seq 47))"
run_ctl "source create for unknown account" 1 source create nosuch src
run_ctl "source create for beta" 0 --json source create beta beta_src

run_ctl "source archive (human)" 0 source archive acme store_metrics
req -X POST -H "Authorization: Bearer $T3" -d '{"data_source":"store_metrics","records":[]}' "$BASE/v1/data_sources/ingest"
expect_error "archive: very next ingest 409" 409 "Data source is archived."
run_ctl "source unarchive (human)" 0 source unarchive acme store_metrics
req -X POST -H "Authorization: Bearer $T3" -d '{"data_source":"store_metrics","records":[]}' "$BASE/v1/data_sources/ingest"
expect_status "unarchive: very next ingest 204" 204
run_ctl "source archive --json" 0 --json source archive acme grid_load_eu
shape "source archive --json shape" 'keys(j, ["account","name","archived","created_at","retention_s"]); assert j["archived"] is True and j["name"]=="grid_load_eu", j'
req -X POST -H "Authorization: Bearer $T3" -d '{"data_source":"grid_load_eu","records":[]}' "$BASE/v1/data_sources/ingest"
expect_error "archive --json: very next ingest 409" 409 "Data source is archived."
run_ctl "source archive again (idempotent)" 0 --json source archive acme grid_load_eu
run_ctl "source unarchive --json" 0 --json source unarchive acme grid_load_eu
shape "source unarchive --json shape" 'keys(j, ["account","name","archived","created_at","retention_s"]); assert j["archived"] is False, j'
req -X POST -H "Authorization: Bearer $T3" -d '{"data_source":"grid_load_eu","records":[]}' "$BASE/v1/data_sources/ingest"
expect_status "unarchive --json: very next ingest 204" 204
run_ctl "source archive unknown source" 1 source archive acme no_such_source
run_ctl "source archive unknown source --json" 1 --json source archive acme no_such_source
json_error "source archive unknown source --json: {\"error\"}"
run_ctl "source archive another account's source" 1 source archive acme beta_src

run_ctl "source list (human)" 0 source list
stdout_has "source list (human) shows all sources" store_metrics grid_load_eu beta_src
run_ctl "source list --json" 0 --json source list
shape "source list --json shape" 'keys(j, ["data_sources"])
for s in j["data_sources"]:
    keys(s, ["account","name","archived","created_at","retention_s","sst_bytes"]); recent(s["created_at"]); assert isinstance(s["archived"], bool)
    assert isinstance(s["sst_bytes"], int) and s["sst_bytes"] >= 0, s
assert {("acme","store_metrics"),("acme","grid_load_eu"),("beta","beta_src")} <= {(s["account"], s["name"]) for s in j["data_sources"]}, j'
run_ctl "source list ACCOUNT --json" 0 --json source list beta
shape "source list ACCOUNT filters by account" 'assert [(s["account"], s["name"]) for s in j["data_sources"]] == [("beta","beta_src")], j'
run_ctl "source list ACCOUNT (human)" 0 source list acme
if grep -q beta_src "$OUT"; then fail "source list acme (human) hides beta's sources" "beta_src shown"; else pass "source list acme (human) hides beta's sources"; fi
run_ctl "source list unknown account" 1 source list nosuch

run_ctl "token revoke --json" 0 --json token revoke acme "$T3_ID"
shape "token revoke --json shape" "keys(j, ['account','token_id','revoked']); assert j == {'account':'acme','token_id':'$T3_ID','revoked':True}, j"
req -X POST -H "Authorization: Bearer $T3" -d '{"data_source":"store_metrics","records":[]}' "$BASE/v1/data_sources/ingest"
expect_error "token revoke: very next request 401" 401 "Invalid access token."
run_ctl "token revoke (human)" 0 token revoke acme "$T4_ID"
req -X POST -H "Authorization: Bearer $T4" -d '{"data_source":"store_metrics","records":[]}' "$BASE/v1/data_sources/ingest"
expect_error "token revoke (human): very next request 401" 401 "Invalid access token."
run_ctl "token revoke unknown id" 1 --json token revoke acme no_such_token_id
json_error "token revoke unknown id --json: {\"error\"}"
run_ctl "token revoke with the wrong account" 1 token revoke beta "$(ctl --json token list acme | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"][0]["id"])')"
req -X POST -H "Authorization: Bearer $T2" -d '{"data_source":"store_metrics","records":[]}' "$BASE/v1/data_sources/ingest"
expect_status "other tokens of the account keep working" 204

# status
run_ctl "status (human)" 0 status
if grep -Eiq 'workers[^0-9]*2' "$OUT"; then pass "status (human) shows workers 2"; else fail "status (human) shows workers 2" "$(head -c 300 "$OUT" | tr '\n' ' ')"; fi
if grep -Eq '^records committed +[0-9]+ since start$' "$OUT" && grep -Eq '^disk free +[0-9.]+ [KMGT]?i?B \(ok\)$' "$OUT" &&
	grep -Eq '^store +[0-9.]+ [KMGT]?i?B in SST files, [0-9.]+ [KMGT]?i?B in memtables, [0-9]+ records not sealed yet$' "$OUT"; then
	pass "status (human) says since when records count, the store's size and free disk"
else
	fail "status (human) says since when records count, the store's size and free disk" "$(head -c 600 "$OUT" | tr '\n' '|')"
fi
run_ctl "status --json" 0 --json status
shape "status --json shape" 'keys(j, ["workers","writer_pid","ring_fill","records_committed","uptime_s",
    "store_sst_bytes","store_memtable_bytes","head_records","disk_free_bytes","disk_state"])
assert j["disk_state"] == "ok" and isinstance(j["disk_free_bytes"], int) and j["disk_free_bytes"] > 0, j
assert j["head_records"] >= 1 and j["store_memtable_bytes"] > 0 and j["store_sst_bytes"] >= 0, j
assert j["workers"] == 2, "workers %r" % j["workers"]
assert isinstance(j["writer_pid"], int) and j["writer_pid"] > 1, j
import os; assert os.path.exists("/proc/%d" % j["writer_pid"]), "writer_pid %d not running" % j["writer_pid"]
assert isinstance(j["ring_fill"], (int, float)) and 0.0 <= j["ring_fill"] <= 1.0, j
assert isinstance(j["records_committed"], int) and j["records_committed"] >= 1, j
assert isinstance(j["uptime_s"], int) and 0 <= j["uptime_s"] < 600, j'

# --config FILE instead of --socket
CTL_RC=0
"$TEMPORISCTL" --config "$CFG" --json status >"$OUT" 2>"$ERR" || CTL_RC=$?
if [ "$CTL_RC" = 0 ]; then pass "--config FILE finds the admin socket"; else fail "--config FILE finds the admin socket" "exit $CTL_RC: $(cat "$ERR")"; fi
shape "--config FILE status shape" 'assert j["workers"] == 2, j'

# backup
run_ctl "backup --json" 0 --json backup "$TMP/backup1"
shape "backup --json shape" "assert j == {'backup': '$TMP/backup1'}, j"
if [ -d "$TMP/backup1" ] && [ -n "$(ls -A "$TMP/backup1")" ]; then pass "backup wrote files"; else fail "backup wrote files" "$TMP/backup1 missing or empty"; fi
run_ctl "backup (human)" 0 backup "$TMP/backup2"
run_ctl "backup without DIR" 2 backup
mkdir -m 555 "$TMP/readonly"
run_ctl "backup into a directory the server cannot write" 1 backup "$TMP/readonly/b"
stderr_has "backup denied: the message says the server writes it, and as whom" \
	"The server writes the backup itself, as user $(id -un "${RUN_AS:-$(id -u)}")"

stop_server
finish
