"""Prometheus metrics of the running gateway, from the live-state snapshot (live_state.py) and node health.

A registry of the gateway's own (never prometheus_client's global one, so tests and several gateways in
one process do not mix), holding a process collector (CPU, memory, file descriptors) and a collector
that turns the newest snapshot into metric families at each scrape. Names follow Prometheus' conventions:
``sitewatch_`` prefix, ``_total`` counters, seconds and bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.acquire.health import LATENCY_BUCKETS_S


class SnapshotCollector(Collector):
    """Metric families from the snapshot `state` holds (a dict replaced before each scrape) and node health."""

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway
        self.state: dict[str, Any] = {}

    def collect(self) -> Iterator[Metric]:
        state = self.state
        if not state:
            return
        yield from self._nodes(state)
        yield from self._sinks(state)
        yield from self._buses(state)
        drops = CounterMetricFamily("sitewatch_dropped", "records dropped or unusable, by cause", labels=["cause"])
        for cause, count in sorted(state["drops"].items()):
            drops.add_metric([cause], count)
        yield drops
        alarms = GaugeMetricFamily("sitewatch_alarms_active", "alarms raised and not cleared",
                                   labels=["alarm", "node", "channel", "severity"])
        for a in state["alarms"]:
            alarms.add_metric([a["alarm"], a["node"], a["channel"], a["severity"]], 1)
        yield alarms
        yield GaugeMetricFamily("sitewatch_alarms_active_count", "number of active alarms", len(state["alarms"]))
        yield GaugeMetricFamily("sitewatch_clock_valid", "1 when the wall clock is valid", int(state["clock"]["valid"]))
        yield GaugeMetricFamily("sitewatch_uptime_seconds", "seconds since the gateway started", state["uptime_s"])
        yield GaugeMetricFamily("sitewatch_queue_in_memory", "records held in memory while the disk refuses writes",
                                state["queue"]["in_memory"])
        yield CounterMetricFamily("sitewatch_queue_appended", "records written to the durable queue",
                                  state["queue"]["appended"])
        records = CounterMetricFamily("sitewatch_records", "records the pipeline produced, by kind", labels=["kind"])
        for kind, count in sorted(state["records"].items()):
            records.add_metric([kind], count)
        yield records

    def _nodes(self, state: dict[str, Any]) -> Iterator[Metric]:
        labels = ["node", "bus", "kind"]
        polls = CounterMetricFamily("sitewatch_node_polls", "polls of a node", labels=labels)
        ok = CounterMetricFamily("sitewatch_node_polls_answered", "polls a node answered with a valid frame",
                                 labels=labels)
        failed = CounterMetricFamily("sitewatch_node_polls_failed", "polls that gave no usable sample",
                                     labels=labels)
        online = GaugeMetricFamily("sitewatch_node_online", "1 while the node answers", labels=labels)
        seen = GaugeMetricFamily("sitewatch_node_last_seen_age_seconds", "seconds since the node last answered",
                                 labels=labels)
        late = CounterMetricFamily("sitewatch_node_late_samples",
                                   "samples that arrived after their window closed and revised it (backfill)",
                                   labels=labels)
        latency = HistogramMetricFamily("sitewatch_node_latency_seconds",
                                        "reply latency: end of request to end of reply", labels=labels)
        health = {name: h for p in self.gateway.pollers for name, h in p.health.items()}
        for n in state["nodes"]:
            key = [n["name"], n["bus"], n["kind"]]
            polls.add_metric(key, n["polls"])
            ok.add_metric(key, n["answered"])
            failed.add_metric(key, n["failures"])
            online.add_metric(key, int(n["online"]))
            late.add_metric(key, n["late_samples"])
            if n["last_seen_age_s"] is not None:
                seen.add_metric(key, n["last_seen_age_s"])
            h = health.get(n["name"])
            if h is not None:
                cumulative, buckets = 0, []
                for bound, count in zip((*map(str, LATENCY_BUCKETS_S), "+Inf"), h.latency_counts, strict=True):
                    cumulative += count
                    buckets.append((bound, cumulative))
                latency.add_metric(key, buckets, h.latency_sum)
        yield from (polls, ok, failed, online, seen, late, latency)

    def _buses(self, state: dict[str, Any]) -> Iterator[Metric]:
        families = {
            "transactions": CounterMetricFamily("sitewatch_bus_transactions", "requests sent on the bus",
                                                labels=["bus"]),
            "stray_frames": CounterMetricFamily("sitewatch_bus_stray_frames",
                                                "whole frames from another unit (late replies)", labels=["bus"]),
            "stray_bytes": CounterMetricFamily("sitewatch_bus_stray_bytes", "bytes outside any awaited reply",
                                               labels=["bus"]),
            "open_failures": CounterMetricFamily("sitewatch_bus_open_failures", "failed opens of the port",
                                                 labels=["bus"]),
        }
        busy = CounterMetricFamily("sitewatch_bus_busy_seconds",
                                   "seconds the bus spent in transactions (rate() of it: the utilisation)",
                                   labels=["bus"])
        utilisation = GaugeMetricFamily("sitewatch_bus_utilisation",
                                        "fraction of the last minute the bus spent in transactions (0..1)",
                                        labels=["bus"])
        for bus in state["buses"]:
            for key, family in families.items():
                family.add_metric([bus["name"]], bus[key])
            busy.add_metric([bus["name"]], bus["busy_s"])
            utilisation.add_metric([bus["name"]], bus["utilisation"])
        yield from families.values()
        yield from (busy, utilisation)

    def _sinks(self, state: dict[str, Any]) -> Iterator[Metric]:
        backlog = GaugeMetricFamily("sitewatch_sink_backlog", "records in the queue the sink has not delivered",
                                    labels=["sink"])
        oldest = GaugeMetricFamily("sitewatch_sink_oldest_age_seconds",
                                   "age of the oldest record the sink has not delivered (0: none)", labels=["sink"])
        delivered = CounterMetricFamily("sitewatch_sink_delivered", "records the sink confirmed", labels=["sink"])
        failures = CounterMetricFamily("sitewatch_sink_failures", "sends that failed", labels=["sink"])
        up = GaugeMetricFamily("sitewatch_sink_up", "1 while the sink delivers (0: failing or stopped)",
                               labels=["sink"])
        for s in state["sinks"]:
            if s["backlog"] is not None:
                backlog.add_metric([s["name"]], s["backlog"])
                oldest.add_metric([s["name"]], s["oldest_age_s"] or 0.0)
            delivered.add_metric([s["name"]], s["delivered"])
            failures.add_metric([s["name"]], s["failures"])
            up.add_metric([s["name"]], int(s["up"]))
        yield from (backlog, oldest, delivered, failures, up)


def make_registry(gateway: Any) -> tuple[CollectorRegistry, SnapshotCollector]:
    registry = CollectorRegistry(auto_describe=False)
    collector = SnapshotCollector(gateway)
    registry.register(collector)
    ProcessCollector(registry=registry)
    return registry, collector
