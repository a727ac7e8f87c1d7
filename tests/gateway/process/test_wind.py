from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.model import Quality
from gateway.process.aggregate import Aggregate
from gateway.process.limits import BEAUFORT_LOWER_BOUNDS, LimitsResolver
from gateway.process.wind import WindAggregator, beaufort, circular_mean, gust, running_means, yamartino_sigma
from tests.gateway.process.support import local, reading

directions = st.floats(min_value=0.0, max_value=360.0, exclude_max=True, allow_nan=False)
speeds = st.floats(min_value=0.0, max_value=60.0, allow_nan=False)


def angle_between(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def by_channel(aggregates: list[Aggregate]) -> dict[str, Aggregate]:
    return {a.channel: a for a in aggregates}


def test_circular_mean_vectors_by_hand() -> None:
    assert circular_mean([350.0, 10.0]) == pytest.approx(0.0, abs=1e-9)  # not 180
    assert circular_mean([90.0, 180.0]) == pytest.approx(135.0)
    assert circular_mean([355.0]) == pytest.approx(355.0)
    assert circular_mean([0.0, 180.0]) is None  # opposite vectors: no mean direction
    # Speed weighting: a strong east wind outweighs a weak north one.
    assert circular_mean([0.0, 90.0], [1.0, 3.0]) == pytest.approx(math.degrees(math.atan2(3.0, 1.0)))


def test_yamartino_by_hand() -> None:
    assert yamartino_sigma([123.0] * 5) == pytest.approx(0.0, abs=1e-6)
    # 350 and 10: eps = sin(10 deg), sigma = 10 deg * (1 + 0.1547 * eps^3) = 10.008 deg
    eps = math.sin(math.radians(10.0))
    assert yamartino_sigma([350.0, 10.0]) == pytest.approx(10.0 * (1 + (2 / math.sqrt(3) - 1) * eps**3))
    assert yamartino_sigma([]) is None
    assert yamartino_sigma([0.0, 180.0]) == pytest.approx(math.degrees(math.pi / 2) * 2 / math.sqrt(3))


def textbook_yamartino(values: list[float]) -> float:
    sa = sum(math.sin(math.radians(d)) for d in values) / len(values)
    ca = sum(math.cos(math.radians(d)) for d in values) / len(values)
    eps = math.sqrt(max(0.0, 1 - (sa * sa + ca * ca)))
    return math.degrees(math.asin(eps) * (1 + (2 / math.sqrt(3) - 1) * eps**3))


@given(st.lists(directions, min_size=1, max_size=40))
def test_yamartino_agrees_with_the_textbook_formula(values: list[float]) -> None:
    sigma = yamartino_sigma(values)
    expected = textbook_yamartino(values)
    assert sigma is not None
    # The textbook form loses precision near zero spread (sqrt of a rounding error).
    assert sigma == pytest.approx(expected, abs=1e-5 if expected > 1e-3 else 1e-3)


@given(st.lists(st.floats(min_value=0.0, max_value=89.0), min_size=1, max_size=30), st.booleans())
def test_directions_spread_symmetrically_around_north_average_to_north(offsets: list[float], with_north: bool) -> None:
    values = [o % 360.0 for o in offsets] + [(-o) % 360.0 for o in offsets] + ([0.0] if with_north else [])
    mean = circular_mean(values)
    assert mean is not None
    assert angle_between(mean, 0.0) < 1e-6
    assert 0.0 <= mean < 360.0


@given(st.lists(directions, min_size=1, max_size=40), directions)
def test_rotating_every_direction_rotates_the_mean(values: list[float], rotation: float) -> None:
    resultant = math.hypot(
        sum(math.sin(math.radians(d)) for d in values), sum(math.cos(math.radians(d)) for d in values)
    )
    assume(resultant > 0.1 * len(values))  # a well-defined mean
    mean = circular_mean(values)
    rotated = circular_mean([(d + rotation) % 360.0 for d in values])
    assert mean is not None and rotated is not None
    assert angle_between(rotated, mean + rotation) < 1e-6
    sigma, rotated_sigma = yamartino_sigma(values), yamartino_sigma([d + rotation for d in values])
    assert sigma is not None and rotated_sigma == pytest.approx(sigma, abs=1e-6)


def test_beaufort_boundaries() -> None:
    assert [beaufort(v) for v in (0.0, 0.29, 0.3, 10.79, 10.8, 13.9, 32.6, 32.7, 70.0)] == [
        0,
        0,
        1,
        5,
        6,
        7,
        11,
        12,
        12,
    ]
    assert beaufort(-1.0) == 0 and beaufort(math.nan) == 0


@given(speeds, speeds)
def test_beaufort_is_monotone_and_honours_its_lower_bounds(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert beaufort(low) <= beaufort(high)
    force = beaufort(a)
    assert BEAUFORT_LOWER_BOUNDS[force] <= a
    assert force == 12 or a < BEAUFORT_LOWER_BOUNDS[force + 1]


def test_running_means_by_hand() -> None:
    samples = [(float(t), v) for t, v in enumerate([1.0, 2.0, 3.0, 10.0, 2.0, 3.0])]
    assert running_means(samples, 1.0) == [2.0, 5.0, 5.0, 5.0]
    assert gust(samples, 1.0) == 5.0
    # A missing sample: no 3-s mean can span the hole.
    holed = [s for s in samples if s[0] != 3.0]
    assert running_means(holed, 1.0) == [2.0]
    # Timestamps jitter a little: still three samples per span.
    jitter = [(0.02, 1.0), (0.98, 2.0), (2.03, 3.0), (2.97, 4.0)]
    assert running_means(jitter, 1.0) == [2.0, 3.0]
    # 4 Hz samples (WMO): twelve per span.
    fast = [(i * 0.25, 1.0 if i < 12 else 5.0) for i in range(24)]
    assert running_means(fast, 0.25)[0] == 1.0 and max(running_means(fast, 0.25)) == 5.0


@given(st.lists(speeds, min_size=3, max_size=90).filter(lambda v: len(v) % 3 == 0))
def test_gust_is_at_least_the_mean(values: list[float]) -> None:
    result = gust([(float(t), v) for t, v in enumerate(values)], 1.0)
    assert result is not None
    assert result >= math.fsum(values) / len(values) - 1e-9
    assert result <= max(values) + 1e-9


def feed_wind(
    wind: WindAggregator, samples: list[tuple[float, float]], start: float, node_gusts: list[float] | None = None
) -> list[Aggregate]:
    out: list[Aggregate] = []
    for i, (speed, direction) in enumerate(samples):
        t = start + i
        out += wind.feed(reading("wind_speed", speed, t, kind="wind", unit="m/s", sequence=i + 1))
        out += wind.feed(reading("wind_dir", direction, t, kind="wind", unit="deg", sequence=i + 1))
        if node_gusts is not None:
            out += wind.feed(reading("wind_gust_3s", node_gusts[i], t, kind="wind", unit="m/s", sequence=i + 1))
    return out


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(speeds, directions), min_size=120, max_size=120))
def test_two_minute_window_statistics(samples: list[tuple[float, float]]) -> None:
    wind = WindAggregator(LimitsResolver(), windows=("2min",))
    out = by_channel(feed_wind(wind, samples, local(11)) + wind.advance(local(11, 2)))
    mean = out["wind_2min_speed_mean"].value
    gust_value = out["wind_2min_gust"].value
    assert mean is not None and gust_value is not None
    assert mean == pytest.approx(math.fsum(s for s, _ in samples) / 120)
    assert gust_value >= mean - 1e-9
    assert gust_value == pytest.approx(gust([(float(i), s) for i, (s, _) in enumerate(samples)], 1.0))
    assert out["wind_2min_beaufort"].value == beaufort(mean)
    assert out["wind_2min_count"].value == 120 and out["wind_2min_speed_mean"].valid
    moving = [d for s, d in samples if s >= 0.3]
    if "wind_2min_dir_mean" in out:
        expected = circular_mean(moving)
        assert expected is not None
        assert angle_between(out["wind_2min_dir_mean"].value or 0.0, expected) < 1e-6
    assert out["wind_2min_dir_count"].value == 120  # calm samples are valid, just not used


def test_calm_samples_are_left_out_of_the_direction() -> None:
    wind = WindAggregator(LimitsResolver(), windows=("2min",))
    samples = [(5.0, 350.0), (5.0, 10.0)] * 30 + [(0.1, 180.0)] * 60
    out = by_channel(feed_wind(wind, samples, local(11)) + wind.advance(local(11, 2)))
    assert out["wind_2min_dir_mean"].value == pytest.approx(0.0, abs=1e-6)
    # All calm: no direction at all, but the window itself is valid.
    wind = WindAggregator(LimitsResolver(), windows=("2min",))
    out = by_channel(feed_wind(wind, [(0.0, 123.0)] * 120, local(11)) + wind.advance(local(11, 2)))
    assert "wind_2min_dir_mean" not in out and out["wind_2min_dir_count"].quality is Quality.NORMAL


def test_speed_weighting_is_an_option() -> None:
    samples = [(1.0, 0.0), (3.0, 90.0)] * 60
    unit = WindAggregator(LimitsResolver(), windows=("2min",))
    weighted = WindAggregator(LimitsResolver(), windows=("2min",), weighting="speed")
    a = by_channel(feed_wind(unit, samples, local(11)) + unit.advance(local(11, 2)))
    b = by_channel(feed_wind(weighted, samples, local(11)) + weighted.advance(local(11, 2)))
    assert a["wind_2min_dir_mean"].value == pytest.approx(45.0)
    assert b["wind_2min_dir_mean"].value == pytest.approx(math.degrees(math.atan2(3.0, 1.0)))


def test_gust_takes_the_nodes_own_3s_gust_and_runs_across_window_boundaries() -> None:
    wind = WindAggregator(LimitsResolver(), windows=("2min",))
    samples = [(4.0, 90.0)] * 240
    node_gusts = [5.0] * 240
    node_gusts[50] = 14.2
    # A burst straddling 11:02: two samples before, one after.
    samples[118] = samples[119] = samples[120] = (10.0, 90.0)
    out = feed_wind(wind, samples, local(11), node_gusts) + wind.advance(local(11, 4))
    first = next(a for a in out if a.statistic == "gust" and a.start == local(11))
    second = next(a for a in out if a.statistic == "gust" and a.start == local(11, 2))
    assert first.value == pytest.approx(14.2)  # the node's gust beats the gateway's running means (max 8)
    # The running mean of 11:01:58-11:02:00 belongs to the window it ends in.
    assert second.value == pytest.approx(10.0)


def test_missing_speed_samples_mark_the_window() -> None:
    wind = WindAggregator(LimitsResolver(), windows=("2min",))
    samples = [(4.0, 90.0)] * 120
    out: list[Aggregate] = []
    for i, (speed, direction) in enumerate(samples):
        t = local(11, second=i)
        quality = Quality.COMMUNICATION_FAILURE if i % 2 else Quality.NORMAL
        out += wind.feed(reading("wind_speed", speed if i % 2 == 0 else None, t, quality=quality, sequence=i))
        out += wind.feed(reading("wind_dir", direction, t, sequence=i))
    stats = by_channel(out + wind.advance(local(11, 2)))
    assert not stats["wind_2min_speed_mean"].valid
    assert stats["wind_2min_speed_mean"].quality is Quality.COMMUNICATION_FAILURE
    assert "wind_2min_gust" in stats and stats["wind_2min_gust"].value is None  # no full 3-s span
    assert stats["wind_2min_dir_mean"].valid  # the vane was fine
