"""The running gateway's health reports: every ``[health] interval_s``, measure, build, queue.

The I/O half of gateway/ops/health_report.py: it reads the process's resident
memory (/proc/self/statm) and CPU time, the queue's backlogs (one read
transaction under the queue's lock, in a worker thread: the event loop the bus
owners time their replies on never waits on SQLite), the deliveries' counters
and the nodes' health, and hands the report to the service, which queues it
like any record (so a report measured while InfluxDB is down reaches it later).

Readings a bus dropped from its hold for a valid clock (``Stamper.dropped``)
are handed to the queue's drop count here (``DurableQueue.note_dropped``), so
``dropped_total`` counts them across restarts too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from gateway.deliver.records import HealthReport
from gateway.ops.health_report import HealthBuilder, NodeFigures, ProcessFigures, QueueFigures, SinkFigures
from gateway.pause import pause

log = logging.getLogger(__name__)

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes(statm: str = "/proc/self/statm") -> int:
    """The process's resident memory now (not its peak, which getrusage gives); 0 where /proc is missing."""
    try:
        with open(statm, encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


class HealthTask:
    """Measures the gateway (``gateway``: a gateway.ops.service.Gateway) and queues a report every interval."""

    def __init__(
        self,
        gateway: Any,
        interval_s: float,
        accept: Callable[[list[Any]], None],
        monotonic: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.process_time,
        rss: Callable[[], int] = resident_bytes,
    ) -> None:
        self.gateway = gateway
        self.interval_s = interval_s
        self.accept = accept
        self.monotonic = monotonic
        self.cpu = cpu
        self.rss = rss
        self.started = monotonic()
        self.builder = HealthBuilder()
        self.latest: HealthReport | None = None
        self.reports = 0
        self.errors = 0
        self._held_dropped = 0  # Stamper.dropped already handed to the queue

    async def measure(self) -> HealthReport:
        gw = self.gateway
        held_dropped = sum(p.stamper.dropped for p in gw.pollers)
        async with gw.queue.lock:  # the queue's connection: one thread at a time (service.py)
            if held_dropped > self._held_dropped:
                # Under the lock too: the writer's thread adds the quota's drops to the same count and saves it.
                gw.queue.note_dropped(held_dropped - self._held_dropped)
                self._held_dropped = held_dropped
            undelivered, per_cursor = await asyncio.to_thread(gw.queue.backlogs)
        sinks = []
        for delivery in gw.deliveries:
            backlog, oldest = per_cursor.get(delivery.name, (0, None))
            stats = delivery.stats
            own = getattr(delivery.sink, "connected", None)  # sinks with a connection of their own say so
            connected = bool(own) if own is not None else stats.down_since is None
            sinks.append(SinkFigures(delivery.name, backlog, oldest, stats.delivered, stats.failures, connected,
                                     bool(stats.fatal)))
        nodes = [
            NodeFigures(node.name, node.kind, poller.bus.name, poller.health[node.name])
            for poller in gw.pollers
            for node in poller.bus.nodes
        ]
        clock = gw.clock
        report = self.builder.build(
            wall=clock.wall(),
            mono=clock.mono(),
            clock_valid=bool(clock.valid()),
            process=ProcessFigures(self.monotonic() - self.started, self.rss(), self.cpu()),
            queue=QueueFigures(undelivered[0], undelivered[1], gw.queue.backlog, gw.queue.dropped_total),
            sinks=sinks,
            nodes=nodes,
        )
        return report

    async def once(self) -> HealthReport:
        report = await self.measure()
        self.latest = report
        self.reports += 1
        self.accept([report])
        return report

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await pause(stop, self.interval_s)  # a timer: wait_for made a task every interval (3.11)
            if stop.is_set():
                return
            try:
                await self.once()
            except Exception as error:  # a report that failed must not stop the gateway: log, count, go on
                self.errors += 1
                log.error("health report failed: %s: %s", type(error).__name__, error, exc_info=error)
