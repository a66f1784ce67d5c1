#!/usr/bin/env python3
"""gen_export.py - data for test_export.sh, and the checks on what the export wrote.

  gen_export.py gen FILE SERIES POINTS   NDJSON records: SERIES series in line protocol's
                                         name form, POINTS each, awkward ints and doubles
  gen_export.py check FILE EXPORT [NAME START END]
                                         EXPORT (ndjson) holds exactly FILE's records (or
                                         those of series NAME, START <= ts < END), in
                                         series name order (bytes), each ascending, every
                                         value of the same type and bits
"""
import json
import struct
import sys

T0 = 1700000000
AWKWARD = [0.1, 1e-300, -0.0, 2**53 + 1, 5e-324, 1.7976931348623157e308, 1 / 3,
           -(2**63), 2**63 - 1, 123.0, -2.5, 1e21, 0, -1, 0.30000000000000004]


def series_name(i):
    kind = i % 4
    if kind == 0:
        return 'cpu_usage_user{cpu="cpu%d",host="web %d"}' % (i % 8, i)
    if kind == 1:
        return 'disk_free{path="/mnt/a,b=c\\\\d %d"}' % i
    if kind == 2:
        return 'mem_used{host="h%d",quote="say \\"hi\\""}' % i
    return 'net%d_recv' % i


def value(i, k):
    n = i * 7919 + k
    if n % 3 == 0:
        return AWKWARD[n % len(AWKWARD)]
    if n % 3 == 1:
        return n * 37 - 5000000
    return n / 7.0


def gen(path, nseries, points):
    with open(path, "w") as f:
        for k in range(points):
            for i in range(nseries):
                f.write(json.dumps({"timestamp": T0 + k * 10, "name": series_name(i),
                                    "value": value(i, k)}) + "\n")


def key(v):
    return ("i", v) if isinstance(v, int) else ("d", struct.pack("<d", v))


def check(path, export, name=None, start=None, end=None):
    want = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if name is not None and r["name"] != name:
                continue
            if start is not None and not (start <= r["timestamp"] < end):
                continue
            want[(r["name"].encode(), r["timestamp"])] = key(r["value"])
    order = sorted(want)
    n = 0
    with open(export, "rb") as f:
        for n, line in enumerate(f, 1):
            r = json.loads(line)
            k = (r["name"].encode(), r["timestamp"])
            if n > len(order) or order[n - 1] != k:
                sys.exit("line %d: %r, want %r" % (n, k, order[n - 1] if n <= len(order) else None))
            if key(r["value"]) != want[k]:
                sys.exit("line %d: value %r, want %r" % (n, key(r["value"]), want[k]))
    if n != len(order):
        sys.exit("%d records, want %d" % (n, len(order)))
    print(n)


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) > 4:
        check(sys.argv[2], sys.argv[3], sys.argv[4] or None, int(sys.argv[5]), int(sys.argv[6]))
    else:
        check(sys.argv[2], sys.argv[3])
