#!/usr/bin/env bash
# test_dashboard.sh - the web dashboard served at / by a real temporisd: static file serving
# with curl (types, caching headers, HEAD, 304, traversal refused, 405), then the page end to
# end in headless Chromium (dashboard.spec.mjs): sign in, create a source, ingest, chart,
# archive; two of three dense series in one chart, read downsampled, the series filter and
# auto-refresh. Screenshots go to $top_builddir/tests/dashboard-shots/ (paths printed).
#
# Needs Debian's chromium and libjs-dygraphs (scripts/deps), node >= 18 with npm, and
# playwright-core from npm, installed on first run into $top_builddir/tests/node (a cache:
# npm install --prefix; no browser download, Chromium is the system one). Without chromium,
# dygraphs or a reachable npm registry the test is skipped (exit 77), saying why.

set -euo pipefail

readonly PLAYWRIGHT_VERSION=1.58.2   # the last playwright-core release that supports node 18
readonly CHROMIUM=/usr/bin/chromium
readonly JS_ROOT=/usr/share/javascript
readonly SPEC_TIMEOUT_S=150
readonly SKIP=77

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_srcdir:=$(cd "$IT_DIR/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
PW_PREFIX="$top_builddir/tests/node"
SHOTS="$top_builddir/tests/dashboard-shots"

skip() {
	echo "SKIP: $*"
	exit "$SKIP"
}

# Before lib.sh: a skip must not go through its failure trap.
[ -x "$CHROMIUM" ] || skip "$CHROMIUM not found (apt-get install chromium)"
[ -f "$JS_ROOT/dygraphs/dygraph.min.js" ] || skip "dygraphs not found (apt-get install libjs-dygraphs)"
command -v node >/dev/null || skip "node not found (apt-get install nodejs)"
command -v npm >/dev/null || skip "npm not found (apt-get install npm)"
if [ "$(node -p "require('$PW_PREFIX/node_modules/playwright-core/package.json').version" 2>/dev/null)" \
	!= "$PLAYWRIGHT_VERSION" ]; then
	echo "installing playwright-core@$PLAYWRIGHT_VERSION into $PW_PREFIX"
	mkdir -p "$PW_PREFIX"
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$PW_PREFIX" --no-audit --no-fund \
		--loglevel=error "playwright-core@$PLAYWRIGHT_VERSION" >"$PW_PREFIX/npm.log" 2>&1 ||
		skip "npm install playwright-core failed (see $PW_PREFIX/npm.log)"
fi

# shellcheck source=lib.sh
. "$IT_DIR/lib.sh"

require_binaries
require_node

# The server drops to RUN_AS when started by root: serve the source tree's files when
# that user can read them, else a copy in the temp dir it owns.
WEB_ROOT="$top_srcdir/src/dashboard"
if [ -n "$RUN_AS" ] && ! runuser -u "$RUN_AS" -- test -r "$WEB_ROOT/index.html" 2>/dev/null; then
	cp -r "$WEB_ROOT" "$TMP/web"
	chown -R "$RUN_AS" "$TMP/web"
	WEB_ROOT="$TMP/web"
fi
write_config "web_root = $WEB_ROOT" "web_lib_root = $JS_ROOT"
start_server

TOKEN=$(new_account acme)
new_source acme existing_src
new_account other >/dev/null
new_source other other_secret

# ---- static files over plain HTTP -------------------------------------------

section_static() {
	req "$BASE/"
	expect_status "GET / serves the dashboard" 200
	expect_header "GET / is text/html" Content-Type "text/html; charset=utf-8"
	check "GET / body is src/dashboard/index.html" cmp -s "$R_BODY" "$WEB_ROOT/index.html"
	expect_header "GET / must be revalidated (Cache-Control: no-cache)" Cache-Control "no-cache"
	expect_header "GET / forbids sniffing" X-Content-Type-Options nosniff

	req -I "$BASE/"
	expect_status "HEAD / 200" 200
	expect_header "HEAD / has the GET length" Content-Length "$(stat -c %s "$WEB_ROOT/index.html")"
	check "HEAD / sends no body (raw socket, read to close)" python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
head, sep, rest = data.partition(b"\r\n\r\n")
assert sep and head.startswith(b"HTTP/1.1 200"), head[:80]
assert rest == b"", "%d bytes after the head" % len(rest)
PY

	req "$BASE/static/app.js"
	expect_header "app.js is text/javascript" Content-Type "text/javascript; charset=utf-8"
	req "$BASE/static/style.css"
	expect_header "style.css is text/css" Content-Type "text/css; charset=utf-8"
	req "$BASE/javascript/dygraphs/dygraph.min.js"
	expect_status "dygraphs is served from web_lib_root" 200
	check "dygraph.min.js is the system file, byte for byte" cmp -s "$R_BODY" "$JS_ROOT/dygraphs/dygraph.min.js"

	local etag
	req "$BASE/static/app.js"
	etag=$(header_value ETag)
	req -H "If-None-Match: $etag" "$BASE/static/app.js"
	expect_status "If-None-Match with the ETag -> 304" 304
	expect_empty_body "304 has no body"
	req -H 'If-None-Match: "stale"' "$BASE/static/app.js"
	expect_status "If-None-Match with another tag -> 200" 200
}

section_refused() {
	local p
	for p in /static/../../../../etc/passwd /javascript/../../../etc/passwd \
		/static/%2e%2e/%2e%2e/etc/passwd '/static/..%2f..%2fetc/passwd' '/static/..\..\etc\passwd' \
		/static/.hidden /static/ /javascript/dygraphs /javascript/dygraphs/ /static/missing.js \
		/index.html; do
		req --path-as-is "$BASE$p"
		expect_error "GET $p -> 404" 404 "Not found."
	done
	req -X POST "$BASE/"
	expect_error "POST / -> 405" 405 "Method not allowed."
	expect_header "POST / -> Allow: GET" Allow GET
	req "$BASE/v1/data_sources"
	expect_error "the API still needs a token" 401 "Missing access token."
}

# ---- the page in Chromium ---------------------------------------------------------

# Each "PASS x" / "FAIL x: why" line of the spec counts as a test.
run_spec() {
	rm -rf "$SHOTS"
	mkdir -p "$SHOTS"
	report_helper dashboard.spec.mjs env TEMPORIS_URL="$BASE" TEMPORIS_TOKEN="$TOKEN" \
		PLAYWRIGHT_PREFIX="$PW_PREFIX" SHOTS_DIR="$SHOTS" \
		timeout "$SPEC_TIMEOUT_S" node "$IT_DIR/dashboard.spec.mjs"
}

section_static
section_refused
run_spec
stop_server
finish
