#!/usr/bin/env bash
# test_crash.sh - make-check entry of the crash harness (tests/crash/crash.py): under
# load, SIGKILLs a worker, the writer and the master in turn, 10 times each, and checks
# that every acknowledged record survives with its exact value, that unanswered
# requests are stored whole or not at all, that killed children come back (a worker
# within 1 s), and that a worker dying in a loop is backed off without taking the
# server down. Budget: < 3 minutes on 2 cores.
# Prints "N passed, M failed" last and exits non-zero on any failure.
# Env: top_builddir/top_srcdir (set by automake), CRASH_SEED (replay a run).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"

if ! python3 -c 'import requests' 2>/dev/null; then
	echo "SETUP FAILED: python3-requests is missing (scripts/deps installs it)"
	echo "0 passed, 1 failed"
	exit 1
fi

# Small batches keep the full read-back after every master kill inside the budget;
# the kills in between read back the requests sent since the previous kill.
exec python3 "$here/crash.py" --builddir "$top_builddir" --kills-per-kind 10 \
	--clients 4 --batch 10 40 --pause 0.3 0.8 --full-every 3 \
	${CRASH_SEED:+--seed "$CRASH_SEED"}
