"""Bus utilisation: the sans-IO accounting (bus_time.py), and the poller counting its real transactions into it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.acquire.bus_time import BusTime
from gateway.acquire.poller import BusPoller, PollRecord
from simulator.site import NodeSpec
from tests.gateway.acquire.test_bus_polling import config, simulated


def test_the_fraction_counts_only_the_part_of_each_span_inside_the_window() -> None:
    bus = BusTime(created=0.0, window_s=10.0)
    bus.add(1.0, 3.0)
    assert bus.fraction(10.0) == pytest.approx(0.2)  # [0, 10]: 2 s
    assert bus.fraction(12.0) == pytest.approx(0.1)  # [2, 12]: 1 s of the first span
    bus.add(12.0, 14.0)
    assert bus.fraction(14.0) == pytest.approx(0.2)  # [4, 14]: the second span only
    assert bus.fraction(23.0) == pytest.approx(0.1)  # [13, 23]: 1 s of the second
    assert bus.busy_s == pytest.approx(4.0)  # the total never forgets


def test_a_young_bus_is_judged_over_its_life_not_the_whole_window() -> None:
    bus = BusTime(created=100.0, window_s=60.0)
    bus.add(100.0, 101.0)
    assert bus.fraction(102.0) == pytest.approx(0.5)
    assert bus.fraction(100.0) == 0.0


def test_a_backward_span_is_zero_and_a_bad_window_is_refused() -> None:
    bus = BusTime(created=0.0)
    bus.add(5.0, 4.0)
    assert bus.busy_s == 0.0 and bus.fraction(6.0) == 0.0
    with pytest.raises(ValueError, match="window must be positive"):
        BusTime(created=0.0, window_s=0.0)


def test_old_spans_are_forgotten_so_memory_stays_bounded() -> None:
    bus = BusTime(created=0.0, window_s=1.0)
    for i in range(10_000):
        bus.add(i * 0.01, i * 0.01 + 0.005)
    assert len(bus._spans) <= 101
    assert bus.fraction(100.0) == pytest.approx(0.5, abs=0.01)


@given(st.lists(st.tuples(st.floats(0, 1000), st.floats(0, 5)), max_size=50), st.floats(0, 2000))
def test_the_fraction_is_always_within_0_and_1(spans: list[tuple[float, float]], now: float) -> None:
    bus = BusTime(created=0.0, window_s=30.0)
    for start, length in sorted(spans):
        bus.add(start, start + length)
    assert 0.0 <= bus.fraction(now) <= 1.0


async def test_the_poller_counts_every_transaction_and_a_dead_node_costs_its_timeouts(tmp_path: Path) -> None:
    """A live dust node and a configured unit 9 nobody answers as: the dead node's timeouts are bus time."""
    records: list[PollRecord] = []
    with simulated(tmp_path, NodeSpec("dust", 1)) as (_, port):
        poller = BusPoller(config(port, ("dust", 1, 0.2), ("dust", 9, 0.2), timeout=0.3), lambda _: None,
                           trace=records.append)
        stop = asyncio.Event()
        began = time.monotonic()
        task = asyncio.create_task(poller.run(stop))
        deadline = time.monotonic() + 60.0
        while len([r for r in records if r.node == "dust-9"]) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 30)
        elapsed = time.monotonic() - began
    dead = [r for r in records if r.node == "dust-9"]
    assert len(dead) >= 3, records
    on_the_wire = sum(r.completed - r.sent for r in records)
    assert poller.bus_time.busy_s >= on_the_wire - 1e-6
    # Each timeout holds the bus for at least its (adaptive) timeout after the request.
    assert poller.bus_time.busy_s >= sum(r.timeout for r in dead if r.outcome == "timeout") > 0
    assert poller.bus_time.busy_s <= elapsed
    assert 0.0 < poller.bus_time.fraction(time.monotonic()) <= 1.0
