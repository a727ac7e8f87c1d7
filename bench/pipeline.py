"""The gateway pipeline's throughput, and the gateway's resident memory at steady state.

1. Throughput: readings of a synthetic site (32 nodes, 8 of each kind, one
   sample per second each, about 25 simulated minutes so that 1-, 2-, 10-,
   15- and 20-minute windows close) go through the default pipeline
   (processors range, hampel, stuck, humidity; aggregators pm, noise, wind,
   tilt; every alarm; the spray linkage) and into a durable queue on disk,
   appended once per simulated second as the gateway's writer does. The
   process is pinned to one core. Printed: readings per second end to end,
   and the pipeline and the queue on their own, each per second of wall
   time (fsyncs included) and per second of the process's CPU time (what
   one core does when it is not shared: the development machine is).
   `--repeat N` measures N times and prints each. Target: at least 20,000
   readings/s end to end (wall), and the issue 13 target of 100,000
   readings per CPU-second end to end.

2. Memory: `sitewatch simulate` runs the demo site (four nodes on one
   simulated RS-485 bus) in one process and `sitewatch run` polls it in
   another, as on a Pi; the gateway's VmRSS is sampled every 0.5 s for 20 s.
   Printed: the largest RSS of the last 10 s (steady state) and of the whole
   run. Target: at most 60 MB at steady state. The gateway must then stop
   cleanly on SIGTERM with its readings in the store.

Exits 1 if a target is missed. Runs in about 35 s.

    python bench/pipeline.py [--repeat N] [--throughput-only]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.deliver.queue import DurableQueue
from gateway.deliver.records import Record
from gateway.model import Quality, Reading
from gateway.pipeline import SprayPlan, build_pipeline
from gateway.process.limits import LimitsResolver

THROUGHPUT_TARGET = 20_000.0  # readings per second
CPU_THROUGHPUT_TARGET = 100_000.0  # readings per CPU-second, end to end (issue 13)
RSS_TARGET_MB = 60.0
SIM_SECONDS = 1500
NODES_PER_KIND = 8
START = 1_790_000_000.0 - 1_790_000_000.0 % 3600  # on an hour boundary
CHANNELS = {
    "dust": ("pm25", "pm10", "pm1", "temperature", "humidity", "pressure"),
    "noise": ("laeq_1s", "lamax_1s", "lamin_1s"),
    "tilt": ("pitch", "roll", "slope_x", "slope_y", "temperature"),
    "wind": ("wind_speed", "wind_dir", "wind_gust_3s"),
}
UNITS = {"pm25": "ug/m3", "pm10": "ug/m3", "pm1": "ug/m3", "temperature": "degC", "humidity": "%",
         "pressure": "kPa", "laeq_1s": "dB(A)", "lamax_1s": "dB(A)", "lamin_1s": "dB(A)", "pitch": "mdeg",
         "roll": "mdeg", "slope_x": "permille", "slope_y": "permille", "wind_speed": "m/s", "wind_dir": "deg",
         "wind_gust_3s": "m/s"}


def value(channel: str, t: float, rng: random.Random) -> float:
    """Plausible values with some wander and noise (quantised as the registers are)."""
    slow = math.sin(t / 300.0)
    base = {
        "pm25": 35 + 10 * slow, "pm10": 80 + 30 * slow, "pm1": 20 + 5 * slow, "temperature": 24 + slow,
        "humidity": 60 + 10 * slow, "pressure": 101.2, "laeq_1s": 62 + 5 * slow, "lamax_1s": 66 + 5 * slow,
        "lamin_1s": 58 + 5 * slow, "pitch": 100 * slow, "roll": 50 * slow, "slope_x": 1.7 * slow,
        "slope_y": 0.9 * slow, "wind_speed": 4 + 2 * slow, "wind_dir": (180 + 60 * slow) % 360,
        "wind_gust_3s": 5 + 2 * slow,
    }[channel]
    return round(base + rng.gauss(0, 0.02 * abs(base) + 0.1), 1)


def synthetic_batches() -> list[tuple[float, list[Reading]]]:
    """(receive time, the readings of one poll), in time order: one poll per node per second."""
    rng = random.Random(1)
    nodes = [(f"{kind}-{i + 1}", kind) for kind in CHANNELS for i in range(NODES_PER_KIND)]
    out = []
    for second in range(SIM_SECONDS):
        for n, (node, kind) in enumerate(nodes):
            t = START + second + n / len(nodes)
            quality = Quality.COMMUNICATION_FAILURE if rng.random() < 0.002 else Quality.NORMAL
            readings = [
                Reading(node, kind, c, None if quality is not Quality.NORMAL else value(c, t, rng), UNITS[c],
                        quality, t, second + 1)
                for c in CHANNELS[kind]
            ]
            out.append((t + 0.05, readings))
    return out


@dataclass(frozen=True)
class Rate:
    """Readings per second of wall time and per second of this process's CPU time."""

    wall: float
    cpu: float


def throughput(folder: Path) -> tuple[Rate, Rate, Rate, int, int]:
    """(end to end, pipeline only, queue only) readings/s; readings in; records out."""
    batches = synthetic_batches()
    count = sum(len(b) for _, b in batches)

    def run(with_queue: bool) -> tuple[tuple[float, float], int, list[list[Record]]]:
        pipeline = build_pipeline(LimitsResolver(), spray=SprayPlan())
        queue = DurableQueue(folder / f"queue-{with_queue}.sqlite3", ["sqlite"]) if with_queue else None
        pending: list[Record] = []
        appends: list[list[Record]] = []
        produced = 0
        next_second = START + 1
        started, cpu_started = time.perf_counter(), time.process_time()
        for now, readings in batches:
            pending.extend(pipeline.feed(readings, now))
            if now >= next_second:
                pending.extend(pipeline.tick(now))
                produced += len(pending)
                if queue is not None:
                    queue.append(pending)
                else:
                    appends.append(pending)
                pending = []
                next_second += 1
        produced += len(pending)
        if queue is not None:
            queue.append(pending)
            queue.close()
        return (time.perf_counter() - started, time.process_time() - cpu_started), produced, appends

    end_to_end, produced, _ = run(with_queue=True)
    pipeline_only, _, appends = run(with_queue=False)
    queue = DurableQueue(folder / "queue-only.sqlite3", ["sqlite"])
    started, cpu_started = time.perf_counter(), time.process_time()
    for records in appends:
        queue.append(records)
    queue_only = (time.perf_counter() - started, time.process_time() - cpu_started)
    queue.close()

    def rate(spent: tuple[float, float]) -> Rate:
        return Rate(count / spent[0], count / spent[1])

    return rate(end_to_end), rate(pipeline_only), rate(queue_only), count, produced


def vm_rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return None


def memory(folder: Path) -> tuple[float, float, int, int]:
    """(steady-state RSS MB, peak RSS MB, readings stored, exit status)."""
    sitewatch = Path(sys.executable).with_name("sitewatch")
    bus_dir = folder / "buses"
    simulator = subprocess.Popen(
        [str(sitewatch), "simulate", "--bus-dir", str(bus_dir), "--duration", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not (bus_dir / "bus0").exists():
            if time.monotonic() > deadline or simulator.poll() is not None:
                raise SystemExit("the simulated site did not start")
            time.sleep(0.1)
        store = folder / "store.sqlite3"
        config = folder / "gateway.toml"
        nodes = "".join(f'[[bus.node]]\nkind = "{k}"\nunit_id = {u}\n'
                        for k, u in (("dust", 1), ("wind", 2), ("noise", 3), ("tilt", 4)))
        config.write_text(f'[store]\npath = "{store}"\n[clock]\nrequire_sync = "never"\n'
                          f'[[bus]]\nport = "{bus_dir / "bus0"}"\n{nodes}')
        gateway = subprocess.Popen([str(sitewatch), "run", "--config", str(config), "--log-level", "WARNING"],
                                   stderr=subprocess.PIPE, text=True)
        samples: list[tuple[float, float]] = []
        started = time.monotonic()
        while time.monotonic() - started < 20.0:
            rss = vm_rss_mb(gateway.pid)
            if rss is None or gateway.poll() is not None:
                raise SystemExit(f"the gateway stopped early: {gateway.communicate()[1]}")
            samples.append((time.monotonic() - started, rss))
            time.sleep(0.5)
        gateway.send_signal(signal.SIGTERM)
        _, err = gateway.communicate(timeout=30)
        if gateway.returncode != 0:
            print(err, file=sys.stderr)
    finally:
        simulator.send_signal(signal.SIGINT)
        try:
            simulator.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            simulator.kill()
    with sqlite3.connect(store) as db:
        (stored,) = db.execute("SELECT COUNT(*) FROM readings WHERE value IS NOT NULL").fetchone()
    steady = max(rss for t, rss in samples if t >= 10.0)
    return steady, max(rss for _, rss in samples), int(stored), gateway.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="throughput measurements (each printed)")
    parser.add_argument("--throughput-only", action="store_true", help="skip the memory measurement")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    failed = False
    with tempfile.TemporaryDirectory(prefix="sitewatch-bench-") as tmp:
        folder = Path(tmp)
        for attempt in range(args.repeat):
            run_folder = folder / f"run-{attempt}"
            run_folder.mkdir()
            end_to_end, pipeline_only, queue_only, count, produced = throughput(run_folder)
            print(f"throughput ({count} readings of 32 nodes over {SIM_SECONDS} simulated s, "
                  f"{produced} records out, one core, load average {os.getloadavg()[0]:.1f}):")
            print("                                              per wall s   per CPU s")
            print(f"  processors + aggregators + alarms + queue: {end_to_end.wall:10,.0f} {end_to_end.cpu:11,.0f} "
                  f"readings (targets >= {THROUGHPUT_TARGET:,.0f} wall, >= {CPU_THROUGHPUT_TARGET:,.0f} CPU)")
            print(f"  pipeline alone:                            {pipeline_only.wall:10,.0f} "
                  f"{pipeline_only.cpu:11,.0f}")
            print(f"  queue appends alone:                       {queue_only.wall:10,.0f} {queue_only.cpu:11,.0f}")
            failed |= end_to_end.wall < THROUGHPUT_TARGET or end_to_end.cpu < CPU_THROUGHPUT_TARGET
        if args.throughput_only:
            print("FAIL: a target was missed" if failed else "ok: every target met")
            return 1 if failed else 0
        steady, peak, stored, status = memory(folder)
        print("memory of `sitewatch run` polling the simulated demo site (4 nodes) for 20 s:")
        print(f"  steady state (largest VmRSS of the last 10 s): {steady:5.1f} MB (target <= {RSS_TARGET_MB:.0f} MB)")
        print(f"  largest VmRSS of the run:                      {peak:5.1f} MB")
        print(f"  readings in the store after SIGTERM: {stored}; exit status {status}")
        failed |= steady > RSS_TARGET_MB or status != 0 or stored == 0
    print("FAIL: a target was missed" if failed else "ok: every target met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
