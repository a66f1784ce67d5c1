"""systems.py - the servers under test, shared by bench.py, workloads.py and tsbs.py.

System is one server on a free loopback port with its data under the run's temp dir: it
starts it (and again on the same data), lists its processes for their CPU (/proc/PID/stat)
and peak RSS (VmHWM), kills them all at once (a crash) or stops it gracefully. Temporis
(temporisd: its account and data sources, the default workload's read-back and committed
metric), Influx (influxd) and Victoria (victoria-metrics) are the three kinds. Also here:
the HTTP and /proc helpers, the systems' names (OURS, OURS_FSYNC), the series names that
line protocol maps to (lp_series_name), the command line's cells (parse_cells) and the
machine line, so that no module imports bench.py.
"""
import json
import os
import pwd
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import gen_bodies

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_LIMIT = 10000
HTTP_TIMEOUT_S = 60
LINE_TYPE = "text/plain; charset=utf-8"
RUN_AS = os.environ.get("TEMPORIS_USER", "nobody")
TRAVERSE_MODE = 0o711
OURS = "temporis"
OURS_FSYNC = "temporis-fsync"
FULL_CHECK_MAX = 1000          # (source, series) pairs read back in full; more get sampled
SAMPLE_SEED = 6                # a fixed sample for a given set of bodies sent
METRIC_SETTLE_S = 1            # let the requests cut off at wrk's stop commit
COMMITTED_METRIC = "temporis_records_committed_total"
FORMATS = ("json", "line")     # what temporisd is fed: our JSON, or the peers' line protocol
LP_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"))   # as Prometheus escapes label values


def lp_series_name(measurement, field, tags):
    """The series temporisd stores a line-protocol field in: measurement_field{tag="value",...},
    tags sorted by key, values escaped as Prometheus escapes label values (\\ \" \\n), no
    braces without tags. tags: {key: raw value}."""
    def esc(v):
        for a, b in LP_ESCAPES:
            v = v.replace(a, b)
        return v
    name = "%s_%s" % (measurement, field)
    if not tags:
        return name
    return "%s{%s}" % (name, ",".join('%s="%s"' % (k, esc(tags[k])) for k in sorted(tags)))


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as r:
        return r.status, r.read()


def wait_http(url, proc, name, want=(200, 204)):
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("bench: %s exited during start-up (status %s)" % (name, proc.returncode))
        try:
            if http("GET", url)[0] in want:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("bench: %s did not answer %s within %ds" % (name, url, START_TIMEOUT_S))


def descendants(pid):
    out = [pid]
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                for c in f.read().split():
                    out += descendants(int(c))
    except OSError:
        pass
    return out


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cpu_ticks(pid):
    """utime + stime of every thread of pid, in clock ticks (0 if it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])    # fields 14 and 15 of stat(5)


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class System:
    """One server under test: its processes, its ingest URL, its bodies, its count. name
    keys its runs and its dir; label is what tables and check lines print."""
    fmt = "line"
    ctype = LINE_TYPE
    token = ""

    health = "/"

    def __init__(self, name, tmp):
        self.name, self.dir, self.proc = name, os.path.join(tmp, name), None
        self.label = name
        os.makedirs(self.dir)
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        self.argv = []

    def launch(self):
        """Starts (or starts again, on the same data) the server; waits until it answers."""
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=self.log)
        wait_http(self.base + self.health, self.proc, self.name)

    def data_dirs(self):
        """{part: directory} of everything the server keeps on disk."""
        return {"data": os.path.join(self.dir, "data")}

    def kill_all(self, then=None):
        """SIGKILL to every process of the server at once (a crash), then calls `then` (if
        given) and waits until all are gone."""
        pids = self.pids()
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        if then:
            then()
        self.proc.wait()
        deadline = time.time() + STOP_TIMEOUT_S
        while any(alive(p) for p in pids) and time.time() < deadline:
            time.sleep(0.01)

    def pids(self):
        return sorted(set(descendants(self.proc.pid))) if self.proc else []

    def cpu_s(self):
        return sum(cpu_ticks(p) for p in self.pids()) / CLK_TCK

    def peak_rss_mb(self):
        return sum(status_kb(p, "VmHWM") for p in self.pids()) / 1024

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for p in reversed(self.pids()):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            self.proc.wait()


class Temporis(System):
    """temporisd; fmt "json": our JSON on /v1/data_sources/ingest, "line": the peers' line
    protocol on /write?db=SOURCE&precision=s (labelled "NAME (line)")."""
    fmt = "json"
    ctype = "application/json"
    health = "/healthz"

    def __init__(self, name, tmp, build, sync, sets, workers=None, fmt="json"):
        super().__init__(name, tmp)
        if fmt not in FORMATS:
            raise SystemExit("bench: unknown format %r (one of %s)" % (fmt, ", ".join(FORMATS)))
        self.fmt = fmt
        if fmt == "line":
            self.ctype, self.label = LINE_TYPE, "%s (line)" % name
        self.bin = os.path.join(build, "src")
        self.sock = os.path.join(self.dir, "admin.sock")
        conf = os.path.join(self.dir, "temporis.conf")
        with open(conf, "w") as f:
            f.write("listen = 127.0.0.1:%d\ndata_dir = %s\nadmin_socket = %s\n"
                    % (self.port, os.path.join(self.dir, "data"), self.sock))
            if sync != "wal":
                f.write("sync = %s\n" % sync)
            if workers:
                f.write("workers = %d\n" % workers)
            if os.geteuid() == 0:
                # temporisd never serves as root: it switches to RUN_AS, which owns its dir
                pw = pwd.getpwnam(RUN_AS)
                os.chmod(tmp, TRAVERSE_MODE)
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
                f.write("user = %s\n" % RUN_AS)
        self.conf = conf
        self.argv = [os.path.join(self.bin, "temporisd"), "--config", conf]
        self.launch()
        self.token = json.loads(self.ctl("--json", "account", "create", "bench"))["token"]
        # creating a source costs O(existing sources): done here, before any timing
        t0, n = time.time(), 0
        for s in sets:
            for src in s["sources"]:
                self.ctl("source", "create", "bench", src)
                n += 1
        self.create_s = time.time() - t0
        log("%s: created %d data source%s in %.1f s" % (name, n, "s" if n > 1 else "",
                                                         self.create_s))
        self.committed0 = self.committed()

    def launch(self):
        super().launch()
        while not os.path.exists(self.sock):
            time.sleep(0.05)

    def ctl(self, *args):
        return subprocess.run([os.path.join(self.bin, "temporisctl"), "--socket", self.sock] +
                              list(args), check=True, capture_output=True, text=True).stdout

    def ingest_path(self, source):
        """The path (and query) that takes this instance's bodies for data source `source`."""
        if self.fmt == "line":
            return "/write?%s" % urllib.parse.urlencode({"db": source, "precision": "s"})
        return "/v1/data_sources/ingest"

    def url_for(self, s):
        return self.base + self.ingest_path(s["source"])

    def series_name(self, s, series):
        """The stored name of the default workload's series number `series` (gen_bodies)."""
        if self.fmt == "line":
            return lp_series_name(gen_bodies.series_name(series, s["width"]), gen_bodies.LINE_FIELD,
                                  {gen_bodies.LINE_TAG: s["tag"]})
        return gen_bodies.series_name(series, s["width"])

    def committed(self):
        """temporis_records_committed_total from GET /metrics."""
        for line in http("GET", self.base + "/metrics")[1].decode().splitlines():
            if line.startswith(COMMITTED_METRIC + " "):
                return int(float(line.split()[1]))
        raise SystemExit("bench: %s: no %s in /metrics" % (self.name, COMMITTED_METRIC))

    def read_series(self, source, series):
        """Every record of one series, following next_cursor."""
        hdr = {"Authorization": "Bearer " + self.token}
        out, cursor = [], None
        while True:
            q = {"name": series, "limit": PAGE_LIMIT}
            if cursor:
                q["cursor"] = cursor
            url = "%s/v1/data_sources/%s/records?%s" % (self.base, source,
                                                        urllib.parse.urlencode(q))
            page = json.loads(http("GET", url, headers=hdr)[1])
            out += page["records"]
            cursor = page["next_cursor"]
            if not cursor:
                return out

    def check_series(self, s, j, series, done, sent):
        """Reads one series back: (records read, certain, possible, differing values,
        missing, unexpected); certain/possible: records of bodies surely/maybe sent."""
        want = {}
        for body, step in gen_bodies.expected_steps(j, series, s["batch"], s["nseries"],
                                                    len(s["sources"]), s["bodies"]):
            if sent[body]:
                want[s["first_ts"] + step] = done[body]
        recs = self.read_series(s["sources"][j], self.series_name(s, series))
        bad = extra = 0
        for r in recs:
            if r["timestamp"] not in want:
                extra += 1
                continue
            v = gen_bodies.value_of(r["timestamp"] - s["first_ts"], series)
            bad += r["value"] != v or type(r["value"]) is not type(v)
        seen = {r["timestamp"] for r in recs}
        missing = sum(1 for ts, certain in want.items() if certain and ts not in seen)
        return len(recs), sum(want.values()), len(want), bad, missing, extra

    def pairs(self, s, sent, sample):
        """(source index, series) to read back: all of them, or a sample of the series
        that the bodies sent hold (sample drawn from random records of those bodies)."""
        nsrc, total = len(s["sources"]), len(s["sources"]) * s["nseries"]
        if total <= FULL_CHECK_MAX:
            return [(j, x) for j in range(nsrc) for x in range(s["nseries"])], True
        bodies = [i for i, hit in enumerate(sent) if hit]
        rng, out = random.Random(SAMPLE_SEED), set()
        want = min(sample, s["covered"])
        while bodies and len(out) < want:
            i = rng.choice(bodies)
            k = i * s["batch"] + rng.randrange(s["batch"])
            out.add((i % nsrc, k % s["nseries"]))
        return sorted(out), False

    def check(self, s, done, sent, sample):
        """Reads series back and compares every key and value with the generator."""
        pairs, full = self.pairs(s, sent, sample)
        tot = [0] * 6
        for j, x in pairs:
            tot = [a + b for a, b in zip(tot, self.check_series(s, j, x, done, sent))]
        got, lo, hi, bad, missing, extra = tot
        good = lo <= got <= hi and not (bad or missing or extra)
        want = "%d" % hi if lo == hi else "%d-%d" % (lo, hi)
        what = ("%d distinct records stored" % got if full else
                "%d records read from %d sampled series (of %d covered; %d source%s)" % (
                    got, len(pairs), s["covered"], len(s["sources"]),
                    "s" if len(s["sources"]) > 1 else ""))
        errs = ", ".join("%d %s" % (n, w) for n, w in ((bad, "values differ"), (missing, "missing"),
                                                         (extra, "unexpected")) if n)
        return good, full, "%s, expected %s (%d of %d bodies sent)%s" % (
            what, want, sum(sent), s["bodies"], ", " + errs if errs else "")

    def check_metric(self, runs):
        """Records committed (the metric) against the requests wrk saw answered."""
        time.sleep(METRIC_SETTLE_S)
        grown = self.committed() - self.committed0
        lo = sum((w["requests"] - w["err_status"]) * w["batch"] for w in runs)
        hi = sum((w["requests"] + w["conns"] + w["err_timeout"]) * w["batch"] for w in runs)
        good = lo <= grown <= hi
        return good, "- %s: %s grew by %d, expected %d-%d (%d requests answered, %d connections " \
            "cut at each stop) -> %s" % (self.label, COMMITTED_METRIC, grown, lo, hi,
                                        sum(w["requests"] for w in runs),
                                        max(w["conns"] for w in runs), "OK" if good else "MISMATCH")


class Influx(System):
    health = "/ping"

    def __init__(self, name, tmp, sets):
        super().__init__(name, tmp)
        rpc = free_port()
        conf = os.path.join(self.dir, "influxdb.conf")
        with open(conf, "w") as f:
            f.write('reporting-disabled = true\nbind-address = "127.0.0.1:%d"\n'
                    '[meta]\n  dir = "%s/meta"\n'
                    '[data]\n  dir = "%s/data"\n  wal-dir = "%s/wal"\n  query-log-enabled = false\n'
                    '[http]\n  bind-address = "127.0.0.1:%d"\n  log-enabled = false\n'
                    '[monitor]\n  store-enabled = false\n'
                    '[continuous_queries]\n  enabled = false\n'
                    '[logging]\n  level = "warn"\n'
                    % (rpc, self.dir, self.dir, self.dir, self.port))
        self.argv = ["influxd", "-config", conf]
        self.launch()
        for s in sets:
            self.query("CREATE DATABASE " + s["source"])

    def data_dirs(self):
        return {k: os.path.join(self.dir, k) for k in ("data", "wal", "meta")}

    def query(self, q, db=None):
        args = {"q": q}
        if db:
            args["db"] = db
        return json.loads(http("POST", self.base + "/query",
                               data=urllib.parse.urlencode(args).encode(),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})[1])

    def url_for(self, s):
        return "%s/write?db=%s&precision=s" % (self.base, s["source"])

    def count(self, s):
        res = self.query("SELECT count(value) FROM /^s[0-9]+$/", db=s["source"])["results"][0]
        return sum(row["values"][0][1] for row in res.get("series", [])), 0


class Victoria(System):
    health = "/health"

    def __init__(self, name, tmp):
        super().__init__(name, tmp)
        # dedup at 1 ms: a re-sent sample with the same timestamp counts once (upsert)
        self.argv = ["victoria-metrics", "-storageDataPath", os.path.join(self.dir, "data"),
                     "-httpListenAddr", "127.0.0.1:%d" % self.port, "-retentionPeriod", "100y",
                     "-dedup.minScrapeInterval", "1ms", "-loggerLevel", "WARN"]
        self.launch()

    def url_for(self, s):
        return "%s/write?db=%s&precision=s" % (self.base, s["source"])

    def count(self, s):
        http("GET", self.base + "/internal/force_flush")
        q = 'sum(count_over_time({b="%s"}[1d]))' % s["tag"]
        url = "%s/api/v1/query?%s" % (self.base, urllib.parse.urlencode(
            {"query": q, "time": s["last_ts"] + 1, "nocache": 1}))
        res = json.loads(http("GET", url)[1])["data"]["result"]
        return (int(float(res[0]["value"][1])) if res else 0), 0


# ---- the command line's cells and the machine line (bench.py, workloads.py) ----

def parse_cells(text):
    cells = []
    for c in filter(None, text.split(",")):
        b, n = c.split("x")
        cells.append((int(b), int(n)))
    return cells


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // (1024 * 1024)
    return "nproc %d, CPU %s, %d GiB RAM, kernel %s, load before the run: %s" % (
        os.cpu_count(), model, mem, os.uname().release,
        open("/proc/loadavg").read().split()[:3])
