"""What a health report costs: the queue's backlog figures (read under the queue's lock, so the writer and
the deliveries wait meanwhile) with a large undelivered backlog, and building and encoding one report.

A durable queue on disk holds N readings (default 1,000,000: a sink down for about nine hours on a
32-node site at 1 s polls) that four delivery lanes have yet to confirm; ``DurableQueue.backlogs`` is
timed (the median of a few calls), then the builder and the encoders (queue body, line protocol, MQTT
payload) for a report of 32 nodes and 5 lanes.

    python bench/health.py [N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.acquire.health import NodeHealth
from gateway.deliver.line_protocol import RecordEncoder
from gateway.deliver.mqtt_topics import TopicTree
from gateway.deliver.queue import DurableQueue
from gateway.deliver.records import to_json
from gateway.model import Quality, Reading
from gateway.ops.health_report import HealthBuilder, NodeFigures, ProcessFigures, QueueFigures, SinkFigures

LANES = ["sqlite", "influxdb", "mqtt.alarms", "mqtt"]
CHUNK = 50_000


def fill(queue: DurableQueue, n: int) -> None:
    for first in range(0, n, CHUNK):
        queue.append([Reading(f"dust-{i % 32}", "dust", "pm10", 40.0, "ug/m3", Quality.NORMAL, 1.8e9 + i, i + 1)
                      for i in range(first, min(n, first + CHUNK))])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=1_000_000, help="readings in the queue (default 1000000)")
    n = parser.parse_args().n
    if n < 1:
        parser.error("n must be at least 1")
    with tempfile.TemporaryDirectory(prefix="sitewatch-bench-health-") as folder:
        queue = DurableQueue(Path(folder) / "queue.sqlite3", LANES)
        fill(queue, n)
        queue.confirm("sqlite", queue.last_id())  # the local store keeps up; the uplinks are down
        times = []
        for _ in range(5):
            began = time.perf_counter()
            (depth, oldest), per_lane = queue.backlogs()
            times.append(time.perf_counter() - began)
        queue.close()
    assert depth == n and per_lane["sqlite"][0] == 0, (depth, per_lane)
    nodes = []
    for i in range(32):
        h = NodeHealth(polls=1000, answered=990, failures=10)
        h.answered_at(100.0, 0.02)
        nodes.append(NodeFigures(f"dust-{i}", "dust", f"bus{i // 8}", h))
    sinks = [SinkFigures(name, n, 1.8e9, 10_000, 3, False, False) for name in LANES] + [
        SinkFigures("hj212", 0, None, 10_000, 0, True, False)]
    builder = HealthBuilder()
    encoder = RecordEncoder("site", "gw")
    tree = TopicTree("sitewatch", "site", "gw")
    rounds = 200
    began = time.perf_counter()
    for _ in range(rounds):
        report = builder.build(wall=1.8e9 + 3600, mono=101.0, clock_valid=True,
                               process=ProcessFigures(3600.0, 60_000_000, 50.0),
                               queue=QueueFigures(depth, oldest, 0, 0), sinks=sinks, nodes=nodes)
        body = to_json(report)
        lines = encoder.health_lines(report)
        payload = tree.payload(report)
    build_s = (time.perf_counter() - began) / rounds
    print(f"health: backlog figures over {n:,} undelivered records, {len(LANES)} lanes: "
          f"{statistics.median(times) * 1000:.0f} ms under the queue's lock (median of {len(times)}); "
          f"one report (32 nodes, {len(sinks)} lanes) built and encoded in {build_s * 1000:.2f} ms: "
          f"{len(body)} bytes queued, {len(lines)} points, {len(payload)} bytes over MQTT")
    return 0


if __name__ == "__main__":
    sys.exit(main())
