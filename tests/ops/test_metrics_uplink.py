"""Issue 11's metrics: the uplink state and the clock, as Prometheus reads them from /metrics.

tests/ops/test_status.py scrapes a running gateway for the poll, bus, queue, drop and alarm
families; these two it did not check: a sink that stops delivering must read 0, a valid clock 1.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.ops.metrics import make_registry


def snapshot(influx_up: bool, clock_valid: bool) -> dict[str, Any]:
    sink = {"backlog": 0, "oldest_age_s": None, "delivered": 10, "failures": 0}
    return {
        "nodes": [], "buses": [], "alarms": [], "drops": {}, "records": {}, "uptime_s": 12.0,
        "queue": {"in_memory": 0, "appended": 10}, "clock": {"valid": clock_valid},
        "sinks": [{**sink, "name": "sqlite", "up": True},
                  {**sink, "name": "influx", "up": influx_up, "backlog": 40, "oldest_age_s": 75.0, "failures": 3}],
    }


def scrape(state: dict[str, Any]) -> dict[tuple[str, str], float]:
    registry, collector = make_registry(SimpleNamespace(pollers=[]))
    collector.state = state
    text = generate_latest(registry).decode()
    return {(s.name, s.labels.get("sink", "")): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_sink_that_fails_reads_down_with_its_backlog_and_age() -> None:
    samples = scrape(snapshot(influx_up=False, clock_valid=True))
    assert samples[("sitewatch_sink_up", "influx")] == 0
    assert samples[("sitewatch_sink_up", "sqlite")] == 1
    assert samples[("sitewatch_sink_backlog", "influx")] == 40
    assert samples[("sitewatch_sink_oldest_age_seconds", "influx")] == 75.0
    assert samples[("sitewatch_sink_failures_total", "influx")] == 3
    assert scrape(snapshot(influx_up=True, clock_valid=True))[("sitewatch_sink_up", "influx")] == 1


def test_the_clock_reads_valid_only_once_it_is() -> None:
    assert scrape(snapshot(influx_up=True, clock_valid=False))[("sitewatch_clock_valid", "")] == 0
    assert scrape(snapshot(influx_up=True, clock_valid=True))[("sitewatch_clock_valid", "")] == 1
