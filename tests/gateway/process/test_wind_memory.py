"""A wind window's direction statistics are sums: its memory stays flat however long it is (bench/soak.py).

Before, every window kept each sample's speed and direction until it closed: a 24-h window of one
wind node held 86,400 of each, and the soak's heap rose with the windows' length.
"""

from __future__ import annotations

import gc
import math
import random
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import Quality
from gateway.process.aggregate import Aggregate
from gateway.process.limits import LimitsResolver
from gateway.process.wind import DirectionSums, ExactSum, WindAggregator, circular_mean, yamartino_sigma
from tests.gateway.process.support import local, reading

directions = st.floats(min_value=0.0, max_value=360.0, exclude_max=True, allow_nan=False)
weights = st.floats(min_value=0.0, max_value=60.0, allow_nan=False)


def feed_hours(wind: WindAggregator, hours: float, first: int = 0) -> None:
    """Samples of 1 s; a third without a valid speed, every other one with its direction first."""
    rng = random.Random(first)
    for i in range(first, first + round(hours * 3600)):
        t = local(0, second=float(i))
        speed = reading("wind_speed", rng.uniform(0.0, 15.0), t, kind="wind", unit="m/s", sequence=i + 1)
        if i % 3 == 0:
            speed = reading("wind_speed", None, t, kind="wind", quality=Quality.DEVICE_FAULT, sequence=i + 1)
        direction = reading("wind_dir", rng.uniform(80.0, 160.0), t, kind="wind", unit="deg", sequence=i + 1)
        for r in (direction, speed) if i % 2 else (speed, direction):
            wind.feed(r)


def traced_bytes() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_a_24h_window_holds_no_memory_per_sample() -> None:
    wind = WindAggregator(LimitsResolver(), windows=("24h",))
    tracemalloc.start()
    try:
        feed_hours(wind, 0.5)
        after_half_hour = traced_bytes()
        feed_hours(wind, 2.0, first=1800)  # two more hours into the same open window
        grown = traced_bytes() - after_half_hour
    finally:
        tracemalloc.stop()
    # 7,200 more samples: per-sample pairs of speed and direction (~150 bytes each) would be ~1 MB.
    assert grown < 20_000, grown


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(directions, weights), min_size=1, max_size=80), st.randoms(use_true_random=False))
def test_the_sums_give_the_statistics_of_the_list_in_any_order(
    samples: list[tuple[float, float]], rng: random.Random
) -> None:
    ordered, shuffled = DirectionSums(), DirectionSums()
    for d, w in samples:
        ordered.add(d, w)
    for d, w in rng.sample(samples, len(samples)):
        shuffled.add(d, w)
    dirs, ws = [d for d, _ in samples], [w for _, w in samples]
    # Exact sums: the very float circular_mean gives, whatever order late samples came in.
    assert ordered.mean(weighted=False) == circular_mean(dirs)
    assert ordered.mean(weighted=True) == circular_mean(dirs, ws) == shuffled.mean(weighted=True)
    sigma, expected = ordered.sigma(), yamartino_sigma(dirs)
    assert sigma is not None and expected is not None
    assert sigma == pytest.approx(expected, abs=1e-6)
    assert shuffled.sigma() == pytest.approx(expected, abs=1e-6)


def test_a_narrow_spread_keeps_its_precision() -> None:
    # Deviations of a millidegree around 359.9995 (across north): the precise form, not 1 - (...)^2.
    narrow = [359.9995 + 0.001 * ((i % 3) - 1) for i in range(3000)]
    sums = DirectionSums()
    for d in narrow:
        sums.add(d % 360.0)
    assert sums.sigma() == pytest.approx(yamartino_sigma([d % 360.0 for d in narrow]), rel=1e-6)


def test_exact_sum_is_fsum_in_any_order() -> None:
    terms = [1e16, 1.0, -1e16, 3.3, 1e-9] * 50
    total = ExactSum()
    for x in reversed(terms):
        total.add(x)
    assert total.value == math.fsum(terms)


def test_a_direction_before_its_speed_or_without_a_valid_speed_still_counts() -> None:
    wind = WindAggregator(LimitsResolver(), windows=("2min",))
    out: list[Aggregate] = []
    for i in range(120):
        t = local(11, second=float(i))
        speed = reading("wind_speed", 5.0, t, kind="wind", sequence=i + 1)
        if i % 3 == 0:  # the anemometer failed: the direction still counts (unit vectors)
            speed = reading("wind_speed", None, t, kind="wind", sequence=i + 1, quality=Quality.DEVICE_FAULT)
        direction = reading("wind_dir", 90.0 if i < 60 else 100.0, t, kind="wind", sequence=i + 1)
        if i % 2:
            out += wind.feed(direction) + wind.feed(speed)  # out of channel order
        else:
            out += wind.feed(speed) + wind.feed(direction)
    out += wind.advance(local(11, 2))
    stats = {a.channel: a for a in out}
    assert stats["wind_2min_dir_mean"].value == pytest.approx(95.0)
    assert stats["wind_2min_dir_count"].value == 120
