"""influx_client.py - Debian's python3-influxdb (InfluxDBClient) writing into
temporisd's InfluxDB 1.x routes, then each point read back through the JSON read
API with its exact value and type. Checks print "PASS name" / "FAIL name: why"
(tcheck.py). Usage: influx_client.py HOST PORT TOKEN SOURCE"""
import json
import sys
import urllib.parse
import urllib.request

from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError

import tcheck

HOST, PORT, TOKEN, SOURCE = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def records(name):
    url = "http://%s:%d/v1/data_sources/%s/records?name=%s" % (
        HOST, PORT, SOURCE, urllib.parse.quote(name, safe=""))
    rq = urllib.request.Request(url, headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(rq, timeout=30) as r:
        return [(x["timestamp"], x["value"]) for x in json.load(r)["records"]]


def same(got, want):
    """Equal values of equal JSON types (1 is not 1.0, True is not 1)."""
    return [(t, v, type(v)) for t, v in got] == [(t, v, type(v)) for t, v in want]


def expect_series(label, name, want):
    try:
        got = records(name)
    except Exception as e:  # noqa: BLE001 - any failure is the check's
        tcheck.bad(label, "read %s: %r" % (name, e))
        return
    tcheck.check(label, same(got, want), "%s: expected %r, got %r" % (name, want, got))


client = InfluxDBClient(host=HOST, port=PORT, username="telegraf", password=TOKEN,
                        database=SOURCE, timeout=30)

tcheck.check("python influxdb: ping reports the InfluxDB version", client.ping() != "",
             "empty version")

points = [
    {"measurement": "cpu", "tags": {"region": "eu", "host": "a"}, "time": 1718841600,
     "fields": {"usage_user": 12.5, "usage_idle": 80, "cores": 8}},
    {"measurement": "cpu", "tags": {"host": "a", "region": "eu"}, "time": 1718841660,
     "fields": {"usage_user": 13.25}},
    {"measurement": "disk", "tags": {"path": "/var/lib \"x\""}, "time": 1718841600,
     "fields": {"free": 123456789012, "healthy": True, "state": "ok"}},
]
try:
    ok = client.write_points(points, time_precision="s")
    tcheck.check("python influxdb: write_points(time_precision='s') succeeds", ok, "returned False")
except InfluxDBClientError as e:
    tcheck.bad("python influxdb: write_points(time_precision='s') succeeds", repr(e))

# Floats stay floats, Python ints are sent with the i suffix and stay integers,
# booleans are 0/1 integers, strings are not stored; tags in either order, one series.
expect_series("python influxdb: float field read back, tags sorted into one series",
              'cpu_usage_user{host="a",region="eu"}', [(1718841600, 12.5), (1718841660, 13.25)])
expect_series("python influxdb: integer field read back as an integer",
              'cpu_usage_idle{host="a",region="eu"}', [(1718841600, 80)])
expect_series("python influxdb: int64-sized integer exact",
              'disk_free{path="/var/lib \\"x\\""}', [(1718841600, 123456789012)])
expect_series("python influxdb: boolean stored as 1",
              'disk_healthy{path="/var/lib \\"x\\""}', [(1718841600, 1)])
expect_series("python influxdb: string field not stored",
              'disk_state{path="/var/lib \\"x\\""}', [])

# The default precision: the client sends nanoseconds from an RFC 3339 time.
try:
    client.write_points([{"measurement": "mem", "tags": {"host": "b"},
                          "time": "2024-06-20T01:00:00.750Z", "fields": {"used": 0.5}}])
    tcheck.ok("python influxdb: write_points with the default precision succeeds")
except InfluxDBClientError as e:
    tcheck.bad("python influxdb: write_points with the default precision succeeds", repr(e))
expect_series("python influxdb: nanoseconds floored to their second",
              'mem_used{host="b"}', [(1718845200, 0.5)])

# Errors come back as InfluxDB's {"error": ...} with the status.
bad = InfluxDBClient(host=HOST, port=PORT, username="telegraf", password="ts_not_a_token",
                     database=SOURCE, timeout=30)
try:
    bad.write_points([{"measurement": "m", "fields": {"v": 1.0}, "time": 1}], time_precision="s")
    tcheck.bad("python influxdb: a wrong token is refused", "no error")
except InfluxDBClientError as e:
    tcheck.check("python influxdb: a wrong token is refused", e.code == 401 and
                 "Invalid access token." in str(e.content), "%r %r" % (e.code, e.content))
try:
    client.write_points([{"measurement": "m", "fields": {"v": 1.0}, "time": 1}],
                        time_precision="s", database="no_such_source")
    tcheck.bad("python influxdb: an unknown database is 404", "no error")
except InfluxDBClientError as e:
    tcheck.check("python influxdb: an unknown database is 404", e.code == 404,
                 "%r %r" % (e.code, e.content))

sys.exit(tcheck.exit_status())
