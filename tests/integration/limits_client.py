#!/usr/bin/env python3
"""limits_client.py - hostile and overload clients for test_limits.sh.

Talks raw HTTP/1.1 over sockets (requests would hide what is on the wire) to the
server at $TEMPORIS_URL. Prints "PASS name" / "FAIL name: why" per check and
"INFO text" for measured figures. After every hostile case it checks that the
server's children are the same processes (no crash, no respawn) and that a normal
ingest still gets 204 quickly (no stall).

Env: TEMPORIS_URL, LIMITS_TOKEN, LIMITS_SOURCE, LIMITS_MASTER_PID,
LIMITS_CHILDREN (pids at start), LIMITS_WRITER_PID.
"""
import json
import os
import resource
import signal
import socket
import sys
import threading
import time
import urllib.parse

from tcheck import bad, check, exit_status, info, ok

BASE = os.environ.get("TEMPORIS_URL", "http://127.0.0.1:8080")
_HOSTPORT = urllib.parse.urlsplit(BASE)
ADDR = (_HOSTPORT.hostname, _HOSTPORT.port)
TOKEN = os.environ.get("LIMITS_TOKEN", "")
SOURCE = os.environ.get("LIMITS_SOURCE", "store_metrics")
MASTER = int(os.environ.get("LIMITS_MASTER_PID", "0"))
CHILDREN = sorted(int(p) for p in os.environ.get("LIMITS_CHILDREN", "").split())
WRITER = int(os.environ.get("LIMITS_WRITER_PID", "0"))

INGEST = "/v1/data_sources/ingest"
IO_TIMEOUT_S = 30            # no answer within this is a hang
NORMAL_MAX_S = 1.0           # a normal ingest on an idle server answers well within this
BUSY_LATENCY_MAX_S = 0.5     # a normal client next to slow ones
CUT_EARLY = 0.9              # an idle_timeout_s cut: not before 0.9 x the timeout ...
CUT_LATE_S = 1.5             # ... and at most this much after it
BUSY = "Server is busy, retry later."
BAD_JSON = "Request body is not valid JSON."
BAD_NAME = ("records[0].name must be a non-empty string of at most 4096 bytes "
            "without control characters.")


# ---- raw HTTP ---------------------------------------------------------------

class Closed(Exception):
    """The server closed (or reset) the connection before a whole response."""


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # lower-case name -> last value
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    def detail(self):
        try:
            j = json.loads(self.body)
        except ValueError:
            return None
        return j.get("detail") if isinstance(j, dict) else None

    def __repr__(self):
        return "<%s %r %r>" % (self.status, self.headers, self.body[:200])


class Conn:
    def __init__(self, timeout=IO_TIMEOUT_S):
        self.sock = socket.create_connection(ADDR, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        if self.sock is None:
            raise Closed("incomplete response %r" % self.buf[:200])
        try:
            chunk = self.sock.recv(1 << 16)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed("connection closed after %d buffered bytes" % len(self.buf))
        self.buf += chunk

    @classmethod
    def parse(cls, data):
        """Resp from bytes already received."""
        c = cls.__new__(cls)
        c.sock = None
        c.buf = data
        return c.read_response()

    def read_response(self, head_request=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if head_request or status < 200 or status in (204, 304):
            n = 0
        elif "content-length" in headers:
            n = int(headers["content-length"])
        else:
            raise Closed("response without Content-Length: %r" % head)
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return Resp(status, headers, body)

    def closed_within(self, seconds):
        """Seconds until EOF/reset (buffered responses skipped), or None if still open."""
        start = time.monotonic()
        self.sock.settimeout(0.05)
        try:
            while time.monotonic() - start < seconds:
                try:
                    chunk = self.sock.recv(1 << 16)
                except socket.timeout:
                    continue
                except (ConnectionResetError, BrokenPipeError):
                    return time.monotonic() - start
                if not chunk:
                    return time.monotonic() - start
                self.buf += chunk
            return None
        finally:
            self.sock.settimeout(IO_TIMEOUT_S)

    def close(self):
        self.sock.close()


def request_bytes(method, path, body=None, headers=None, token=None, close=False):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % ADDR]
    if token:
        lines.append("Authorization: Bearer " + token)
    if body is not None:
        lines.append("Content-Length: %d" % len(body))
    if close:
        lines.append("Connection: close")
    lines.extend(headers or [])
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def ingest_bytes(body, **kw):
    return request_bytes("POST", INGEST, body, token=TOKEN, **kw)


def exchange(data, timeout=IO_TIMEOUT_S):
    """One request on a fresh connection: (Resp or None, seconds, error text)."""
    start = time.monotonic()
    c = None
    try:
        c = Conn(timeout)
        c.send(data)
        r = c.read_response()
        return r, time.monotonic() - start, None
    except (OSError, Closed) as e:
        return None, time.monotonic() - start, repr(e)
    finally:
        if c:
            c.close()


def body_of(records, source=None):
    return json.dumps({"data_source": source or SOURCE, "records": records}).encode()


def one_record(name="normal", ts=1718841600, value=1):
    return body_of([{"timestamp": ts, "name": name, "value": value}])


def expect_error(name, r, status, detail, err=None):
    if r is None:
        return bad(name, "no response: %s" % err)
    ctype = (r.header("content-type") or "").split(";")[0].strip().lower()
    problems = []
    if r.status != status:
        problems.append("status %s (expected %s)" % (r.status, status))
    if ctype != "application/json":
        problems.append("Content-Type %r" % r.header("content-type"))
    if r.detail() != detail:
        problems.append("body %r (expected detail %r)" % (r.body[:200], detail))
    if problems:
        return bad(name, "; ".join(problems))
    ok(name)


def get_json(path):
    r, _, err = exchange(request_bytes("GET", path, token=TOKEN))
    if r is None or r.status != 200:
        raise RuntimeError("GET %s: %s" % (path, err or r))
    return json.loads(r.body)


def series_names():
    j = get_json("/v1/data_sources/%s/series" % SOURCE)
    return {s["name"]: s for s in j["series"]}


def read_series(name):
    q = urllib.parse.urlencode({"name": name, "limit": 10000})
    return get_json("/v1/data_sources/%s/records?%s" % (SOURCE, q))["records"]


# ---- server health ------------------------------------------------------------

def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def current_children():
    kids = []
    try:
        for task in os.listdir("/proc/%d/task" % MASTER):
            with open("/proc/%d/task/%s/children" % (MASTER, task)) as f:
                kids.extend(int(p) for p in f.read().split())
    except OSError:
        return None
    return sorted(kids)


def worker_pids():
    return [p for p in CHILDREN if p != WRITER]


def vm_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def server_sane(label, max_s=NORMAL_MAX_S):
    """Same child processes as at start, none a zombie, and a normal ingest is 204 fast.
    Returns the seconds that ingest took."""
    kids = current_children()
    dead = [p for p in CHILDREN if proc_state(p) in (None, "Z")]
    check("%s: no worker or writer crashed (same pids %s)" % (label, CHILDREN),
          kids == CHILDREN and not dead and proc_state(MASTER) not in (None, "Z"),
          "children now %s, dead %s" % (kids, dead))
    r, secs, err = exchange(ingest_bytes(one_record("sanity")))
    check("%s: then a normal ingest gets 204 within %.1fs" % (label, max_s),
          r is not None and r.status == 204 and secs < max_s,
          "got %s after %.2fs (%s)" % (r, secs, err))
    return secs


# ---- max_connections ----------------------------------------------------------

def open_served(n, label):
    """n keep-alive connections, each proven accepted by an answered request."""
    conns, wrong = [], []
    for i in range(n):
        c = Conn()
        c.send(request_bytes("GET", "/healthz"))
        r = c.read_response()
        if r.status != 200:
            wrong.append("connection %d: GET /healthz answered %r" % (i + 1, r))
        conns.append(c)
    check(label, not wrong, "; ".join(wrong))
    return conns


def refused_once(label):
    """One connection over the limit: 503 busy with Retry-After, then closed."""
    start = time.monotonic()
    c = Conn()
    try:
        c.send(request_bytes("GET", "/healthz"))
        r = c.read_response()
    except (OSError, Closed) as e:
        r = None
        err = repr(e)
    else:
        err = None
    ms = (time.monotonic() - start) * 1000
    expect_error("%s: 503 JSON busy" % label, r, 503, BUSY, err)
    if r is not None:
        check("%s: Retry-After: 1" % label, r.header("retry-after") == "1",
              "headers %r" % r.headers)
        check("%s: Connection: close" % label, r.header("connection") == "close",
              "headers %r" % r.headers)
        closed = c.closed_within(3)
        check("%s: the server closes it at once" % label, closed is not None and closed < 1,
              "still open after 3s" if closed is None else "closed after %.2fs" % closed)
        info("over max_connections: 503 answered %.1f ms after connecting" % ms)
    c.close()


def cmd_conns(maxconn):
    n = int(maxconn)
    conns = open_served(n, "max_connections: %d idle keep-alive connections are served" % n)
    # At the limit a new client closes the oldest idle connection and is served.
    r, _, err = exchange(request_bytes("GET", "/healthz"))
    check("max_connections: connection %d of %d allowed is served, not refused" % (n + 1, n),
          r is not None and r.status == 200, "got %r (%s)" % (r, err))
    t = conns[0].closed_within(2)
    check("max_connections: the oldest idle connection made room (the server closed it)",
          t is not None, "still open after 2 s")
    conns[0].close()
    for i, c in enumerate(conns[1:], start=2):
        c.send(ingest_bytes(one_record("held_conn", ts=1718841600 + i)))
        r = c.read_response()
        check("max_connections: newer idle connection %d still served (204)" % i,
              r.status == 204, "got %r" % r)
    for c in conns[1:]:
        c.close()
    time.sleep(0.3)
    # Every connection with a request in progress: nothing to close, so 503.
    busy = []
    for i in range(n):
        c = Conn()
        data = ingest_bytes(one_record("busy_conn", ts=1718842600 + i))
        c.send(data[:-3])
        busy.append((c, data[-3:]))
    time.sleep(0.3)
    refused_once("all %d connections mid-request: connection %d" % (n, n + 1))
    for i, (c, rest) in enumerate(busy):
        c.send(rest)
        r = c.read_response()
        check("max_connections: request in progress on connection %d is not cut (204)" % (i + 1),
              r.status == 204, "got %r" % r)
    for c, _ in busy:
        c.close()
    # The worker notices the closes asynchronously: allow it a moment.
    deadline = time.monotonic() + 2
    while True:
        r, _, err = exchange(request_bytes("GET", "/healthz"))
        if (r is not None and r.status == 200) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    check("max_connections: after closing them a new connection is served",
          r is not None and r.status == 200, "got %r (%s)" % (r, err))
    again = open_served(n, "max_connections: %d connections can be open again" % n)
    for c in again:
        c.close()
    time.sleep(0.2)
    server_sane("max_connections")


def normal_client(stop, lat, errors, ts0):
    """A normal client: one ingest on a new connection every 0.1 s until stop is set."""
    i = 0
    while not stop.is_set():
        r, took, err = exchange(ingest_bytes(one_record("through_flood", ts=ts0 + i)), timeout=5)
        if r is None or r.status != 204:
            errors.append(err or repr(r))
        lat.append(took)
        i += 1
        time.sleep(0.1)


def hostile_sockets(n, head, per_s, seconds, label):
    """n connections that connect and then send nothing (head empty) or trickle head
    one byte per socket per second, for seconds; a normal client meanwhile."""
    stop, lat, errors = threading.Event(), [], []
    socks, opened, refused = [], 0, 0
    normal = threading.Thread(target=normal_client,
                              args=(stop, lat, errors, 1718900000 + len(label) * 1000))
    normal.start()
    start = time.monotonic()
    for _ in range(n):
        try:
            s = socket.create_connection(ADDR, timeout=5)
            s.setblocking(False)
            socks.append([s, 0])
            opened += 1
        except OSError:
            refused += 1
    sent_at = time.monotonic()
    while time.monotonic() - start < seconds:
        if head and time.monotonic() - sent_at >= 1.0 / per_s:
            sent_at = time.monotonic()
            for entry in socks:
                if entry[0] is None or entry[1] >= len(head):
                    continue
                try:
                    entry[0].send(head[entry[1]:entry[1] + 1])
                    entry[1] += 1
                except OSError:
                    entry[0].close()
                    entry[0] = None
        time.sleep(0.05)
    stop.set()
    normal.join()
    closed = 0
    for entry in socks:
        if entry[0] is None:
            closed += 1
            continue
        got = b""
        try:
            while True:
                chunk = entry[0].recv(1 << 16)
                if not chunk:
                    closed += 1
                    break
                got += chunk
        except BlockingIOError:
            if got.startswith(b"HTTP/1.1 408"):
                closed += 1         # answered, the close still on its way
        except OSError:
            closed += 1
        entry[0].close()
    info("%s: %d connections opened (%d failed), %d closed by the server; %d normal ingests, "
         "max latency %.1f ms" % (label, opened, refused, closed, len(lat),
                                  max(lat) * 1000 if lat else -1))
    check("%s: a normal client is served throughout (%d ingests, all 204, each < 1 s)"
          % (label, len(lat)),
          len(lat) >= seconds * 3 and not errors and max(lat) < 1.0,
          "errors %r, max latency %.2fs" % (errors[:3], max(lat) if lat else -1))
    return closed


def cmd_exhaust(idle_n, slow_n, seconds):
    idle_n, slow_n, seconds = int(idle_n), int(slow_n), float(seconds)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, idle_n + slow_n + 1024)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    hostile_sockets(idle_n, b"", 1, seconds, "%d idle connections" % idle_n)
    time.sleep(0.5)
    head = request_bytes("GET", "/healthz", headers=["X-Pad: " + "p" * 64])
    closed = hostile_sockets(slow_n, head, 1, seconds, "%d slowloris connections" % slow_n)
    check("slowloris connections are closed (header_timeout_s, or to make room): %d of %d"
          % (closed, slow_n), closed >= slow_n * 0.9, "only %d closed" % closed)
    server_sane("connection exhaustion")


# ---- slow and idle clients ------------------------------------------------------

def trickle(data, prefix, interval, limit_s, out):
    """Send data[:prefix] at once, then one byte per interval until the server closes."""
    c = Conn()
    start = time.monotonic()
    c.send(data[:prefix])
    sent = prefix
    closed_at = None
    c.sock.settimeout(interval)
    while time.monotonic() - start < limit_s and sent < len(data):
        try:
            c.sock.sendall(data[sent:sent + 1])
            sent += 1
            chunk = c.sock.recv(1 << 16)
        except socket.timeout:
            continue
        except OSError:
            closed_at = time.monotonic() - start
            break
        if not chunk:
            closed_at = time.monotonic() - start
            break
        c.buf += chunk
    out["closed_at"] = closed_at
    out["sent"] = sent
    out["received"] = c.buf
    c.close()


def cut_in_time(t, idle_s):
    return t is not None and idle_s * CUT_EARLY <= t <= idle_s + CUT_LATE_S


def check_cut(label, out, idle_s):
    t = out.get("closed_at")
    check("%s: cut after ~%ds (%.2fs, %d bytes sent)" % (label, idle_s, t or -1, out["sent"]),
          cut_in_time(t, idle_s), "closed after %r s" % t)
    got = out.get("received", b"")
    if not got:
        return ok("%s: closed without an answer" % label)
    try:
        r = Conn.parse(got)
    except (Closed, ValueError, IndexError) as e:
        return bad("%s: answered 408 JSON before closing" % label, "%r (%s)" % (got, e))
    expect_error("%s: answered 408 JSON before closing" % label, r, 408, "Request timeout.")


def cmd_slow(idle_s):
    idle = int(idle_s)
    interval = 0.5
    head = request_bytes("GET", "/healthz", headers=["X-Pad: " + "p" * 200])
    full = one_record("slow_body")
    body_req = ingest_bytes(full)
    split = len(body_req) - len(full)
    outs = [{}, {}]
    threads = [threading.Thread(target=trickle, args=(head, 0, interval, idle + 5, outs[0])),
               # the head at once, then the body byte by byte
               threading.Thread(target=trickle, args=(body_req, split, interval, idle + 5,
                                                      outs[1]))]
    for t in threads:
        t.start()
    # Meanwhile a normal client on one keep-alive connection.
    lat = []
    errors = []
    c = Conn()
    start = time.monotonic()
    i = 0
    while any(t.is_alive() for t in threads) and time.monotonic() - start < idle + 6:
        t0 = time.monotonic()
        try:
            c.send(ingest_bytes(one_record("during_slow", ts=1718841600 + i)))
            r = c.read_response()
            if r.status != 204:
                errors.append(repr(r))
        except (OSError, Closed) as e:
            errors.append(repr(e))
            c.close()
            c = Conn()
        lat.append(time.monotonic() - t0)
        i += 1
        time.sleep(0.1)
    c.close()
    for t in threads:
        t.join()
    check_cut("slow client, one header byte per %.1fs" % interval, outs[0], idle)
    check_cut("slow client, one body byte per %.1fs" % interval, outs[1], idle)
    info("while slow clients trickled: %d normal ingests, max latency %.1f ms"
         % (len(lat), max(lat) * 1000 if lat else -1))
    check("other clients are served meanwhile (%d ingests, all 204, max latency < %.1fs)"
          % (len(lat), BUSY_LATENCY_MAX_S),
          len(lat) >= 2 * idle and not errors and max(lat) < BUSY_LATENCY_MAX_S,
          "errors %r, max latency %.2fs" % (errors[:3], max(lat) if lat else -1))
    server_sane("slow clients")

    c = Conn()
    c.send(request_bytes("GET", "/healthz"))
    r = c.read_response()
    t = c.closed_within(idle + 5)
    c.close()
    check("idle keep-alive connection (after one request) is closed after ~%ds (%s)"
          % (idle, "%.2fs" % t if t is not None else "never"),
          r.status == 200 and cut_in_time(t, idle), "status %d, closed after %r s" % (r.status, t))
    c = Conn()
    t = c.closed_within(idle + 5)
    c.close()
    check("a connection that never sends is closed after ~%ds (%s)"
          % (idle, "%.2fs" % t if t is not None else "never"),
          cut_in_time(t, idle), "closed after %r s" % t)
    server_sane("idle connections")


# ---- pipelining -----------------------------------------------------------------

PIPE_BASE_TS = 1718841600


def pipe_request(i, pad):
    """Request i of the pipeline and what must answer it: (bytes, status, check)."""
    recs = [{"timestamp": PIPE_BASE_TS + k, "name": "pipe_bad", "value": k} for k in range(i)]
    if i % 3 == 0:
        recs.append({"timestamp": PIPE_BASE_TS, "name": "pipe_bad", "value": "x"})
        body = json.dumps({"data_source": SOURCE, "records": recs, "pad": pad}).encode()
        return ingest_bytes(body), 422, "records[%d].value must be a number." % i
    if i % 3 == 1:
        body = json.dumps({"data_source": SOURCE, "pad": pad, "records": [
            {"timestamp": PIPE_BASE_TS + i, "name": "pipe", "value": i}]}).encode()
        return ingest_bytes(body), 204, None
    # Reads see every 204 answered before them on this connection, and nothing later.
    q = urllib.parse.urlencode({"name": "pipe", "limit": 10000})
    want = [PIPE_BASE_TS + j for j in range(i) if j % 3 == 1]
    return request_bytes("GET", "/v1/data_sources/%s/records?%s" % (SOURCE, q),
                         token=TOKEN), 200, want


def pipe_answer_ok(r, status, want):
    if r.status != status:
        return False
    if status == 422:
        return r.detail() == want
    if status == 200:
        return [x["timestamp"] for x in json.loads(r.body)["records"]] == want
    return r.body == b""


def cmd_pipeline(count):
    n = int(count)
    # ~2 KB per request: the whole pipeline is larger than the server's read window.
    pad = "p" * 2000
    reqs = [pipe_request(i, pad) for i in range(n)]
    wire = b"".join(q for q, _, _ in reqs)
    info("pipeline: %d requests, %d bytes in one write" % (n, len(wire)))
    c = Conn()
    start = time.monotonic()
    c.send(wire)
    wrong = []
    got = 0
    try:
        for i, (_, status, want) in enumerate(reqs):
            r = c.read_response()
            got += 1
            if not pipe_answer_ok(r, status, want):
                wrong.append("#%d: expected %d %r, got %r" % (i, status, want, r))
    except (OSError, Closed) as e:
        wrong.append("after %d answers: %r" % (got, e))
    secs = time.monotonic() - start
    check("pipelining: %d requests in one write get %d answers in order (%.2fs)" % (n, got, secs),
          not wrong and got == n, "; ".join(wrong[:3]))
    c.send(request_bytes("GET", "/healthz"))
    r = c.read_response()
    check("pipelining: the connection is still usable after", r.status == 200, "got %r" % r)
    c.close()
    server_sane("pipelining")


# ---- hostile requests ---------------------------------------------------------

def record_with_raw_name(raw_name):
    """A one-record body whose name literal is raw_name (bytes, quotes included)."""
    return (b'{"data_source":"' + SOURCE.encode() + b'","records":[{"timestamp":1718841600,'
            b'"name":' + raw_name + b',"value":1}]}')


def hostile(label, data, status, detail):
    r, secs, err = exchange(data)
    expect_error(label, r, status, detail, err)
    server_sane(label)
    return r, secs


def hostile_headers():
    big = request_bytes("GET", "/healthz", headers=["X-Big-%d: %s" % (i, "h" * 1000)
                                                   for i in range(100)])
    hostile("100 KB of request headers -> 431", big, 431, "Request header fields too large.")
    many = request_bytes("GET", "/healthz", headers=["X-H-%d: v" % i for i in range(100)])
    hostile("100 small request headers -> 431", many, 431, "Request header fields too large.")
    hostile("NUL byte in a header -> 400",
            request_bytes("GET", "/healthz", headers=["X-Nul: a\0b"]), 400, "Bad request.")


def hostile_nesting():
    deep = 100000
    hostile("[[[... %d deep as the body -> 400" % deep,
            ingest_bytes(b"[" * deep + b"]" * deep), 400, BAD_JSON)
    hostile("unclosed [[[... %d deep as the body -> 400" % deep,
            ingest_bytes(b"[" * deep), 400, BAD_JSON)
    for depth in (20, deep):
        arr = b"[" * depth + b"1" + b"]" * depth
        want = (422, "records[0].value must be a number.") if depth < 32 else (400, BAD_JSON)
        hostile("value nested %d arrays deep -> %d" % (depth, want[0]),
                ingest_bytes(body_value(arr)), *want)
        arr = b"[" * depth + b'"a"' + b"]" * depth
        want = (422, BAD_NAME) if depth < 32 else (400, BAD_JSON)
        hostile("name nested %d arrays deep -> %d" % (depth, want[0]),
                ingest_bytes(record_with_raw_name(arr)), *want)


def body_value(raw_value):
    return (b'{"data_source":"' + SOURCE.encode() + b'","records":[{"timestamp":1718841600,'
            b'"name":"deep","value":' + raw_value + b'}]}')


def hostile_utf8():
    hostile("name with raw byte 0xff -> 400 (json-c UTF-8 check)",
            ingest_bytes(record_with_raw_name(b'"a\xffb"')), 400, BAD_JSON)
    hostile("name with overlong 0xc0 0xaf -> 422 (name check)",
            ingest_bytes(record_with_raw_name(b'"a\xc0\xafb"')), 422, BAD_NAME)
    hostile("name with a UTF-8 encoded surrogate ED A0 80 -> 422",
            ingest_bytes(record_with_raw_name(b'"a\xed\xa0\x80b"')), 422, BAD_NAME)
    hostile("name with an escaped NUL \\u0000 -> 422",
            ingest_bytes(record_with_raw_name(b'"a\\u0000b"')), 422, BAD_NAME)
    # json-c 0.16 decodes a lone surrogate escape to U+FFFD: the name is valid UTF-8
    # by then, so the server stores the replacement character (see the report).
    for esc in (b"\\ud800", b"\\udfff"):
        r, _, err = exchange(ingest_bytes(record_with_raw_name(b'"lone' + esc + b'"')))
        check("name with a lone surrogate escape %s -> 204, stored as U+FFFD" % esc.decode(),
              r is not None and r.status == 204, "got %r (%s)" % (r, err))
    names = series_names()
    check("lone surrogate escapes read back as one series named 'lone\\ufffd'",
          "lone\ufffd" in names and not any(n.startswith("lone") and n != "lone\ufffd"
                                            for n in names),
          "series: %r" % [n for n in names if n.startswith("lone")])
    server_sane("lone surrogate escapes")


def hostile_nul_and_truncation():
    good = one_record("nul_probe")
    hostile("NUL byte between JSON tokens -> 400",
            ingest_bytes(good[:-1] + b"\0" + good[-1:]), 400, BAD_JSON)
    hostile("NUL byte after the JSON document -> 400",
            ingest_bytes(good + b"\0"), 400, BAD_JSON)
    hostile("raw NUL byte inside a name -> 400",
            ingest_bytes(record_with_raw_name(b'"a\0b"')), 400, BAD_JSON)
    body = body_of([{"timestamp": PIPE_BASE_TS + k, "name": "halfbody", "value": k}
                    for k in range(50)])
    c = Conn()
    c.send(ingest_bytes(body)[:-len(body) // 2])
    c.close()
    time.sleep(0.2)
    server_sane("body cut halfway by a closed connection")
    check("body cut halfway: nothing of it is stored", "halfbody" not in series_names(),
          "series halfbody exists")


def hostile_many_records(count):
    n = int(count)
    workers = worker_pids()
    rec = b'{"timestamp":1,"name":"a","value":1}'
    body = (b'{"data_source":"' + SOURCE.encode() + b'","records":[' +
            b",".join([rec] * n) + b"]}")
    label = "%d tiny records (%.1f MB) -> 413 too many" % (n, len(body) / 1e6)
    before = {p: vm_kb(p, "VmHWM") for p in workers}
    r, secs, err = exchange(ingest_bytes(body))
    after = {p: (vm_kb(p, "VmHWM"), vm_kb(p, "VmRSS")) for p in workers}
    expect_error(label, r, 413, "Too many records in one request.", err)
    # The worker frees a million json-c objects after answering; how long it is
    # deaf meanwhile is reported, not asserted (see the report to the lead).
    stall = server_sane(label, IO_TIMEOUT_S)
    info("after the 413 the worker answered the next ingest in %.2fs" % stall)
    for p in workers:
        info("worker %d parsing %d records (%.1f MB body) in %.2fs: VmHWM %d kB -> %d kB "
             "(+%d kB, %.0f bytes per record); VmRSS afterwards %d kB"
             % (p, n, len(body) / 1e6, secs, before[p], after[p][0], after[p][0] - before[p],
                (after[p][0] - before[p]) * 1024.0 / n, after[p][1]))


def cmd_hostile(many):
    hostile_headers()
    hostile_nesting()
    hostile_utf8()
    hostile_nul_and_truncation()
    hostile_many_records(many)


# ---- flood ------------------------------------------------------------------------

FLOOD_NAME_LEN = 200         # long names: the packed entry is about as large as the body


def flood_body(name, nrec, seq):
    recs = [{"timestamp": PIPE_BASE_TS + k, "name": name, "value": seq} for k in range(nrec)]
    return body_of(recs)


def flood_thread(tid, seconds, nrec, results):
    c = None
    seq = 0
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        name = ("flood_%d_%d_" % (tid, seq)).ljust(FLOOD_NAME_LEN, "x")
        data = ingest_bytes(flood_body(name, nrec, seq))
        t0 = time.monotonic()
        try:
            if c is None:
                c = Conn()
            c.send(data)
            r = c.read_response()
            results.append((name, seq, r.status, time.monotonic() - t0, r, t0))
            if r.header("connection") == "close":
                c.close()
                c = None
        except (OSError, Closed) as e:
            results.append((name, seq, None, time.monotonic() - t0, repr(e), t0))
            if c:
                c.close()
            c = None
        seq += 1
    if c:
        c.close()


def flood_check_answers(results, enqueue_s):
    by = {}
    for _, _, st, secs, _, _ in results:
        by.setdefault(st, []).append(secs)
    info("flood: %d requests: %s" % (len(results), ", ".join(
        "%s x%d (max %.0f ms, median %.0f ms)" % (st, len(v), max(v) * 1000,
                                                  sorted(v)[len(v) // 2] * 1000)
        for st, v in sorted(by.items(), key=lambda kv: str(kv[0])))))
    check("flood: every request got an answer (no hang, no reset)", None not in by,
          "%d without an answer, e.g. %r" % (len(by.get(None, [])),
                                              [x[4] for x in results if x[2] is None][:2]))
    check("flood: only 204 and 503 answers", set(by) <= {204, 503, None},
          "statuses %r, e.g. %r" % (sorted(by, key=str),
                                    [x[4] for x in results if x[2] not in (204, 503)][:2]))
    check("flood: some requests got 503 (ring full)", len(by.get(503, [])) > 0,
          "no 503 in %d requests" % len(results))
    check("flood: the rest got 204", len(by.get(204, [])) > 0, "no 204 at all")
    busy = [x for x in results if x[2] == 503]
    for r in [x[4] for x in busy[:1]]:
        expect_error("flood: 503 is JSON busy", r, 503, BUSY)
        check("flood: 503 has Retry-After: 1", r.header("retry-after") == "1",
              "headers %r" % r.headers)
    worst = max((x[3] for x in busy), default=0)
    check("flood: 503 answered within enqueue_timeout + 1s (slowest %.0f ms)" % (worst * 1000),
          worst < enqueue_s + 1.0, "slowest 503 after %.2fs" % worst)


def flood_check_stored(results, nrec):
    stored = series_names()
    accepted = {x[0]: x[1] for x in results if x[2] == 204}
    refused = {x[0] for x in results if x[2] != 204}
    missing = [n for n in accepted if n not in stored]
    leaked = [n for n in refused if n in stored]
    check("flood: every 204'd request is stored (%d series)" % len(accepted), not missing,
          "%d missing, e.g. %r" % (len(missing), missing[:2]))
    check("flood: no 503'd request is stored", not leaked,
          "%d stored after 503, e.g. %r" % (len(leaked), leaked[:2]))
    wrong = []
    for name, seq in accepted.items():
        got = read_series(name)
        want = [(PIPE_BASE_TS + k, seq) for k in range(nrec)]
        if [(x["timestamp"], x["value"]) for x in got] != want:
            wrong.append("%s: %d records" % (name, len(got)))
    check("flood: every record of every 204'd request reads back (%d records)"
          % (len(accepted) * nrec), not wrong, "; ".join(wrong[:3]))


def pause_writer(at_s, for_s, window):
    """SIGSTOP the writer at at_s for for_s seconds: a stalled disk, as seen by the ring."""
    time.sleep(at_s)
    window.append(time.monotonic())
    os.kill(WRITER, signal.SIGSTOP)
    try:
        time.sleep(for_s)
    finally:
        os.kill(WRITER, signal.SIGCONT)
        window.append(time.monotonic())


def cmd_flood(nthreads, seconds, body_kb, enqueue_ms, pause_s):
    n, secs, enqueue_s, pause = int(nthreads), float(seconds), int(enqueue_ms) / 1000.0, \
        float(pause_s)
    # One record is ~250 bytes of JSON with a 200-byte name.
    nrec = int(body_kb) * 1024 // (FLOOD_NAME_LEN + 50)
    results = []
    resumed = []
    threads = [threading.Thread(target=flood_thread, args=(t, secs, nrec, results))
               for t in range(n)]
    # One worker parses about as fast as the writer commits, so whether a plain flood
    # fills the ring depends on the machine; a writer paused mid-flood always does.
    if pause > 0:
        threads.append(threading.Thread(target=pause_writer,
                                        args=((secs - pause) / 2, pause, resumed)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check("flood: the writer was paused and resumed", pause == 0 or len(resumed) == 2,
          "not resumed")
    flood_check_answers(results, enqueue_s)
    if len(resumed) == 2:
        outside = [x for x in results if x[2] == 503 and not
                   resumed[0] - 1 <= x[5] <= resumed[1] + enqueue_s]
        info("flood: %d of the 503s came from requests sent outside the writer pause"
             % len(outside))
    r, lat, err = exchange(ingest_bytes(one_record("after_flood")))
    check("flood: right after, the server recovers by itself (204 in %.0f ms)" % (lat * 1000),
          r is not None and r.status == 204 and lat < NORMAL_MAX_S,
          "got %r after %.2fs (%s)" % (r, lat, err))
    flood_check_stored(results, nrec)
    server_sane("flood")


COMMANDS = {
    "conns": cmd_conns,
    "exhaust": cmd_exhaust,
    "slow": cmd_slow,
    "pipeline": cmd_pipeline,
    "hostile": cmd_hostile,
    "flood": cmd_flood,
}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print("usage: limits_client.py {%s} ARGS..." % "|".join(COMMANDS), file=sys.stderr)
        return 2
    try:
        COMMANDS[sys.argv[1]](*sys.argv[2:])
    except (OSError, Closed, RuntimeError, ValueError) as e:
        bad(sys.argv[1], "client error: %r" % (e,))
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
