#!/usr/bin/env python3
"""gen_bodies.py - the benchmark's workload: the same records for every system.

Writes N pre-built request bodies per batch size, as our JSON ingest bodies and as
InfluxDB line protocol (which both peers' /write endpoints accept), and prints a
JSON manifest (paths, distinct-record counts) that scripts/bench/bench.py reads.

Workload: SERIES series (s000..s099); series 0-49 carry integers, 50-99 doubles
that are never integral (so every system keeps the type). Body i of batch B holds
B/SERIES consecutive timestamps (1 s apart) for every series: timestamps keep
increasing across bodies, and a body re-sent overwrites exactly its own keys, so
the distinct records per batch size are N * B.

Usage: gen_bodies.py OUTDIR BASE_TS [--bodies N] [--batches 100,1000]
"""
import argparse
import json
import os
import sys

SERIES = 100
INT_SERIES = 50
VALUE_MOD = 1000
FLOAT_FRACTION = 0.25          # exact in binary, so the text round-trips
DEFAULT_BODIES = 200
DEFAULT_BATCHES = "100,1000"


def series_name(s):
    return "s%03d" % s


def value_of(step, s):
    """Deterministic value of series s at timestep `step` (int or float)."""
    base = (step * 7 + s * 13) % VALUE_MOD
    return base if s < INT_SERIES else base + FLOAT_FRACTION


def body_records(i, batch, base_ts):
    per_series = batch // SERIES
    for t in range(per_series):
        step = i * per_series + t
        for s in range(SERIES):
            yield base_ts + step, series_name(s), value_of(step, s)


def json_body(source, recs):
    records = [{"timestamp": ts, "name": n, "value": v} for ts, n, v in recs]
    return json.dumps({"data_source": source, "records": records},
                      separators=(",", ":")).encode()


def line_body(tag, recs):
    out = []
    for ts, n, v in recs:
        val = "%di" % v if isinstance(v, int) else repr(v)
        out.append("%s,b=%s value=%s %d" % (n, tag, val, ts))
    return ("\n".join(out) + "\n").encode()


def write_set(outdir, batch, nbodies, base_ts):
    """Writes both formats for one batch size; returns its manifest entry."""
    tag = "b%d" % batch
    dirs = {"json": os.path.join(outdir, "json_" + tag),
            "line": os.path.join(outdir, "line_" + tag)}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    sizes = {"json": 0, "line": 0}
    for i in range(nbodies):
        recs = list(body_records(i, batch, base_ts))
        for fmt, data in (("json", json_body("bench_" + tag, recs)),
                          ("line", line_body(tag, recs))):
            with open(os.path.join(dirs[fmt], "%03d" % i), "wb") as f:
                f.write(data)
            sizes[fmt] += len(data)
    per_series = nbodies * (batch // SERIES)
    return {"batch": batch, "tag": tag, "source": "bench_" + tag, "dirs": dirs,
            "bodies": nbodies, "distinct": nbodies * batch,
            "per_series": per_series, "series": [series_name(s) for s in range(SERIES)],
            "first_ts": base_ts, "last_ts": base_ts + per_series - 1,
            "mean_body_bytes": {k: v // nbodies for k, v in sizes.items()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("base_ts", type=int)
    ap.add_argument("--bodies", type=int, default=DEFAULT_BODIES)
    ap.add_argument("--batches", default=DEFAULT_BATCHES)
    a = ap.parse_args()
    batches = [int(b) for b in a.batches.split(",")]
    if any(b <= 0 or b % SERIES for b in batches):
        sys.exit("gen_bodies: every batch size must be a multiple of %d" % SERIES)
    manifest = [write_set(a.outdir, b, a.bodies, a.base_ts) for b in batches]
    json.dump(manifest, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
