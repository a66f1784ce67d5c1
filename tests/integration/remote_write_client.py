"""remote_write_client.py - Prometheus remote_write 1.0 requests built byte by byte
(protobuf WriteRequest, snappy block format), sent to temporisd's /api/v1/write: what
is stored (read back through the JSON read API) and each error status Prometheus
acts on (4xx: drop, 5xx: retry). Checks print "PASS name" / "FAIL name: why"
(tcheck.py). Usage: remote_write_client.py BASE_URL TOKEN SOURCE ARCHIVED_SOURCE"""
import json
import math
import struct
import sys
import urllib.error
import urllib.parse
import urllib.request

import tcheck

BASE, TOKEN, SOURCE, ARCHIVED = sys.argv[1:5]
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


# ---- protobuf, by hand: only what WriteRequest needs ----

def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def label(name, value):
    return field_bytes(1, name.encode()) + field_bytes(2, value.encode())


def sample(value, ts_ms):
    return varint(1 << 3 | 1) + struct.pack("<d", value) + varint(2 << 3 | 0) + varint(ts_ms)


def timeseries(labels, samples):
    body = b"".join(field_bytes(1, label(k, v)) for k, v in labels)
    body += b"".join(field_bytes(2, sample(v, t)) for v, t in samples)
    return field_bytes(1, body)


def write_request(*series):
    return b"".join(series)


def snappy(data):
    """Snappy's block format with literals only: valid, if not small."""
    out = bytearray(varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", n)
        out += chunk
    return bytes(out)


# ---- HTTP ----

def post(body, source=SOURCE, token=TOKEN, headers=None):
    url = BASE + "/api/v1/write"
    if source is not None:
        url += "?data_source=" + urllib.parse.quote(source)
    h = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
         "X-Prometheus-Remote-Write-Version": "0.1.0"}
    if token is not None:
        h["Authorization"] = "Bearer " + token
    h.update(headers or {})
    rq = urllib.request.Request(url, data=body, headers=h, method="POST")
    try:
        with urllib.request.urlopen(rq, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def records(name, source=SOURCE):
    url = "%s/v1/data_sources/%s/records?name=%s" % (BASE, source, urllib.parse.quote(name, safe=""))
    rq = urllib.request.Request(url, headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(rq, timeout=30) as r:
        return [(x["timestamp"], x["value"]) for x in json.load(r)["records"]]


def expect(label_, got, want_status):
    status, body = got
    tcheck.check(label_, status == want_status, "expected %d, got %d %r" % (want_status, status, body[:200]))


def expect_records(label_, name, want):
    got = records(name)
    tcheck.check(label_, got == want, "%s: expected %r, got %r" % (name, want, got))


# Labels in any order land on one series, sorted, with __name__ as the metric.
req = write_request(
    timeseries([("job", "api"), ("__name__", "http_requests_total"), ("code", "200")],
               [(5.0, 1718841600123), (6.0, 1718841601000)]),
    timeseries([("__name__", "http_requests_total"), ("code", "200"), ("job", "api")],
               [(7.0, 1718841602999)]))
expect("remote_write: a WriteRequest -> 204", post(snappy(req)), 204)
expect_records("remote_write: labels sorted, ms floored to seconds",
               'http_requests_total{code="200",job="api"}',
               [(1718841600, 5.0), (1718841601, 6.0), (1718841602, 7.0)])

req = write_request(timeseries([("__name__", "g"), ("path", 'C:\\x "y"\nz')], [(1.5, -1)]))
expect("remote_write: escapes and a negative time -> 204", post(snappy(req)), 204)
expect_records("remote_write: label values escaped as Prometheus does; -1 ms is second -1",
               'g{path="C:\\\\x \\"y\\"\\nz"}', [(-1, 1.5)])

req = write_request(timeseries([("__name__", "s")], [(1.0, 1000), (STALE_NAN, 2000),
                                                     (math.inf, 3000), (-math.inf, 4000),
                                                     (math.nan, 5000), (2.0, 6000)]))
expect("remote_write: staleness markers and non-finite values -> 204", post(snappy(req)), 204)
expect_records("remote_write: staleness markers, NaN and Inf are not stored", "s",
               [(1, 1.0), (6, 2.0)])

# Real label sets are long: a name far over 256 bytes is stored and read back.
long_labels = [("__name__", "k8s_pod_info")] + [("label_%02d" % i, "value-%02d-" % i + "x" * 40)
                                                for i in range(40)]
req = write_request(timeseries(long_labels, [(1.0, 1718841600000)]))
name = "k8s_pod_info{" + ",".join('%s="%s"' % kv for kv in sorted(long_labels[1:])) + "}"
expect("remote_write: a %d-byte series name -> 204" % len(name), post(snappy(req)), 204)
expect_records("remote_write: the long series reads back", name, [(1718841600, 1.0)])

huge = [("__name__", "huge")] + [("l%03d" % i, "v" * 100) for i in range(60)]
expect("remote_write: a series name over 4096 bytes -> 400",
       post(snappy(write_request(timeseries(huge, [(1.0, 1000)])))), 400)
expect("remote_write: a series without __name__ -> 400",
       post(snappy(write_request(timeseries([("job", "x")], [(1.0, 1000)])))), 400)
expect("remote_write: an empty WriteRequest -> 204", post(snappy(b"")), 204)
expect("remote_write: not snappy -> 400", post(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"), 400)
expect("remote_write: snappy of a non-protobuf -> 400", post(snappy(b"\x0a\xff\xff\xff\xff\x0f")), 400)
ok_body = snappy(write_request(timeseries([("__name__", "u")], [(1.0, 1000)])))
expect("remote_write: unknown data source -> 404", post(ok_body, source="no_such_source"), 404)
expect("remote_write: archived data source -> 409", post(ok_body, source=ARCHIVED), 409)
expect("remote_write: no data source -> 400", post(ok_body, source=None), 400)
expect("remote_write: the data source in X-Temporis-Data-Source -> 204",
       post(ok_body, source=None, headers={"X-Temporis-Data-Source": SOURCE}), 204)
expect("remote_write: an X-Temporis-Data-Source longer than any name -> 400",
       post(ok_body, source=None, headers={"X-Temporis-Data-Source": "s" * 300}), 400)
expect("remote_write: no token -> 401", post(ok_body, token=None), 401)
expect("remote_write: a wrong token -> 401", post(ok_body, token="ts_wrong"), 401)
expect("remote_write: Content-Encoding gzip -> 415", post(ok_body, headers={"Content-Encoding": "gzip"}), 415)
big = snappy(write_request(*[timeseries([("__name__", "big"), ("i", str(i))], [(1.0, 1000)])
                             for i in range(40000)]))
expect("remote_write: a body over max_body_bytes -> 413", post(big), 413)
sys.exit(tcheck.exit_status())
