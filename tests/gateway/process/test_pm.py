from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import Quality
from gateway.process.aggregate import Aggregate
from gateway.process.limits import LimitsResolver
from gateway.process.pm import PmAggregator
from tests.gateway.process.support import local, reading

concentrations = st.floats(min_value=0.0, max_value=1000.0, allow_nan=False)


def by_channel(aggregates: list[Aggregate]) -> dict[str, Aggregate]:
    return {a.channel: a for a in aggregates}


def run(pm: PmAggregator, values: Sequence[float | None], start: float, channel: str = "pm10") -> list[Aggregate]:
    out: list[Aggregate] = []
    for i, value in enumerate(values):
        quality = Quality.NORMAL if value is not None else Quality.COMMUNICATION_FAILURE
        out += pm.feed(reading(channel, value, start + i, unit="ug/m3", quality=quality))
    return out


@settings(max_examples=50)
@given(concentrations, st.integers(min_value=1, max_value=60))
def test_mean_of_a_constant_is_the_constant(value: float, n: int) -> None:
    pm = PmAggregator(LimitsResolver(), channels=("pm10",), windows=("1min", "15min"))
    stats = by_channel(run(pm, [value] * n, local(8)) + pm.advance(local(9)))
    for window in ("1min", "15min"):
        mean = stats[f"pm10_{window}_mean"]
        assert mean.value == pytest.approx(value, rel=1e-12, abs=1e-12)
        assert stats[f"pm10_{window}_min"].value == value == stats[f"pm10_{window}_max"].value
        assert mean.count == n and mean.unit == "ug/m3"


@settings(max_examples=50)
@given(st.lists(st.one_of(st.none(), concentrations), min_size=60, max_size=60))
def test_minute_mean_count_and_validity(values: list[float | None]) -> None:
    pm = PmAggregator(LimitsResolver(), channels=("pm10",), windows=("1min",))
    stats = by_channel(run(pm, values, local(8)) + pm.advance(local(8, 1)))
    valid = [v for v in values if v is not None]
    mean, count = stats["pm10_1min_mean"], stats["pm10_1min_count"]
    assert count.value == len(valid) and mean.count == len(valid) and mean.expected == 60
    assert mean.valid == (len(valid) >= 45)  # the 75 % mark
    assert mean.quality is (Quality.NORMAL if len(valid) >= 45 else Quality.COMMUNICATION_FAILURE)
    assert count.quality is Quality.NORMAL
    if valid:
        assert mean.value == pytest.approx(math.fsum(valid) / len(valid))
        assert min(valid) - 1e-9 <= (mean.value or 0.0) <= max(valid) + 1e-9
    else:
        assert mean.value is None


def test_default_windows_and_channels() -> None:
    pm = PmAggregator(LimitsResolver.from_config({"sampling": {"interval_s": 60}}))
    out: list[Aggregate] = []
    # A day of minute samples: pm10 = 100, pm25 = 40; half of 09:xx missing.
    for minute in range(24 * 60):
        t = local(0, minute)
        missing = 9 * 60 <= minute < 9 * 60 + 30
        out += pm.feed(
            reading("pm10", None if missing else 100.0, t, quality=Quality.DEVICE_FAULT if missing else Quality.NORMAL)
        )
        out += pm.feed(reading("pm25", 40.0, t))
    out += pm.advance(local(0, day=1))
    labels = {(a.source, a.window) for a in out}
    assert labels == {(c, w) for c in ("pm10", "pm25") for w in ("1min", "15min", "1h", "24h")}
    hours = {a.start: a for a in out if a.channel == "pm10_1h_mean"}
    assert len(hours) == 24
    nine = hours[local(9)]
    assert (nine.count, nine.expected, nine.valid, nine.quality) == (30, 60, False, Quality.DEVICE_FAULT)
    assert nine.value == 100.0
    day = by_channel([a for a in out if a.window == "24h"])
    assert day["pm10_24h_mean"].valid and day["pm10_24h_count"].value == 24 * 60 - 30
    assert day["pm25_24h_mean"].value == pytest.approx(40.0)
    assert len([a for a in out if a.channel == "pm25_15min_mean"]) == 96


def test_non_finite_values_never_enter_a_mean() -> None:
    pm = PmAggregator(LimitsResolver(), channels=("pm10",), windows=("1min",))
    values = [10.0] * 40 + [math.nan] * 15 + [math.inf] * 5
    stats = by_channel(run(pm, values, local(8)) + pm.advance(local(8, 1)))
    mean = stats["pm10_1min_mean"]
    assert mean.value == 10.0 and mean.count == 40
    assert not mean.valid and mean.quality is Quality.DEVICE_FAULT
