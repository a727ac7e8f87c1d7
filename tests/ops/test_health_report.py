"""The health report builder (sans-IO): ages, nodes online, success rate over the interval, queue depth."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.acquire.health import OFFLINE_AFTER, NodeHealth
from gateway.deliver.queue import DurableQueue
from gateway.model import Quality, Reading
from gateway.ops.health_report import HealthBuilder, NodeFigures, ProcessFigures, QueueFigures, SinkFigures, age
from gateway.ops.health_task import resident_bytes
from gateway.ops.service import Gateway
from tests.gateway.test_pipeline import site_config

PROCESS = ProcessFigures(uptime_s=120.0, rss_bytes=50_000_000, cpu_s=3.5)
QUEUE = QueueFigures(undelivered=0, oldest_added=None, in_memory=0, dropped_total=0)


def polled(health: NodeHealth, ok: int, failed: int, now: float, latency: float = 0.02) -> None:
    """As the poller counts: every poll, then an answer or a failure."""
    for _ in range(ok):
        health.polls += 1
        health.answered_at(now, latency)
        health.succeeded()
    for _ in range(failed):
        health.polls += 1
        health.failed("timeout")


def test_the_success_rate_is_over_the_interval_since_the_previous_report_not_since_the_start() -> None:
    builder = HealthBuilder()
    h = NodeHealth()
    node = [NodeFigures("dust-1", "dust", "bus0", h)]
    polled(h, ok=10, failed=30, now=100.0)  # a bad first hour
    first = builder.build(wall=2e9, mono=110.0, clock_valid=True, process=PROCESS, queue=QUEUE, sinks=[], nodes=node)
    assert first.nodes[0].success_rate == pytest.approx(10 / 40)
    polled(h, ok=20, failed=0, now=170.0)  # since then, every poll answered
    second = builder.build(wall=2e9 + 60, mono=171.5, clock_valid=True, process=PROCESS, queue=QUEUE, sinks=[],
                           nodes=node)
    n = second.nodes[0]
    assert n.success_rate == 1.0
    assert (n.polls_ok_total, n.polls_failed_total) == (30, 30)
    assert n.online and n.last_seen_age_s == pytest.approx(1.5)
    assert n.latency_ms == pytest.approx(20.0)
    # No poll at all in the next interval (a node in backoff): unknown, not 0 and not 1.
    third = builder.build(wall=2e9 + 120, mono=231.5, clock_valid=True, process=PROCESS, queue=QUEUE, sinks=[],
                          nodes=node)
    assert third.nodes[0].success_rate is None
    assert third.nodes[0].last_seen_age_s == pytest.approx(61.5)


def test_a_node_that_never_answered_has_no_latency_nor_last_seen_and_counts_offline() -> None:
    builder = HealthBuilder()
    dead, live = NodeHealth(), NodeHealth()
    polled(dead, ok=0, failed=OFFLINE_AFTER, now=0.0)
    polled(live, ok=3, failed=0, now=9.0)
    report = builder.build(
        wall=2e9, mono=10.0, clock_valid=False, process=PROCESS, queue=QUEUE, sinks=[],
        nodes=[NodeFigures("wind-1", "wind", "bus1", dead), NodeFigures("dust-1", "dust", "bus0", live)],
    )
    gone = report.nodes[0]
    assert (gone.online, gone.success_rate, gone.latency_ms, gone.last_seen_age_s) == (False, 0.0, None, None)
    assert (gone.node, gone.kind, gone.bus) == ("wind-1", "wind", "bus1")
    assert (report.gateway.nodes_online, report.gateway.nodes_total) == (1, 2)
    assert report.gateway.clock_valid is False


def test_a_node_that_goes_offline_drops_nodes_online() -> None:
    builder = HealthBuilder()
    h = NodeHealth()
    polled(h, ok=5, failed=0, now=1.0)
    nodes = [NodeFigures("dust-1", "dust", "bus0", h)]
    assert builder.build(wall=2e9, mono=2.0, clock_valid=True, process=PROCESS, queue=QUEUE, sinks=[],
                         nodes=nodes).gateway.nodes_online == 1
    polled(h, ok=0, failed=OFFLINE_AFTER, now=3.0)
    after = builder.build(wall=2e9, mono=4.0, clock_valid=True, process=PROCESS, queue=QUEUE, sinks=[], nodes=nodes)
    assert after.gateway.nodes_online == 0 and after.nodes[0].success_rate == 0.0


def test_queue_and_sink_ages_come_from_append_times_and_memory_backlog_counts_in_the_depth() -> None:
    report = HealthBuilder().build(
        wall=1000.0, mono=0.0, clock_valid=True, process=PROCESS,
        queue=QueueFigures(undelivered=40, oldest_added=910.0, in_memory=7, dropped_total=12),
        sinks=[SinkFigures("influxdb", 40, 910.0, 100, 3, False, False),
               SinkFigures("mqtt", 0, None, 140, 0, True, False),
               SinkFigures("cloud", 5, 1010.0, 0, 9, False, True)],  # appended "after now": a clock stepped back
        nodes=[],
    )
    g = report.gateway
    assert (g.queue_depth, g.queue_oldest_age_s, g.dropped_total) == (47, 90.0, 12)
    assert (g.uptime_s, g.rss_bytes, g.cpu_s) == (120.0, 50_000_000, 3.5)
    assert [(s.sink, s.backlog, s.oldest_age_s, s.connected, s.fatal) for s in report.sinks] == [
        ("influxdb", 40, 90.0, False, False), ("mqtt", 0, 0.0, True, False), ("cloud", 5, 0.0, False, True)]
    assert report.time == 1000.0


def test_counters_that_restart_start_a_new_interval() -> None:
    builder = HealthBuilder()
    old = NodeHealth()
    polled(old, ok=50, failed=50, now=1.0)
    builder.build(wall=2e9, mono=2.0, clock_valid=True, process=PROCESS, queue=QUEUE, sinks=[],
                  nodes=[NodeFigures("n", "dust", "b", old)])
    fresh = NodeHealth()  # the bus owner was rebuilt: its counters start from zero
    polled(fresh, ok=4, failed=0, now=2.0)
    report = builder.build(wall=2e9, mono=3.0, clock_valid=True, process=PROCESS, queue=QUEUE, sinks=[],
                           nodes=[NodeFigures("n", "dust", "b", fresh)])
    assert report.nodes[0].success_rate == 1.0


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=20))
def test_the_success_rate_stays_within_0_and_1_and_totals_add_up(rounds: list[tuple[int, int]]) -> None:
    builder = HealthBuilder()
    h = NodeHealth()
    ok_total = failed_total = 0
    for ok, failed in rounds:
        polled(h, ok, failed, now=1.0)
        ok_total, failed_total = ok_total + ok, failed_total + failed
        n = builder.build(wall=2e9, mono=2.0, clock_valid=True, process=PROCESS, queue=QUEUE, sinks=[],
                          nodes=[NodeFigures("n", "dust", "b", h)]).nodes[0]
        assert (n.polls_ok_total, n.polls_failed_total) == (ok_total, failed_total)
        if ok + failed == 0:
            assert n.success_rate is None
        else:
            assert n.success_rate == pytest.approx(ok / (ok + failed))


def test_age_is_never_negative_and_zero_for_nothing() -> None:
    assert age(10.0, None) == 0.0
    assert age(10.0, -math.inf) == 0.0
    assert age(10.0, 12.0) == 0.0
    assert age(10.0, 4.0) == 6.0


# -- the service's side: what it measures (gateway/ops/health_task.py) -------------------------


def test_resident_memory_is_read_from_proc_and_zero_where_there_is_none(tmp_path: Path) -> None:
    assert resident_bytes() > 1_000_000  # this Python process
    assert resident_bytes(str(tmp_path / "missing")) == 0
    (tmp_path / "statm").write_text("garbage")
    assert resident_bytes(str(tmp_path / "statm")) == 0


async def test_a_report_of_a_gateway_counts_held_readings_a_bus_dropped_once_and_since_install(
    tmp_path: Path,
) -> None:
    config = site_config(tmp_path, tmp_path / "no-such-port")
    gateway = Gateway(config)  # not running: measured as it stands
    try:
        assert gateway.health is not None
        first = await gateway.health.measure()
        assert (first.gateway.nodes_total, first.gateway.nodes_online, first.gateway.dropped_total) == (1, 0, 0)
        assert [s.sink for s in first.sinks] == ["sqlite"] and first.sinks[0].connected
        assert first.nodes[0].success_rate is None and first.nodes[0].last_seen_age_s is None  # never polled
        gateway.pollers[0].stamper.dropped = 7  # the bus's hold for a valid clock overflowed
        assert (await gateway.health.measure()).gateway.dropped_total == 7
        assert (await gateway.health.measure()).gateway.dropped_total == 7  # counted once
        # Saved with the next append that writes something.
        gateway.writer.add([Reading("dust-1", "dust", "pm10", 1.0, "ug/m3", Quality.NORMAL, 2e9, 1)])
        await gateway.writer.flush()
    finally:
        gateway.queue.close()
    again = DurableQueue(config.queue_path, ["sqlite"])
    assert again.dropped_total == 7  # kept in the queue file
    again.close()
