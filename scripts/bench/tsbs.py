"""tsbs.py - TSBS-shaped streams: what bench.py's --workload tsbs|backfill, --disk,
--recovery and --sustained send, how they send it, and how they check it landed.

The records come from tsbs_gen.so (tsbs_gen.c): wrk's threads (stream.lua) generate each
request body on the fly, so a run never repeats a (timestamp, name) key and a run continues
where the same system's previous run on that stream stopped (tsbs_gen's state file).
Every system walks the same stream of records from its beginning. This module describes
the streams (Stream), drives wrk through them (Load), keeps what each system was sent and
answered (Ledger), and reads sampled hosts back from each system to compare every value
with what the generator wrote (verify).
"""
import ctypes
import json
import os
import random
import signal
import subprocess
import time
import urllib.parse

import systems as sut  # the systems under test (their classes, http)

FIELDS = ("usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
          "usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice")
NFIELDS = len(FIELDS)
MEASUREMENT = "cpu"              # tsbs_gen.c's names: JSON cpu.FIELD.host_I, line protocol
HOST_TAG = "hostname"            # cpu,hostname=host_I FIELD=V,...
TSBS_INTERVAL_S = 10
BACKFILL_INTERVAL_S = 60
BACKFILL_CHUNK_STEPS = 60        # one hour at 60 s
SEED = 11
RATE_CAP = 10_000_000            # records/s no system reaches here: sizes a stream's time span
BASE_MARGIN_S = 3600
WRK_THREADS = 2
WRK_TIMEOUT = "10s"
LONG_RUN_S = 86400               # a wrk duration for runs that end when their stream does
POLL_S = 0.01
SAMPLE_SEED = 6
RELATIVE_ROUNDING = 1e-9         # closer than this to the value written: "rounded", not "differs"
STREAM_FUTURE = -2
SETTLE_S = 0.5
SETTLE_MAX_S = 30
HERE = os.path.dirname(os.path.abspath(__file__))


class Gen:
    """tsbs_gen.so through ctypes: the values a stream wrote, the backfill checkpoints."""

    def __init__(self, path):
        lib = ctypes.CDLL(path)
        lib.tg_open.restype = ctypes.c_void_p
        lib.tg_open.argtypes = [ctypes.c_char_p]
        lib.tg_close.argtypes = [ctypes.c_void_p]
        lib.tg_expected.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_long,
                                    ctypes.c_long, ctypes.POINTER(ctypes.c_double)]
        lib.tg_checkpoints.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_long,
                                       ctypes.c_char_p]
        self.lib, self.path = lib, path

    def _open(self, spec):
        h = self.lib.tg_open(spec.encode())
        if not h:
            raise SystemExit("bench: tsbs_gen cannot open %s" % spec)
        return h

    def expected(self, spec, host, steps):
        """[field][step] -> the value a server should hold (the written text, parsed)."""
        h, out = self._open(spec), []
        try:
            arr = (ctypes.c_double * max(1, steps))()
            for f in range(NFIELDS):
                self.lib.tg_expected(h, host, f, steps, arr)
                out.append(arr[:steps])
        finally:
            self.lib.tg_close(h)
        return out

    def checkpoints(self, spec, windows, steps, path):
        """spec: a seq stream of the same hosts, values and seed (walks the same)."""
        h = self._open(spec)
        try:
            if self.lib.tg_checkpoints(h, windows, steps, path.encode()):
                raise SystemExit("bench: cannot write " + path)
        finally:
            self.lib.tg_close(h)


class Stream:
    """One sequence of request bodies. order "seq": TSBS cpu-only in time order, body b =
    records [b*batch, (b+1)*batch) of (step, host, field); "chunks": backfill, body b = chunk
    order[b] = (window, host group), one window = chunk_steps steps of chunk_hosts hosts."""

    def __init__(self, name, hosts, batch, values, base_ts, interval=TSBS_INTERVAL_S,
                 end=None, chunks=None):
        self.name, self.hosts, self.batch, self.values = name, hosts, batch, values
        self.base_ts, self.interval, self.end = base_ts, interval, end
        self.per_step = hosts * NFIELDS
        self.chunks = chunks     # {"hosts", "steps", "windows", "order" (list), "order_file", "checkpoints"}
        if batch % NFIELDS:
            raise SystemExit("bench: a TSBS batch must be a multiple of %d records" % NFIELDS)

    @property
    def groups(self):
        return self.hosts // self.chunks["hosts"]

    def spec(self, path, fmt, http="", state=None):
        """Writes the spec file tsbs_gen reads; returns its path."""
        kv = {"order": "chunks" if self.chunks else "seq", "format": fmt, "values": self.values,
              "hosts": self.hosts, "batch": self.batch, "interval": self.interval,
              "base_ts": self.base_ts, "seed": SEED, "source": self.name}
        if http:
            kv["http"] = http
        if self.end is not None:
            kv["end"] = self.end
        if state:
            kv["state"] = state
        if self.chunks:
            c = self.chunks
            kv.update(chunk_hosts=c["hosts"], chunk_steps=c["steps"], windows=c["windows"],
                      order_file=c["order_file"], checkpoints=c["checkpoints"])
        with open(path, "w") as f:
            f.write("".join("%s=%s\n" % kv_ for kv_ in kv.items()))
        return path

    def unit_of(self, host, step):
        """The body (seq) or chunk (chunks) that holds host's records at step."""
        if self.chunks:
            return (step // self.chunks["steps"]) * self.groups + host // self.chunks["hosts"]
        return (step * self.per_step + host * NFIELDS) // self.batch

    def units_of_bodies(self, lo, hi):
        """Chunk ids (chunks) or body ids (seq) of bodies lo..hi-1."""
        if self.chunks:
            return [self.chunks["order"][b] for b in range(lo, min(hi, len(self.chunks["order"])))]
        return range(lo, hi)

    def steps_for(self, bodies):
        """Steps that bodies 0..bodies-1 reach."""
        if self.chunks:
            return self.chunks["windows"] * self.chunks["steps"]
        return (bodies * self.batch + self.per_step - 1) // self.per_step

    def last_ts(self, steps):
        return self.base_ts + (steps - 1) * self.interval


def tsbs_base_ts(hosts, planned_s=0, records=0, now=None):
    """A start far enough back that `records`, or RATE_CAP records/s for planned_s, never
    pass `now` (VictoriaMetrics refuses the future; the generator stops there anyway)."""
    now = int(now or time.time())
    n = max(records, RATE_CAP * planned_s)
    span = -(-n // (hosts * NFIELDS)) * TSBS_INTERVAL_S
    return (now - span - BASE_MARGIN_S) // 3600 * 3600


def backfill_stream(name, hosts, batch, values, days, resend, outdir, gen, now=None):
    """Backfill: chunk = one hour (60 steps of 60 s) of batch/600 hosts; every chunk once
    in random order, plus `resend` of them again (upserts of identical records)."""
    chunk_hosts = batch // (NFIELDS * BACKFILL_CHUNK_STEPS)
    if batch % (NFIELDS * BACKFILL_CHUNK_STEPS) or not chunk_hosts or hosts % chunk_hosts:
        raise SystemExit("bench: backfill: the batch must be a multiple of %d (10 fields x 60 "
                         "steps) and cover a divisor of --hosts hosts" % (NFIELDS * BACKFILL_CHUNK_STEPS))
    windows = days * 24
    now = int(now or time.time())
    base = (now - days * 86400 - BASE_MARGIN_S) // 3600 * 3600
    ids = list(range(windows * (hosts // chunk_hosts)))
    rng = random.Random(SEED)
    order = ids + rng.sample(ids, int(len(ids) * resend))
    rng.shuffle(order)
    order_file = os.path.join(outdir, "%s.order" % name)
    with open(order_file, "wb") as f:
        f.write(b"".join(i.to_bytes(4, "little") for i in order))
    s = Stream(name, hosts, batch, values, base, BACKFILL_INTERVAL_S,
               chunks={"hosts": chunk_hosts, "steps": BACKFILL_CHUNK_STEPS, "windows": windows,
                       "order": order, "order_file": order_file,
                       "checkpoints": os.path.join(outdir, "%s.checkpoints" % name)})
    walk = Stream(name, hosts, batch, values, base, BACKFILL_INTERVAL_S)
    gen.checkpoints(walk.spec(os.path.join(outdir, "%s-walk.spec" % name), "json"), windows,
                    BACKFILL_CHUNK_STEPS, s.chunks["checkpoints"])
    s.distinct = len(ids) * batch
    return s


def ingest_path(sysm, stream):
    if isinstance(sysm, sut.Temporis):
        return sysm.ingest_path(stream.name)     # our JSON, or with --format line /write
    return "/write?db=%s&precision=s" % stream.name


class Load:
    """One wrk process sending one stream to one system (stream.lua); see its modes."""

    def __init__(self, sysm, stream, gen, rundir, conns, duration, mode, state=None):
        os.makedirs(rundir)
        self.sysm, self.stream, self.rundir, self.mode = sysm, stream, rundir, mode
        self.threads = conns if mode == "track" else min(WRK_THREADS, conns)
        self.conns = conns
        path = ingest_path(sysm, stream)
        http = "|".join((path, "127.0.0.1:%d" % sysm.port, sysm.ctype, sysm.token))
        spec = stream.spec(os.path.join(rundir, "spec"), sysm.fmt, http, state)
        self.start_body = self._position_of(state)
        cmd = ["wrk", "-t%d" % self.threads, "-c%d" % conns, "-d%ds" % duration,
               "--timeout", WRK_TIMEOUT, "--latency", "-s", os.path.join(HERE, "stream.lua"),
               sysm.base + path, "--", gen.path, spec, rundir, mode,
               str(-(-conns // self.threads))]
        self.cpu0, self.t0 = sysm.cpu_s(), time.time()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.rusage = None

    def running(self):
        """True until wrk exits; reaps it with wait4, which keeps its own CPU time."""
        if self.rusage is None:
            pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.rusage, self.proc.returncode = ru, os.waitstatus_to_exitcode(status)
        return self.rusage is None

    @staticmethod
    def _position_of(state):
        if not state:
            return 0
        with open(state, "rb") as f:
            return int.from_bytes(f.read(16)[8:16], "little", signed=True)

    def drained(self):
        return all(os.path.exists(os.path.join(self.rundir, "done-%d" % t))
                   for t in range(self.threads))

    def wait_drained(self):
        while not self.drained() and self.running():
            time.sleep(POLL_S)
        return self.finish()

    def interrupt(self):
        """SIGINT: wrk stops within its 100 ms tick, reports and exits."""
        if self.running():
            self.proc.send_signal(signal.SIGINT)

    def finish(self, interrupt=True):
        """Stops wrk (unless it stops by itself) and returns the run's figures."""
        if interrupt:
            self.interrupt()
        out = self.proc.stdout.read()
        if self.rusage is None:
            _, status, self.rusage = os.wait4(self.proc.pid, 0)
            self.proc.returncode = os.waitstatus_to_exitcode(status)
        ru = self.rusage
        line = next((l for l in out.splitlines() if l.startswith("BENCH ")), None)
        if not line:
            raise SystemExit("bench: no BENCH line from wrk (status %d):\n%s" % (
                self.proc.returncode, out))
        w = json.loads(line[len("BENCH "):])
        w.update(cpu_s=self.sysm.cpu_s() - self.cpu0, client_cpu_s=ru.ru_utime + ru.ru_stime,
                 wall_s=time.time() - self.t0, batch=self.stream.batch, conns=self.conns,
                 start=self.start_body, state=os.path.join(self.rundir, "state"))
        w["records"] = w["requests"] * self.stream.batch
        w["rate"] = w["records"] / (w["duration_us"] / 1e6)
        w["errors"] = sum(v for k, v in w.items() if k.startswith("err_"))
        if self.mode == "track":
            w["tracked"] = self.tracked()
            if w["seen_errors"] != w["err_status"]:
                raise SystemExit("bench: stream.lua saw %d answers >= 400, wrk counted %d: "
                                 "the answers cannot be matched to their bodies" % (
                                     w["seen_errors"], w["err_status"]))
        return w

    def tracked(self):
        """{body: status} of every answered (or failed, status 0) request."""
        out = {}
        for t in range(self.threads):
            path = os.path.join(self.rundir, "track-%d" % t)
            if os.path.exists(path):
                with open(path) as f:
                    for line in f:
                        b, st = line.split()
                        out[int(b)] = int(st)
        return out

    def wait(self, seconds):
        """Waits up to seconds (or until wrk exits, e.g. at its -d)."""
        deadline = time.time() + seconds
        while time.time() < deadline and self.running():
            time.sleep(POLL_S)


class Ledger:
    """What one system was sent of one stream. A "run" range [lo, hi) was sent by wrk
    without per-request answers: every body of it should be stored, except at most
    `allowance` (those cut off at the stop and those answered with an error). A tracked
    range knows each answer: a 2xx body must be stored, any other may or may not be."""

    def __init__(self, stream):
        self.stream, self.ranges, self.sure, self.maybe = stream, [], set(), set()

    def add_run(self, w):
        """The allowance is the number of bodies sent without a 2xx answer (wrk counts the
        answers, and those with a status over 399)."""
        ok = w["requests"] - w["err_status"]
        self.ranges.append([w["start"], w["position"], max(0, w["sent"] - ok)])

    def add_tracked(self, w):
        for b in range(w["start"], w["position"]):
            st = w["tracked"].get(b, 0)
            for u in self.stream.units_of_bodies(b, b + 1):
                (self.sure if 200 <= st < 300 else self.maybe).add(u)

    def sent_bodies(self):
        return max([r[1] for r in self.ranges] + [max(self.sure | self.maybe, default=-1) + 1])

    def classify(self, unit):
        """"sure", "maybe", an index into ranges (sent, may be among the allowance), or None."""
        if unit in self.sure:
            return "sure"
        if not self.stream.chunks:
            for k, (lo, hi, _) in enumerate(self.ranges):
                if lo <= unit < hi:
                    return k
        elif unit in self.run_units():
            return self.run_units()[unit]
        return "maybe" if unit in self.maybe else None

    def run_units(self):
        """chunks: chunk -> range index of the first range that sent it."""
        if not hasattr(self, "_units"):
            self._units = {}
            for k, (lo, hi, _) in enumerate(self.ranges):
                for u in self.stream.units_of_bodies(lo, hi):
                    self._units.setdefault(u, k)
        return self._units

    def expected_records(self):
        """(low, high): distinct records the system should hold by the ledger."""
        s = self.stream
        if s.chunks:
            units = len(self.run_units())
            return max(0, units - sum(r[2] for r in self.ranges)) * s.batch, units * s.batch
        high = sum(hi - lo for lo, hi, _ in self.ranges) + len(self.sure | self.maybe)
        low = sum(max(0, hi - lo - a) for lo, hi, a in self.ranges) + len(self.sure)
        return low * s.batch, high * s.batch


def sample_hosts(hosts, series):
    """About series/10 hosts (all 10 fields each), the same for every system."""
    n = max(1, min(hosts, -(-series // NFIELDS)))
    return sorted(random.Random(SAMPLE_SEED).sample(range(hosts), n))


# ---- reading records back ----

def temporis_series(sysm, field, host):
    """The series temporisd keeps one (field, host) in: from our JSON cpu.FIELD.host_I,
    from line protocol (cpu,hostname=host_I FIELD=...) cpu_FIELD{hostname="host_I"}."""
    if sysm.fmt == "line":
        return sut.lp_series_name(MEASUREMENT, field, {HOST_TAG: "host_%d" % host})
    return "%s.%s.host_%d" % (MEASUREMENT, field, host)


def read_temporis(sysm, stream, host):
    """{field: {ts: value}} and the count of values read back as integers."""
    out, ints = {}, 0
    for f in FIELDS:
        recs = sysm.read_series(stream.name, temporis_series(sysm, f, host))
        out[f] = {r["timestamp"]: r["value"] for r in recs}
        ints += sum(1 for r in recs if not isinstance(r["value"], float))
    return out, ints


def read_influx(sysm, stream, host):
    q = "SELECT %s FROM cpu WHERE hostname='host_%d'" % (",".join(FIELDS), host)
    data = urllib.parse.urlencode({"q": q, "db": stream.name, "epoch": "s"}).encode()
    res = json.loads(sut.http("POST", sysm.base + "/query", data=data, headers={
        "Content-Type": "application/x-www-form-urlencoded"})[1])["results"][0]
    out = {f: {} for f in FIELDS}
    for series in res.get("series", []):
        cols = series["columns"]
        for row in series["values"]:
            for f, v in zip(cols[1:], row[1:]):
                if v is not None:
                    out[f][row[0]] = v
    return out, 0


def read_victoria(sysm, stream, host):
    match = '{hostname="host_%d",db="%s"}' % (host, stream.name)
    url = "%s/api/v1/export?%s" % (sysm.base, urllib.parse.urlencode(
        {"match[]": match, "start": stream.base_ts - 1, "end": int(time.time()) + 1}))
    out, dups = {f: {} for f in FIELDS}, 0
    for line in sut.http("GET", url)[1].decode().splitlines():
        m = json.loads(line)
        f = m["metric"]["__name__"][len("cpu_"):]
        for ts, v in zip(m["timestamps"], m["values"]):
            if ts // 1000 in out[f] and out[f][ts // 1000] != v:
                dups += 1      # two different values for one key
            out[f][ts // 1000] = v
    return out, dups


def reader(sysm):
    if isinstance(sysm, sut.Temporis):
        return read_temporis
    return read_influx if isinstance(sysm, sut.Influx) else read_victoria


def prepare_read(sysm):
    if isinstance(sysm, sut.Victoria):
        sut.http("GET", sysm.base + "/internal/force_flush")


EXAMPLES = 5


def note_example(tally, what, host, step, unit, cls, present):
    ex = tally.setdefault("examples", [])
    if len(ex) < EXAMPLES:
        ex.append("%s: host_%d step %d (body/chunk %d, %s), fields present %s" % (
            what, host, step, unit, cls, "".join("1" if p else "0" for p in present)))


def compare_host(stream, ledger, host, expected, got, steps, tally):
    """Adds one host's comparison to tally; got: {field: {ts: value}}."""
    for s in range(steps):
        ts = stream.base_ts + s * stream.interval
        present = [ts in got[f] for f in FIELDS]
        unit = stream.unit_of(host, s)
        cls = ledger.classify(unit)
        if any(present) and not all(present):
            tally["partial"] += 1
            note_example(tally, "partial", host, s, unit, cls, present)
        if not any(present):
            if cls == "sure":
                tally["missing"] += 1
                note_example(tally, "missing", host, s, unit, cls, present)
            elif isinstance(cls, int):
                tally["absent"].setdefault(cls, set()).add(unit)
            continue
        if cls is None:
            tally["unexpected"] += sum(present)
            continue
        for k, f in enumerate(FIELDS):
            if not present[k]:
                continue
            v, want = got[f][ts], expected[k][s]
            tally["read"] += 1
            if v != want:
                if want and abs(v - want) <= RELATIVE_ROUNDING * abs(want):
                    tally["rounded"] += 1
                    tally["max_rel"] = max(tally["max_rel"], abs(v - want) / abs(want))
                else:
                    tally["differ"] += 1
    valid = {stream.base_ts + s * stream.interval for s in range(steps)}
    tally["unexpected"] += sum(1 for f in FIELDS for ts in got[f] if ts not in valid)


def settle(sysm):
    """Lets requests that were in flight when wrk stopped land before reading back: for
    temporisd until its committed count stands still, for the peers SETTLE_S."""
    if not isinstance(sysm, sut.Temporis):
        time.sleep(SETTLE_S)
        return
    last, deadline = sysm.committed(), time.time() + SETTLE_MAX_S
    while time.time() < deadline:
        time.sleep(SETTLE_S)
        now = sysm.committed()
        if now == last:
            return
        last = now


def verify(sysm, stream, ledger, gen, hosts, specdir):
    """Reads the sampled hosts back from sysm and compares them with the generator.
    Returns (status, line): status "OK", "LOSSY" (values rounded) or "MISMATCH"."""
    steps = stream.steps_for(ledger.sent_bodies())
    settle(sysm)
    spec = stream.spec(os.path.join(specdir, "%s-%s.spec" % (sysm.name, stream.name)), "json")
    prepare_read(sysm)
    tally = {"read": 0, "missing": 0, "partial": 0, "unexpected": 0, "differ": 0,
             "rounded": 0, "max_rel": 0.0, "ints": 0, "dups": 0, "absent": {}}
    for h in hosts:
        got, odd = reader(sysm)(sysm, stream, h)
        tally["ints" if isinstance(sysm, sut.Temporis) else "dups"] += odd
        compare_host(stream, ledger, h, gen.expected(spec, h, steps), got, steps, tally)
    over = {k: len(v) for k, v in tally["absent"].items() if len(v) > ledger.ranges[k][2]}
    bad = [(tally[k], w) for k, w in (
        ("missing", "acknowledged records missing"), ("differ", "values differ"),
        ("partial", "points with only some fields"), ("unexpected", "unexpected records"),
        ("ints", "values read back as integers"), ("dups", "keys with two values"))
           if tally[k]]
    absent = sum(len(v) for v in tally["absent"].values())
    status = "MISMATCH" if bad or over else "LOSSY" if tally["rounded"] else "OK"
    text = "%d values of %d sampled hosts (%d series) over %d steps compared" % (
        tally["read"], len(hosts), len(hosts) * NFIELDS, steps)
    if absent:
        text += "; %d bod%s cut off at a stop or answered with an error not stored (allowed: %s)" % (
            absent, "y" if absent == 1 else "ies", ", ".join("run %d <= %d" % (k + 1, ledger.ranges[k][2]) for k in sorted(tally["absent"])))
    if tally["rounded"]:
        text += "; %d values rounded (max relative error %.1e)" % (tally["rounded"], tally["max_rel"])
    if bad:
        text += "; " + ", ".join("%d %s" % bw for bw in bad)
    if over:
        text += "; runs with more bodies missing than cut off: %s" % over
    if tally.get("examples") and status == "MISMATCH":
        text += "\n  " + "\n  ".join(tally["examples"])
    return status, "- %s, %s: %s -> %s" % (sysm.label, stream.name, text, status)


def stored_records(sysm, stream, steps):
    """Distinct records the system holds for the stream (peers; by their own count)."""
    if isinstance(sysm, sut.Influx):
        data = urllib.parse.urlencode({"q": "SELECT count(*) FROM cpu", "db": stream.name}).encode()
        res = json.loads(sut.http("POST", sysm.base + "/query", data=data, headers={
            "Content-Type": "application/x-www-form-urlencoded"})[1])["results"][0]
        return sum(v for series in res.get("series", []) for v in series["values"][0][1:])
    sut.http("GET", sysm.base + "/internal/force_flush")
    span = steps * stream.interval + stream.interval
    q = 'sum(count_over_time({db="%s"}[%ds]))' % (stream.name, span)
    url = "%s/api/v1/query?%s" % (sysm.base, urllib.parse.urlencode(
        {"query": q, "time": stream.last_ts(steps) + 1, "nocache": 1}))
    res = json.loads(sut.http("GET", url)[1])["data"]["result"]
    return int(float(res[0]["value"][1])) if res else 0


def check_count(sysm, stream, ledger, runs):
    """The weak check: records counted by the system against what it was sent."""
    if isinstance(sysm, sut.Temporis):
        good, line = sysm.check_metric(runs)
        return ("OK" if good else "MISMATCH"), line
    lo, hi = ledger.expected_records()
    got = stored_records(sysm, stream, stream.steps_for(ledger.sent_bodies()))
    good = lo <= got <= hi
    return ("OK" if good else "MISMATCH"), "- %s, %s: %d records counted by the system, expected " \
        "%d-%d -> %s" % (sysm.label, stream.name, got, lo, hi, "OK" if good else "MISMATCH")
