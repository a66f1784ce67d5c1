#!/usr/bin/env python3
"""fill_client.py - ingest until the server refuses, and check what it acknowledged
(driven by test_disk_full.sh).

  fill BASE TOKEN SOURCE LEDGER FIRST MAX_S
      POST requests FIRST, FIRST+1, ... (each REQ_RECORDS records) until one is not
      answered 204 or MAX_S seconds pass. Appends every acknowledged request number
      to LEDGER; prints one JSON line: the number of the refused request, its status,
      detail, Content-Type and Retry-After, and how many were acknowledged.
  post BASE TOKEN SOURCE LEDGER N
      POST request N once; appends N to LEDGER on 204; prints its status.
  verify BASE TOKEN SOURCE LEDGER
      Reads every series back; prints "PASS ..." when every record of every request
      in LEDGER is there with its value, else "FAIL ...".

Request n holds REQ_RECORDS records: series s<j % SERIES>, timestamp
T0 + n * STEPS + j // SERIES, value n * REQ_RECORDS + j (an integer), j < REQ_RECORDS.
The values are distinct, so a record read back proves which request stored it.
"""
import http.client
import json
import sys
import time
import urllib.parse

REQ_RECORDS = 2000
SERIES = 20
STEPS = REQ_RECORDS // SERIES
T0 = 1_700_000_000
PAGE = 10000
TIMEOUT = 60


def body(source, n):
    recs = ",".join(
        '{"timestamp":%d,"name":"s%d","value":%d}'
        % (T0 + n * STEPS + j // SERIES, j % SERIES, n * REQ_RECORDS + j)
        for j in range(REQ_RECORDS))
    return ('{"data_source":"%s","records":[%s]}' % (source, recs)).encode()


def connect(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)


def post(conn, token, source, n):
    conn.request("POST", "/v1/data_sources/ingest", body=body(source, n),
                 headers={"Authorization": "Bearer " + token,
                          "Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, r.read(), r.getheader("Content-Type"), r.getheader("Retry-After")


def fill(base, token, source, ledger, first, max_s):
    conn = connect(base)
    deadline = time.monotonic() + max_s
    n, acked = first, 0
    with open(ledger, "a") as led:
        while True:
            status, data, ctype, retry = post(conn, token, source, n)
            if status != 204 or time.monotonic() > deadline:
                break
            led.write("%d\n" % n)
            acked += 1
            n += 1
    detail = None
    try:
        detail = json.loads(data).get("detail")
    except ValueError:
        pass
    print(json.dumps({"refused": n, "status": status, "detail": detail, "ctype": ctype,
                      "retry_after": retry, "acked": acked}))


def post_once(base, token, source, ledger, n):
    status = post(connect(base), token, source, n)[0]
    if status == 204:
        with open(ledger, "a") as led:
            led.write("%d\n" % n)
    print(status)


def read_series(conn, token, source, name):
    got, cursor = {}, None
    while True:
        q = {"name": name, "limit": PAGE}
        if cursor is not None:
            q["cursor"] = cursor
        conn.request("GET", "/v1/data_sources/%s/records?%s" % (source, urllib.parse.urlencode(q)),
                     headers={"Authorization": "Bearer " + token})
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError("GET records of %s answered %d: %r" % (name, r.status, data[:200]))
        j = json.loads(data)
        for rec in j["records"]:
            got[rec["timestamp"]] = rec["value"]
        cursor = j.get("next_cursor")
        if cursor is None:
            return got


def verify(base, token, source, ledger):
    acked = sorted({int(x) for x in open(ledger).read().split()})
    conn = connect(base)
    series = {k: read_series(conn, token, source, "s%d" % k) for k in range(SERIES)}
    missing, wrong = 0, 0
    for n in acked:
        for j in range(REQ_RECORDS):
            v = series[j % SERIES].get(T0 + n * STEPS + j // SERIES)
            if v is None:
                missing += 1
            elif v != n * REQ_RECORDS + j:
                wrong += 1
    total = len(acked) * REQ_RECORDS
    if missing or wrong or not acked:
        print("FAIL every acknowledged record reads back: %d of %d missing, %d wrong (%d requests)"
              % (missing, total, wrong, len(acked)))
        sys.exit(1)
    print("PASS every acknowledged record reads back (%d records of %d requests)"
          % (total, len(acked)))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "fill":
        fill(args[0], args[1], args[2], args[3], int(args[4]), float(args[5]))
    elif cmd == "post":
        post_once(args[0], args[1], args[2], args[3], int(args[4]))
    elif cmd == "verify":
        verify(args[0], args[1], args[2], args[3])
    else:
        sys.exit("usage: fill_client.py fill|post|verify ...")


if __name__ == "__main__":
    main()
