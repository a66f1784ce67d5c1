#!/usr/bin/env python3
"""crash.py - proves that a 204 is a promise: SIGKILLs workers, the writer and the
master of a real temporisd under load and checks that every acknowledged record
survives with its exact value, and that every unanswered request is stored whole
or not at all.

Usage: crash.py [--builddir DIR] [--kills-per-kind N] [--clients K] [--batch MIN MAX]
                [--pause MIN MAX] [--after S] [--full-every N] [--seed S] [--keep]
Kills go worker, writer, master in turn; after each one the load pauses and the
requests of that round are read back (GET .../records, paginated); every Nth kill
(and at the end) everything ever acknowledged is. Prints one line per kill, the figures, "lost L of N acknowledged over K kills (...)"
and last "P passed, F failed"; exits non-zero on any loss, partial request or failed
check. Needs only the standard library and python3-requests.
"""
import argparse
import bisect
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests

SOURCE = "crash_metrics"
ACCOUNT = "crash"
TS_BASE = 1_700_000_000
READ_LIMIT = 10_000
POST_TIMEOUT = (2.0, 15.0)        # connect, read: a killed writer's successor must fit
READ_TIMEOUT = (2.0, 30.0)
START_TIMEOUT_S = 20.0
RECOVER_TIMEOUT_S = 15.0
WORKER_RESPAWN_MAX_S = 1.0
PROC_POLL_S = 0.002
CONN_ERROR_PAUSE_S = 0.02         # a refused client does not spin while the master restarts
BACKOFF_KILLS = 5
BACKOFF_WINDOW_S = 2.0
HEALTH_POLL_S = 0.02
SANITIZER_RE = re.compile(r"(AddressSanitizer|LeakSanitizer|runtime error):[^\n]*")

# ---------------------------------------------------------------- checks

PASSED = 0
FAILED = 0


def check(name, ok, detail=""):
    """One verification; failures are printed at once, passes only counted."""
    global PASSED, FAILED
    if ok:
        PASSED += 1
    else:
        FAILED += 1
        print("FAIL %s%s" % (name, ": " + detail if detail else ""), flush=True)
    return ok


def value_of(client, ts):
    """The value a key must hold: integers mostly, exact binary doubles sometimes."""
    if ts % 7 == 0:
        return (ts % 100_003) / 8.0 - 6_000.5
    return ((ts * 2_654_435_761 + client * 97) % 2_000_003) - 1_000_001


# ---------------------------------------------------------------- processes

def proc_stat(pid):
    """(state, ppid) of pid, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rfind(")") + 2:].split()
    return rest[0], int(rest[1])


def proc_alive(pid):
    """False once pid is gone or a zombie whose threads have all exited too: a killed
    multi-threaded process shows its leader as Z while other threads still hold its
    descriptors (the listening sockets)."""
    st = proc_stat(pid)
    if st is None:
        return False
    if st[0] != "Z":
        return True
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return False
    for tid in tasks:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                text = f.read()
        except OSError:
            continue
        if text[text.rfind(")") + 2:].split()[0] not in ("Z", "X"):
            return True
    return False


def proc_title(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


def children_of(ppid):
    """{pid: title} of the live children of ppid (other servers may run on this host)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        st = proc_stat(pid)
        if st is None or st[0] == "Z" or st[1] != ppid:
            continue
        out[pid] = proc_title(pid)
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """One temporisd in a temp dir; restartable on the same data dir and port."""

    def __init__(self, builddir, tmp, extra=()):
        self.temporisd = os.path.join(builddir, "src", "temporisd")
        self.ctlbin = os.path.join(builddir, "src", "temporisctl")
        self.tmp = tmp
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.cfg = os.path.join(tmp, "temporis.conf")
        self.sock = os.path.join(tmp, "admin.sock")
        self.log = os.path.join(tmp, "server.log")
        self.proc = None
        self.known = set()      # every child pid seen, to wait for them after a master kill
        # temporisd refuses to serve as root: started by root (CI), it switches to
        # this user, which then owns the temp dir (data, admin socket); as lib.sh
        user = os.environ.get("TEMPORIS_TEST_USER", "nobody") if os.geteuid() == 0 else ""
        if user:
            shutil.chown(tmp, user)
        with open(self.cfg, "w") as f:
            f.write("# written by tests/crash/crash.py\n")
            f.write("listen = 127.0.0.1:%d\n" % self.port)
            f.write("workers = 2\ndata_dir = %s/data\n" % tmp)
            f.write("admin_socket = %s\nring_size = 8M\nlog_level = warn\n" % self.sock)
            if user:
                f.write("user = %s\n" % user)
            for line in extra:
                f.write(line + "\n")

    def start(self):
        """Start and wait for /healthz 200, the admin socket, a writer and 2 workers."""
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([self.temporisd, "--config", self.cfg],
                                     stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        logf.close()
        t0 = time.monotonic()
        while time.monotonic() - t0 < START_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError("temporisd exited during start-up (status %d); log:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            if os.path.exists(self.sock) and self.healthy() and \
                    self.writer() and len(self.workers()) == 2:
                self.remember()
                return time.monotonic() - t0
            time.sleep(0.02)
        raise RuntimeError("temporisd not healthy within %.0fs; log:\n%s"
                           % (START_TIMEOUT_S, self.log_tail()))

    def healthy(self):
        try:
            r = requests.get(self.base + "/healthz", timeout=1.0,
                             headers={"Connection": "close"})
            return r.status_code == 200
        except requests.RequestException:
            return False

    def children(self):
        return children_of(self.proc.pid) if self.proc else {}

    def remember(self):
        self.known.update(self.children())

    def writer(self):
        for pid, title in self.children().items():
            if title == "temporisd: writer":
                return pid
        return None

    def workers(self):
        """{pid: index} of the running workers."""
        out = {}
        for pid, title in self.children().items():
            m = re.fullmatch(r"temporisd: worker (\d+)", title)
            if m:
                out[pid] = int(m.group(1))
        return out

    def kill_master(self):
        """SIGKILL the master; wait until it and every child it had are gone."""
        self.remember()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        deadline = time.monotonic() + RECOVER_TIMEOUT_S
        while any(proc_alive(p) for p in self.known):
            if time.monotonic() > deadline:
                raise RuntimeError("children outlived the master: %s"
                                   % [p for p in self.known if proc_alive(p)])
            time.sleep(PROC_POLL_S)
        self.known.clear()

    def stop(self):
        """SIGTERM: returns (exit status, children left behind)."""
        self.remember()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        deadline = time.monotonic() + 5
        while any(proc_alive(p) for p in self.known) and time.monotonic() < deadline:
            time.sleep(0.02)
        left = [p for p in self.known if proc_alive(p)]
        self.proc = None
        return rc, left

    def abort(self):
        if self.proc is not None and self.proc.poll() is None:
            self.remember()
            self.proc.kill()
            self.proc.wait()
        for p in self.known:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass

    def ctl(self, *args):
        out = subprocess.run([self.ctlbin, "--socket", self.sock, "--json"] + list(args),
                             capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError("temporisctl %s: %s %s" % (" ".join(args), out.stdout,
                                                          out.stderr))
        return json.loads(out.stdout)

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def log_tail(self, n=30):
        return "".join(self.log_text().splitlines(True)[-n:])


# ---------------------------------------------------------------- load

class Req:
    __slots__ = ("client", "ts0", "n", "sent", "done", "outcome", "status")

    def __init__(self, client, ts0, n):
        self.client, self.ts0, self.n = client, ts0, n
        self.sent = self.done = None
        self.outcome = None      # "ack" (204), "fail" (an answer, not 204), "none"
        self.status = None


class Client(threading.Thread):
    """Posts batches of distinct keys: series c<id>, timestamps from its own counter."""

    def __init__(self, cid, base, token, go, rng, batch):
        super().__init__(daemon=True)
        self.cid, self.go, self.rng, self.batch = cid, go, rng, batch
        self.url = base + "/v1/data_sources/ingest"
        self.headers = {"Authorization": "Bearer " + token,
                        "Content-Type": "application/json"}
        self.next_ts = TS_BASE
        self.reqs = []
        self.mark = 0           # reqs before this index were reported in an earlier round
        self.current = None
        self.idle = threading.Event()
        self.quit = False
        self.session = requests.Session()

    def body(self, req):
        name = "c%d" % self.cid
        recs = ",".join('{"timestamp":%d,"name":"%s","value":%r}'
                        % (ts, name, value_of(self.cid, ts))
                        for ts in range(req.ts0, req.ts0 + req.n))
        return '{"data_source":"%s","records":[%s]}' % (SOURCE, recs)

    def one(self):
        req = Req(self.cid, self.next_ts, self.rng.randint(*self.batch))
        self.next_ts += req.n
        data = self.body(req).encode()
        self.reqs.append(req)
        req.sent = time.monotonic()
        self.current = req
        try:
            r = self.session.post(self.url, data=data, headers=self.headers,
                                  timeout=POST_TIMEOUT)
            req.status = r.status_code
            req.outcome = "ack" if r.status_code == 204 else "fail"
        except requests.RequestException:
            req.outcome = "none"
            self.session.close()
            self.session = requests.Session()
        req.done = time.monotonic()
        self.current = None
        if req.outcome == "none":
            time.sleep(CONN_ERROR_PAUSE_S)

    def run(self):
        while not self.quit:
            if not self.go.is_set():
                self.idle.set()
                self.go.wait(0.1)
                continue
            self.idle.clear()
            self.one()


class Load:
    def __init__(self, base, token, nclients, seed, batch):
        self.go = threading.Event()
        self.clients = [Client(i, base, token, self.go, random.Random(seed * 1000 + i), batch)
                        for i in range(nclients)]
        for c in self.clients:
            c.start()

    def resume(self):
        for c in self.clients:
            c.idle.clear()
        self.go.set()

    def pause(self):
        self.go.clear()
        for c in self.clients:
            if not c.idle.wait(POST_TIMEOUT[0] + POST_TIMEOUT[1] + 5):
                raise RuntimeError("client %d did not finish its request" % c.cid)

    def stop(self):
        self.pause()
        for c in self.clients:
            c.quit = True
        for c in self.clients:
            c.join()

    def in_flight(self, t):
        """Requests sent before t with no answer yet at t."""
        out = []
        for c in self.clients:
            cur = c.current
            if cur is not None and cur.sent < t:
                out.append(cur)
        return out

    def all_reqs(self):
        return [r for c in self.clients for r in c.reqs]


# ---------------------------------------------------------------- verification

def scan(server, token, series, on_record, start=None, end=None):
    """Calls on_record(ts, name, value) for every stored record of a series, page by
    page (limit 10000, next_cursor); a failed page is retried while the writer restarts."""
    url = server.base + "/v1/data_sources/%s/records" % SOURCE
    headers = {"Authorization": "Bearer " + token}
    cursor = None
    deadline = time.monotonic() + RECOVER_TIMEOUT_S
    with requests.Session() as s:
        while True:
            params = {"name": series, "limit": READ_LIMIT}
            if start is not None:
                params["start"] = start
            if end is not None:
                params["end"] = end
            if cursor is not None:
                params["cursor"] = cursor
            err = None
            try:
                r = s.get(url, params=params, headers=headers, timeout=READ_TIMEOUT)
                if r.status_code != 200:
                    err = "%d %s" % (r.status_code, r.text[:200])
            except requests.RequestException as e:
                err = str(e)
            if err is not None:
                if time.monotonic() > deadline:
                    raise RuntimeError("reading %s failed: %s" % (series, err))
                time.sleep(0.05)
                continue
            j = r.json()
            for rec in j["records"]:
                on_record(rec["timestamp"], rec["name"], rec["value"])
            cursor = j["next_cursor"]
            if cursor is None:
                return


def same_value(a, b):
    return a == b and type(a) is type(b)


class SeriesCheck:
    """Streams one client's stored records against the requests it sent, keeping only
    a count per request (a full check of millions of records stays small)."""

    def __init__(self, client, since):
        self.cid = client.cid
        self.series = "c%d" % client.cid
        self.start = since
        self.end = client.next_ts
        self.reqs = [r for r in client.reqs if r.ts0 >= since]
        self.starts = [r.ts0 for r in self.reqs]
        self.count = [0] * len(self.reqs)
        self.wrong = self.phantom = self.stored = 0

    def on_record(self, ts, name, value):
        self.stored += 1
        i = bisect.bisect_right(self.starts, ts) - 1
        if name != self.series or i < 0 or ts >= self.reqs[i].ts0 + self.reqs[i].n:
            self.phantom += 1
            return
        self.count[i] += 1
        if not same_value(value, value_of(self.cid, ts)):
            self.wrong += 1


def scan_all(server, token, checks):
    """One reader thread per series."""
    errors = []

    def one(sc):
        try:
            scan(server, token, sc.series, sc.on_record, sc.start)
        except Exception as e:      # re-raised below, in the main thread
            errors.append(e)
    threads = [threading.Thread(target=one, args=(sc,)) for sc in checks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def recount(server, token, sc, req):
    """Stored records of one request, in a single read (one snapshot)."""
    seen = []
    scan(server, token, sc.series, lambda ts, name, value: seen.append(ts),
         req.ts0, req.ts0 + req.n)
    return len(seen)


def verify(server, token, load, label, since=None):
    """Every acknowledged record present and exact; every other request 0 or all.

    since ({cid: ts}, optional) limits the check to requests from that timestamp on
    (per-client timestamps only grow); None checks everything ever sent.
    """
    since = since or {}
    checks = [SeriesCheck(c, since.get(c.cid, TS_BASE)) for c in load.clients]
    scan_all(server, token, checks)
    v = dict.fromkeys(("acked", "records", "lost", "partial", "none_whole", "none_absent",
                       "fail_stored"), 0)
    for sc in checks:
        for req, present in zip(sc.reqs, sc.count):
            if req.outcome == "ack":
                v["acked"] += 1
                v["records"] += req.n
                v["lost"] += req.n - present
                continue
            if 0 < present < req.n:
                # pages are separate snapshots: look again at just this request
                present = recount(server, token, sc, req)
                if 0 < present < req.n:
                    v["partial"] += 1
                    print("  partial: client %d ts %d..%d (%s): %d of %d stored"
                          % (req.client, req.ts0, req.ts0 + req.n - 1, req.outcome,
                             present, req.n), flush=True)
                    continue
            if req.outcome == "fail":
                v["fail_stored"] += 1 if present else 0
            elif present:
                v["none_whole"] += 1
            else:
                v["none_absent"] += 1
    v["wrong"] = sum(sc.wrong for sc in checks)
    v["phantom"] = sum(sc.phantom for sc in checks)
    v["stored"] = sum(sc.stored for sc in checks)
    check("%s: every acknowledged record is stored" % label, v["lost"] == 0,
          "%d of %d acknowledged records missing" % (v["lost"], v["records"]))
    check("%s: every stored value is exact" % label, v["wrong"] == 0,
          "%d wrong values" % v["wrong"])
    check("%s: unanswered requests stored whole or not at all" % label, v["partial"] == 0,
          "%d partial requests" % v["partial"])
    check("%s: nothing stored that was never sent" % label, v["phantom"] == 0,
          "%d phantom records" % v["phantom"])
    return v


# ---------------------------------------------------------------- kills

def wait_for(pred, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = pred()
        if v:
            return v, time.monotonic() - t0
        time.sleep(PROC_POLL_S)
    return None, timeout


def kill_worker(server, load, rng, label):
    workers = server.workers()
    if not check("%s: a worker is running" % label, bool(workers)):
        return "no worker to kill"
    # a random worker among those holding client connections, so the kill cuts requests
    conns = {pid: len(worker_conn_inodes(server, pid)) for pid in workers}
    busy = sorted(p for p, n in conns.items() if n > 0)
    pid = rng.choice(busy or sorted(workers))
    index = workers[pid]
    t_kill = time.monotonic()
    flying = load.in_flight(t_kill)
    os.kill(pid, signal.SIGKILL)

    def replaced():
        for p, i in server.workers().items():
            if i == index and p != pid:
                return p
        return None
    new, took = wait_for(replaced, RECOVER_TIMEOUT_S)
    check("%s: worker %d replaced within %.1f s" % (label, index, WORKER_RESPAWN_MAX_S),
          new is not None and took <= WORKER_RESPAWN_MAX_S,
          "replacement %s after %.3f s" % (new, took))
    healthy, _ = wait_for(server.healthy, RECOVER_TIMEOUT_S)
    check("%s: healthy after the worker kill" % label, healthy)
    server.remember()
    return "worker %d pid %d (%d client connections) -> %s in %.0f ms; %d in flight" % (
        index, pid, conns[pid], new, took * 1000, len(flying))


WRITER_FLIGHT = {"flying": 0, "after": 0}


def kill_writer(server, load, label):
    pid = server.writer()
    if not check("%s: a writer is running" % label, pid is not None):
        return "no writer to kill"
    t_kill = time.monotonic()
    flying = load.in_flight(t_kill)
    os.kill(pid, signal.SIGKILL)
    def successor():
        p = server.writer()
        return p if p is not None and p != pid else None
    new, took = wait_for(successor, RECOVER_TIMEOUT_S)
    check("%s: a new writer starts" % label, new is not None, "none after %.1f s" % took)
    server.remember()
    # let the in-flight requests finish before judging them
    deadline = time.monotonic() + POST_TIMEOUT[0] + POST_TIMEOUT[1] + 5
    while any(r.outcome is None for r in flying) and time.monotonic() < deadline:
        time.sleep(0.01)
    after = [r for r in flying if r.outcome == "ack" and r.done > t_kill]
    not_ok = [r for r in flying if r.outcome != "ack"]
    check("%s: requests in flight during the writer kill get their 204" % label,
          not not_ok, "%d of %d did not: %s" % (
              len(not_ok), len(flying),
              ", ".join("%s/%s" % (r.outcome, r.status) for r in not_ok[:5])))
    WRITER_FLIGHT["flying"] += len(flying)
    WRITER_FLIGHT["after"] += len(after)
    return "writer pid %d -> %s in %.0f ms; %d in flight, %d got 204 after the kill" % (
        pid, new, took * 1000, len(flying), len(after))


def kill_master(server, label):
    pid = server.proc.pid
    server.kill_master()
    took = server.start()           # raises if it is not healthy in time
    check("%s: restarted on the same data dir and port, healthy" % label, server.healthy())
    return "master pid %d -> %d, restart healthy in %.0f ms" % (pid, server.proc.pid,
                                                               took * 1000)


# ---------------------------------------------------------------- back-off

def established_inodes(port):
    """Socket inodes of established TCP connections whose local port is port."""
    want = ":%04X" % port
    out = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[1].endswith(want) and parts[3] == "01":
                out.add(parts[9])
    return out


def worker_conn_inodes(server, pid):
    """Established client connections held by one worker."""
    est = established_inodes(server.port)
    mine = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            if link.startswith("socket:[") and link[8:-1] in est:
                mine.add(link[8:-1])
    except OSError:
        pass
    return mine


def conn_worker_pid(server, conn):
    """The worker pid holding the server side of a client connection (via /proc)."""
    lport = conn.sock.getsockname()[1]
    want_local = "%04X" % server.port
    want_remote = "%04X" % lport
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[1].endswith(":" + want_local) and parts[2].endswith(":" + want_remote):
                inode = parts[9]
    if inode is None:
        return None
    target = "socket:[%s]" % inode
    for pid in server.workers():
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == target:
                    return pid
        except OSError:
            continue
    return None


def backoff_test(server):
    """Kill one worker slot 5 times quickly: back-off grows, /healthz stays 200."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/healthz")
    conn.getresponse().read()
    keeper = conn_worker_pid(server, conn)
    if not check("back-off: found the worker serving the health connection", keeper is not None):
        return
    workers = server.workers()
    victim_index = next(i for p, i in workers.items() if p != keeper)
    log_start = len(server.log_text())
    stop = threading.Event()
    health = {"ok": 0, "bad": []}

    def poll_health():
        while not stop.is_set():
            try:
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    health["ok"] += 1
                else:
                    health["bad"].append(r.status)
            except (OSError, http.client.HTTPException) as e:
                health["bad"].append(repr(e))
                return
            time.sleep(HEALTH_POLL_S)
    poller = threading.Thread(target=poll_health, daemon=True)
    poller.start()
    t0 = time.monotonic()
    killed = []
    for _ in range(BACKOFF_KILLS):
        def current():
            for p, i in server.workers().items():
                if i == victim_index and p not in killed:
                    return p
            return None
        pid, _ = wait_for(current, RECOVER_TIMEOUT_S)
        if pid is None:
            break
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
    window = time.monotonic() - t0
    # the last respawn is the longest wait; it must come
    back, _ = wait_for(lambda: any(i == victim_index and p not in killed
                                   for p, i in server.workers().items()), RECOVER_TIMEOUT_S)
    time.sleep(0.2)
    stop.set()
    poller.join()
    server.remember()
    check("back-off: worker %d killed %d times within %.0f s" % (
        victim_index, BACKOFF_KILLS, BACKOFF_WINDOW_S),
        len(killed) == BACKOFF_KILLS and window <= BACKOFF_WINDOW_S,
        "%d kills in %.2f s" % (len(killed), window))
    delays = [int(m) for m in re.findall(
        r"worker %d died from signal 9; restarting in (\d+) ms" % victim_index,
        server.log_text()[log_start:])]
    check("back-off: the log shows %d restarts with growing delays" % BACKOFF_KILLS,
          len(delays) == BACKOFF_KILLS and all(b > a for a, b in zip(delays, delays[1:])),
          "delays %s" % delays)
    check("back-off: the worker comes back after the last delay", back)
    check("back-off: /healthz stayed 200 on the other worker (%d polls)" % health["ok"],
          not health["bad"] and health["ok"] > 0, "bad answers: %s" % health["bad"][:5])
    check("back-off: the server (master and writer) stayed up",
          server.proc.poll() is None and server.writer() is not None)
    conn.close()
    print("back-off: worker %d killed %d times in %.2f s; log delays %s ms; "
          "/healthz 200 x%d on worker pid %d" % (victim_index, len(killed), window,
                                                delays, health["ok"], keeper), flush=True)


# ---------------------------------------------------------------- main

def run(args, tmp):
    server = Server(args.builddir, tmp)
    try:
        server.start()
        token = server.ctl("account", "create", ACCOUNT)["token"]
        server.ctl("source", "create", ACCOUNT, SOURCE)
        return campaign(args, server, token)
    finally:
        server.abort()


def round_outcomes(reqs):
    return {k: sum(1 for r in reqs if r.outcome == k) for k in ("ack", "fail", "none")}


def campaign(args, server, token):
    rng = random.Random(args.seed)
    load = Load(server.base, token, args.clients, args.seed, tuple(args.batch))
    kinds = ["worker", "writer", "master"] * args.kills_per_kind
    counts = {"worker": 0, "writer": 0, "master": 0}
    lost_total = 0
    since = None            # where the requests of this round start (None: all)
    t_start = time.monotonic()
    try:
        for n, kind in enumerate(kinds, 1):
            label = "kill %d (%s)" % (n, kind)
            load.resume()
            time.sleep(rng.uniform(*args.pause))
            if kind == "worker":
                what = kill_worker(server, load, rng, label)
            elif kind == "writer":
                what = kill_writer(server, load, label)
            else:
                what = kill_master(server, label)
            counts[kind] += 1
            time.sleep(args.after)          # traffic on the recovered server too
            load.pause()
            full = n % args.full_every == 0
            window = None if full else since
            t_v = time.monotonic()
            v = verify(server, token, load, label, window)
            t_v = time.monotonic() - t_v
            lost_total += v["lost"]
            o = round_outcomes([r for c in load.clients for r in c.reqs[c.mark:]])
            for c in load.clients:
                c.mark = len(c.reqs)
            print("%s: %s | round: %d requests (%d acked, %d failed, %d unanswered) | "
                  "%s (%.1f s): %d acked requests, %d records, lost %d, wrong %d, "
                  "partial %d, unanswered stored whole %d / absent %d, "
                  "answered-failed but stored %d"
                  % (label, what, sum(o.values()), o["ack"], o["fail"], o["none"],
                     "checked all" if window is None else "checked window", t_v, v["acked"], v["records"],
                     v["lost"], v["wrong"], v["partial"], v["none_whole"], v["none_absent"],
                     v["fail_stored"]), flush=True)
            since = {c.cid: c.next_ts for c in load.clients}
        if counts["writer"]:
            check("writer kills: requests in flight got their 204 after the kill "
                  "(%d of %d)" % (WRITER_FLIGHT["after"], WRITER_FLIGHT["flying"]),
                  WRITER_FLIGHT["after"] > 0)
        if args.backoff:
            backoff_test(server)
        load.stop()
        v = verify(server, token, load, "final")
        rc, left = server.stop()
        check("server drains and exits 0 on SIGTERM", rc == 0, "exit status %s" % rc)
        check("no child left behind after SIGTERM", not left, "still running: %s" % left)
        reports = sorted(set(m.group(0) for m in SANITIZER_RE.finditer(server.log_text())))
        check("no sanitizer report in server.log", not reports, "; ".join(reports[:5]))
    finally:
        load.go.clear()
        for c in load.clients:
            c.quit = True
    reqs = load.all_reqs()
    o = round_outcomes(reqs)
    statuses = sorted({r.status for r in reqs if r.outcome == "fail"})
    elapsed = time.monotonic() - t_start
    print("figures: %d requests in %.1f s (%.0f req/s, %.0f acknowledged records/s): "
          "%d acknowledged, %d answered with an error %s, %d unanswered "
          "(%d stored whole, %d absent); %d records stored"
          % (len(reqs), elapsed, len(reqs) / elapsed, v["records"] / elapsed, o["ack"],
             o["fail"], statuses, o["none"], v["none_whole"], v["none_absent"], v["stored"]),
          flush=True)
    total = sum(counts.values())
    lost = v["lost"]
    print("lost %d of %d acknowledged over %d kills (%d worker, %d writer, %d master)"
          % (lost, v["records"], total, counts["worker"], counts["writer"], counts["master"]),
          flush=True)
    return lost == 0 and lost_total == 0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--builddir", default=os.environ.get("top_builddir",
                                                        os.path.join(here, "..", "..")))
    p.add_argument("--kills-per-kind", type=int, default=10)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--batch", type=int, nargs=2, default=[50, 200], metavar=("MIN", "MAX"))
    p.add_argument("--pause", type=float, nargs=2, default=[0.3, 1.0], metavar=("MIN", "MAX"),
                   help="seconds of load before each kill")
    p.add_argument("--after", type=float, default=0.2,
                   help="seconds of load after recovery, before verifying")
    p.add_argument("--full-every", type=int, default=1, metavar="N",
                   help="verify everything ever acknowledged after every Nth kill; the "
                        "kills in between verify the requests sent since the previous kill")
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--no-backoff", dest="backoff", action="store_false")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = p.parse_args()
    for b in ("temporisd", "temporisctl"):
        if not os.access(os.path.join(args.builddir, "src", b), os.X_OK):
            print("SETUP FAILED: %s/src/%s not found (build first)" % (args.builddir, b))
            print("0 passed, 1 failed")
            return 1
    print("crash harness: seed %d, %d kills per kind, %d clients, batches %d-%d records"
          % (args.seed, args.kills_per_kind, args.clients, args.batch[0], args.batch[1]),
          flush=True)
    # SIGTERM (make's timeout, a CI cancel) unwinds like Ctrl-C: the server is killed
    signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(128 + sig))
    tmp = tempfile.mkdtemp(prefix="temporis-crash.")
    ok = False
    try:
        ok = run(args, tmp)
    except Exception as e:          # a setup step or the server itself broke: report it
        check("harness ran to the end", False, "%s: %s" % (type(e).__name__, e))
    finally:
        if FAILED and os.path.exists(os.path.join(tmp, "server.log")):
            print("---- server.log (last 30 lines) ----")
            with open(os.path.join(tmp, "server.log"), errors="replace") as f:
                print("".join(f.readlines()[-30:]), end="")
            print("------------------------------------")
        if args.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (PASSED, FAILED))
    return 0 if ok and FAILED == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
