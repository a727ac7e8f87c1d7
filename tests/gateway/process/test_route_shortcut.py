"""The windows' routing shortcut (issue 13) changes nothing an aggregator emits.

A WindowSet remembers, per node, the span of sample times that its open windows take as they are;
a sample inside it skips the walk over the node's windows. These tests run the same streams (late
samples, silent spells, day / night changes, advances, several nodes) through an aggregator with the
shortcut and one without, and compare every output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import Quality
from gateway.process.aggregate import Aggregate, DayPartWindow, WindowedAggregator
from gateway.process.limits import LimitsResolver
from gateway.process.noise import NoiseAggregator
from gateway.process.pm import PmAggregator
from tests.gateway.process.support import local, reading

# Steps: ("feed", node, seconds after the previous sample, channel index, quality), ("advance", seconds).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("feed"), st.sampled_from(["n1", "n2"]), st.sampled_from([1.0, 1.0, 1.0, 7.0, 61.0, 1800.0,
                  -5.0, -90.0, -4000.0]), st.integers(0, 2), st.sampled_from([Quality.NORMAL, Quality.DEVICE_FAULT])),
        st.tuples(st.just("advance"), st.sampled_from([0.0, 30.0, 900.0])),
    ),
    max_size=120,
)
starts = st.sampled_from([local(5, 58), local(21, 55), local(10), local(23, 59, 30)])


def run(aggregator: WindowedAggregator[Any], channels: tuple[str, ...], start: float,
        plan: list[tuple[object, ...]]) -> list[list[Aggregate]]:
    out: list[list[Aggregate]] = []
    t = {"n1": start, "n2": start + 0.5}
    newest = start
    sequence = 0
    for step in plan:
        if step[0] == "feed":
            _, node, dt, channel, quality = step
            assert isinstance(node, str) and isinstance(dt, float) and isinstance(channel, int)
            assert isinstance(quality, Quality)
            t[node] += dt
            newest = max(newest, t[node])
            sequence += 1
            out.append(aggregator.feed(reading(channels[channel], 60.0 + sequence % 7, t[node], node=node,
                                               quality=quality, sequence=sequence)))
            out.append(aggregator.flush())
        else:
            delay = step[1]
            assert isinstance(delay, float)
            out.append(aggregator.advance(newest - delay))
    return out


def pair(make: Callable[[LimitsResolver], WindowedAggregator[Any]]) -> tuple[WindowedAggregator[Any],
                                                                              WindowedAggregator[Any]]:
    with_shortcut, without = make(LimitsResolver()), make(LimitsResolver())
    without._set.shortcut = False
    return with_shortcut, without


@settings(max_examples=60, deadline=None)
@given(steps, starts, st.sampled_from([("1min", "20min", "1h", "day", "night", "24h"), ("1min", "day"), ("night",)]))
def test_noise_windows_with_day_and_night_emit_the_same_with_the_shortcut(
    plan: list[tuple[object, ...]], start: float, windows: tuple[str, ...]
) -> None:
    """Day or night alone: the gap between two parts bounds the shortcut, not an open window."""
    fast, slow = NoiseAggregator(LimitsResolver(), windows=windows), NoiseAggregator(LimitsResolver(), windows=windows)
    slow._set.shortcut = False
    channels = ("laeq_1s", "lamax_1s", "lamin_1s")
    assert run(fast, channels, start, plan) == run(slow, channels, start, plan)
    assert (fast.late_by_node(), fast.dropped_by_node()) == (slow.late_by_node(), slow.dropped_by_node())


@settings(max_examples=60, deadline=None)
@given(steps, starts)
def test_pm_windows_emit_the_same_with_the_shortcut(plan: list[tuple[object, ...]], start: float) -> None:
    fast, slow = pair(PmAggregator)
    channels = ("pm25", "pm10", "pm1")
    assert run(fast, channels, start, plan) == run(slow, channels, start, plan)
    assert (fast.late_by_node(), fast.dropped_by_node()) == (slow.late_by_node(), slow.dropped_by_node())


def test_the_shortcut_is_taken_for_samples_inside_the_open_windows() -> None:
    aggregator = PmAggregator(LimitsResolver())
    aggregator.feed(reading("pm10", 50.0, local(10, 0, 1), sequence=1))
    fast = aggregator._set._fast["n1"]
    assert fast[0] == local(10) and fast[1] == local(10, 1)  # the 1-min window is the narrowest
    aggregator.feed(reading("pm10", 50.0, local(10, 1), sequence=2))  # closes the minute: walked again
    assert aggregator._set._fast["n1"][:2] == (local(10, 1), local(10, 2))


@given(st.floats(1.0e9, 2.0e9), st.sampled_from([0, 8 * 3600, -5 * 3600]))
def test_a_day_part_gap_ends_where_the_next_part_starts(t: float, tz: int) -> None:
    for spec in (DayPartWindow("day", 6 * 3600, 22 * 3600, tz), DayPartWindow("night", 22 * 3600, 6 * 3600, tz)):
        if spec.bounds(t) is not None:
            continue
        end = spec.next_start(t)
        assert t < end <= t + 86400
        bounds = spec.bounds(end)
        assert bounds is not None and bounds[0] == end
        assert spec.bounds(math.nextafter(end, -math.inf)) is None


def test_a_sample_after_a_gap_opens_the_next_part_of_the_day() -> None:
    """Night windows only: samples in the day's gap go nowhere, the first one at 22:00 opens the night."""
    aggregator = NoiseAggregator(LimitsResolver(), windows=("night",))
    for second in range(5):
        assert aggregator.feed(reading("laeq_1s", 55.0, local(21, 59, 55 + second), sequence=1 + second)) == []
    aggregator.feed(reading("laeq_1s", 61.0, local(22), sequence=6))
    [window] = aggregator._set.open_windows()
    assert (window.start, window.end) == (local(22), local(6, day=1))
    made = aggregator.advance(local(6, day=1))
    assert {a.statistic: a.value for a in made}["leq"] == 61.0
