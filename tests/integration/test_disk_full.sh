#!/usr/bin/env bash
# test_disk_full.sh - data_dir on a 64 MB tmpfs, filled by real ingest: below
# min_free_disk ingest answers 507 (JSON detail, Retry-After) while /healthz says
# why, /metrics counts it, reads and temporisctl go on; freeing space resumes ingest
# with no restart. Then with the watermark off, the store itself runs out of space:
# 507 again, the same writer reopens the store once space is back, and after a
# graceful restart every acknowledged record reads back with its value. Needs root
# (mount); skipped (77) otherwise.

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

require_binaries
if [ "$(id -u)" -ne 0 ]; then
	echo "test_disk_full: skipped: mounting a small tmpfs needs root"
	exit 77
fi

readonly ACCOUNT=dunecorp
readonly SOURCE=silo_levels
readonly FS_SIZE=64m
readonly BALLAST_MB=24
readonly MIN_FREE=12M
readonly FILL_MAX_S=120
readonly RESUME_WAIT_S=15
FILL="$IT_DIR/fill_client.py"
SMALL="$TMP/small"
LEDGER="$TMP/acked"

unmount_small() { umount "$SMALL" 2>/dev/null || umount -l "$SMALL" 2>/dev/null || true; }
CLEANUP_HOOK=unmount_small

mkdir -p "$SMALL"
owner=$(id -u "${RUN_AS:-root}")
mount -t tmpfs -o "size=$FS_SIZE,mode=0755,uid=$owner" tmpfs "$SMALL" ||
	die "cannot mount a $FS_SIZE tmpfs on $SMALL"
: >"$LEDGER"

ballast() { dd if=/dev/zero of="$SMALL/ballast" bs=1M count="$BALLAST_MB" status=none || die "ballast"; }

metric_value() { # metric_value NAME: its value in a fresh scrape
	req "$BASE/metrics"
	awk -v n="$1" '$1 == n { print $2 }' "$R_BODY"
}

# fill_until_refused FIRST: ingest until a request is refused; sets REFUSED_* and NEXT.
fill_until_refused() {
	local out
	out=$(python3 "$FILL" fill "$BASE" "$TOKEN" "$SOURCE" "$LEDGER" "$1" "$FILL_MAX_S") ||
		die "fill_client.py fill failed"
	REFUSED_JSON=$out
	REFUSED_STATUS=$(echo "$out" | json_get - 'j["status"]')
	NEXT=$(echo "$out" | json_get - 'j["refused"]')
	echo "     filled: $out"
}

expect_refusal_507() { # expect_refusal_507 PHASE
	local d
	if [ "$REFUSED_STATUS" = 507 ]; then pass "$1: ingest answered 507"; else
		fail "$1: ingest answered 507" "the first refusal was: $REFUSED_JSON"; fi
	d=$(echo "$REFUSED_JSON" | json_get - 'j["detail"] or ""')
	case $d in
	*"disk is full"*) pass "$1: the 507 detail says the disk is full" ;;
	*) fail "$1: the 507 detail says the disk is full" "detail: '$d'" ;;
	esac
	if echo "$REFUSED_JSON" | json_get - 'j["ctype"].startswith("application/json") and int(j["retry_after"]) > 0' | grep -qx true; then
		pass "$1: the 507 is JSON with a Retry-After"
	else
		fail "$1: the 507 is JSON with a Retry-After" "$REFUSED_JSON"
	fi
}

# wait_for_204 NAME: one request at a time until one is acknowledged.
wait_for_204() {
	local deadline=$((SECONDS + RESUME_WAIT_S)) st=""
	while [ $SECONDS -lt $deadline ]; do
		st=$(python3 "$FILL" post "$BASE" "$TOKEN" "$SOURCE" "$LEDGER" "$NEXT")
		NEXT=$((NEXT + 1))
		[ "$st" = 204 ] && { pass "$1"; return 0; }
		sleep 0.3
	done
	fail "$1" "still $st ${RESUME_WAIT_S}s after space was freed"
}

reads_work() { # reads_work PHASE: the API and temporisctl while the disk is full
	req -H "Authorization: Bearer $TOKEN" "$BASE/v1/data_sources/$SOURCE/records?name=s3&limit=5"
	if [ "$R_STATUS" = 200 ] && json_get "$R_BODY" 'len(j["records"]) == 5' | grep -qx true; then
		pass "$1: records read while the disk is full"
	else
		fail "$1: records read while the disk is full" "status $R_STATUS: $(body_text)"
	fi
	check "$1: temporisctl works while the disk is full" ctl source list "$ACCOUNT"
}

# ---- 1: the watermark ----
DATA_DIR="$SMALL/data"
write_config "min_free_disk = $MIN_FREE"
start_server
TOKEN=$(new_account "$ACCOUNT")
new_source "$ACCOUNT" "$SOURCE"
ballast
writer=$(writer_pid)
[ -n "$writer" ] || die "no writer process found"

fill_until_refused 0
expect_refusal_507 "watermark"
req "$BASE/healthz"
if [ "$R_STATUS" = 503 ] && json_get "$R_BODY" 'j["status"] == "disk_full" and "min_free_disk" in j["detail"]' | grep -qx true; then
	pass "watermark: /healthz answers 503 disk_full naming min_free_disk"
else
	fail "watermark: /healthz answers 503 disk_full naming min_free_disk" "status $R_STATUS: $(body_text)"
fi
v=$(metric_value temporis_disk_full)
if [ "$v" = 1 ]; then pass "watermark: temporis_disk_full is 1"; else fail "watermark: temporis_disk_full is 1" "got '$v'"; fi
v=$(metric_value temporis_disk_full_rejections_total)
if [ "${v:-0}" -ge 1 ]; then pass "watermark: the 507 is counted"; else fail "watermark: the 507 is counted" "got '$v'"; fi
reads_work "watermark"

rm -f "$SMALL/ballast"
wait_for_204 "watermark: ingest resumes once space is freed"
req "$BASE/healthz"
expect_status "watermark: /healthz is 200 again" 200
if [ "$(writer_pid)" = "$writer" ]; then pass "watermark: no writer restart"; else
	fail "watermark: no writer restart" "writer $writer is now '$(writer_pid)'"; fi

# ---- 2: the store itself out of space (watermark off) ----
stop_server "graceful stop with a nearly full disk"
write_config "min_free_disk = 0"
start_server
ballast
writer=$(writer_pid)
fill_until_refused "$NEXT"
expect_refusal_507 "no space"
req "$BASE/healthz"
if [ "$R_STATUS" = 503 ] && json_get "$R_BODY" 'j["status"] == "disk_full"' | grep -qx true; then
	pass "no space: /healthz answers 503 disk_full"
else
	fail "no space: /healthz answers 503 disk_full" "status $R_STATUS: $(body_text)"
fi
v=$(metric_value temporis_disk_full)
if [ "$v" = 2 ]; then pass "no space: temporis_disk_full is 2"; else fail "no space: temporis_disk_full is 2" "got '$v'"; fi
reads_work "no space"

rm -f "$SMALL/ballast"
wait_for_204 "no space: ingest resumes once space is freed"
if [ "$(writer_pid)" = "$writer" ]; then pass "no space: the same writer reopened the store"; else
	fail "no space: the same writer reopened the store" "writer $writer is now '$(writer_pid)'"; fi

restart_server
out=$(python3 "$FILL" verify "$BASE" "$TOKEN" "$SOURCE" "$LEDGER") || true
case $out in
PASS*) pass "${out#PASS }" ;;
*) fail "every acknowledged record reads back after the restart" "$out" ;;
esac
stop_server
finish
