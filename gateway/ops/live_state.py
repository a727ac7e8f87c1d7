"""The running gateway's live state as one JSON-able snapshot: what `sitewatch status`, /metrics and the page show.

``collect(gateway, ...)`` runs on the gateway's event loop. Everything but the queue is read from memory
(node health, delivery stats, active alarms, counters); the per-sink backlog and the age of its oldest
undelivered record are two small queries on the queue, run in a worker thread under the queue's lock (one
thread at a time on its connection, service.py), waiting at most QUEUE_WAIT_S for it: a busy or stuck queue
makes those figures null (``queue_answered: false``), never the endpoint hang.

Times: ``*_age_s`` are seconds before ``time`` (the gateway's wall clock); ``since`` and ``last_delivery``
are epoch seconds.
"""

from __future__ import annotations

import dataclasses
import math
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware import regmap
from gateway import __version__
from gateway.deliver.notify import AlarmNotifier
from gateway.model import Reading
from gateway.ops.config import SPRAY_COIL
from gateway.ops.recent import RecentReadings

QUEUE_WAIT_S = 2.0
SEED_CHUNK = 2000  # readings per update when the start seeds the page from the queue
SCHEMA = 1  # bumped when a key changes meaning or goes away (new keys may appear any time)


class LatestReadings:
    """The newest reading of every node and channel (the gateway's on_readings hook feeds it)."""

    def __init__(self) -> None:
        self.latest: dict[tuple[str, str], Reading] = {}
        self.recent = RecentReadings()  # the last half hour, for the page's charts

    def update(self, readings: list[Reading]) -> None:
        self.recent.update(readings)
        for r in readings:
            self.latest[(r.node, r.channel)] = r

    def of(self, node: str) -> list[Reading]:
        return sorted((r for (n, _), r in self.latest.items() if n == node), key=lambda r: r.channel)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak instead
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def queue_figures(gateway: Any) -> dict[str, tuple[int, float | None]] | None:
    """Per delivery lane: (records after its cursor, when the oldest of them was appended); None: queue busy
    (or closed: the gateway has stopped)."""
    names = [d.name for d in gateway.deliveries]

    def read(queue: Any) -> dict[str, tuple[int, float | None]]:
        return {name: (queue.pending(name), queue.oldest_pending(name)) for name in names}

    figures: dict[str, tuple[int, float | None]] | None = await gateway.with_queue(read, QUEUE_WAIT_S)
    return figures


def _has_spray_coil(node: Any) -> bool:
    """Whether the status page offers spray buttons for the node: its kind has the spray coil (not a vendor's)."""
    code = regmap.KIND_CODES.get(node.kind)
    return node.profile is None and code is not None and any(row[0] == SPRAY_COIL for row in regmap.coils(code))


def node_states(gateway: Any, latest: LatestReadings | None, mono_now: float) -> list[dict[str, Any]]:
    nodes = []
    for poller in gateway.pollers:
        configs = {node.name: node for node in poller.bus.nodes}
        for name, h in poller.health.items():
            config = configs.get(name)
            seen = mono_now - h.last_ok if math.isfinite(h.last_ok) else None
            entry: dict[str, Any] = {
                "name": name, "bus": poller.bus.name, "kind": config.kind if config else "",
                "spray": config is not None and _has_spray_coil(config),
                "unit_id": config.unit_id if config else None, "online": h.online, "healthy": h.healthy,
                "stale": h.stale, "outage": h.outage, "polls": h.polls, "answered": h.answered,
                "failures": h.failures, "consecutive_failures": h.consecutive_failures,
                "success_rate": h.success_rate, "timeouts": h.timeouts, "crc_errors": h.crc_errors,
                "framing_errors": h.framing_errors, "exceptions": h.exceptions, "decode_errors": h.decode_errors,
                "io_errors": h.io_errors, "reboots": h.reboots,
                "latency_ms": h.last_latency * 1000 if h.answered else None,
                "mean_latency_ms": h.mean_latency * 1000 if h.answered else None,
                "max_latency_ms": h.max_latency * 1000 if h.answered else None,
                "last_seen_age_s": _finite(seen), "last_error": h.last_error,
            }
            if latest is not None:
                entry["readings"] = [
                    {"channel": r.channel, "value": _finite(r.value), "unit": r.unit, "quality": str(r.quality),
                     "timestamp": r.timestamp}
                    for r in latest.of(name)
                ]
            nodes.append(entry)
    return nodes


def sink_states(gateway: Any, figures: dict[str, tuple[int, float | None]] | None, now: float) -> list[dict[str, Any]]:
    sinks = []
    for delivery in gateway.deliveries:
        stats = delivery.stats
        backlog, oldest = figures.get(delivery.name, (0, None)) if figures is not None else (None, None)
        connected = getattr(delivery.sink, "connected", None)
        sinks.append({
            "name": delivery.name, "backlog": backlog,
            "oldest_age_s": None if oldest is None else max(0.0, now - oldest),
            "delivered": stats.delivered, "batches": stats.batches, "failures": stats.failures,
            "last_error": stats.last_error, "last_delivery": stats.last_delivery, "down_since": stats.down_since,
            "fatal": stats.fatal, "up": stats.down_since is None and not stats.fatal,
            "connected": connected if isinstance(connected, bool) else None,
        })
    return sinks


def drop_counts(gateway: Any) -> dict[str, int]:
    """Everything the gateway dropped or could not use, by cause (docs/operator-guide.md says what each means)."""
    q = gateway.queue.stats
    windows = gateway.pipeline.window_counts()
    return {
        "queue_memory": q.dropped, "queue_quota": q.quota_dropped, "queue_undecodable": q.undecodable,
        "queue_append_errors": q.append_errors, "held_other_boot": q.held_other_boot,
        "held_overflow": sum(p.stamper.dropped for p in gateway.pollers),
        "too_late_for_windows": sum(windows.get("dropped", {}).values()),
        "stage_errors": gateway.stage_errors,
        "notifications_too_old": sum(s.stats.skipped.get("too old", 0) for s in gateway.sinks
                                     if isinstance(s, AlarmNotifier)),
    }


async def collect(
    gateway: Any,  # gateway.ops.service.Gateway
    started: float,
    latest: LatestReadings | None = None,
    extra: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The snapshot (see the module docstring); started: time.monotonic() when the process started."""
    figures = await queue_figures(gateway)
    clock = gateway.clock
    now = clock.wall()
    alarms = gateway.pipeline.alarms.active() if gateway.pipeline.alarms is not None else []
    nodes = node_states(gateway, latest, clock.mono())
    late = gateway.pipeline.window_counts().get("late", {})
    for node in nodes:
        node["late_samples"] = late.get(node["name"], 0)  # samples that revised a closed window (backfill)
    state: dict[str, Any] = {
        "schema": SCHEMA, "version": __version__, "site": gateway.config.site.name, "pid": os.getpid(),
        "time": now, "uptime_s": time.monotonic() - started,
        "clock": {"valid": bool(clock.valid()), "require_sync": gateway.config.clock.require_sync},
        "buses": [
            {"name": p.bus.name, "address": p.bus.address, "transport": p.bus.transport, "baud": p.bus.baud,
             "nodes": len(p.health), "online": sum(1 for h in p.health.values() if h.online),
             "transactions": p.link.stats.transactions, "stray_frames": p.link.stats.stray_frames,
             "stray_bytes": p.link.stats.stray_bytes, "open_failures": p.link.stats.open_failures,
             "busy_s": p.bus_time.busy_s, "utilisation": p.bus_time.fraction(time.monotonic()),
             "utilisation_window_s": p.bus_time.window_s}
            for p in gateway.pollers
        ],
        "nodes": nodes,
        "nodes_online": sum(1 for n in nodes if n["online"]), "nodes_total": len(nodes),
        "queue_answered": figures is not None,
        "queue": {"path": str(gateway.queue.path), "in_memory": gateway.queue.backlog,
                  "waiting_for_commit": gateway.writer.pending, **dataclasses.asdict(gateway.queue.stats)},
        "sinks": sink_states(gateway, figures, now),
        "drops": drop_counts(gateway),
        "alarms": [{"alarm": a.alarm, "node": a.node, "channel": a.channel, "severity": str(a.severity),
                    "since": a.since} for a in alarms],
        "faults": gateway.faults() + [f"coil {k}: {v}" for k, v in gateway.actuator.faults().items()],
        "records": dict(gateway.counts),
        "process": {"rss_bytes": _rss_bytes(), "cpu_s": time.process_time()},
    }
    if extra is not None:
        state.update(extra())
    return state


def seed_from_queue(latest: LatestReadings, queue_path: Path, now: float) -> int:
    """At start: the readings of the charts' span from the queue the last run filled (how many were read).

    A restarted gateway otherwise shows nodes without a reading and empty charts until new samples arrive,
    and a node that stays offline never gets one. Read-only, streamed in chunks; a missing queue is no error.
    """
    if not queue_path.exists():
        return 0
    # Imported here: the replay module reads the queue's file format, which this module need not know.
    from gateway.deliver.replay import QueueReplay

    replay = QueueReplay(queue_path)
    try:
        chunk: list[Reading] = []
        for reading in replay.readings_since(now - latest.recent.span_s):
            chunk.append(reading)
            if len(chunk) >= SEED_CHUNK:
                latest.update(chunk)
                chunk = []
        latest.update(chunk)
    finally:
        replay.close()
    return replay.readings
