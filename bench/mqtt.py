"""The MQTT sink's throughput over TLS (QoS 1, PUBACK per message), and an alarm's latency behind a backlog.

A mosquitto with TLS, a password file and an ACL (the tests' fixture,
tests/support/mosquitto.py) runs on a loopback port; a durable queue on disk
holds N readings; the sink's two lanes deliver them as the gateway does
(batches of 500, at most `inflight` messages in flight). An alarm is appended
once the backlog is draining. Printed: readings per second from the first
publish to the last PUBACK (queue reads and cursor commits included), and the
time from appending the alarm to its PUBACK, and the gateway side's CPU time per reading (the
process's CPU seconds over the drain / readings: on a shared machine the wall-clock rate follows
the load, the CPU per reading much less). No target: a figure for docs/performance.md (a Pi 4 is
slower than this machine).

    python bench/mqtt.py [N]     (default 20000)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' mosquitto fixture

from gateway.deliver.dispatch import Delivery
from gateway.deliver.mqtt import MqttSink
from gateway.deliver.queue import DurableQueue
from gateway.deliver.sinks import lanes_of
from gateway.model import Quality, Reading
from gateway.process.alarms import AlarmEvent, EventState, Severity
from tests.support.mosquitto import GATEWAY, GATEWAY_USER, PASSWORDS, SITE, Mosquitto

INFLIGHT = int(os.environ.get("INFLIGHT", "50"))  # the sink's default


async def measure(broker: Mosquitto, folder: Path, n: int) -> tuple[float, float, float]:
    (folder / "pw").write_text(PASSWORDS[GATEWAY_USER])
    queue = DurableQueue(folder / "queue.sqlite3", ["mqtt.alarms", "mqtt"])
    queue.append([Reading("dust-1", "dust", "pm10", 40.0, "ug/m3", Quality.NORMAL, 1.8e9 + i, i + 1)
                  for i in range(n)])
    sink = MqttSink("mqtt", broker.host, GATEWAY, site=SITE, port=broker.port, ca_file=str(broker.ca),
                    username=GATEWAY_USER, password_file=str(folder / "pw"), inflight=INFLIGHT)
    deliveries = [Delivery(queue, sink, interval=0.0, lane=lane) for lane in lanes_of(sink)]
    stop = asyncio.Event()
    runner = asyncio.create_task(sink.run(stop))
    while sink.connections == 0:
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    cpu = time.process_time()
    tasks = [asyncio.create_task(d.run(stop)) for d in deliveries]
    while sink.published < n // 10:
        await asyncio.sleep(0.001)
    alarm_at = time.perf_counter()
    async with queue.lock:
        queue.append([AlarmEvent("crane_gust", "wind-1", "gust_3s", Severity.ALARM, EventState.RAISED, 9.4, 9.0,
                                 1.8e9, "bench")])
    for d in deliveries:
        d.wake.set()
    alarm_id = queue.last_id()
    while queue.cursor("mqtt.alarms") < alarm_id:  # not pending(): a COUNT over the backlog would cost CPU here
        await asyncio.sleep(0.001)
    alarm_latency = time.perf_counter() - alarm_at
    while queue.cursor("mqtt") < alarm_id - 1:  # the last reading's id (the alarm came after it)
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    stop.set()
    await asyncio.gather(runner, *tasks)
    queue.close()
    return n / elapsed, alarm_latency, cpu / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=20_000, help="readings in the backlog (default 20000)")
    n = parser.parse_args().n
    if n < 1:
        parser.error("n must be at least 1")
    folder = Path(tempfile.mkdtemp(prefix="sitewatch-bench-mqtt-"))
    broker = Mosquitto(Path(tempfile.mkdtemp(prefix="sitewatch-bench-mosquitto-")))
    try:
        broker.prepare()
        broker.start()
        rate, latency, cpu = asyncio.run(measure(broker, folder, n))
    finally:
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(broker.folder, ignore_errors=True)
    print(f"mqtt: {n} readings over TLS, QoS 1: {rate:,.0f} readings/s; alarm behind the backlog: "
          f"PUBACK {latency * 1000:.0f} ms after it was queued; {cpu * 1e6:.0f} us CPU per reading")
    return 0


if __name__ == "__main__":
    sys.exit(main())
