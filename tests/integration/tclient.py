#!/usr/bin/env python3
"""tclient.py - Python side of the integration tests (driven by test_api.sh).

Each subcommand talks to the running server at $TEMPORIS_URL with `requests` and
prints one line per check: "PASS name" or "FAIL name: expected ..., got ...".
Exit status is 1 if any check failed. Also writes model/body files for the shell.
"""
import fractions
import gzip
import json
import math
import os
import random
import socket
import sys
import threading
import urllib.parse

import requests

from tcheck import bad, check, exit_status, ok

BASE = os.environ.get("TEMPORIS_URL", "http://127.0.0.1:8080")
INGEST = BASE + "/v1/data_sources/ingest"
TIMEOUT = 60


def auth(token):
    return {"Authorization": "Bearer " + token}


def post(sess, token, source, records, name=None):
    body = json.dumps({"data_source": source, "records": records})
    return sess.post(INGEST, data=body, headers=auth(token), timeout=TIMEOUT)


def rec(ts, name, value):
    return {"timestamp": ts, "name": name, "value": value}


def records_url(source, **params):
    q = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    return "%s/v1/data_sources/%s/records?%s" % (BASE, urllib.parse.quote(source), q)


def read_page(sess, token, source, **params):
    r = sess.get(records_url(source, **params), headers=auth(token), timeout=TIMEOUT)
    return r


def read_all(sess, token, source, name, limit=None, start=None, end=None, max_pages=10000):
    """Follow next_cursor until null. Returns (records, pages, error or None)."""
    out, cursor, pages = [], None, 0
    while True:
        r = read_page(sess, token, source, name=name, start=start, end=end,
                      limit=limit, cursor=cursor)
        pages += 1
        if r.status_code != 200:
            return out, pages, "page %d: status %d body %r" % (pages, r.status_code, r.text[:200])
        try:
            j = r.json()
        except ValueError:
            return out, pages, "page %d: body not JSON %r" % (pages, r.text[:200])
        if set(j) != {"records", "next_cursor"}:
            return out, pages, "page %d: keys %r" % (pages, sorted(j))
        if limit is not None and len(j["records"]) > limit:
            return out, pages, "page %d: %d records > limit %d" % (pages, len(j["records"]), limit)
        out.extend(j["records"])
        cursor = j["next_cursor"]
        if cursor is None:
            return out, pages, None
        if not isinstance(cursor, str):
            return out, pages, "next_cursor is not a string or null: %r" % (cursor,)
        if pages >= max_pages:
            return out, pages, "more than %d pages" % max_pages


def same_value(a, b):
    """Type and value exactly equal (int vs float, and the sign of zero)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return a == b


def compare_series(name, got, model):
    """got: list of records for one series; model: {ts: value}."""
    ts = [r.get("timestamp") for r in got]
    if ts != sorted(ts) or len(set(ts)) != len(ts):
        return bad(name, "records not in strictly increasing timestamp order")
    gm = {r["timestamp"]: r["value"] for r in got}
    missing = sorted(set(model) - set(gm))
    extra = sorted(set(gm) - set(model))
    wrong = [(t, model[t], gm[t]) for t in model if t in gm and not same_value(model[t], gm[t])]
    if missing or extra or wrong:
        return bad(name, "expected %d records; missing %d (e.g. %r), extra %d (e.g. %r), "
                   "wrong value %d (ts, expected, got e.g. %r)"
                   % (len(model), len(missing), missing[:3], len(extra), extra[:3],
                      len(wrong), wrong[:3]))
    ok(name)


# ---- subcommands ----------------------------------------------------------

def cmd_history(token, source, model_file):
    """2,000 records in shuffled batches with repeated keys; later sends win."""
    rnd = random.Random(1234)
    names = ["h_orders", "h_revenue", "h_visitors", "h_load"]
    sends = []
    for i in range(2000):
        ts = 1718841600 + 3600 * rnd.randrange(150)
        nm = rnd.choice(names)
        val = i if i % 3 else i + 0.25
        sends.append(rec(ts, nm, val))
    rnd.shuffle(sends)
    model = {n: {} for n in names}
    sess = requests.Session()
    pos, status_bad = 0, []
    while pos < len(sends):
        n = rnd.randrange(1, 200)
        batch = sends[pos:pos + n]
        pos += n
        r = post(sess, token, source, batch)
        if r.status_code != 204:
            status_bad.append((r.status_code, r.text[:120]))
            continue
        for x in batch:
            model[x["name"]][x["timestamp"]] = x["value"]
    check("history: every batch answered 204", not status_bad, "got %r" % status_bad[:3])
    for n in names:
        got, pages, err = read_all(sess, token, source, n, limit=37)
        if err:
            bad("history: read back %s with limit=37 + cursor" % n, err)
            continue
        compare_series("history: %s read back with limit=37 + cursor equals the model" % n,
                       got, model[n])
        check("history: %s needed several pages" % n, pages > 1, "pages=%d" % pages)
    check_series(sess, token, source, model, "history")
    with open(model_file, "w") as f:
        json.dump({n: {str(t): v for t, v in m.items()} for n, m in model.items()}, f)


def check_series(sess, token, source, model, label):
    r = sess.get("%s/v1/data_sources/%s/series" % (BASE, source), headers=auth(token),
                 timeout=TIMEOUT)
    if not check("%s: GET series answers 200" % label, r.status_code == 200,
                 "got %d %r" % (r.status_code, r.text[:200])):
        return
    j = r.json()
    if not check("%s: series body shape" % label,
                 isinstance(j, dict) and set(j) == {"series"} and isinstance(j["series"], list)
                 and all(isinstance(s, dict) and
                         set(s) == {"name", "first_timestamp", "last_timestamp"}
                         for s in j["series"]), "got %r" % (j,)):
        return
    got = {s["name"]: (s["first_timestamp"], s["last_timestamp"]) for s in j["series"]}
    want = {n: (min(m), max(m)) for n, m in model.items() if m}
    sub = {n: got.get(n) for n in want}
    check("%s: series first/last timestamps" % label, sub == want,
          "expected %r, got %r" % (want, sub))


def cmd_verify_model(token, source, model_file, label):
    with open(model_file) as f:
        raw = json.load(f)
    model = {n: {int(t): v for t, v in m.items()} for n, m in raw.items()}
    sess = requests.Session()
    for n, m in model.items():
        got, _, err = read_all(sess, token, source, n, limit=500)
        if err:
            bad("%s: read back %s" % (label, n), err)
        else:
            compare_series("%s: %s equals the model" % (label, n), got, m)
    check_series(sess, token, source, model, label)


def cmd_dupkey(token, source):
    sess = requests.Session()
    recs = [rec(100, "dup", 1), rec(101, "dup", 10), rec(100, "dup", 2),
            rec(100, "dup", 3.5), rec(101, "dup", 11)]
    r = post(sess, token, source, recs)
    check("repeated key in one request: 204", r.status_code == 204,
          "got %d %r" % (r.status_code, r.text[:200]))
    got, _, err = read_all(sess, token, source, "dup")
    if err:
        return bad("repeated key in one request keeps the last", err)
    compare_series("repeated key in one request keeps the last", got, {100: 3.5, 101: 11})


def cmd_upsert(token, source):
    sess = requests.Session()
    r1 = post(sess, token, source, [rec(500, "ups", 1), rec(501, "ups", 2)])
    r2 = post(sess, token, source, [rec(500, "ups", 99.5)])
    check("upsert: both sends 204", r1.status_code == 204 and r2.status_code == 204,
          "got %d, %d" % (r1.status_code, r2.status_code))
    got, _, err = read_all(sess, token, source, "ups")
    if err:
        return bad("upsert: resend overwrites the value", err)
    compare_series("upsert: resend overwrites the value", got, {500: 99.5, 501: 2})


def cmd_numbers(token, source):
    values = [-1, 0, 9223372036854775807, -9223372036854775808, 9007199254740993,
              0.1, 1e308, 5e-324, -0.0, 2.0, 1284.5, -2.5e-300, 1.7976931348623157e308]
    recs = [rec(1000 + i, "num", v) for i, v in enumerate(values)]
    sess = requests.Session()
    r = post(sess, token, source, recs)
    check("numbers: 204", r.status_code == 204, "got %d %r" % (r.status_code, r.text[:200]))
    got, _, err = read_all(sess, token, source, "num")
    if err:
        return bad("numbers: read back", err)
    gm = {x["timestamp"]: x["value"] for x in got}
    for i, v in enumerate(values):
        g = gm.get(1000 + i, "<missing>")
        check("numbers: %r (%s) round-trips with its type" % (v, type(v).__name__),
              same_value(v, g), "got %r (%s)" % (g, type(g).__name__))
    # the raw text keeps integers as integers (no "e", no ".")
    r = read_page(sess, token, source, name="num")
    check("numbers: 9223372036854775807 appears verbatim in the JSON text",
          "9223372036854775807" in r.text and "9007199254740993" in r.text,
          "body %r" % r.text[:400])


def cmd_concurrent(token, source, nclients, nbatches, per_batch):
    nclients, nbatches, per_batch = int(nclients), int(nbatches), int(per_batch)
    acked = [dict() for _ in range(nclients)]
    errors = []

    def client(cid):
        sess = requests.Session()
        try:
            for b in range(nbatches):
                batch = [rec(2000000 + b * per_batch + k, "conc%d" % cid, cid * 1000000 + b * 1000 + k)
                         for k in range(per_batch)]
                r = post(sess, token, source, batch)
                if r.status_code == 204:
                    for x in batch:
                        acked[cid][x["timestamp"]] = x["value"]
                else:
                    errors.append((cid, b, r.status_code, r.text[:100]))
        except Exception as e:  # noqa: BLE001 - report any client crash as a failure
            errors.append((cid, "exception", repr(e)))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check("concurrent: %d clients x %d batches all 204" % (nclients, nbatches), not errors,
          "errors %r" % errors[:4])
    sess = requests.Session()
    for cid in range(nclients):
        got, _, err = read_all(sess, token, source, "conc%d" % cid, limit=10000)
        if err:
            bad("concurrent: client %d records read back" % cid, err)
        else:
            compare_series("concurrent: client %d acknowledged records read back" % cid,
                           got, acked[cid])


def opened(adapter):
    """Connections urllib3 opened across all pools of a requests adapter."""
    pools = adapter.poolmanager.pools
    return sum(pools[k].num_connections for k in list(pools.keys()))


def cmd_keepalive(token, source):
    sess = requests.Session()
    adapter = sess.get_adapter(BASE)
    statuses = []
    statuses.append(post(sess, token, source, [rec(1, "ka", 1)]).status_code)
    statuses.append(post(sess, token, source, [rec(2, "ka", 2)]).status_code)
    statuses.append(sess.get("%s/v1/data_sources/%s/records?name=ka" % (BASE, source),
                             headers=auth(token), timeout=TIMEOUT).status_code)
    statuses.append(post(sess, token, source, [rec(3, "ka", 3)]).status_code)
    statuses.append(sess.get(BASE + "/healthz", timeout=TIMEOUT).status_code)
    check("keep-alive: requests on one Session all succeed", statuses == [204, 204, 200, 204, 200],
          "statuses %r" % statuses)
    check("keep-alive: 5 requests on one Session used one connection", opened(adapter) == 1,
          "urllib3 opened %d connections" % opened(adapter))
    # error answers keep the connection too (the body was read in full)
    sess2 = requests.Session()
    st = [post(sess2, token, source, [rec(1, "ka", "x")]).status_code,
          post(sess2, token, "no_such_source", []).status_code,
          post(sess2, token, source, [rec(4, "ka", 4)]).status_code]
    n2 = opened(sess2.get_adapter(BASE))
    check("keep-alive: 422 and 404 answers keep the connection", st == [422, 404, 204] and n2 == 1,
          "statuses %r, connections %d" % (st, n2))


def cmd_readapi(token, source):
    """start inclusive, end exclusive, limit/cursor pagination, 422 query errors."""
    sess = requests.Session()
    model = {100 + i: i * 10 for i in range(10)}
    r = post(sess, token, source, [rec(t, "rng", v) for t, v in model.items()])
    check("read api: seed 204", r.status_code == 204, "got %d" % r.status_code)
    r = read_page(sess, token, source, name="rng")
    check("read api: Content-Type application/json",
          r.headers.get("Content-Type", "").split(";")[0].strip() == "application/json",
          "got %r" % r.headers.get("Content-Type"))
    j = r.json() if r.status_code == 200 else {}
    check("read api: all records, records shape and next_cursor null",
          r.status_code == 200 and j.get("next_cursor", "x") is None and
          [x for x in j.get("records", [])] ==
          [{"timestamp": t, "name": "rng", "value": v} for t, v in sorted(model.items())],
          "got %d %r" % (r.status_code, r.text[:300]))
    got, _, err = read_all(sess, token, source, "rng", start=103, end=107)
    check("read api: start inclusive, end exclusive",
          not err and [x["timestamp"] for x in got] == [103, 104, 105, 106],
          "err %r got %r" % (err, [x.get("timestamp") for x in got]))
    got, _, err = read_all(sess, token, source, "rng", start=107)
    check("read api: start only", not err and [x["timestamp"] for x in got] == [107, 108, 109],
          "err %r got %r" % (err, [x.get("timestamp") for x in got]))
    got, _, err = read_all(sess, token, source, "rng", end=102)
    check("read api: end only", not err and [x["timestamp"] for x in got] == [100, 101],
          "err %r got %r" % (err, [x.get("timestamp") for x in got]))
    got, _, err = read_all(sess, token, source, "rng", start=105, end=105)
    check("read api: empty range", not err and got == [], "err %r got %r" % (err, got))
    r = read_page(sess, token, source, name="rng", limit=3)
    j = r.json() if r.status_code == 200 else {}
    check("read api: limit=3 gives 3 records and a cursor",
          len(j.get("records", [])) == 3 and isinstance(j.get("next_cursor"), str),
          "got %d %r" % (r.status_code, r.text[:300]))
    got, pages, err = read_all(sess, token, source, "rng", limit=3)
    check("read api: limit=3 + cursor walks all 10 in order",
          not err and [x["timestamp"] for x in got] == sorted(model) and pages >= 4,
          "err %r pages %d got %r" % (err, pages, [x.get("timestamp") for x in got]))
    got, pages, err = read_all(sess, token, source, "rng", limit=2, start=102, end=108)
    check("read api: cursor keeps the start/end range",
          not err and [x["timestamp"] for x in got] == list(range(102, 108)),
          "err %r got %r" % (err, [x.get("timestamp") for x in got]))
    got, _, err = read_all(sess, token, source, "no_such_series")
    check("read api: unknown series is empty", not err and got == [], "err %r got %r" % (err, got))

    def q_err(label, detail, **params):
        r = sess.get(records_url(source, **params), headers=auth(token), timeout=TIMEOUT)
        try:
            d = r.json().get("detail")
        except ValueError:
            d = None
        check("read api 422: %s" % label,
              r.status_code == 422 and d == detail and
              r.headers.get("Content-Type", "").split(";")[0].strip() == "application/json",
              "expected 422 %r, got %d %r (%r)" % (detail, r.status_code, r.text[:200],
                                                   r.headers.get("Content-Type")))

    q_err("name missing", "name is required.")
    q_err("start=abc", "start must be an integer.", name="rng", start="abc")
    q_err("start=1.5", "start must be an integer.", name="rng", start="1.5")
    q_err("end=xyz", "end must be an integer.", name="rng", end="xyz")
    q_err("limit=0", "limit must be an integer between 1 and 10000.", name="rng", limit=0)
    q_err("limit=10001", "limit must be an integer between 1 and 10000.", name="rng", limit=10001)
    q_err("limit=abc", "limit must be an integer between 1 and 10000.", name="rng", limit="abc")
    q_err("limit=-5", "limit must be an integer between 1 and 10000.", name="rng", limit=-5)
    q_err("cursor=garbage", "cursor is invalid.", name="rng", cursor="!!not-a-cursor!!")
    r = read_page(sess, token, source, name="rng", limit=10000)
    check("read api: limit=10000 accepted", r.status_code == 200, "got %d" % r.status_code)
    r = read_page(sess, token, source, name="rng", limit=1)
    check("read api: limit=1 accepted", r.status_code == 200 and len(r.json()["records"]) == 1,
          "got %d %r" % (r.status_code, r.text[:200]))

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
AGGS = ("avg", "min", "max", "last", "count")


def bucket_of(ts, step):
    """floor(ts / step) * step, the lowest bucket clamped to INT64_MIN (the API's rule)."""
    return max(ts // step * step, INT64_MIN)


def model_buckets(points, step, agg):
    """points: [(ts, value)] ascending. The expected [(bucket, value)] of a downsampled read.
    Python compares int and float exactly, as the server does; ties keep the earlier."""
    groups = {}
    for ts, v in points:
        groups.setdefault(bucket_of(ts, step), []).append(v)
    out = []
    for b in sorted(groups):
        vs = groups[b]
        if agg == "count":
            val = len(vs)
        elif agg == "avg":
            val = float(sum(fractions.Fraction(v) for v in vs) / len(vs))
        elif agg == "last":
            val = vs[-1]
        else:
            val = vs[0]
            for v in vs[1:]:
                if (v < val) if agg == "min" else (v > val):
                    val = v
        out.append((b, val))
    return out


def read_buckets(sess, token, source, limit=None, **params):
    """Follow next_cursor with the same query. Returns (records, pages, error or None)."""
    out, cursor, pages = [], None, 0
    while True:
        r = read_page(sess, token, source, limit=limit, cursor=cursor, **params)
        pages += 1
        if r.status_code != 200:
            return out, pages, "page %d: status %d %r" % (pages, r.status_code, r.text[:200])
        j = r.json()
        if set(j) != {"records", "next_cursor"}:
            return out, pages, "page %d: keys %r" % (pages, sorted(j))
        if limit is not None and len(j["records"]) > limit:
            return out, pages, "page %d: %d buckets > limit %d" % (pages, len(j["records"]), limit)
        out.extend(j["records"])
        cursor = j["next_cursor"]
        if cursor is None:
            return out, pages, None
        if pages > 10000:
            return out, pages, "more than 10000 pages"


def same_buckets(got, want, name):
    """got: records of the reply; want: [(bucket, value)]. avg within 1e-12, else exact."""
    if [r.get("name") for r in got] != [name] * len(got):
        return "names %r" % sorted(set(r.get("name") for r in got))
    if [r["timestamp"] for r in got] != [b for b, _ in want]:
        return "timestamps %r, expected %r" % ([r["timestamp"] for r in got][:12], [b for b, _ in want][:12])
    for r, (b, v) in zip(got, want):
        g = r["value"]
        if isinstance(v, float) and isinstance(g, float) and not same_value(g, v):
            if not math.isclose(g, v, rel_tol=1e-12):
                return "bucket %d: %r, expected %r" % (b, g, v)
        elif not same_value(g, v):
            return "bucket %d: %r (%s), expected %r (%s)" % (b, g, type(g).__name__, v, type(v).__name__)
    return None


def cmd_downsample(token, source):
    """step/agg: every aggregate on ints, doubles and both, negative timestamps and a bucket
    boundary; pages of buckets equal one big page; each refusal with its detail."""
    sess = requests.Session()
    big = 9007199254740993               # 2^53 + 1: no double holds it
    series = {
        "ds_int": [(-25, 4), (-21, -9), (-20, 5), (-11, 5), (-10, 0), (-1, -3), (0, 7),
                   (9, 8), (10, 2), (19, 2), (35, -1)],
        "ds_dbl": [(-7, 0.25), (-1, -1.5), (0, 2.5), (4, 1e300), (5, 1e300), (9, -0.0),
                   (10, 3.75)],
        "ds_mix": [(0, 3), (1, 2.5), (2, 7), (3, 7.0), (10, big), (11, 9007199254740992.0),
                   (20, 1.5), (21, 1)],
        "ds_edge": [(INT64_MIN, 1), (INT64_MIN + 1, 2), (INT64_MAX - 1, 3), (INT64_MAX, 4)],
    }
    for name, pts in series.items():
        r = post(sess, token, source, [rec(t, name, v) for t, v in pts])
        check("downsample: seed %s 204" % name, r.status_code == 204, "got %d %r" % (r.status_code, r.text[:200]))
    for name, pts in series.items():
        for step in (10, 1, 7):
            for agg in AGGS:
                r = read_page(sess, token, source, name=name, step=step, agg=agg, limit=10000)
                label = "downsample: %s step=%d agg=%s" % (name, step, agg)
                if r.status_code != 200:
                    bad(label, "status %d %r" % (r.status_code, r.text[:200]))
                    continue
                j = r.json()
                err = same_buckets(j["records"], model_buckets(pts, step, agg), name)
                if err is None and j["next_cursor"] is not None:
                    err = "next_cursor %r on the only page" % j["next_cursor"]
                if err:
                    bad(label, err)
                else:
                    ok(label)

    def values(agg, **params):
        r = read_page(sess, token, source, agg=agg, **params)
        return [(x["timestamp"], x["value"]) for x in r.json()["records"]] if r.status_code == 200 else r.text

    got = values("min", name="ds_mix", step=10)
    check("downsample: min/max of int and double compare as numbers, the winner keeps its type",
          got == [(0, 2.5), (10, 9007199254740992.0), (20, 1)] and isinstance(got[0][1], float) and
          isinstance(got[2][1], int) and values("max", name="ds_mix", step=10) == [(0, 7), (10, big), (20, 1.5)] and
          isinstance(values("max", name="ds_mix", step=10)[0][1], int), "min %r" % (got,))
    got = values("last", name="ds_mix", step=10)
    check("downsample: last keeps the stored type (7.0 after 7 answers 7.0)",
          got[0] == (0, 7.0) and isinstance(got[0][1], float), "got %r" % (got,))
    got = values("count", name="ds_int", step=10)
    check("downsample: buckets floor negative timestamps, empty ones omitted (-25 -> -30, no 20)",
          got == [(-30, 2), (-20, 2), (-10, 2), (0, 2), (10, 2), (30, 1)], "got %r" % (got,))
    got = values("count", name="ds_int", step=10, start=-21, end=10)
    check("downsample: start mid-bucket answers the bucket's start; end stays exclusive",
          got == [(-30, 1), (-20, 2), (-10, 2), (0, 2)], "got %r" % (got,))
    got = values("count", name="ds_edge", step=10)
    check("downsample: the lowest bucket starts at INT64_MIN, the highest holds INT64_MAX",
          got == [(INT64_MIN, 2), (INT64_MAX // 10 * 10, 2)], "got %r" % (got,))
    got = values("avg", name="ds_int", step=1000)
    check("downsample: avg of integers answers a double",
          got == [(-1000, 1 / 3), (0, 3.6)] and all(isinstance(v, float) for _, v in got),
          "got %r" % (got,))

    # paging: limit counts buckets, the cursor resumes at the next bucket
    pts = [(-5000 + 7 * i, (i * 37) % 101 - 50) for i in range(3000)]
    for lo in range(0, len(pts), 1000):
        r = post(sess, token, source, [rec(t, "ds_page", v) for t, v in pts[lo:lo + 1000]])
        check("downsample: seed ds_page %d 204" % lo, r.status_code == 204, "got %d" % r.status_code)
    for agg in AGGS:
        whole = read_page(sess, token, source, name="ds_page", step=60, agg=agg, limit=10000).json()
        paged, pages, err = read_buckets(sess, token, source, name="ds_page", step=60, agg=agg, limit=7)
        want = model_buckets(pts, 60, agg)
        check("downsample: %s in pages of 7 buckets equals one big page and the model" % agg,
              not err and paged == whole["records"] and whole["next_cursor"] is None and
              pages == (len(want) + 6) // 7 and same_buckets(paged, want, "ds_page") is None,
              "err %r pages %d of %d buckets, same %r" % (err, pages, len(want), paged == whole["records"]))
    r = read_page(sess, token, source, name="ds_page", step=60, agg="count", limit=3, start=-4990)
    j = r.json() if r.status_code == 200 else {}
    check("downsample: next_cursor is the start of the first bucket not given",
          [x["timestamp"] for x in j.get("records", [])] == [-5040, -4980, -4920] and
          j.get("next_cursor") == "-4860", "got %d %r" % (r.status_code, r.text[:300]))
    paged, pages, err = read_buckets(sess, token, source, name="ds_page", step=60, agg="count",
                                     limit=5, start=-4990, end=15000)
    check("downsample: pages keep the start/end range",
          not err and paged == read_page(sess, token, source, name="ds_page", step=60, agg="count",
                                         start=-4990, end=15000).json()["records"],
          "err %r" % (err,))
    got = values("count", name="ds_page", step=1000000, start=0)
    check("downsample: one bucket may hold many points (2285 in one)", got == [(0, 2285)],
          "got %r" % (got,))

    def q_err(label, detail, **params):
        r = sess.get(records_url(source, name="ds_int", **params), headers=auth(token), timeout=TIMEOUT)
        try:
            j = r.json()
        except ValueError:
            j = None
        check("downsample 422: %s" % label,
              r.status_code == 422 and j == {"detail": detail} and
              r.headers.get("Content-Type", "").split(";")[0].strip() == "application/json",
              "expected 422 %r, got %d %r" % (detail, r.status_code, r.text[:200]))

    step_msg = "step must be an integer number of seconds between 1 and 31557600000 (1000 years)."
    agg_msg = "agg must be one of avg, min, max, last, count."
    q_err("step without agg", "step needs agg, one of avg, min, max, last, count.", step=10)
    q_err("agg without step", "agg needs step, the seconds per bucket.", agg="avg")
    q_err("step=0", step_msg, step=0, agg="avg")
    q_err("step=-10", step_msg, step=-10, agg="avg")
    q_err("step=1.5", step_msg, step="1.5", agg="avg")
    q_err("step=abc", step_msg, step="abc", agg="avg")
    q_err("step= (empty)", step_msg, step="", agg="avg")
    q_err("step=31557600001", step_msg, step=31557600001, agg="avg")
    q_err("step=2^63", step_msg, step=1 << 63, agg="avg")
    q_err("agg=median", agg_msg, step=10, agg="median")
    q_err("agg=AVG (names are lowercase)", agg_msg, step=10, agg="AVG")
    q_err("agg= (empty)", agg_msg, step=10, agg="")
    q_err("step=0 without agg: the value first", step_msg, step=0)
    r = read_page(sess, token, source, name="ds_int", step=31557600000, agg="count")
    got = [(x["timestamp"], x["value"]) for x in r.json()["records"]] if r.status_code == 200 else r.text
    check("downsample: step=31557600000 (the largest) accepted",
          got == [(-31557600000, 6), (0, 5)], "got %d %r" % (r.status_code, got))


def cmd_genbody(source, name, n, out):
    n = int(n)
    body = {"data_source": source,
            "records": [rec(1700000000 + i, name, i * 3 - 7) for i in range(n)]}
    with open(out, "w") as f:
        json.dump(body, f)


def cmd_gzbody(source, name, n, out):
    n = int(n)
    body = json.dumps({"data_source": source,
                       "records": [rec(1600000000 + i, name, i + 0.5) for i in range(n)]})
    with open(out, "wb") as f:
        f.write(gzip.compress(body.encode()))


def cmd_verify_seq(token, source, name, n, label):
    """Records written by genbody: timestamp 1700000000+i, value 3i-7."""
    n = int(n)
    sess = requests.Session()
    got, pages, err = read_all(sess, token, source, name, limit=10000)
    if err:
        return bad(label, err)
    compare_series(label, got, {1700000000 + i: i * 3 - 7 for i in range(n)})
    r = read_page(sess, token, source, name=name)
    j = r.json() if r.status_code == 200 else {}
    if n > 1000:
        check(label + ": default limit is 1000 with a cursor",
              len(j.get("records", [])) == 1000 and isinstance(j.get("next_cursor"), str),
              "got %d records, next_cursor %r" % (len(j.get("records", [])), j.get("next_cursor")))


def cmd_verify_gz(token, source, name, n, label):
    n = int(n)
    sess = requests.Session()
    got, _, err = read_all(sess, token, source, name)
    if err:
        return bad(label, err)
    compare_series(label, got, {1600000000 + i: i + 0.5 for i in range(n)})


def cmd_expect_series(token, source, name, spec, label):
    """spec: JSON object {ts: value}; the series must equal it exactly."""
    sess = requests.Session()
    got, _, err = read_all(sess, token, source, name)
    if err:
        return bad(label, err)
    compare_series(label, got, {int(t): v for t, v in json.loads(spec).items()})


def raw_exchange(data, timeout=5):
    """Send raw bytes on a new connection; return (status, headers dict, body)."""
    u = urllib.parse.urlsplit(BASE)
    s = socket.create_connection((u.hostname, u.port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            c = s.recv(65536)
            if not c:
                break
            buf += c
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        hdrs = {k.strip().lower(): v.strip() for k, v in
                (x.split(":", 1) for x in lines[1:] if ":" in x)}
        want = int(hdrs.get("content-length", "0"))
        while len(body) < want:
            c = s.recv(65536)
            if not c:
                break
            body += c
        return status, hdrs, body
    finally:
        s.close()


def cmd_protocol(token):
    """Errors answered by the HTTP layer, as JSON (api.md)."""
    cases = [
        ("request line HTTP/2.0 -> 505", b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
         505, "HTTP version not supported."),
        ("garbage request line -> 400", b"GARBAGE\r\n\r\n", 400, "Bad request."),
        ("Content-Length: abc -> 400",
         b"POST /v1/data_sources/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
         400, "Bad request."),
        ("64 KB header -> 431", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"x" * 65536 +
         b"\r\n\r\n", 431, "Request header fields too large."),
        ("Transfer-Encoding: gzip -> 501",
         b"POST /v1/data_sources/ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
         501, "Transfer-Encoding not supported."),
        ("Expect: fancy -> 417",
         b"POST /v1/data_sources/ingest HTTP/1.1\r\nHost: x\r\nExpect: fancy\r\n"
         b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 2\r\n\r\n{}", 417, "Expectation failed."),
    ]
    for label, data, status, detail in cases:
        try:
            st, hdrs, body = raw_exchange(data)
            j = json.loads(body) if body else None
        except (OSError, ValueError) as e:
            bad("protocol: " + label, "exchange failed: %r" % (e,))
            continue
        check("protocol: " + label,
              st == status and j == {"detail": detail} and
              hdrs.get("content-type", "").split(";")[0] == "application/json",
              "expected %d %r, got %d %r %r" % (status, detail, st, hdrs.get("content-type"),
                                               body[:200]))
    st, hdrs, body = raw_exchange(b"GET /healthz HTTP/1.0\r\n\r\n")
    check("protocol: HTTP/1.0 request -> 200", st == 200 and json.loads(body or b"0") == {"status": "ok"},
          "got %d %r" % (st, body[:200]))
    st, hdrs, body = raw_exchange(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    check("protocol: HEAD /healthz -> 200", st == 200, "got %d" % st)
    r = requests.get(BASE + "/healthz", timeout=TIMEOUT)
    check("protocol: server healthy after malformed requests", r.status_code == 200,
          "got %d" % r.status_code)


def cmd_chunked(token, source):
    """A chunked request body (a streaming client) is accepted like a sized one."""
    def gen():
        yield json.dumps({"data_source": source, "records": []})[:-3].encode()
        yield b' [{"timestamp": 42, "name": "chunked", "value": 7}]}'
    r = requests.post(INGEST, data=gen(), headers=auth(token), timeout=TIMEOUT)
    check("chunked request body -> 204", r.status_code == 204,
          "got %d %r" % (r.status_code, r.text[:200]))
    got, _, err = read_all(requests.Session(), token, source, "chunked")
    if err:
        return bad("chunked request body read back", err)
    compare_series("chunked request body read back", got, {42: 7})


COMMANDS = {
    "protocol": cmd_protocol, "chunked": cmd_chunked,
    "history": cmd_history, "verify_model": cmd_verify_model, "dupkey": cmd_dupkey,
    "upsert": cmd_upsert, "numbers": cmd_numbers, "concurrent": cmd_concurrent,
    "keepalive": cmd_keepalive, "readapi": cmd_readapi, "genbody": cmd_genbody,
    "gzbody": cmd_gzbody, "verify_seq": cmd_verify_seq, "verify_gz": cmd_verify_gz,
    "expect_series": cmd_expect_series, "downsample": cmd_downsample,
}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.stderr.write("usage: tclient.py {%s} ARGS...\n" % "|".join(sorted(COMMANDS)))
        return 2
    try:
        COMMANDS[sys.argv[1]](*sys.argv[2:])
    except requests.RequestException as e:
        bad(sys.argv[1], "HTTP client error: %r" % (e,))
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
