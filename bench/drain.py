"""Draining a backlog from the durable queue to InfluxDB: points per second and resident memory.

A durable queue on disk holds a backlog of 1,000,000 readings (64 series: 8
dust nodes x 6 channels and 8 noise nodes x 2, one sample per second each,
as after a long uplink outage). The gateway's own delivery path drains it
(``Delivery.pump``: queue read -> records -> line protocol -> gzip -> HTTP
-> confirm), once to each server, each started here on a loopback port:

1. VictoriaMetrics through the v2 API (influxdb-client). Target: at least
   50,000 points/s.
2. InfluxDB 1.6.7 (Debian's influxd) through v1 /write. Its figure is printed.

Resident memory (VmRSS of this process) is sampled every 0.25 s during each
drain; "flat" means the largest RSS of the drain's second half exceeds the
largest of its first quarter by at most RSS_GROWTH_MB (a leak proportional
to the backlog would add hundreds of MB). Each server is then asked how many
points it holds (every one must be there, once).

Exits 1 if a target is missed. Takes about a minute plus the queue's filling.

    python bench/drain.py [--readings N] [--batch N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.deliver.dispatch import Delivery
from gateway.deliver.influx import InfluxSink
from gateway.deliver.queue import DurableQueue
from gateway.model import Quality, Reading
from tests.support.influx import InfluxServer, VictoriaServer, http

V2_TARGET = 50_000.0  # points per second
RSS_GROWTH_MB = 30.0
START = 1_790_000_000.0  # 2026-09-21, on a second boundary
SITE = "bench-site"
SERIES = [(f"dust-{n}", "dust", ch, unit) for n in range(8)
          for ch, unit in (("pm25", "ug/m3"), ("pm10", "ug/m3"), ("pm1", "ug/m3"), ("temperature", "degC"),
                           ("humidity", "%"), ("pressure", "kPa"))] + \
         [(f"noise-{n}", "noise", ch, "dB(A)") for n in range(8) for ch in ("laeq_1s", "lamax_1s")]
APPEND_CHUNK = 20_000


def fill(queue: DurableQueue, count: int) -> None:
    second, made = 0, 0
    while made < count:
        chunk: list[Reading] = []
        while len(chunk) < APPEND_CHUNK and made < count:
            for node, kind, channel, unit in SERIES:
                if made == count:
                    break
                quality = Quality.NORMAL if made % 997 else Quality.COMMUNICATION_FAILURE
                value = None if quality is Quality.COMMUNICATION_FAILURE else 20.0 + (made % 1000) / 8
                chunk.append(Reading(node, kind, channel, value, unit, quality, START + second, second))
                made += 1
            second += 1
        queue.append(chunk)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class RssSampler:
    def __init__(self, every: float = 0.25) -> None:
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), rss_mb()))
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.monotonic(), rss_mb()))

    def growth(self) -> tuple[float, float, float]:
        """Largest RSS of the first quarter, of the second half, and their difference (MB)."""
        values = [mb for _, mb in self.samples]
        quarter, half = max(1, len(values) // 4), len(values) // 2
        early, late = max(values[:quarter]), max(values[half:])
        return early, late, late - early


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Drained:
    elapsed: float  # wall seconds
    cpu: float  # CPU seconds of this process (the gateway's side)
    server_cpu: float  # CPU seconds of the server
    load: float  # 1-min load average at the end (the machine is shared)
    sampler: RssSampler


def drain(queue: DurableQueue, sink: InfluxSink, batch: int, server_pid: int) -> Drained:
    delivery = Delivery(queue, sink, batch=batch)
    started, cpu, server_cpu = time.monotonic(), time.process_time(), cpu_seconds(server_pid)
    with RssSampler() as sampler:
        caught_up = asyncio.run(delivery.pump())
    elapsed = time.monotonic() - started
    if not caught_up:
        raise SystemExit(f"sink {sink.name} did not drain: {delivery.stats.last_error}")
    return Drained(elapsed, time.process_time() - cpu, cpu_seconds(server_pid) - server_cpu, os.getloadavg()[0],
                   sampler)


def report(name: str, points: int, run: Drained, stored: int) -> float:
    rate = points / run.elapsed
    early, late, growth = run.sampler.growth()
    print(f"{name}: {points} points in {run.elapsed:.1f} s = {rate:,.0f} points/s "
          f"(gateway CPU {run.cpu:.1f} s = {points / run.cpu:,.0f} points per CPU-second, server CPU "
          f"{run.server_cpu:.1f} s, load average {run.load:.1f}); RSS first quarter {early:.1f} MB, second half "
          f"{late:.1f} MB (growth {growth:+.1f} MB); server holds {stored} points")
    return rate


def victoria_count(server: VictoriaServer) -> int:
    http("GET", server.url + "/internal/force_flush")
    query = urllib.parse.urlencode({"query": f'sum(count_over_time({{__name__=~"reading_quality_code",'
                                             f'site="{SITE}"}}[1y]))', "time": str(START + 400_000)})
    status, body = http("GET", f"{server.url}/api/v1/query?{query}", timeout=120)
    result = json.loads(body)["data"]["result"]
    return int(float(result[0]["value"][1])) if status == 200 and result else 0


def influx_count(server: InfluxServer, database: str) -> int:
    rows = server.rows("SELECT COUNT(quality_code) FROM reading", database)
    return int(rows[0]["count"]) if rows else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000, help="records per delivery (queue read)")
    args = parser.parse_args()
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sitewatch-drain-") as tmp:
        root = Path(tmp)
        queue = DurableQueue(root / "queue.sqlite3", ["victoria", "influxd"])
        started = time.monotonic()
        fill(queue, args.readings)
        print(f"queue: {args.readings} readings appended in {time.monotonic() - started:.1f} s")
        servers: list[Callable[[], None]] = []
        try:
            (root / "vm").mkdir()
            victoria = VictoriaServer(root / "vm")
            victoria.start()
            servers.append(victoria.stop)
            (root / "influxd").mkdir()
            influxd = InfluxServer(root / "influxd")
            influxd.start()
            servers.append(influxd.stop)
            database = influxd.database()

            sink = InfluxSink("victoria", victoria.url, SITE, "gw-bench", api="v2", org="sitewatch",
                              bucket="site", batch_size=args.batch)
            run = drain(queue, sink, args.batch, victoria.pid)
            sink.close()
            stored = victoria_count(victoria)
            rate = report("v2 API -> VictoriaMetrics", args.readings, run, stored)
            if rate < V2_TARGET:
                failed.append(f"v2 drain {rate:,.0f} points/s < {V2_TARGET:,.0f}")
            if run.sampler.growth()[2] > RSS_GROWTH_MB:
                failed.append(f"v2 drain RSS grew {run.sampler.growth()[2]:.1f} MB")
            if stored != args.readings:
                failed.append(f"VictoriaMetrics holds {stored} points, not {args.readings}")

            sink = InfluxSink("influxd", influxd.url, SITE, "gw-bench", api="v1", database=database,
                              batch_size=args.batch)
            run = drain(queue, sink, args.batch, influxd.pid)
            sink.close()
            stored = influx_count(influxd, database)
            report("v1 /write -> InfluxDB 1.6.7", args.readings, run, stored)
            if run.sampler.growth()[2] > RSS_GROWTH_MB:
                failed.append(f"v1 drain RSS grew {run.sampler.growth()[2]:.1f} MB")
            if stored != args.readings:
                failed.append(f"InfluxDB holds {stored} points, not {args.readings}")
        finally:
            for stop in reversed(servers):
                stop()
            queue.close()
    for failure in failed:
        print("MISSED:", failure)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
