#!/usr/bin/env python3
"""gen_bodies.py - the benchmark's workload: the same records for every system.

Writes pre-built request bodies per batch size, as our JSON ingest bodies and/or (as
--formats says) as InfluxDB line protocol (which both peers' /write endpoints accept, and
temporisd's with bench.py --format line), and prints a JSON manifest (paths, counts) that
scripts/bench/bench.py reads.

Workload: NSERIES series (default 100: s000..s099). Record k of the whole stream
(body i holds records k = i*B .. i*B+B-1) belongs to series k mod NSERIES at
timestep k div NSERIES, so with NSERIES <= B a body holds B/NSERIES consecutive
timestamps (1 s apart) for every series, and with NSERIES > B body i covers the B
series from (i*B mod NSERIES) on: timestamps never decrease from body to body and
every record key is distinct, so a body re-sent overwrites exactly its own keys
and the distinct records are (bodies sent) * B. Series with (s mod 100) < 50 carry
integers, the others doubles that are never integral (so every system keeps the
type, and every body holds the same mix). With --sources S, body i goes to data
source i mod S. The number of bodies is at least --bodies, at least enough to cover
the series space once and give every source a body, at most --max-bodies (then the
series actually covered are fewer than NSERIES: the manifest's "covered" says how many).

Usage: gen_bodies.py OUTDIR BASE_TS [--bodies N] [--batches 100,1000] [--series N]
                     [--sources N] [--max-bodies N] [--formats json,line]
"""
import argparse
import json
import os
import sys

DEFAULT_SERIES = 100
MIX_PERIOD = 100               # of every 100 consecutive series ...
INT_SERIES = 50                # ... the first 50 carry integers
VALUE_MOD = 1000
FLOAT_SUFFIX = ".25"           # exact in binary, so the text round-trips
FLOAT_FRACTION = 0.25
DEFAULT_BODIES = 200
DEFAULT_MAX_BODIES = 20000
DEFAULT_BATCHES = "100,1000"
MIN_NAME_DIGITS = 3
# line protocol: series sNNN is the measurement, its one field LINE_FIELD, the batch size its
# one tag (LINE_TAG=bB); temporisd stores it as sNNN_value{b="bB"} (systems.lp_series_name)
LINE_TAG = "b"
LINE_FIELD = "value"
LINE_FORMAT = "s%%0*d,%s=%%s %s=%%d%%s %%d" % (LINE_TAG, LINE_FIELD)


def name_width(nseries):
    return max(MIN_NAME_DIGITS, len(str(nseries - 1)))


def series_name(s, width=MIN_NAME_DIGITS):
    return "s%0*d" % (width, s)


def is_int_series(s):
    return s % MIX_PERIOD < INT_SERIES


def value_of(step, s):
    """Deterministic value of series s at timestep `step` (int or float)."""
    base = (step * 7 + s * 13) % VALUE_MOD
    return base if is_int_series(s) else base + FLOAT_FRACTION


def source_names(batch, nsources):
    base = "bench_b%d" % batch
    if nsources == 1:
        return [base]
    width = len(str(nsources - 1))
    return ["%s_%0*d" % (base, width, j) for j in range(nsources)]


def runs_of(i, batch, nseries):
    """Body i as runs (step, first series, count) of consecutive series at one timestep."""
    k, end = i * batch, (i + 1) * batch
    while k < end:
        step, s = divmod(k, nseries)
        n = min(end - k, nseries - s)
        yield step, s, n
        k += n


def json_body(source, i, batch, nseries, base_ts, width):
    # formatted by hand, not json.dumps: 10 M records must take seconds, not minutes
    out = []
    for step, s0, n in runs_of(i, batch, nseries):
        head = '{"timestamp":%d,"name":"s' % (base_ts + step)
        a = step * 7
        out += ['%s%0*d","value":%d%s}' % (head, width, s, (a + s * 13) % VALUE_MOD,
                                           "" if s % MIX_PERIOD < INT_SERIES else FLOAT_SUFFIX)
                for s in range(s0, s0 + n)]
    return ('{"data_source":"%s","records":[%s]}' % (source, ",".join(out))).encode()


def line_body(tag, i, batch, nseries, base_ts, width):
    out = []
    for step, s0, n in runs_of(i, batch, nseries):
        ts, a = base_ts + step, step * 7
        out += [LINE_FORMAT % (width, s, tag, (a + s * 13) % VALUE_MOD,
                               "i" if s % MIX_PERIOD < INT_SERIES else FLOAT_SUFFIX, ts)
                for s in range(s0, s0 + n)]
    return ("\n".join(out) + "\n").encode()


def expected_steps(j, s, batch, nseries, nsources, nbodies):
    """(body, step) of every record of series s in source j, over all bodies."""
    for k in range(s, nbodies * batch, nseries):
        body = k // batch
        if body % nsources == j:
            yield body, k // nseries


def covered_series(batch, nseries, nsources, nbodies):
    """Distinct (source, series) pairs that the bodies hold."""
    if nseries <= batch:
        return min(nsources, nbodies) * nseries
    total = 0
    for j in range(min(nsources, nbodies)):
        starts = sorted({(i * batch) % nseries for i in range(j, nbodies, nsources)})
        spans = [(a, min(a + batch, nseries)) for a in starts]
        spans += [(0, a + batch - nseries) for a in starts if a + batch > nseries]
        covered, reach = 0, 0
        for a, b in sorted(spans):
            if b > reach:
                covered += b - max(a, reach)
                reach = b
        total += covered
    return total


def body_count(batch, a):
    need = max(a.bodies, -(-a.series // batch), a.sources)
    return min(need, a.max_bodies)


def write_set(outdir, batch, a, formats):
    """Writes the bodies of one batch size; returns its manifest entry."""
    tag = "b%d" % batch
    nbodies = body_count(batch, a)
    width = name_width(a.series)
    sources = source_names(batch, a.sources)
    dirs = {f: os.path.join(outdir, "%s_%s" % (f, tag)) for f in formats}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    sizes = dict.fromkeys(formats, 0)
    for i in range(nbodies):
        for fmt in formats:
            if fmt == "json":
                data = json_body(sources[i % a.sources], i, batch, a.series, a.base_ts, width)
            else:
                data = line_body(tag, i, batch, a.series, a.base_ts, width)
            with open(os.path.join(dirs[fmt], "%03d" % i), "wb") as f:
                f.write(data)
            sizes[fmt] += len(data)
    last_step = (nbodies * batch - 1) // a.series
    return {"batch": batch, "tag": tag, "source": sources[0], "sources": sources, "dirs": dirs,
            "bodies": nbodies, "distinct": nbodies * batch, "nseries": a.series, "width": width,
            "covered": covered_series(batch, a.series, a.sources, nbodies),
            "first_ts": a.base_ts, "last_ts": a.base_ts + last_step,
            "mean_body_bytes": {k: v // nbodies for k, v in sizes.items()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("base_ts", type=int)
    ap.add_argument("--bodies", type=int, default=DEFAULT_BODIES)
    ap.add_argument("--max-bodies", type=int, default=DEFAULT_MAX_BODIES)
    ap.add_argument("--batches", default=DEFAULT_BATCHES)
    ap.add_argument("--series", type=int, default=DEFAULT_SERIES)
    ap.add_argument("--sources", type=int, default=1)
    ap.add_argument("--formats", default="json,line")
    a = ap.parse_args()
    batches = [int(b) for b in a.batches.split(",")]
    formats = a.formats.split(",")
    if any(b <= 0 for b in batches) or min(a.series, a.sources, a.bodies, a.max_bodies) <= 0:
        sys.exit("gen_bodies: batch sizes, --series, --sources and body counts must be positive")
    if set(formats) - {"json", "line"}:
        sys.exit("gen_bodies: --formats takes json and/or line")
    manifest = [write_set(a.outdir, b, a, formats) for b in batches]
    json.dump(manifest, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
