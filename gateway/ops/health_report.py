"""The gateway's health report, sans-IO: figures in, a ``HealthReport`` record out.

The service (gateway/ops/health_task.py) gathers the figures (the process's
memory and CPU, the queue's backlogs, the deliveries' counters, the nodes'
``NodeHealth``) and hands them to ``HealthBuilder.build`` every
``[health] interval_s``; the report goes through the durable queue like any
record, so one measured while a sink is down reaches it later
(docs/influxdb-schema.md, docs/mqtt.md).

What the builder decides:

* ages: a backlog's oldest record is ``wall - its append time`` (never
  negative: a clock stepped back reads 0); a node's ``last_seen_age_s`` is
  ``mono - its last good reply`` (monotonic: a clock step cannot fake it);
* a node's ``success_rate`` is over the report's interval, not since the
  start: polls that brought a usable sample / polls, from the counters' change
  since the previous report (a node that recovered an hour ago shows 1.0, not
  the hour's average). ``None`` when the node was not polled in the interval
  (a failing node backs off for up to ``max_backoff``);
* ``queue_depth`` counts what some sink has yet to confirm plus the records
  kept in memory while the disk refuses writes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.acquire.health import NodeHealth
from gateway.deliver.records import GatewayHealth, HealthReport, NodePollHealth, SinkHealth


@dataclass(frozen=True, slots=True)
class ProcessFigures:
    uptime_s: float
    rss_bytes: int
    cpu_s: float


@dataclass(frozen=True, slots=True)
class QueueFigures:
    undelivered: int  # records in the file some sink has yet to confirm
    oldest_added: float | None  # wall time the oldest of them was appended
    in_memory: int  # records kept in memory while the disk refuses writes
    dropped_total: int  # since install (DurableQueue.dropped_total)


@dataclass(frozen=True, slots=True)
class SinkFigures:
    name: str  # the delivery lane's cursor
    backlog: int
    oldest_added: float | None
    delivered: int
    failures: int
    connected: bool
    fatal: bool


@dataclass(frozen=True, slots=True)
class NodeFigures:
    node: str
    kind: str
    bus: str
    health: NodeHealth


def age(now: float, since: float | None) -> float:
    """Seconds from `since` to `now`; 0 for none, and never negative (a clock stepped back)."""
    if since is None or not math.isfinite(since):
        return 0.0
    return max(0.0, now - since)


class HealthBuilder:
    """Builds reports; remembers each node's poll counters at the previous report (for success_rate)."""

    def __init__(self) -> None:
        self._previous: dict[str, tuple[int, int]] = {}  # node -> (polls, failures) at the last report

    def build(
        self,
        *,
        wall: float,
        mono: float,
        clock_valid: bool,
        process: ProcessFigures,
        queue: QueueFigures,
        sinks: Iterable[SinkFigures],
        nodes: Iterable[NodeFigures],
    ) -> HealthReport:
        node_reports = tuple(self._node(n, mono) for n in nodes)
        gateway = GatewayHealth(
            uptime_s=float(process.uptime_s),
            rss_bytes=int(process.rss_bytes),
            cpu_s=float(process.cpu_s),
            queue_depth=queue.undelivered + queue.in_memory,
            queue_oldest_age_s=age(wall, queue.oldest_added),
            dropped_total=queue.dropped_total,
            nodes_online=sum(1 for n in node_reports if n.online),
            nodes_total=len(node_reports),
            clock_valid=clock_valid,
        )
        sink_reports = tuple(
            SinkHealth(s.name, s.backlog, age(wall, s.oldest_added), s.delivered, s.failures, s.connected, s.fatal)
            for s in sinks
        )
        return HealthReport(wall, gateway, sink_reports, node_reports)

    def _node(self, figures: NodeFigures, mono: float) -> NodePollHealth:
        h = figures.health
        polls, failures = h.polls, min(h.failures, h.polls)
        before_polls, before_failures = self._previous.get(figures.node, (0, 0))
        if polls < before_polls:  # counters restarted (a new poller): the interval starts from zero
            before_polls, before_failures = 0, 0
        self._previous[figures.node] = (polls, failures)
        polled = polls - before_polls
        ok = polled - max(0, failures - before_failures)
        rate = max(0.0, min(1.0, ok / polled)) if polled > 0 else None
        seen = math.isfinite(h.last_ok)
        return NodePollHealth(
            node=figures.node,
            kind=figures.kind,
            bus=figures.bus,
            online=h.online,
            polls_ok_total=polls - failures,
            polls_failed_total=failures,
            success_rate=rate,
            latency_ms=h.mean_latency * 1000.0 if h.answered else None,
            last_seen_age_s=age(mono, h.last_ok) if seen else None,
        )
