#!/usr/bin/env python3
"""prom_query_client.py - test_prometheus.sh's helper: the data, and the comparison of
the Prometheus query API of temporisd with Debian's prometheus as the reference.

  gen DIR T0 SOURCE   writes DIR/ours-N.json (JSON-API ingest bodies) and DIR/ref.om
                      (the same points as OpenMetrics, for promtool tsdb
                      create-blocks-from), two hours from T0 at 15 s and a few shapes
  compare OURS REF T0 runs every query of QUERIES (instant at several times, range at
                      several steps) and the metadata calls on both, and compares
                      them value by value: same label sets, same timestamps, values
                      equal within REL_TOL relative (ABS_TOL near zero)
  limits OURS T0      the 422s of query_max_series / query_max_points, the 400s of
                      unsupported constructs and bad parameters, POST form bodies
OURS is the API's base (http://127.0.0.1:PORT/prometheus/SOURCE) and TOKEN the env
PROM_TOKEN; REF is the reference's base. Prints PASS/FAIL/INFO lines (lib.sh's
report_helper).
"""
import json
import math
import os
import random
import sys
import urllib.error
import urllib.parse
import urllib.request

STEP_S = 15
SPAN_S = 2 * 3600
REL_TOL = 1e-9
ABS_TOL = 1e-12
SEED = 4
TOKEN = os.environ.get("PROM_TOKEN", "")
BATCH = 5000
FILLER = 30               # series of "filler": more than the test's query_max_series
DENSE_POINTS = 60000      # points of "dense": more than the test's query_max_points


def series_text(metric, labels):
    if not labels:
        return metric
    return "%s{%s}" % (metric, ",".join('%s="%s"' % (k, labels[k]) for k in sorted(labels)))


def dataset(t0):
    """[(metric, labels, [(ts, value)])] shared by both systems."""
    rnd = random.Random(SEED)
    out = []
    steps = SPAN_S // STEP_S
    for job, inst, code in (("api", "a", "200"), ("api", "a", "500"), ("api", "b", "200"),
                            ("web", "a", "200"), ("web", "c", "404"), ("web", "b", "500")):
        v, pts = 0, []
        for k in range(steps):
            v += rnd.randint(0, 50)
            if job == "web" and inst == "c" and k == steps // 2:
                v = rnd.randint(0, 5)                 # a counter reset
            pts.append((t0 + k * STEP_S, float(v)))
        out.append(("http_requests_total", {"job": job, "instance": inst, "code": code}, pts))
    for room in ("hall", "lab", "roof"):
        v, pts = 20.0, []
        for k in range(steps):
            v += rnd.gauss(0, 0.5)
            pts.append((t0 + k * STEP_S, round(v, 3)))
        out.append(("temperature_celsius", {"room": room}, pts))
    # gaps longer than the 5 minute lookback
    pts = [(t0 + k * STEP_S, float(k)) for k in range(steps) if (k // 40) % 2 == 0]
    out.append(("sparse_gauge", {}, pts))
    # a JSON-API name: ours stores "cpu.load", the reference the mapped "cpu_load"
    out.append(("cpu_load", {}, [(t0 + k * STEP_S, (k % 17) / 4.0) for k in range(steps)]))
    return out


def cmd_gen(outdir, t0, source):
    t0 = int(t0)
    data = dataset(t0)
    recs = []
    with open(os.path.join(outdir, "ref.om"), "w") as om:
        for metric, labels, pts in data:
            name = "cpu.load" if metric == "cpu_load" else series_text(metric, labels)
            for ts, v in pts:
                om.write("%s %r %d\n" % (series_text(metric, labels), v, ts))
                recs.append({"timestamp": ts, "name": name, "value": v})
        om.write("# EOF\n")
    for i in range(FILLER):
        recs += [{"timestamp": t0 + k * 60, "name": 'filler{i="%d"}' % i, "value": k}
                 for k in range(10)]
    recs += [{"timestamp": t0 - DENSE_POINTS + k, "name": "dense", "value": k}
             for k in range(DENSE_POINTS)]
    for n, i in enumerate(range(0, len(recs), BATCH)):
        with open(os.path.join(outdir, "ours-%03d.json" % n), "w") as f:
            json.dump({"data_source": source, "records": recs[i:i + BATCH]}, f)
    print("PASS data generated: %d series, %d records (%d of them for the reference)" % (
        len(data) + FILLER + 1, len(recs), sum(len(p) for _, _, p in data)))


# ---- HTTP ----

def get(base, path, params, token=None, post=False):
    """(status, decoded JSON or raw text)."""
    data = urllib.parse.urlencode(params, doseq=True)
    hdr = {"Authorization": "Bearer " + token} if token else {}
    if post:
        req = urllib.request.Request(base + path, data=data.encode(), headers=dict(
            hdr, **{"Content-Type": "application/x-www-form-urlencoded"}))
    else:
        req = urllib.request.Request(base + path + "?" + data, headers=hdr)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


# ---- comparison ----

def key_of(metric):
    return tuple(sorted(metric.items()))


def close(a, b):
    if a == b:
        return True
    fa, fb = float(a), float(b)
    if math.isnan(fa) and math.isnan(fb):
        return True
    return abs(fa - fb) <= max(ABS_TOL, REL_TOL * max(abs(fa), abs(fb)))


def diff_result(ours, ref):
    """None when the two data objects agree, else what differs."""
    if ours.get("resultType") != ref.get("resultType"):
        return "resultType %r vs %r" % (ours.get("resultType"), ref.get("resultType"))
    rt = ref["resultType"]
    if rt == "scalar":
        o, r = ours["result"], ref["result"]
        if o[0] != r[0] or not close(o[1], r[1]):
            return "scalar %r vs %r" % (o, r)
        return None
    om = {key_of(s["metric"]): s for s in ours["result"]}
    rm = {key_of(s["metric"]): s for s in ref["result"]}
    if set(om) != set(rm):
        return "label sets: only ours %s, only the reference %s" % (
            sorted(set(om) - set(rm))[:3], sorted(set(rm) - set(om))[:3])
    for k, rs in rm.items():
        os_ = om[k]
        if rt == "vector":
            pairs = [(os_["value"], rs["value"])]
            if len(pairs[0][0]) != 2:
                return "%s: bad value %r" % (k, os_["value"])
        else:
            if len(os_["values"]) != len(rs["values"]):
                return "%s: %d points vs %d" % (k, len(os_["values"]), len(rs["values"]))
            pairs = list(zip(os_["values"], rs["values"]))
        for o, r in pairs:
            if abs(float(o[0]) - float(r[0])) > 1e-6 or not close(o[1], r[1]):
                return "%s: %r vs %r" % (dict(k), o, r)
    return None


# (query, kinds): "i" instant at several times, "r" range at several steps
QUERIES = [
    ("http_requests_total", "ir"),
    ('http_requests_total{code="200"}', "ir"),
    ('http_requests_total{code!="200"}', "i"),
    ('http_requests_total{job=~"api|web",instance!~"a.*"}', "ir"),
    ('{__name__=~"temp.*"}', "i"),
    ("rate(http_requests_total[5m])", "ir"),
    ('rate(http_requests_total{instance="c"}[10m])', "r"),
    ("irate(http_requests_total[1m])", "ir"),
    ("increase(http_requests_total[10m])", "ir"),
    ("delta(temperature_celsius[10m])", "ir"),
    ("avg_over_time(temperature_celsius[10m])", "ir"),
    ("min_over_time(temperature_celsius[7m])", "i"),
    ("max_over_time(temperature_celsius[7m])", "r"),
    ("sum_over_time(temperature_celsius[3m])", "i"),
    ("count_over_time(sparse_gauge[10m])", "ir"),
    ("sum by (code) (rate(http_requests_total[5m]))", "ir"),
    ("sum without (instance) (rate(http_requests_total[5m]))", "ir"),
    ("sum(rate(http_requests_total[5m])) by (job)", "ir"),
    ("avg(temperature_celsius)", "ir"),
    ("max by (room) (temperature_celsius)", "i"),
    ("min(temperature_celsius)", "r"),
    ("count(http_requests_total)", "ir"),
    ("count by (job) (http_requests_total)", "i"),
    ("topk(2, temperature_celsius)", "i"),
    ("topk(3, rate(http_requests_total[5m]))", "i"),
    ("temperature_celsius * 2 + 1", "ir"),
    ("100 - temperature_celsius / 4", "i"),
    ("temperature_celsius > 20", "ir"),
    ("temperature_celsius > bool 20", "ir"),
    ("-temperature_celsius", "i"),
    ("2 ^ 3 * 4 % 5", "ir"),
    ("sparse_gauge", "ir"),
    ("cpu_load", "ir"),
    ("http_requests_total offset 10m", "i"),
    ("rate(http_requests_total[5m] offset 5m)", "r"),
    ("sum(increase(http_requests_total[1h]))", "i"),
]


def cmd_compare(ours, ref, t0):
    t0 = int(t0)
    times = [t0 + 600, t0 + 3600 + 7, t0 + SPAN_S - 1, t0 + SPAN_S + 200, t0 - 100]
    ranges = [(t0, t0 + SPAN_S, "60"), (t0 + 1800.5, t0 + 3000, "7"), (t0 + 300, t0 + 900, "15s"),
              (t0 - 600, t0 + SPAN_S + 900, "5m")]
    asked = agreed = 0
    bad = []
    for q, kinds in QUERIES:
        calls = []
        if "i" in kinds:
            calls += [("/api/v1/query", {"query": q, "time": t}) for t in times]
        if "r" in kinds:
            calls += [("/api/v1/query_range", {"query": q, "start": s, "end": e, "step": st})
                      for s, e, st in ranges]
        for path, params in calls:
            asked += 1
            so, o = get(ours, path, params, TOKEN)
            sr, r = get(ref, path, params)
            why = None
            if so != 200 or sr != 200:
                why = "status %d vs %d: %s" % (so, sr, str(o)[:200])
            else:
                why = diff_result(o["data"], r["data"])
            if why:
                bad.append("%s %s: %s" % (path, params, why))
            else:
                agreed += 1
    check("%d of %d query and query_range answers equal the reference's (values within "
          "%g relative)" % (agreed, asked, REL_TOL), not bad, "; ".join(bad[:5]))
    meta(ours, ref, t0)


def meta(ours, ref, t0):
    span = {"start": t0 - 3600, "end": t0 + SPAN_S + 3600}
    for path, params in (
            ("/api/v1/series", dict(span, **{"match[]": ['http_requests_total{job="web"}',
                                                         "temperature_celsius"]})),
            ("/api/v1/labels", dict(span, **{"match[]": ["http_requests_total"]})),
            ("/api/v1/label/job/values", dict(span, **{"match[]": ["http_requests_total"]})),
            ("/api/v1/label/__name__/values",
             dict(span, **{"match[]": ['{__name__=~"http.*|temp.*|sparse.*|cpu.*"}']})),
            ("/api/v1/label/room/values", {"match[]": ["temperature_celsius"]})):
        so, o = get(ours, path, params, TOKEN)
        sr, r = get(ref, path, params)
        if path.endswith("/series"):
            same = so == sr == 200 and sorted(map(key_of, o["data"])) == sorted(map(key_of, r["data"]))
        else:
            same = so == sr == 200 and o["data"] == r["data"]
        check("%s %s: the reference's answer" % (path, params.get("match[]", "")), same,
              "ours %d %s, reference %d %s" % (so, str(o)[:300], sr, str(r)[:300]))


def check(name, ok, detail=""):
    print("PASS %s" % name if ok else "FAIL %s: %s" % (name, detail))


def cmd_limits(ours, t0):
    t0 = int(t0)
    st, b = get(ours, "/api/v1/query", {"query": "filler", "time": t0 + 300}, TOKEN)
    check("a query selecting more than query_max_series: 422 execution naming the limit",
          st == 422 and b.get("errorType") == "execution" and "max_series" in b.get("error", ""),
          "%d %s" % (st, b))
    st, b = get(ours, "/api/v1/query", {"query": "count_over_time(dense[1d])", "time": t0},
                TOKEN)
    check("a query loading more than query_max_points: 422 execution naming the limit",
          st == 422 and b.get("errorType") == "execution" and "max_points" in b.get("error", ""),
          "%d %s" % (st, b))
    for q, word in (("histogram_quantile(0.9, x)", "histogram_quantile"),
                    ("a + on(job) b", "vector"), ("x[5m:1m]", "subquer"), ("foo and bar", "and")):
        st, b = get(ours, "/api/v1/query", {"query": q}, TOKEN)
        check("unsupported %r: 400 bad_data naming it" % q,
              st == 400 and b.get("errorType") == "bad_data" and word in b.get("error", ""),
              "%d %s" % (st, b))
    for params, word in (({"query": "up", "time": "yesterday"}, "time"),
                         ({"query": "up", "start": 1, "end": 2, "step": "x"}, "step"),
                         ({"query": "up", "start": 10, "end": 2, "step": "1"}, "end"),
                         ({"query": "up", "start": 0, "end": 200000, "step": "1"}, "11,000"),
                         ({"start": 1, "end": 2, "step": "1"}, "query")):
        path = "/api/v1/query" if "start" not in params else "/api/v1/query_range"
        st, b = get(ours, path, params, TOKEN)
        check("%s %s: 400 bad_data" % (path, params), st == 400 and b.get("errorType") ==
              "bad_data" and word in b.get("error", ""), "%d %s" % (st, b))
    st, b = get(ours, "/api/v1/query", {"query": "count(temperature_celsius)", "time": "1e9"},
                TOKEN, post=True)
    check("POST with a form body works as GET (empty vector long before the data)",
          st == 200 and b["data"] == {"resultType": "vector", "result": []}, "%d %s" % (st, b))
    st, b = get(ours, "/api/v1/label/job/values", {}, TOKEN)
    check("label values over more series than query_max_series (no match[]): 422 execution",
          st == 422 and b.get("errorType") == "execution", "%d %s" % (st, b))
    st, b = get(ours, "/api/v1/series", {}, TOKEN)
    check("series without match[]: 400 bad_data", st == 400 and b.get("errorType") == "bad_data",
          "%d %s" % (st, b))
    st, b = get(ours, "/api/v1/status/buildinfo", {}, TOKEN)
    check("status/buildinfo answers a Prometheus version",
          st == 200 and b["data"]["version"].startswith("2."), "%d %s" % (st, b))
    st, b = get(ours, "/api/v1/query", {"query": "up"}, "ts_not_a_token")
    check("a wrong token: 401", st == 401, "%d %s" % (st, b))
    st, b = get(ours.rsplit("/", 1)[0] + "/nosuchsource", "/api/v1/query", {"query": "up"}, TOKEN)
    check("an unknown source: 404 in Prometheus's shape",
          st == 404 and b.get("status") == "error", "%d %s" % (st, b))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"gen": cmd_gen, "compare": cmd_compare, "limits": cmd_limits}[cmd](*args)


if __name__ == "__main__":
    main()
