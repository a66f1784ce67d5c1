#!/usr/bin/env bash
# make check: replay every fuzz target's seed corpus and saved crashers (tests/fuzz/)
# through the gcc-built replay_<target> programs. Prints "N passed, M failed".
set -u
: "${top_builddir:?}" "${top_srcdir:?}"
passed=0 failed=0
for t in ingest catalog_snap http lp prom; do
	if "$top_builddir/tests/fuzz/replay_$t" "$top_srcdir/tests/fuzz/corpus/$t" \
		"$top_srcdir/tests/fuzz/regressions/$t"; then
		passed=$((passed + 1))
	else
		echo "FAIL: replay_$t" >&2
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
