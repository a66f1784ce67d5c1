#!/usr/bin/env python3
"""bench.py - the ingest benchmark driver behind scripts/bench/run.

Starts temporisd (and, with --peers, InfluxDB and VictoriaMetrics) on loopback with
data under one temp dir, drives each with wrk cycling through the same pre-built
workload (gen_bodies.py), interleaving the systems run by run, measures server CPU
(/proc/PID/stat) and peak RSS (VmHWM), checks afterwards that every distinct
record landed, and prints a Markdown table. Cleans up everything it started.
--workers/--series/--sources shape temporisd's load for the scale curve
(scripts/bench/scale); large workloads are verified on a sample of series plus
the server's temporis_records_committed_total. --format line feeds temporisd the peers'
line-protocol bodies on /write instead of our JSON (its rows say "temporis (line)").
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_bodies  # noqa: E402
from systems import (CLK_TCK, FORMATS, FULL_CHECK_MAX, OURS, OURS_FSYNC,  # noqa: E402
                     Influx, Temporis, Victoria, cpu_ticks, log, machine, parse_cells)
import reads  # noqa: E402
import workloads  # noqa: E402

BODIES = 200
WRK_THREADS = 2
WRK_TIMEOUT = "10s"
BASE_TS_AGE_S = 6 * 3600       # VictoriaMetrics rejects samples outside its retention
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
DEFAULT_SERIES = gen_bodies.DEFAULT_SERIES
DEFAULT_SAMPLE = 200
TSBS_VALUES = ("two", "full", "int")
DISK_RECORDS = 3_000_000
BACKFILL_DAYS = 30
BACKFILL_RESEND = 0.1
RECOVERY_MINUTES = 2
SUSTAINED_MINUTES = 10
SUSTAINED_WINDOW_S = 60


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
    print("\nload: batch %d, %d connections%s, %.0f records/s over the whole wrk run (profiler "
          "attached for %d s of it)" % (s["batch"], conns, ", line protocol on /write"
                                        if sysm.fmt == "line" else "", rate, duration))
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
                        "are upserts of existing keys" % (sysm.label, batch, s["bodies"]))
                w["records"] = w["requests"] * batch
                w["errors"] = sum(v for k, v in w.items() if k.startswith("err_"))
                results.setdefault((sysm.name, batch, conns), []).append(w)
                log("%-15s batch %5d  c%-3d run %d: %9.0f rec/s  p99 %6.1f ms  cpu %.2f s  "
                    "wrk %.1f s of %.1f s%s" % (
                        sysm.label, batch, conns, r + 1, w["records"] / (w["duration_us"] / 1e6),
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


def table(rows, peers, labels):
    out = ["| system | batch | conns | records/s (median) | min-max | p50 ms | p99 ms "
           "| server CPU s / M records | errors | ours (wal) / this | ours (fsync) / this |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (name, batch, conns), v in sorted(rows.items(), key=lambda kv: (-kv[0][1], kv[0][2])):
        ratios = []
        for ours in (OURS, OURS_FSYNC):
            o = rows.get((ours, batch, conns))
            ratios.append("%.2f" % (o["rate"] / v["rate"]) if name in peers and o else "")
        out.append("| %s | %d | %d | %.0f | %.0f-%.0f | %.1f | %.1f | %.2f | %d | %s | %s |" % (
            labels.get(name, name), batch, conns, v["rate"], v["min"], v["max"], v["p50"],
            v["p99"], v["cpu"], v["errors"], ratios[0], ratios[1]))
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
                lines.append("- %s, batch %d: %s -> %s" % (sysm.label, batch, text,
                                                          "OK" if good else "MISMATCH"))
                continue
            got, bad = sysm.count(s)
            lo, hi = sum(done), sum(sent)
            good = lo * batch <= got <= hi * batch and got % batch == 0 and bad == 0
            ok &= good
            want = "%d" % (hi * batch) if lo == hi else "%d-%d" % (lo * batch, hi * batch)
            lines.append("- %s, batch %d: %d distinct records stored, expected %s (%d of %d bodies "
                         "sent)%s -> %s" % (sysm.label, batch, got, want, hi, s["bodies"],
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


def scale_rows(rows, rss, label, ok, how, results, sets, fmt="json"):
    """Rows of scripts/bench/scale's table for our wal instance, one per cell (with
    --format line, the configuration's name says so)."""
    cells = sorted(k for k in rows if k[0] == OURS)
    out = []
    for key in cells:
        v = rows[key]
        name = "%s%s (%.0f%% new keys)" % (label, ", line protocol" if fmt == "line" else "",
                                           100 * new_key_share(results, key[1],
                                                               sets[key[1]]["bodies"]))
        if len(cells) > 1:
            name += ", %dx%d" % (key[1], key[2])
        verified = ("yes" if ok else "NO") + (" (sample + metric)" if how == "sample" else "")
        out.append("| %s | %.0f | %.1f | %.1f | %.2f | %.0f | %s |" % (
            name, v["rate"], v["p50"], v["p99"], v["cpu"], rss[OURS], verified))
    return out


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
    return workloads.main(a, reads.reads_workload if a.reads else None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True, help="build dir holding src/temporisd")
    ap.add_argument("--peers", action="store_true")
    ap.add_argument("--format", choices=FORMATS, default="json",
                    help="what temporisd is fed: json (our JSON on /v1/data_sources/ingest, "
                         "default) or line (the peers' line-protocol bodies on "
                         "/write?db=SOURCE&precision=s; its rows say \"temporis (line)\")")
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
    ap.add_argument("--reads", action="store_true",
                    help="read capacity: reads/s of one series' window with --readers "
                         "concurrent readers, alone and during TSBS ingest (reads.py)")
    ap.add_argument("--readers", help="--reads: reader counts, comma-separated (default %s)"
                    % "1,4,16,64,128")
    ap.add_argument("--gen-lib", help="tsbs_gen.so (scripts/bench/run builds it)")
    ap.add_argument("--profile", metavar="DIR",
                    help="instead of the table: perf record -g the workers and the writer under "
                         "batch-1000/16-connection load (then again with DWARF call graphs for "
                         "inclusive times); perf.data files go to DIR")
    a = ap.parse_args()
    if a.workload != "default" or a.disk or a.recovery or a.sustained or a.reads:
        return tsbs_main(ap, a)
    if a.peers and (a.series != DEFAULT_SERIES or a.sources != 1):
        ap.error("--series and --sources are for temporisd only: not with --peers")
    if a.format == "line" and a.sources != 1:
        ap.error("--format line takes one data source: a line-protocol body names none (the "
                 "URL's db= does, one per wrk run), so --sources %d cannot go round-robin"
                 % a.sources)
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
             "--formats", ",".join(f for f in FORMATS
                                   if f == a.format or (a.peers and f == "line")),
             "--batches", ",".join(str(b) for b in sorted({b for b, _ in cells}))],
            check=True, capture_output=True, text=True).stdout)
        sets = {s["batch"]: s for s in manifest}
        workload = "; ".join(
            "b%d: %d bodies, %d series x %d source%s, %d series covered" % (
                s["batch"], s["bodies"], s["nseries"], len(s["sources"]),
                "s" if len(s["sources"]) > 1 else "", s["covered"]) for s in manifest)
        log("workload generated in %.1f s: %s" % (time.time() - t_gen, workload))
        systems.append(Temporis(OURS, tmp, a.build, "wal", manifest, a.workers, a.format))
        if fsync_cells:
            systems.append(Temporis(OURS_FSYNC, tmp, a.build, "fsync", manifest, a.workers,
                                    a.format))
        if a.peers:
            systems.append(Influx("influxdb", tmp, manifest))
            systems.append(Victoria("victoria-metrics", tmp))
        log("systems up: " + ", ".join("%s (pid %d)" % (x.label, x.proc.pid) for x in systems))
        if a.profile:
            for dwarf in (False, True):
                profile(systems[0], sets[PROFILE_CELL[0]], os.path.abspath(a.profile),
                        PROFILE_CELL[1], a.duration, PROFILE_TOP, dwarf)
            return 0
        results = measure(systems, sets, cells, fsync_cells, a.runs, a.duration, tmp)
        rss = {x.name: x.peak_rss_mb() for x in systems}
        labels = {x.name: x.label for x in systems}
        ok, checks, how = verify(systems, sets, results, a.sample)
        rows = summarize(results)
        peers = {x.name for x in systems if not isinstance(x, Temporis)}
        print("Machine: " + info)
        print("Settings: %d runs x %d s per cell, wrk -t%d, %s bodies per batch size; mean body "
              "bytes: %s%s\n" % (a.runs, a.duration, WRK_THREADS,
                                "/".join(str(s["bodies"]) for _, s in sorted(sets.items())),
                                ", ".join("b%d %s" % (b, " / ".join(
                                    "%s %d" % kv for kv in sorted(s["mean_body_bytes"].items())))
                                    for b, s in sorted(sets.items())),
                                "; temporisd fed line protocol on /write?db=SOURCE&precision=s"
                                if a.format == "line" else ""))
        if a.workers or a.series != DEFAULT_SERIES or a.sources != 1:
            print("Workload: %s; temporisd workers = %s; data sources created in %s\n" % (
                workload, a.workers or "auto",
                ", ".join("%.1f s (%s)" % (x.create_s, x.label) for x in systems
                          if isinstance(x, Temporis))))
        print(table(rows, peers, labels))
        print("\nPeak RSS (sum of VmHWM over the system's processes): " +
              ", ".join("%s %.0f MB" % (labels[k], v) for k, v in rss.items()))
        print("\nRecords landed (checked after all runs):")
        print("\n".join(checks))
        print("\nWall time: %.0f s" % (time.time() - t0))
        if a.row_file:
            with open(a.row_file, "a") as f:
                f.write("\n".join(scale_rows(rows, rss, a.label, ok, how, results, sets,
                                              a.format)) + "\n")
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
