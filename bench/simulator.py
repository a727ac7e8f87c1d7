"""How much the simulator sustains: nodes and readings per second in real time, and accelerated time.

1. Real time: 4 buses x 16 firmware nodes (dust, noise, tilt, wind in turn), each bus polled as
   fast as possible by a plain master (raw bytes on the pty, every input register of a node per
   request) running in its own process, so the simulator's threads have this process to
   themselves. Printed per baud rate: requests and readings (measurement values) per second,
   the share of the wire's limit that reaches (request + reply wire time + turnaround per
   transaction), the CPU the simulator used, and whether every node kept its 1 s sampling.
2. Physics only: every shipped scenario's models stepped at 1 s intervals, no buses: simulated
   seconds per real second for the whole site, and node-samples per real second.
3. Accelerated sites: the demo site run at rising --speed: the share of the scheduled samples
   actually taken (the bus threads catch up missed samples; beyond that they skip).

    python bench/simulator.py          # about 25 s
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import select
import struct
import sys
import tempfile
import time
import tty
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from firmware import regmap
from simulator.bus import wire_time
from simulator.scenario import KIND_CODES, builtin_names, load_builtin
from simulator.site import BusSpec, NodeSpec, Site
from simulator.tcp import rtu_frame, rtu_pdu

KINDS = ("dust", "noise", "tilt", "wind")
BUSES = 4
NODES_PER_BUS = 16
TURNAROUND_MS = 2.0
POLL_SECONDS = 4.0

Counts = tuple[str, float, float, float, int]  # port, requests/s, replies/s, readings/s, bad replies


def layout() -> tuple[BusSpec, ...]:
    return tuple(
        BusSpec(f"bus{b}", tuple(NodeSpec(KINDS[n % 4], n + 1, TURNAROUND_MS) for n in range(NODES_PER_BUS)))
        for b in range(BUSES)
    )


def count_of(kind: str) -> int:
    return int(regmap.input_count(KIND_CODES[kind]))


def master(port: str, nodes: list[tuple[int, str]], seconds: float, results: multiprocessing.Queue[Counts]) -> None:
    """A plain master: poll every node in turn, as fast as the replies come; count what came back."""
    fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    requests = replies = readings = bad = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        for unit, kind in nodes[requests % len(nodes) :] + nodes[: requests % len(nodes)]:
            if time.monotonic() - started >= seconds:
                break
            count = count_of(kind)
            expected = 5 + 2 * count
            os.write(fd, rtu_frame(unit, struct.pack(">BHH", 4, 0, count)))
            requests += 1
            data = b""
            while len(data) < expected:
                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:
                    break
                data += os.read(fd, 512)
            if len(data) == expected and rtu_pdu(data) is not None:
                replies += 1
                readings += count - regmap.MEASUREMENT_BASE
            else:
                bad += 1
    elapsed = time.monotonic() - started
    os.close(fd)
    results.put((port, requests / elapsed, replies / elapsed, readings / elapsed, bad))


def transaction_bound(kind: str, baud: int) -> float:
    return wire_time(8 + 5 + 2 * count_of(kind), baud) + TURNAROUND_MS / 1000


def real_time(baud: int) -> None:
    buses = tuple(BusSpec(b.name, b.nodes, baud=baud) for b in layout())
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[Counts] = context.Queue()
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as folder, Site(buses, Path(folder)) as site:
        time.sleep(0.2)
        cpu, wall = time.process_time(), time.monotonic()
        samples_before = sum(bus.stats.samples for bus in site.running)
        first = site.scenario_time()
        workers = [
            context.Process(
                target=master,
                args=(site.paths[bus.name], [(n.unit_id, n.kind) for n in bus.nodes], POLL_SECONDS, results),
            )
            for bus in buses
        ]
        for worker in workers:
            worker.start()
        counts = [results.get(timeout=POLL_SECONDS + 30) for _ in workers]
        for worker in workers:
            worker.join()
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        samples = sum(bus.stats.samples for bus in site.running) - samples_before
        due = (int(site.scenario_time()) - int(first)) * BUSES * NODES_PER_BUS
        skipped = sum(bus.stats.skipped_samples for bus in site.running)
    nodes = BUSES * NODES_PER_BUS
    cycle = sum(transaction_bound(KINDS[n % 4], baud) for n in range(NODES_PER_BUS))
    print(f"\n{BUSES} buses x {NODES_PER_BUS} nodes at {baud} baud, one plain master per bus for {POLL_SECONDS:g} s")
    print("  bus     requests/s  replies/s  readings/s  of the wire limit  bad replies")
    total_replies = total_readings = 0.0
    for port, requests, replies, readings, bad in sorted(counts):
        name = Path(port).name
        limit = NODES_PER_BUS / cycle
        total_replies += replies
        total_readings += readings
        print(f"  {name:6s} {requests:11.1f} {replies:10.1f} {readings:11.1f} {replies / limit:17.0%} {bad:12d}")
    print(f"  total: {nodes} nodes, {total_replies:.0f} replies/s, {total_readings:.0f} readings/s; "
          f"simulator CPU {cpu / wall:.0%} of one core")
    print(f"  sampling meanwhile: {samples} samples taken of {due} due (1 s interval), {skipped} skipped")


def physics_only() -> None:
    print("\nPhysics only (every node of the scenario stepped each simulated second, no buses)")
    print("  scenario        nodes  simulated s per real s  node-samples per real s")
    for name in builtin_names():
        scenario = load_builtin(name)
        physics = scenario.physics()
        nodes = [(bus.name, node.unit_id) for bus, node in scenario.nodes()]
        started = time.perf_counter()
        t = 0.0
        while time.perf_counter() - started < 1.0:
            for _ in range(60):
                t += 1.0
                for bus, unit in nodes:
                    physics.step(bus, unit, t, 1.0)
        elapsed = time.perf_counter() - started
        print(f"  {name:15s} {len(nodes):5d} {t / elapsed:23.0f} {t * len(nodes) / elapsed:24.0f}")


def accelerated() -> None:
    print("\nThe demo site (4 nodes, one bus) at rising speed, 1.5 s each: samples taken of those due")
    print("  speed  simulated s  samples taken  due   skipped")
    for speed in (60, 600, 3600, 7200, 14400):
        with tempfile.TemporaryDirectory(prefix="bench-sim-") as folder:
            site = Site(load_builtin("demo"), Path(folder), speed=speed)
            with site:
                time.sleep(1.5)
                simulated = site.scenario_time()
                taken = sum(bus.stats.samples for bus in site.running)
                skipped = sum(bus.stats.skipped_samples for bus in site.running)
        due = int(simulated) * 4 + 4
        print(f"  {speed:5d} {simulated:12.0f} {taken:14d} {due:5d} {skipped:9d}")


def main() -> int:
    print("sitewatch simulator benchmark")
    for baud in (115200, 9600):
        real_time(baud)
    physics_only()
    accelerated()
    return 0


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # no options: --help only
    sys.exit(main())
