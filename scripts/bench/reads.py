"""reads.py - bench.py's --reads mode: read capacity, with and without ingest.

Every system is loaded with the same TSBS cpu-only history (--hosts hosts, default 100,
READ_STEPS points per series, sent once). Then, for each count of concurrent readers in
--readers, wrk GETs one series' window of READ_POINTS consecutive points per request, a
fixed random list of (host, field, window) the same for every system, through each
system's own raw-read API:
  temporisd         GET /v1/data_sources/SOURCE/records?name=...&start=&end=&limit=
  InfluxDB          GET /query?db=SOURCE&epoch=s&q=SELECT "FIELD" FROM "cpu" WHERE ...
  VictoriaMetrics   GET /api/v1/export?match[]=cpu_FIELD{hostname="host_I"}&start=&end=
first alone, then while a TSBS ingest load of INGEST_CONNS connections continues the
stream (fresh points after the history). Before timing, a sample of the reads is checked
to return exactly READ_POINTS points on every system. While temporisd's readers run,
`temporisctl status` is timed every CTL_GAP_S: the operator must always get in.
"""
import json
import os
import random
import subprocess
import threading
import time
import urllib.parse

import systems as sut
import tsbs
import workloads as wl

READ_HOSTS = 100
READ_BATCH = 1000
READ_STEPS = 4000                # points per series in the history (11 hours at 10 s)
READ_POINTS = 1000               # points per read: one series over 10,000 s
READ_URLS = 4000                 # distinct reads in the list every system walks
READ_SEED = 17
READERS = "1,4,16,64,128"
INGEST_CONNS = 16
INGEST_WARM_S = 2                # the ingest load runs this long before the readers start
CHECK_READS = 5                  # reads checked for exactly READ_POINTS points
CTL_GAP_S = 0.5
WRK_THREADS = 2
WRK_TIMEOUT = "10s"
HERE = os.path.dirname(os.path.abspath(__file__))


def read_picks(hosts):
    """(host, field, first step) of every read, the same list for every system."""
    rnd = random.Random(READ_SEED)
    return [(rnd.randrange(hosts), rnd.choice(tsbs.FIELDS),
             rnd.randrange(READ_STEPS - READ_POINTS + 1)) for _ in range(READ_URLS)]


def read_path(sysm, stream, pick):
    """The path of one read on sysm, and the function counting the points of its answer."""
    host, field, step = pick
    t0 = stream.base_ts + step * stream.interval
    t1 = t0 + READ_POINTS * stream.interval          # exclusive
    if isinstance(sysm, sut.Temporis):
        q = {"name": tsbs.temporis_series(sysm, field, host), "start": t0, "end": t1,
             "limit": READ_POINTS}
        return ("/v1/data_sources/%s/records?%s" % (stream.name, urllib.parse.urlencode(q)),
                lambda body: len(json.loads(body)["records"]))
    if isinstance(sysm, sut.Influx):
        q = "SELECT \"%s\" FROM \"%s\" WHERE \"%s\" = 'host_%d' AND time >= %ds AND time < %ds" % (
            field, tsbs.MEASUREMENT, tsbs.HOST_TAG, host, t0, t1)
        path = "/query?%s" % urllib.parse.urlencode({"db": stream.name, "epoch": "s", "q": q})

        def influx_points(body):
            res = json.loads(body)["results"][0]
            return sum(len(s["values"]) for s in res.get("series", []))
        return path, influx_points
    sel = '%s_%s{%s="host_%d"}' % (tsbs.MEASUREMENT, field, tsbs.HOST_TAG, host)
    path = "/api/v1/export?%s" % urllib.parse.urlencode(
        {"match[]": sel, "start": t0, "end": t1 - 1})

    def vm_points(body):
        return sum(len(json.loads(l)["values"]) for l in body.decode().splitlines() if l)
    return path, vm_points


def auth_of(sysm):
    return "Bearer " + sysm.token if sysm.token else ""


def check_reads(sysm, stream, picks):
    """Reads CHECK_READS of the list; the counts of points they returned."""
    hdr = {"Authorization": auth_of(sysm)} if sysm.token else {}
    counts = []
    for pick in picks[:CHECK_READS]:
        path, count = read_path(sysm, stream, pick)
        st, body = sut.http("GET", sysm.base + path, headers=hdr)
        counts.append(count(body) if st == 200 else -st)
    return counts


def run_reads(sysm, paths_file, readers, duration):
    threads = min(WRK_THREADS, readers)
    cmd = ["wrk", "-t%d" % threads, "-c%d" % readers, "-d%ds" % duration, "--timeout",
           WRK_TIMEOUT, "--latency", "-s", os.path.join(HERE, "reads.lua"), sysm.base, "--",
           paths_file, auth_of(sysm)]
    cpu0 = sysm.cpu_s()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    line = next((l for l in out.splitlines() if l.startswith("BENCH ")), None)
    if not line:
        raise SystemExit("bench: no BENCH line from wrk:\n" + out)
    w = json.loads(line[len("BENCH "):])
    w["cpu_s"] = sysm.cpu_s() - cpu0
    w["rate"] = w["ok"] / (w["duration_us"] / 1e6)
    w["errors"] = w["other"] + sum(v for k, v in w.items() if k.startswith("err_"))
    return w


class CtlProbe:
    """Times `temporisctl status` every CTL_GAP_S on a thread while readers run."""

    def __init__(self, sysm):
        self.sysm, self.times, self.failed = sysm, [], 0
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.halt.is_set():
            t0 = time.time()
            try:
                self.sysm.ctl("status")
                self.times.append(time.time() - t0)
            except subprocess.CalledProcessError:
                self.failed += 1
            self.halt.wait(CTL_GAP_S)

    def stop(self):
        self.halt.set()
        self.thread.join()
        return self.times, self.failed


def reads_workload(a, tmp, gen):
    hosts = wl.hosts_list(a, READ_HOSTS)[0]
    levels = [int(x) for x in (a.readers or READERS).split(",")]
    history_bodies = READ_STEPS * hosts * tsbs.NFIELDS // READ_BATCH
    planned = 2 * len(levels) * (a.duration + INGEST_WARM_S)
    stream = tsbs.Stream("tsbs_h%d_b%d" % (hosts, READ_BATCH), hosts, READ_BATCH, a.values,
                         tsbs.tsbs_base_ts(hosts, planned, READ_STEPS * hosts * tsbs.NFIELDS))
    history = tsbs.Stream(stream.name, hosts, READ_BATCH, a.values, stream.base_ts,
                          end=history_bodies)
    systems = wl.start_systems(a, tmp, [stream.name])
    picks = read_picks(hosts)
    rows, checks, ctl = [], [], {}
    try:
        runs = wl.Runs(tmp)
        for sysm in systems:
            w = runs.run(sysm, history, gen, INGEST_CONNS, tsbs.LONG_RUN_S, "drain")
            wl.run_line(sysm, history, w, "  history")
        for sysm in systems:
            if isinstance(sysm, sut.Victoria):
                sut.http("GET", sysm.base + "/internal/force_flush")   # searchable at once
            counts = check_reads(sysm, stream, picks)
            checks.append("- %s: %d sampled reads returned %s points (want %d each): %s" % (
                sysm.label, len(counts), counts, READ_POINTS,
                "OK" if all(c == READ_POINTS for c in counts) else "MISMATCH"))
            paths = os.path.join(tmp, "reads-%s.txt" % sysm.name)
            with open(paths, "w") as f:
                f.write("".join(read_path(sysm, stream, p)[0] + "\n" for p in picks))
            sysm.paths = paths
        for readers in levels:
            for sysm in systems:
                r = run_reads(sysm, sysm.paths, readers, a.duration)
                rows.append((sysm, readers, "none", r, None))
                log_row(sysm, readers, "alone", r, None)
                load = runs.load(sysm, stream, gen, INGEST_CONNS, tsbs.LONG_RUN_S, "run")
                load.wait(INGEST_WARM_S)
                probe = CtlProbe(sysm) if isinstance(sysm, sut.Temporis) else None
                r = run_reads(sysm, sysm.paths, readers, a.duration)
                if probe:
                    ctl[readers] = probe.stop()
                w = load.finish()
                runs.record(sysm, stream, w)
                rows.append((sysm, readers, "tsbs", r, w))
                log_row(sysm, readers, "with ingest", r, w)
        worst, landed = wl.verify_all(systems, [stream], runs, gen, a.sample, tmp)
    finally:
        for x in systems:
            x.stop()
    print(wl.machine_line())
    print("Workload: reads of %d consecutive points of one series (of %d hosts x %d fields, "
          "%d points each at %d s, sent once before), %d distinct reads in a fixed random "
          "order, the same for every system; wrk -t%d, %d s per cell; \"with ingest\": a TSBS "
          "load of %d connections (batch %d) continuing the stream meanwhile%s\n" % (
              READ_POINTS, hosts, tsbs.NFIELDS, READ_STEPS, stream.interval, READ_URLS,
              WRK_THREADS, a.duration, INGEST_CONNS, READ_BATCH, wl.format_note(a)))
    print(reads_table(rows, systems))
    if ctl:
        print("\n`temporisctl status` while temporisd's readers ran with ingest (one call every "
              "%.1f s):" % CTL_GAP_S)
        for readers, (times, failed) in sorted(ctl.items()):
            print("- %d readers: %d calls, %d failed, slowest %.0f ms" % (
                readers, len(times) + failed, failed, 1000 * max(times) if times else -1))
    print("\nReads checked before timing:")
    print("\n".join(checks))
    print("\nRecords landed:")
    print("\n".join(landed))
    bad = worst == "MISMATCH" or any("MISMATCH" in c for c in checks)
    return 1 if bad else 0


def log_row(sysm, readers, how, r, w):
    wl.log("%-16s readers %-4d %-12s: %7.0f reads/s  p99 %7.1f ms  503 %d  errors %d%s" % (
        sysm.label, readers, how, r["rate"], r["p99_us"] / 1000, r["busy"], r["errors"],
        "  ingest %.0f rec/s" % w["rate"] if w else ""))


def reads_table(rows, systems):
    ours = {(readers, ing): r["rate"] for s, readers, ing, r, _ in rows
            if s.name == sut.OURS}
    out = ["| system | readers | ingest meanwhile | reads/s | points/s | p50 ms | p99 ms | "
           "503 | errors | server CPU s | ingest records/s | temporis reads/s vs this |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for sysm, readers, ing, r, w in sorted(rows, key=lambda t: (t[2], t[1], systems.index(t[0]))):
        mine = ours.get((readers, ing))
        out.append("| %s | %d | %s | %.0f | %.0f | %.1f | %.1f | %d | %d | %.1f | %s | %s |" % (
            sysm.label, readers, "TSBS, %d conns" % INGEST_CONNS if ing == "tsbs" else "none",
            r["rate"], r["rate"] * READ_POINTS, r["p50_us"] / 1000, r["p99_us"] / 1000,
            r["busy"], r["errors"], r["cpu_s"], "%.0f" % w["rate"] if w else "-",
            "%.2fx" % (mine / r["rate"]) if mine and r["rate"] and sysm.name != sut.OURS
            else "-"))
    return "\n".join(out)
