#!/usr/bin/env python3
"""bench.py - the ingest benchmark driver behind scripts/bench/run.

Starts temporisd (and, with --peers, InfluxDB and VictoriaMetrics) on loopback with
data under one temp dir, drives each with wrk cycling through the same pre-built
workload (gen_bodies.py), interleaving the systems run by run, measures server CPU
(/proc/PID/stat) and peak RSS (VmHWM), checks afterwards that every distinct
record landed, and prints a Markdown table. Cleans up everything it started.
--workers/--series/--sources shape temporisd's load for the scale curve
(scripts/bench/scale); large workloads are verified on a sample of series plus
the server's temporis_records_committed_total.
"""
import argparse
import json
import os
import pwd
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_bodies  # noqa: E402
sys.modules.setdefault("bench", sys.modules[__name__])   # one module for workloads.py to import
import workloads  # noqa: E402

BODIES = 200
WRK_THREADS = 2
WRK_TIMEOUT = "10s"
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30
BASE_TS_AGE_S = 6 * 3600       # VictoriaMetrics rejects samples outside its retention
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_LIMIT = 10000
HTTP_TIMEOUT_S = 60
PROFILE_MARGIN_S = 2
PERF_FREQ = 999
PROFILE_TOP = 15
DWARF_TOP = 40
DWARF_STACK = 16384
PROFILE_CELL = (1000, 16)
FULL_CELLS = "1000x4,1000x16,1000x64,100x4,100x16"
QUICK_CELLS = "1000x16,100x16"
FULL_FSYNC_CELLS = "1000x16,1000x64"
QUICK_FSYNC_CELLS = "1000x16"
LINE_TYPE = "text/plain; charset=utf-8"
RUN_AS = os.environ.get("TEMPORIS_USER", "nobody")
TRAVERSE_MODE = 0o711
OURS = "temporis"
OURS_FSYNC = "temporis-fsync"
DEFAULT_SERIES = gen_bodies.DEFAULT_SERIES
FULL_CHECK_MAX = 1000          # (source, series) pairs read back in full; more get sampled
DEFAULT_SAMPLE = 200
SAMPLE_SEED = 6                # a fixed sample for a given set of bodies sent
METRIC_SETTLE_S = 1            # let the requests cut off at wrk's stop commit
COMMITTED_METRIC = "temporis_records_committed_total"
TSBS_VALUES = ("two", "full", "int")
DISK_RECORDS = 3_000_000
BACKFILL_DAYS = 30
BACKFILL_RESEND = 0.1
RECOVERY_MINUTES = 2
SUSTAINED_MINUTES = 10
SUSTAINED_WINDOW_S = 60


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
    """One server under test: its processes, its ingest URL, its bodies, its count."""
    fmt = "line"
    ctype = LINE_TYPE
    token = ""

    health = "/"

    def __init__(self, name, tmp):
        self.name, self.dir, self.proc = name, os.path.join(tmp, name), None
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
    fmt = "json"
    ctype = "application/json"
    health = "/healthz"

    def __init__(self, name, tmp, build, sync, sets, workers=None):
        super().__init__(name, tmp)
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
        self.url = self.base + "/v1/data_sources/ingest"
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

    def url_for(self, s):
        return self.url

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
        recs = self.read_series(s["sources"][j], gen_bodies.series_name(series, s["width"]))
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
            "cut at each stop) -> %s" % (self.name, COMMITTED_METRIC, grown, lo, hi,
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


def run_wrk(sysm, s, conns, duration, start, ready):
    """One wrk run; the threads walk the bodies in order from `start`; with many bodies
    they wait for each other (the file `ready`) before the first request."""
    threads = min(WRK_THREADS, conns)
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration,
           "--timeout", WRK_TIMEOUT, "--latency", "-s", os.path.join(HERE, "cycle.lua"),
           sysm.url_for(s), "--", s["dirs"][sysm.fmt], str(s["bodies"]), sysm.ctype, sysm.token,
           str(-(-conns // threads)), str(start), str(threads)]
    if s["bodies"] > BODIES:
        cmd.append(ready)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    if os.path.exists(ready):
        os.unlink(ready)
    for line in out.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[len("BENCH "):])
    raise SystemExit("bench: no BENCH line from wrk:\n" + out)


def role_pids(sysm):
    """{"worker": [pids], "writer": [pid]} from the process titles."""
    roles = {}
    for p in sysm.pids():
        try:
            with open("/proc/%d/cmdline" % p, "rb") as f:
                title = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        for role in ("worker", "writer"):
            if title.startswith("temporisd: " + role):
                roles.setdefault(role, []).append(p)
    return roles


def perf_report(data, top, children=False):
    """The `top` heaviest symbols as perf report prints them: self time, or with
    children=True inclusive time (meaningful with DWARF call graphs)."""
    how = ["--children", "--percent-limit", "1", "--sort", "symbol"] if children else \
        ["--no-children", "--percent-limit", "0.3", "--sort", "dso,symbol"]
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none"] + how,
                         check=True, capture_output=True, text=True).stdout
    rows = [l.rstrip(" -") for l in out.splitlines() if l.strip() and not l.startswith("#")]
    return rows[:top]


def profile(sysm, s, outdir, conns, duration, top, dwarf=False):
    """perf record on the workers and on the writer while wrk drives batch-1000 load."""
    os.makedirs(outdir, exist_ok=True)
    callgraph = ["--call-graph", "dwarf,%d" % DWARF_STACK] if dwarf else ["-g"]
    tag = "-dwarf" if dwarf else ""
    threads = min(WRK_THREADS, conns)
    wrk = subprocess.Popen(
        ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % (duration + 2 * PROFILE_MARGIN_S),
         "--timeout", WRK_TIMEOUT, "--latency", "-s", os.path.join(HERE, "cycle.lua"),
         sysm.url_for(s), "--", s["dirs"][sysm.fmt], str(s["bodies"]), sysm.ctype, sysm.token,
         str(-(-conns // threads))], stdout=subprocess.PIPE, text=True)
    time.sleep(PROFILE_MARGIN_S)
    roles = role_pids(sysm)
    cpu0 = {r: sum(cpu_ticks(p) for p in ps) for r, ps in roles.items()}
    perfs = {}
    for role, pids in sorted(roles.items()):
        data = os.path.join(outdir, "perf-%s%s.data" % (role, tag))
        cmd = ["perf", "record"] + callgraph + ["-F", str(PERF_FREQ), "-o", data,
               "-p", ",".join(map(str, pids)), "--", "sleep", str(duration)]
        print("$ " + " ".join(cmd), flush=True)
        perfs[role] = (subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), data)
    for p, _ in perfs.values():
        p.wait()
    cpu = {r: (sum(cpu_ticks(p) for p in ps) - cpu0[r]) / CLK_TCK for r, ps in roles.items()}
    out = wrk.communicate()[0]
    w = json.loads(next(l for l in out.splitlines() if l.startswith("BENCH "))[len("BENCH "):])
    rate = w["requests"] * s["batch"] / (w["duration_us"] / 1e6)
    print("\nload: batch %d, %d connections, %.0f records/s over the whole wrk run (profiler "
          "attached for %d s of it)" % (s["batch"], conns, rate, duration))
    for role, (_, data) in sorted(perfs.items()):
        if dwarf:
            print("\n%s, inclusive (--children), DWARF call graphs: $ perf report -i %s --stdio "
                  "--children -g none --sort symbol" % (role, os.path.basename(data)))
            print("\n".join(perf_report(data, DWARF_TOP, children=True)))
            continue
        print("\n%s (%d process%s, %.2f CPU s in %d s): $ perf report -i %s --stdio --no-children "
              "-g none --sort dso,symbol" % (role, len(roles[role]), "es" if len(roles[role]) > 1 else "",
                                            cpu[role], duration, os.path.basename(data)))
        print("\n".join(perf_report(data, top)))


def parse_cells(text):
    cells = []
    for c in filter(None, text.split(",")):
        b, n = c.split("x")
        cells.append((int(b), int(n)))
    return cells


def measure(systems, sets, cells, fsync_cells, runs, duration, tmp):
    """A/B interleaved: for every cell and run, each system once, order rotated per run."""
    results, cursor = {}, {}
    for batch, conns in cells:
        s = sets[batch]
        members = [x for x in systems if x.name != OURS_FSYNC or (batch, conns) in fsync_cells]
        for r in range(runs):
            order = members[r % len(members):] + members[:r % len(members)]
            for sysm in order:
                # each run continues where this system's previous run on these bodies
                # stopped, so that runs send fresh keys until the bodies wrap around
                start = cursor.get((sysm.name, batch), 0)
                before, wall = sysm.cpu_s(), time.time()
                w = run_wrk(sysm, s, conns, duration, start % s["bodies"],
                            os.path.join(tmp, "wrk-ready"))
                w["cpu_s"] = sysm.cpu_s() - before
                w["wall_s"] = time.time() - wall
                w["batch"], w["conns"] = batch, conns
                cursor[(sysm.name, batch)] = start + w["requests"]
                if start + w["requests"] > s["bodies"] > max(start, BODIES):
                    log("%s batch %d: the %d bodies wrapped around: from now on re-sent bodies "
                        "are upserts of existing keys" % (sysm.name, batch, s["bodies"]))
                w["records"] = w["requests"] * batch
                w["errors"] = sum(v for k, v in w.items() if k.startswith("err_"))
                results.setdefault((sysm.name, batch, conns), []).append(w)
                log("%-15s batch %5d  c%-3d run %d: %9.0f rec/s  p99 %6.1f ms  cpu %.2f s  "
                    "wrk %.1f s of %.1f s%s" % (
                        sysm.name, batch, conns, r + 1, w["records"] / (w["duration_us"] / 1e6),
                        w["p99_us"] / 1000, w["cpu_s"], w["duration_us"] / 1e6, w["wall_s"],
                        "  ERRORS %d" % w["errors"] if w["errors"] else ""))
    return results


def summarize(results):
    rows = {}
    for key, runs in results.items():
        rate = [w["records"] / (w["duration_us"] / 1e6) for w in runs]
        cpu = [w["cpu_s"] / (w["records"] / 1e6) for w in runs if w["records"]]
        rows[key] = {"rate": statistics.median(rate), "min": min(rate), "max": max(rate),
                     "p50": statistics.median(w["p50_us"] for w in runs) / 1000,
                     "p99": statistics.median(w["p99_us"] for w in runs) / 1000,
                     "cpu": statistics.median(cpu) if cpu else float("nan"),
                     "errors": sum(w["errors"] for w in runs), "n": len(runs)}
    return rows


def table(rows, peers):
    out = ["| system | batch | conns | records/s (median) | min-max | p50 ms | p99 ms "
           "| server CPU s / M records | errors | ours (wal) / this | ours (fsync) / this |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (name, batch, conns), v in sorted(rows.items(), key=lambda kv: (-kv[0][1], kv[0][2])):
        ratios = []
        for ours in (OURS, OURS_FSYNC):
            o = rows.get((ours, batch, conns))
            ratios.append("%.2f" % (o["rate"] / v["rate"]) if name in peers and o else "")
        out.append("| %s | %d | %d | %.0f | %.0f-%.0f | %.1f | %.1f | %.2f | %d | %s | %s |" % (
            name, batch, conns, v["rate"], v["min"], v["max"], v["p50"], v["p99"], v["cpu"],
            v["errors"], ratios[0], ratios[1]))
    return "\n".join(out)


def verify(systems, sets, results, sample):
    """One line per system and batch size (and per temporisd, its metric); (ok, lines, how),
    how: "all" if every series was read back, else "sample"."""
    lines, ok, how = [], True, "all"
    for sysm in systems:
        for batch, s in sets.items():
            runs = [w for (n, b, _), ws in results.items() if n == sysm.name and b == batch for w in ws]
            if not runs:
                continue
            # a body re-sent overwrites its own keys: distinct = bodies sent x batch; the
            # last request of each connection may have been cut off when wrk stopped
            done, sent = ([any(w[k][i] == "1" for w in runs) for i in range(s["bodies"])]
                          for k in ("done", "sent"))
            if isinstance(sysm, Temporis):
                good, full, text = sysm.check(s, done, sent, sample)
                ok &= good
                how = how if full else "sample"
                lines.append("- %s, batch %d: %s -> %s" % (sysm.name, batch, text,
                                                          "OK" if good else "MISMATCH"))
                continue
            got, bad = sysm.count(s)
            lo, hi = sum(done), sum(sent)
            good = lo * batch <= got <= hi * batch and got % batch == 0 and bad == 0
            ok &= good
            want = "%d" % (hi * batch) if lo == hi else "%d-%d" % (lo * batch, hi * batch)
            lines.append("- %s, batch %d: %d distinct records stored, expected %s (%d of %d bodies "
                         "sent)%s -> %s" % (sysm.name, batch, got, want, hi, s["bodies"],
                                            ", %d values differ" % bad if bad else "",
                                            "OK" if good else "MISMATCH"))
        if isinstance(sysm, Temporis):
            runs = [w for (n, _, _), ws in results.items() if n == sysm.name for w in ws]
            good, line = sysm.check_metric(runs)
            ok &= good
            lines.append(line)
    return ok, lines, how


def new_key_share(results, batch, nbodies):
    """Share of our requests at this batch size that carried keys not sent before (a body
    re-sent only upserts): distinct bodies sent / requests answered."""
    runs = [w for (n, b, _), ws in results.items() if n == OURS and b == batch for w in ws]
    distinct = sum(any(w["sent"][i] == "1" for w in runs) for i in range(nbodies))
    return min(1.0, distinct / max(1, sum(w["requests"] for w in runs)))


def scale_rows(rows, rss, label, ok, how, results, sets):
    """Rows of scripts/bench/scale's table for our wal instance, one per cell."""
    cells = sorted(k for k in rows if k[0] == OURS)
    out = []
    for key in cells:
        v = rows[key]
        name = "%s (%.0f%% new keys)" % (label, 100 * new_key_share(results, key[1],
                                                                   sets[key[1]]["bodies"]))
        if len(cells) > 1:
            name += ", %dx%d" % (key[1], key[2])
        verified = ("yes" if ok else "NO") + (" (sample + metric)" if how == "sample" else "")
        out.append("| %s | %.0f | %.1f | %.1f | %.2f | %.0f | %s |" % (
            name, v["rate"], v["p50"], v["p99"], v["cpu"], rss[OURS], verified))
    return out


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


def tsbs_main(ap, a):
    """The TSBS-shaped modes (workloads.py): checks their options, runs the one asked for."""
    if not a.gen_lib or not os.path.exists(a.gen_lib):
        ap.error("the TSBS workloads need --gen-lib tsbs_gen.so (scripts/bench/run builds it)")
    a.values_given = a.values is not None
    values = (a.values or "two").split(",")
    if set(values) - set(TSBS_VALUES) or (len(values) > 1 and not a.disk):
        ap.error("--values takes one of %s (--disk: a list of them)" % ", ".join(TSBS_VALUES))
    a.values = a.values or "two"
    if a.minutes is None:
        a.minutes = RECOVERY_MINUTES if a.recovery else SUSTAINED_MINUTES
    if min(a.records, a.days, a.duration, a.runs, a.window_s, a.sample) <= 0 or \
            a.minutes <= 0 or not 0 <= a.resend <= 1:
        ap.error("--records, --days, --duration, --runs, --window-s, --sample and --minutes must "
                 "be positive, --resend in [0, 1]")
    return workloads.main(a)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True, help="build dir holding src/temporisd")
    ap.add_argument("--peers", action="store_true")
    ap.add_argument("--sync", choices=["wal", "fsync"], default="wal",
                    help="fsync adds a temporis instance with sync = fsync")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cells", help="BATCHxCONNS,... (default depends on --quick)")
    ap.add_argument("--fsync-cells")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--workers", type=int, help="temporisd's workers (default: its default, auto)")
    ap.add_argument("--series", type=int, default=DEFAULT_SERIES,
                    help="distinct series per data source (default %(default)s)")
    ap.add_argument("--sources", type=int, default=1,
                    help="data sources; bodies go to them round-robin (default 1)")
    ap.add_argument("--max-bodies", type=int, default=gen_bodies.DEFAULT_MAX_BODIES,
                    help="cap on distinct bodies per batch size (default %(default)s); above "
                         "it the series covered are fewer than --series (printed)")
    ap.add_argument("--sample", type=int, default=DEFAULT_SAMPLE,
                    help="series read back when there are more than %d (default %%(default)s)"
                    % FULL_CHECK_MAX)
    ap.add_argument("--row-file", help="append this run's row(s) of the scale table to FILE")
    ap.add_argument("--label", default="", help="configuration name for --row-file")
    ap.add_argument("--workload", choices=["default", "tsbs", "backfill"], default="default",
                    help="tsbs: TSBS cpu-only, fresh points in time order; backfill: "
                         "out-of-order history in random chunks, some re-sent (workloads.py)")
    ap.add_argument("--hosts", help="TSBS hosts, comma-separated (tsbs: default %s; backfill %d; "
                    "--disk/--recovery/--sustained: one value, default %d)" % (
                        workloads.TSBS_HOSTS, workloads.BACKFILL_HOSTS, workloads.DISK_HOSTS))
    ap.add_argument("--values", help="TSBS values: two (two decimals, default), full (17 "
                    "significant digits), int (whole numbers, as doubles); --disk takes a list "
                    "(default %s)" % workloads.DISK_VALUES)
    ap.add_argument("--disk", action="store_true",
                    help="bytes on disk per record after one load, a %d s idle and a graceful stop "
                         "(with --workload backfill: of the backfill)" % workloads.IDLE_S)
    ap.add_argument("--records", type=int, default=DISK_RECORDS,
                    help="--disk: TSBS records sent to each system (default %(default)s)")
    ap.add_argument("--days", type=int, default=BACKFILL_DAYS,
                    help="backfill: days of history at 60 s (default %(default)s)")
    ap.add_argument("--resend", type=float, default=BACKFILL_RESEND,
                    help="backfill: share of chunks sent twice (default %(default)s)")
    ap.add_argument("--recovery", action="store_true",
                    help="temporisd: load, SIGKILL of the writer, load, SIGKILL of every process "
                         "and a restart; seconds until 204 again")
    ap.add_argument("--sustained", action="store_true",
                    help="temporisd: TSBS load for --minutes, figures per --window-s")
    ap.add_argument("--minutes", type=float,
                    help="--recovery: load before each kill (default %s); --sustained: length "
                         "(default %s)" % (RECOVERY_MINUTES, SUSTAINED_MINUTES))
    ap.add_argument("--window-s", type=int, default=SUSTAINED_WINDOW_S,
                    help="--sustained: reporting window (default %(default)s s)")
    ap.add_argument("--gen-lib", help="tsbs_gen.so (scripts/bench/run builds it)")
    ap.add_argument("--profile", metavar="DIR",
                    help="instead of the table: perf record -g the workers and the writer under "
                         "batch-1000/16-connection load (then again with DWARF call graphs for "
                         "inclusive times); perf.data files go to DIR")
    a = ap.parse_args()
    if a.workload != "default" or a.disk or a.recovery or a.sustained:
        return tsbs_main(ap, a)
    if a.peers and (a.series != DEFAULT_SERIES or a.sources != 1):
        ap.error("--series and --sources are for temporisd only: not with --peers")
    if min(a.series, a.sources, a.max_bodies, a.sample) <= 0 or (a.workers or 1) <= 0:
        ap.error("--workers, --series, --sources, --max-bodies and --sample must be positive")
    if a.profile:
        cells = [PROFILE_CELL]
    else:
        cells = parse_cells(a.cells or (QUICK_CELLS if a.quick else FULL_CELLS))
    fsync_cells = set(parse_cells(a.fsync_cells or (QUICK_FSYNC_CELLS if a.quick else FULL_FSYNC_CELLS)))
    if a.sync != "fsync" or a.profile:
        fsync_cells = set()
    a.peers = a.peers and not a.profile
    fsync_cells &= set(cells)

    t0 = time.time()
    info = machine()
    tmp = tempfile.mkdtemp(prefix="temporis-bench.")
    systems = []
    try:
        base_ts = int(time.time()) - BASE_TS_AGE_S
        t_gen = time.time()
        manifest = json.loads(subprocess.run(
            [sys.executable, os.path.join(HERE, "gen_bodies.py"), os.path.join(tmp, "bodies"),
             str(base_ts), "--bodies", str(BODIES), "--series", str(a.series),
             "--sources", str(a.sources), "--max-bodies", str(a.max_bodies),
             "--formats", "json,line" if a.peers else "json",
             "--batches", ",".join(str(b) for b in sorted({b for b, _ in cells}))],
            check=True, capture_output=True, text=True).stdout)
        sets = {s["batch"]: s for s in manifest}
        workload = "; ".join(
            "b%d: %d bodies, %d series x %d source%s, %d series covered" % (
                s["batch"], s["bodies"], s["nseries"], len(s["sources"]),
                "s" if len(s["sources"]) > 1 else "", s["covered"]) for s in manifest)
        log("workload generated in %.1f s: %s" % (time.time() - t_gen, workload))
        systems.append(Temporis(OURS, tmp, a.build, "wal", manifest, a.workers))
        if fsync_cells:
            systems.append(Temporis(OURS_FSYNC, tmp, a.build, "fsync", manifest, a.workers))
        if a.peers:
            systems.append(Influx("influxdb", tmp, manifest))
            systems.append(Victoria("victoria-metrics", tmp))
        log("systems up: " + ", ".join("%s (pid %d)" % (x.name, x.proc.pid) for x in systems))
        if a.profile:
            for dwarf in (False, True):
                profile(systems[0], sets[PROFILE_CELL[0]], os.path.abspath(a.profile),
                        PROFILE_CELL[1], a.duration, PROFILE_TOP, dwarf)
            return 0
        results = measure(systems, sets, cells, fsync_cells, a.runs, a.duration, tmp)
        rss = {x.name: x.peak_rss_mb() for x in systems}
        ok, checks, how = verify(systems, sets, results, a.sample)
        rows = summarize(results)
        peers = {x.name for x in systems if not isinstance(x, Temporis)}
        print("Machine: " + info)
        print("Settings: %d runs x %d s per cell, wrk -t%d, %s bodies per batch size; mean body "
              "bytes: %s\n" % (a.runs, a.duration, WRK_THREADS,
                                "/".join(str(s["bodies"]) for _, s in sorted(sets.items())),
                                ", ".join("b%d %s" % (b, " / ".join(
                                    "%s %d" % kv for kv in sorted(s["mean_body_bytes"].items())))
                                    for b, s in sorted(sets.items()))))
        if a.workers or a.series != DEFAULT_SERIES or a.sources != 1:
            print("Workload: %s; temporisd workers = %s; data sources created in %s\n" % (
                workload, a.workers or "auto",
                ", ".join("%.1f s (%s)" % (x.create_s, x.name) for x in systems
                          if isinstance(x, Temporis))))
        print(table(rows, peers))
        print("\nPeak RSS (sum of VmHWM over the system's processes): " +
              ", ".join("%s %.0f MB" % kv for kv in rss.items()))
        print("\nRecords landed (checked after all runs):")
        print("\n".join(checks))
        print("\nWall time: %.0f s" % (time.time() - t0))
        if a.row_file:
            with open(a.row_file, "a") as f:
                f.write("\n".join(scale_rows(rows, rss, a.label, ok, how, results, sets)) + "\n")
        return 0 if ok else 1
    finally:
        for x in systems:
            x.stop()
        if a.keep:
            log("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
