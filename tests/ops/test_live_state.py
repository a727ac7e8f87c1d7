"""The live state's parts without a running process: latency buckets, the queue's figures, the text, the metrics."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.acquire.health import LATENCY_BUCKETS_S, NodeHealth
from gateway.deliver.queue import DurableQueue
from gateway.model import Quality, Reading
from gateway.ops import live_state
from gateway.ops.config import parse_config
from gateway.ops.metrics import make_registry
from gateway.ops.service import Gateway
from gateway.ops.status_text import age, render
from tests.ops.service_process import gateway_toml


def reading(t: float, seq: int) -> Reading:
    return Reading("dust-1", "dust", "pm10", 50.0, "ug/m3", Quality.NORMAL, t, seq)


def test_latency_buckets_count_a_latency_on_a_bound_in_that_bucket_as_prometheus_le_does() -> None:
    health = NodeHealth()
    for latency in (0.005, 0.0051, 0.02, 3.0):
        health.answered_at(0.0, latency)
    counts = dict(zip([*LATENCY_BUCKETS_S, "inf"], health.latency_counts, strict=True))
    assert counts[0.005] == 1 and counts[0.01] == 1 and counts[0.02] == 1 and counts["inf"] == 1
    assert sum(health.latency_counts) == health.answered == 4
    assert abs(health.latency_sum - 3.0301) < 1e-9


def test_oldest_pending_follows_the_cursor(tmp_path: Path) -> None:
    clock = [100.0]
    queue = DurableQueue(tmp_path / "q.sqlite3", ["a"], wall=lambda: clock[0])
    try:
        assert queue.oldest_pending("a") is None
        queue.append([reading(1.0, 1)])
        clock[0] = 130.0
        queue.append([reading(2.0, 2)])
        assert queue.oldest_pending("a") == 100.0
        batch = queue.read("a", 1)
        queue.confirm("a", batch.last_id)
        assert queue.oldest_pending("a") == 130.0
        queue.confirm("a", queue.last_id())
        assert queue.oldest_pending("a") is None
    finally:
        queue.close()


def _gateway(tmp_path: Path) -> Gateway:
    text = gateway_toml(tmp_path, str(tmp_path / "no-bus"))
    return Gateway(parse_config(tomllib.loads(text), "test.toml"))


async def test_a_busy_queue_makes_the_backlog_unknown_instead_of_hanging_the_endpoint(tmp_path: Path) -> None:
    gateway = _gateway(tmp_path)
    try:
        gateway.queue.append([reading(gateway.clock.wall() - 10, 1)])
        state = await live_state.collect(gateway, 0.0)
        assert state["queue_answered"] and state["sinks"][0]["backlog"] == 1
        assert 0 <= state["sinks"][0]["oldest_age_s"] < 60
        async with gateway.queue.lock:  # the writer (or a stuck fsync) holds the queue
            state = await asyncio.wait_for(live_state.collect(gateway, 0.0), live_state.QUEUE_WAIT_S + 30)
        assert not state["queue_answered"] and state["sinks"][0]["backlog"] is None
        assert "backlogs unknown" in render(state) and "backlog       ?" in render(state)
    finally:
        gateway.queue.close()
        for sink in gateway.sinks:
            sink.close()


async def test_metrics_histogram_is_the_node_health_counts(tmp_path: Path) -> None:
    gateway = _gateway(tmp_path)
    try:
        health = gateway.pollers[0].health["dust-1"]
        for latency in (0.004, 0.03, 0.03, 0.7):
            health.polls += 1
            health.answered_at(0.0, latency)
        registry, collector = make_registry(gateway)
        collector.state = await live_state.collect(gateway, 0.0)
        families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
        buckets = {s.labels["le"]: s.value for s in families["sitewatch_node_latency_seconds"].samples
                   if s.name.endswith("_bucket")}
        assert buckets == {"0.005": 1, "0.01": 1, "0.02": 1, "0.05": 3, "0.1": 3, "0.2": 3, "0.5": 3, "1.0": 4,
                           "2.0": 4, "+Inf": 4}
        polls = [s for s in families["sitewatch_node_polls"].samples if s.name == "sitewatch_node_polls_total"]
        assert polls[0].value == 4 and polls[0].labels == {"node": "dust-1", "bus": "bus0", "kind": "dust"}
        # Its own registry: nothing lands in prometheus_client's global one.
        from prometheus_client import REGISTRY

        assert REGISTRY.get_sample_value("sitewatch_node_polls_total", {"node": "dust-1", "bus": "bus0",
                                                                       "kind": "dust"}) is None
    finally:
        gateway.queue.close()
        for sink in gateway.sinks:
            sink.close()


def _state(**changes: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "version": "0.1.0", "site": "A", "pid": 7, "uptime_s": 4000.0, "clock": {"valid": False},
        "nodes_online": 0, "nodes_total": 1,
        "buses": [{"name": "bus0", "address": "/dev/ttyUSB0", "transport": "rtu", "nodes": 1, "online": 0}],
        "nodes": [{"name": "wind-1", "bus": "bus0", "kind": "wind", "unit_id": 2, "online": False, "stale": False,
                   "last_seen_age_s": 95.0, "latency_ms": 31.0, "success_rate": 0.5, "polls": 10,
                   "last_error": "timeout"}],
        "sinks": [{"name": "influx", "backlog": 1200, "oldest_age_s": 7200.0, "delivered": 5, "up": False,
                   "fatal": "", "last_error": "ConnectionRefusedError"}],
        "queue_answered": True, "drops": {"queue_quota": 3, "stage_errors": 0},
        "alarms": [{"alarm": "crane_wind", "node": "wind-1", "channel": "wind_gust_3s", "severity": "alarm",
                    "since": 1_780_000_000.0}],
        "faults": ["queue over its disk quota"],
    }
    state.update(changes)
    return state


def test_the_human_summary_names_what_an_operator_acts_on() -> None:
    text = render(_state())
    assert "up 1.1 h" in text and "clock: NOT VALID" in text and "nodes: 0/1 online" in text
    assert "OFFLINE wind-1" in text and "last seen 2 min ago" in text and "last error: timeout" in text
    assert "influx" in text and "backlog    1200" in text and "oldest    2.0 h" in text
    assert "DOWN: ConnectionRefusedError" in text
    assert "drops: queue_quota 3" in text and "stage_errors" not in text
    assert "ALARM       crane_wind on wind-1/wind_gust_3s since" in text
    assert "FAULT: queue over its disk quota" in text
    assert "alarms active: none" in render(_state(alarms=[]))


def test_ages_read_naturally() -> None:
    assert [age(None), age(3.21), age(600), age(5400), age(3 * 86400)] == ["-", "3.2 s", "10 min", "1.5 h", "3.0 d"]
