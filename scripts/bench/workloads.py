"""workloads.py - bench.py's TSBS-shaped modes (issue 11): --workload tsbs, --workload
backfill, --disk, --recovery and --sustained. Records and their checks come from tsbs.py;
the servers from systems.py's System classes. Each mode prints Markdown on stdout, its
progress on stderr, and returns 1 if a verification failed.
"""
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time

import systems as sut  # the systems under test; `systems` here is a list of them
import tsbs

TSBS_CELLS = "1000x16,10000x16"
TSBS_HOSTS = "1000,10000"
BACKFILL_CELL = "6000x16"
BACKFILL_HOSTS = 100
DISK_CELL = "1000x16"
DISK_HOSTS = 1000
DISK_VALUES = "two,full"
RECOVERY_CELL = "1000x16"
SUSTAINED_CELL = "1000x16"
IDLE_S = 10                      # --disk: idle time between the last write and the stop
RESTART_TAIL_S = 10              # --recovery: load after the restart
RECOVER_TIMEOUT_S = 120
PROBE_GAP_S = 0.01
PROBE_TIMEOUT_S = 30
PROBE_SOURCE = "probe"
PEAK_RESET = "5"                 # /proc/PID/clear_refs: reset the peak RSS (VmHWM)
WAL_SUFFIX = ".log"              # RocksDB's write-ahead logs (the info log is "LOG")
STALL_PREFIX = "temporis_store_write_stall"
PENDING_METRIC = "temporis_store_pending_compaction_bytes"
KEEP_RATE = 0.8                  # --sustained: the last window should keep 80% of the first's
MB = 1024 * 1024


def log(msg):
    sut.log(msg)


# ---- shared pieces ----

def hosts_list(a, default):
    return [int(h) for h in str(a.hosts or default).split(",")]


def traverse(tmp):
    """temporisd runs as RUN_AS when started as root: it must reach its dir under tmp."""
    if os.geteuid() == 0:
        os.chmod(tmp, sut.TRAVERSE_MODE)


def start_systems(a, tmp, names, fsync=False):
    """temporisd (and a second one with sync = fsync), then the peers with --peers."""
    os.makedirs(tmp, exist_ok=True)
    traverse(tmp)
    sets = [{"sources": list(names) + [PROBE_SOURCE]}]
    systems = [sut.Temporis(sut.OURS, tmp, a.build, "wal", sets, a.workers, a.format)]
    if fsync:
        systems.append(sut.Temporis(sut.OURS_FSYNC, tmp, a.build, "fsync", sets, a.workers,
                                    a.format))
    if a.peers:
        systems.append(sut.Influx("influxdb", tmp, [{"source": n} for n in names]))
        systems.append(sut.Victoria("victoria-metrics", tmp))
    log("systems up: " + ", ".join("%s (pid %d)" % (x.label, x.proc.pid) for x in systems))
    return systems


def reset_peaks(sysm):
    for p in sysm.pids():
        try:
            with open("/proc/%d/clear_refs" % p, "w") as f:
                f.write(PEAK_RESET)
        except OSError:
            pass


def rss_mb(sysm, key="VmRSS"):
    return sum(sut.status_kb(p, key) for p in sysm.pids()) / 1024


class Runs:
    """Per (system, stream): the wrk state to continue from, the ledger, the runs."""

    def __init__(self, tmp):
        self.tmp, self.state, self.ledgers, self.all, self.n = tmp, {}, {}, {}, 0

    def ledger(self, sysm, stream):
        return self.ledgers.setdefault((sysm.name, stream.name), tsbs.Ledger(stream))

    def rundir(self, sysm, stream):
        self.n += 1
        return os.path.join(self.tmp, "runs", "%03d-%s-%s" % (self.n, sysm.name, stream.name))

    def load(self, sysm, stream, gen, conns, duration, mode):
        return tsbs.Load(sysm, stream, gen, self.rundir(sysm, stream), conns, duration, mode,
                         self.state.get((sysm.name, stream.name)))

    def record(self, sysm, stream, w):
        key = (sysm.name, stream.name)
        if w.get("saved"):
            self.state[key] = w["state"]
        if "tracked" in w:
            self.ledger(sysm, stream).add_tracked(w)
        else:
            self.ledger(sysm, stream).add_run(w)
        self.all.setdefault(sysm.name, []).append(w)
        if w["end"] == tsbs.STREAM_FUTURE:
            log("%s: %s reached the present: the run sent less than it could (raise "
                "tsbs.RATE_CAP)" % (sysm.label, stream.name))

    def run(self, sysm, stream, gen, conns, duration, mode="run"):
        ld = self.load(sysm, stream, gen, conns, duration, mode)
        w = ld.wait_drained() if mode == "drain" else ld.finish(interrupt=False)
        self.record(sysm, stream, w)
        return w


def run_line(sysm, stream, w, extra=""):
    log("%-16s %-22s c%-3d: %9.0f rec/s  p99 %7.1f ms  cpu %.2f s  client %.2f s%s%s" % (
        sysm.label, stream.name, w["conns"], w["rate"], w["p99_us"] / 1000, w["cpu_s"],
        w["client_cpu_s"], "  ERRORS %d" % w["errors"] if w["errors"] else "", extra))


def verify_all(systems, streams, runs, gen, sample, tmp):
    """Sampled read-back of every (system, stream) sent, then each system's own count."""
    lines, worst = [], "OK"
    rank = {"OK": 0, "LOSSY": 1, "MISMATCH": 2}
    for sysm in systems:
        for stream in streams:
            ledger = runs.ledgers.get((sysm.name, stream.name))
            if not ledger:
                continue
            st, line = tsbs.verify(sysm, stream, ledger, gen,
                                   tsbs.sample_hosts(stream.hosts, sample), tmp)
            lines.append(line)
            worst = max(worst, st, key=rank.get)
            if not isinstance(sysm, sut.Temporis):
                st, line = tsbs.check_count(sysm, stream, ledger, None)
                lines.append(line)
                worst = max(worst, st, key=rank.get)
        if getattr(sysm, "restarted", False) or any("tracked" in w for w in runs.all.get(sysm.name, [])):
            continue      # the metric started again from zero; the sampled read-back stands
        if isinstance(sysm, sut.Temporis) and runs.all.get(sysm.name):
            st, line = tsbs.check_count(sysm, None, None, runs.all[sysm.name])
            lines.append(line)
            worst = max(worst, st, key=rank.get)
    return worst, lines


def ratio(rows, key, name, field="rate"):
    ours = rows.get((sut.OURS,) + key)
    this = rows.get((name,) + key)
    if not ours or not this or name == sut.OURS or not this[field]:
        return ""
    return "%.2f" % (ours[field] / this[field])


def median_row(ws, rss=None):
    rate = [w["rate"] for w in ws]
    per_m = lambda k: statistics.median(w[k] / (w["records"] / 1e6) for w in ws if w["records"]) \
        if any(w["records"] for w in ws) else float("nan")
    return {"rate": statistics.median(rate), "min": min(rate), "max": max(rate),
            "p50": statistics.median(w["p50_us"] for w in ws) / 1000,
            "p99": statistics.median(w["p99_us"] for w in ws) / 1000,
            "cpu": per_m("cpu_s"), "client": per_m("client_cpu_s"), "rss": rss or 0,
            "errors": sum(w["errors"] for w in ws), "n": len(ws),
            "future": any(w["end"] == tsbs.STREAM_FUTURE for w in ws)}


def du_b(path):
    if not os.path.exists(path):
        return 0
    return int(subprocess.run(["du", "-sb", path], check=True, capture_output=True,
                              text=True).stdout.split()[0])


def temporis_split(path):
    """(SST bytes, WAL bytes, other bytes) of a temporis data dir."""
    sst = wal = other = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                n = os.stat(os.path.join(root, f)).st_size
            except OSError:
                continue
            if f.endswith(".sst"):
                sst += n
            elif f.endswith(WAL_SUFFIX):
                wal += n
            else:
                other += n
    return sst, wal, other


def wal_bytes(sysm):
    return temporis_split(sysm.data_dirs()["data"])[1]


def machine_line():
    return "Machine: " + sut.machine()


def format_note(a):
    """Said in every mode's workload line when temporisd gets line protocol."""
    if a.format != "line":
        return ""
    return "; temporisd fed line protocol on /write?db=SOURCE&precision=s (rows \"(line)\")"


# ---- --workload tsbs ----

def tsbs_workload(a, tmp, gen):
    cells = sut.parse_cells(a.cells or TSBS_CELLS)
    hosts = hosts_list(a, TSBS_HOSTS)
    runs_per_cell = a.runs
    streams = {}
    for h in hosts:
        for b in sorted({b for b, _ in cells}):
            planned = runs_per_cell * a.duration * sum(1 for bb, _ in cells if bb == b)
            streams[(h, b)] = tsbs.Stream("tsbs_h%d_b%d" % (h, b), h, b, a.values,
                                          tsbs.tsbs_base_ts(h, planned))
    systems = start_systems(a, tmp, [s.name for s in streams.values()], a.sync == "fsync")
    try:
        runs, rows = Runs(tmp), {}
        for h in hosts:
            for b, c in cells:
                stream = streams[(h, b)]
                for x in systems:
                    reset_peaks(x)
                cell = {}
                for r in range(runs_per_cell):
                    order = systems[r % len(systems):] + systems[:r % len(systems)]
                    for sysm in order:
                        w = runs.run(sysm, stream, gen, c, a.duration)
                        run_line(sysm, stream, w, "  run %d" % (r + 1))
                        cell.setdefault(sysm.name, []).append(w)
                for x in systems:
                    rows[(x.name, h, b, c)] = median_row(cell[x.name], rss_mb(x, "VmHWM"))
        worst, checks = verify_all(systems, list(streams.values()), runs, gen, a.sample, tmp)
    finally:
        for x in systems:
            x.stop()
    print(machine_line())
    print("Workload: TSBS cpu-only, values %s, one point per host every %d s; cells "
          "hosts x batch x connections; %d run(s) of %d s per cell, systems interleaved, "
          "medians%s\n" % (a.values, tsbs.TSBS_INTERVAL_S, runs_per_cell, a.duration,
                           format_note(a)))
    print(tsbs_table(rows, systems))
    print("\nPeak RSS: sum of VmHWM over the system's processes, reset before each cell "
          "(/proc/PID/clear_refs). Client CPU: wrk's own CPU (it generates the bodies).")
    print("\nRecords landed (checked after all runs):")
    print("\n".join(checks))
    return 0 if worst != "MISMATCH" else 1


def tsbs_table(rows, systems):
    """rows keyed by (name, hosts, batch, conns); systems: the System objects, in order."""
    out = ["| system | hosts | batch | conns | records/s (median) | min-max | p50 ms | p99 ms "
           "| server CPU s / M records | client CPU s / M records | peak RSS MB | errors "
           "| temporis / this |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    keys = sorted({k[1:] for k in rows})
    for key in keys:
        for x in systems:
            name = x.name
            v = rows.get((name,) + key)
            if not v:
                continue
            out.append("| %s | %d | %d | %d | %.0f%s | %.0f-%.0f | %.1f | %.1f | %.2f | %.3f | "
                       "%.0f | %d | %s |" % (
                           x.label, key[0], key[1], key[2], v["rate"], " (hit the present)"
                           if v["future"] else "", v["min"], v["max"], v["p50"], v["p99"],
                           v["cpu"], v["client"], v["rss"], v["errors"], ratio(rows, key, name)))
    return "\n".join(out)


# ---- --workload backfill ----

def backfill_workload(a, tmp, gen):
    b, c = sut.parse_cells(a.cells or BACKFILL_CELL)[0]
    hosts = hosts_list(a, BACKFILL_HOSTS)[0]
    values = a.values.split(",")[0]
    os.makedirs(tmp, exist_ok=True)
    stream = tsbs.backfill_stream("backfill_b%d" % b, hosts, b, values, a.days, a.resend, tmp, gen)
    log("backfill: %d hosts x %d fields, %d days at %d s, %d chunks of %d records (%d re-sent), "
        "%d distinct records" % (hosts, tsbs.NFIELDS, a.days, tsbs.BACKFILL_INTERVAL_S,
                                 len(stream.chunks["order"]), b,
                                 len(stream.chunks["order"]) - stream.distinct // b, stream.distinct))
    systems = start_systems(a, tmp, [stream.name])
    sizes, rows = {}, {}
    try:
        runs = Runs(tmp)
        for sysm in systems:
            reset_peaks(sysm)
            w = runs.run(sysm, stream, gen, c, tsbs.LONG_RUN_S, "drain")
            run_line(sysm, stream, w)
            rows[(sysm.name, hosts, b, c)] = median_row([w], rss_mb(sysm, "VmHWM"))
        if a.disk:
            sizes = settle_and_measure(systems)
        worst, checks = verify_all(systems, [stream], runs, gen, a.sample, tmp)
    finally:
        for x in systems:
            x.stop()
    print(machine_line())
    print("Workload: backfill, %d hosts x %d fields, %d days at %d s, values %s; one request = "
          "one hour of %d hosts (%d records); %d chunks in random order, %d of them sent twice; "
          "%d distinct records; %d connections%s\n" % (
              hosts, tsbs.NFIELDS, a.days, tsbs.BACKFILL_INTERVAL_S, values,
              stream.chunks["hosts"], b, len(stream.chunks["order"]),
              len(stream.chunks["order"]) - stream.distinct // b, stream.distinct, c,
              format_note(a)))
    print(tsbs_table(rows, systems))
    if sizes:
        print("\nOn disk after %d s idle and a graceful stop, per distinct record:\n" % IDLE_S)
        print(disk_table({(n, values): v for n, v in sizes.items()}, {values: stream.distinct},
                         {(k[0], values): v["rate"] for k, v in rows.items()},
                         {x.name: x.label for x in systems}))
    print("\nRecords landed:")
    print("\n".join(checks))
    return 0 if worst != "MISMATCH" else 1


# ---- --disk ----

def settle_and_measure(systems):
    """IDLE_S without writes, a graceful stop (SIGTERM, wait), du of the data; then each
    system starts again on the same data (for the read-back). {name: {part: bytes}}."""
    log("idle %d s, then a graceful stop of every system" % IDLE_S)
    time.sleep(IDLE_S)
    for x in systems:
        x.stop()
    sizes = {}
    for x in systems:
        dirs = x.data_dirs()
        parts = {k: du_b(v) for k, v in dirs.items()}
        if isinstance(x, sut.Temporis):
            sst, wal, other = temporis_split(dirs["data"])
            parts = {"data": parts["data"], "sst": sst, "wal": wal, "other": other}
        sizes[x.name] = parts
    for x in systems:
        x.launch()
        x.restarted = True
    return sizes


def disk_workload(a, tmp, gen):
    b, c = sut.parse_cells(a.cells or DISK_CELL)[0]
    hosts = hosts_list(a, DISK_HOSTS)[0]
    bodies = a.records // b
    sizes, counts, checks, worst, rates, labels = {}, {}, [], "OK", {}, {}
    for values in (a.values if a.values_given else DISK_VALUES).split(","):
        sub = os.path.join(tmp, values)
        stream = tsbs.Stream("tsbs_h%d_b%d" % (hosts, b), hosts, b, values,
                             tsbs.tsbs_base_ts(hosts, records=bodies * b), end=bodies)
        systems = start_systems(a, sub, [stream.name])
        labels.update((x.name, x.label) for x in systems)
        try:
            runs = Runs(sub)
            for sysm in systems:
                w = runs.run(sysm, stream, gen, c, tsbs.LONG_RUN_S, "drain")
                run_line(sysm, stream, w, "  values %s" % values)
                rates[(sysm.name, values)] = w["rate"]
            for name, parts in settle_and_measure(systems).items():
                sizes[(name, values)] = parts
            counts[values] = bodies * b
            st, lines = verify_all(systems, [stream], runs, gen, a.sample, sub)
            checks += [l.replace("- ", "- values %s: " % values, 1) for l in lines]
            worst = max(worst, st, key={"OK": 0, "LOSSY": 1, "MISMATCH": 2}.get)
        finally:
            for x in systems:
                x.stop()
    print(machine_line())
    print("Workload: %d TSBS records (%d hosts x %d fields, one point per host every %d s), "
          "batch %d, %d connections, sent once to each system; then %d s idle, a graceful "
          "stop (SIGTERM, wait), `du -sb` of the data%s\n" % (
              a.records, hosts, tsbs.NFIELDS, tsbs.TSBS_INTERVAL_S, b, c, IDLE_S, format_note(a)))
    print(disk_table(sizes, counts, rates, labels))
    print("\nRecords landed (read back after a restart on the same data):")
    print("\n".join(checks))
    return 0 if worst != "MISMATCH" else 1


def disk_table(sizes, counts, rates=None, labels=None):
    out = ["| system | values | records | bytes on disk | bytes / record | parts | "
           "records/s while loading |",
           "|---|---|---:|---:|---:|---|---:|"]
    for (name, values), parts in sorted(sizes.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        n = counts[values]
        total = parts["data"] + sum(v for k, v in parts.items() if k in ("wal", "meta")
                                    and name == "influxdb")
        detail = ", ".join("%s %.1f MB (%.2f B/rec)" % (k, v / MB, v / n)
                           for k, v in parts.items() if k != "data" or name == "influxdb")
        out.append("| %s | %s | %d | %d | %.2f | %s | %s |" % (
            (labels or {}).get(name, name), values, n, total, total / n, detail or "-",
            "%.0f" % rates[(name, values)] if rates and (name, values) in rates else ""))
    return "\n".join(out)


# ---- --recovery ----

class Prober(threading.Thread):
    """Posts one small record to temporisd every PROBE_GAP_S on a fresh connection (as our
    JSON, or with --format line as line protocol on /write) and keeps (sent, answered,
    status) of each; status 0 = no answer (connection failed)."""

    def __init__(self, sysm):
        super().__init__(daemon=True)
        self.sysm, self.events, self.halt, self.n = sysm, [], threading.Event(), 0
        self.ts0 = int(time.time()) - 30 * 86400

    def post(self):
        self.n += 1
        if self.sysm.fmt == "line":
            body = "probe value=%d.0 %d\n" % (self.n, self.ts0 + self.n)
        else:
            body = json.dumps({"data_source": PROBE_SOURCE, "records": [
                {"timestamp": self.ts0 + self.n, "name": "probe", "value": float(self.n)}]})
        conn = http.client.HTTPConnection("127.0.0.1", self.sysm.port, timeout=PROBE_TIMEOUT_S)
        try:
            conn.request("POST", self.sysm.ingest_path(PROBE_SOURCE), body, {
                "Content-Type": self.sysm.ctype, "Authorization": "Bearer " + self.sysm.token})
            return conn.getresponse().status
        except OSError:
            return 0
        finally:
            conn.close()

    def run(self):
        while not self.halt.is_set():
            t0 = time.time()
            st = self.post()
            self.events.append((t0, time.time(), st))
            time.sleep(PROBE_GAP_S)

    def first_ok_after(self, t, timeout=RECOVER_TIMEOUT_S):
        """Seconds from t until the first 204 to a probe sent at or after t."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for sent, done, st in list(self.events):
                if sent >= t and st == 204:
                    return done - t
            time.sleep(PROBE_GAP_S)
        return None


def writer_pid(sysm):
    return json.loads(sysm.ctl("--json", "status"))["writer_pid"]


def restart_timed(sysm):
    """Starts temporisd on its data; (seconds until /healthz answers 200, start time)."""
    t0 = time.time()
    sysm.proc = subprocess.Popen(sysm.argv, stdout=sysm.log, stderr=sysm.log)
    deadline = t0 + RECOVER_TIMEOUT_S
    while time.time() < deadline:
        try:
            if sut.http("GET", sysm.base + "/healthz")[0] == 200:
                return time.time() - t0, t0
        except OSError:
            pass
        if sysm.proc.poll() is not None:
            raise SystemExit("bench: temporisd exited during the restart")
        time.sleep(PROBE_GAP_S)
    raise SystemExit("bench: temporisd did not answer /healthz within %d s" % RECOVER_TIMEOUT_S)


def recovery_workload(a, tmp, gen):
    b, c = sut.parse_cells(a.cells or RECOVERY_CELL)[0]
    hosts = hosts_list(a, DISK_HOSTS)[0]
    load_s = a.minutes * 60
    stream = tsbs.Stream("tsbs_h%d_b%d" % (hosts, b), hosts, b, a.values,
                         tsbs.tsbs_base_ts(hosts, 2 * load_s + RESTART_TAIL_S + RECOVER_TIMEOUT_S))
    a.peers = False
    ours = start_systems(a, tmp, [stream.name])[0]
    events = []
    try:
        runs = Runs(tmp)
        prober = Prober(ours)
        prober.start()
        load = runs.load(ours, stream, gen, c, tsbs.LONG_RUN_S, "track")
        log("recovery: %d s of load (%d connections, one per wrk thread), then SIGKILL of the "
            "writer" % (load_s, c))
        load.wait(load_s)
        wal, pid = wal_bytes(ours), writer_pid(ours)
        t_kill = time.time()
        os.kill(pid, signal.SIGKILL)
        back = prober.first_ok_after(t_kill)
        events.append(("SIGKILL of the writer (pid %d), load continuing" % pid, wal, None, back))
        log("writer killed: first 204 after %s s; %d s more load, then SIGKILL of every "
            "process" % (fmt_s(back), load_s))
        load.wait(load_s)
        wal = wal_bytes(ours)
        t_kill = time.time()
        ours.kill_all(then=load.interrupt)   # wrk would reconnect in a loop meanwhile
        w1 = load.finish()
        runs.record(ours, stream, w1)
        health, t_start = restart_timed(ours)
        load2 = runs.load(ours, stream, gen, c, tsbs.LONG_RUN_S, "track")
        back = prober.first_ok_after(t_start)
        events.append(("SIGKILL of master, workers and writer, then a restart (%.2f s after "
                       "the kill)" % (t_start - t_kill), wal, health, back))
        log("restarted: /healthz after %s s, first 204 after %s s; %d s more load" % (
            fmt_s(health), fmt_s(back), RESTART_TAIL_S))
        load2.wait(RESTART_TAIL_S)
        w2 = load2.finish()
        runs.record(ours, stream, w2)
        prober.halt.set()
        worst, checks = verify_all([ours], [stream], runs, gen, a.sample, tmp)
    finally:
        ours.stop()
    statuses = [st for w in (w1, w2) for st in w["tracked"].values()]
    acked = sum(1 for st in statuses if 200 <= st < 300)
    lost = statuses.count(0)
    other = len(statuses) - acked - lost
    cut = w1["sent"] + w2["sent"] - len(statuses)
    print(machine_line())
    print("Workload: TSBS cpu-only, %d hosts, batch %d, %d connections (wrk -t%d -c%d: one "
          "connection per thread, so each answer is matched to its body), values %s; "
          "%.0f s of load before each kill; a probe POSTs one record every %.0f ms on a "
          "new connection (in the load's format)%s\n" % (hosts, b, c, c, c, a.values, load_s,
                                                         PROBE_GAP_S * 1000, format_note(a)))
    print("| event | WAL bytes at the kill | s until /healthz 200 | s until the first 204 |")
    print("|---|---:|---:|---:|")
    for what, wal, health, back in events:
        print("| %s | %d | %s | %s |" % (what, wal, fmt_s(health) if health is not None else "-",
                                        fmt_s(back)))
    print("\nLoad: %d requests sent: %d acknowledged (2xx), %d answered with an error, %d on a "
          "connection that failed (the server kill), %d in flight when wrk stopped; %.0f "
          "records/s before the server kill (%.0f s, both kills' periods), %.0f records/s after "
          "the restart (%.0f s)" % (
              w1["sent"] + w2["sent"], acked, other, lost, cut, w1["rate"],
              w1["duration_us"] / 1e6, w2["rate"], w2["duration_us"] / 1e6))
    print("\nRecords landed (every acknowledged record of the sampled hosts, read back after "
          "the restart):")
    print("\n".join(checks))
    return 0 if worst != "MISMATCH" else 1


def fmt_s(v):
    return "%.2f" % v if v is not None else "none within %d s" % RECOVER_TIMEOUT_S


# ---- --sustained ----

def metric_values(sysm):
    """(write stalls, pending compaction bytes) from /metrics, None where absent."""
    stalls = pending = None
    for line in sut.http("GET", sysm.base + "/metrics")[1].decode().splitlines():
        if line.startswith(STALL_PREFIX):
            stalls = (stalls or 0) + float(line.split()[-1])
        elif line.startswith(PENDING_METRIC):
            pending = (pending or 0) + float(line.split()[-1])
    return stalls, pending


def sustained_workload(a, tmp, gen):
    b, c = sut.parse_cells(a.cells or SUSTAINED_CELL)[0]
    hosts = hosts_list(a, DISK_HOSTS)[0]
    windows = max(1, int(round(a.minutes * 60 / a.window_s)))
    stream = tsbs.Stream("tsbs_h%d_b%d" % (hosts, b), hosts, b, a.values,
                         tsbs.tsbs_base_ts(hosts, windows * a.window_s))
    a.peers = False
    ours = start_systems(a, tmp, [stream.name])[0]
    rows = []
    try:
        runs = Runs(tmp)
        log("sustained: %d windows of %d s, %d connections" % (windows, a.window_s, c))
        for k in range(windows):
            w = runs.run(ours, stream, gen, c, a.window_s)
            stalls, pending = metric_values(ours)
            rows.append((w, du_b(ours.data_dirs()["data"]), rss_mb(ours), stalls, pending))
            run_line(ours, stream, w, "  window %d" % (k + 1))
        worst, checks = verify_all([ours], [stream], runs, gen, a.sample, tmp)
    finally:
        ours.stop()
    print(machine_line())
    print("Workload: TSBS cpu-only, %d hosts, batch %d, %d connections, values %s, %d "
          "windows of %d s back to back (one wrk run each, the stream continuing)%s\n" % (
              hosts, b, c, a.values, windows, a.window_s, format_note(a)))
    print("| window | records/s | p99 ms | max ms | requests > 1 s | server CPU s / M records "
          "| data dir MB | RSS MB (sum) | write stalls | pending compaction MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, (w, disk, rss, stalls, pending) in enumerate(rows):
        print("| %d | %.0f | %.1f | %.1f | %d | %.2f | %.0f | %.0f | %s | %s |" % (
            k + 1, w["rate"], w["p99_us"] / 1000, w["max_us"] / 1000, w["slow"],
            w["cpu_s"] / (w["records"] / 1e6) if w["records"] else float("nan"), disk / MB, rss,
            "n/a" if stalls is None else "%.0f" % stalls,
            "n/a" if pending is None else "%.0f" % (pending / MB)))
    first, last = rows[0][0]["rate"], rows[-1][0]["rate"]
    print("\nLast window %.0f records/s = %.0f%% of the first (%.0f): %s" % (
        last, 100 * last / first, first, "kept (>= %.0f%%)" % (100 * KEEP_RATE)
        if last >= KEEP_RATE * first else "NOT kept (< %.0f%%)" % (100 * KEEP_RATE)))
    print("\nRecords landed:")
    print("\n".join(checks))
    return 0 if worst != "MISMATCH" else 1


def main(a, mode=None):
    """Runs the mode a asks for, or mode(a, tmp, gen) when given (reads.py's); a:
    bench.py's parsed options."""
    gen = tsbs.Gen(a.gen_lib)
    tmp = tempfile.mkdtemp(prefix="temporis-bench.")
    traverse(tmp)
    t0 = time.time()
    try:
        if mode:
            rc = mode(a, tmp, gen)
        elif a.recovery:
            rc = recovery_workload(a, tmp, gen)
        elif a.sustained:
            rc = sustained_workload(a, tmp, gen)
        elif a.workload == "backfill":
            rc = backfill_workload(a, tmp, gen)
        elif a.disk:
            rc = disk_workload(a, tmp, gen)
        else:
            rc = tsbs_workload(a, tmp, gen)
        print("\nWall time: %.0f s" % (time.time() - t0))
        return rc
    finally:
        if a.keep:
            log("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
