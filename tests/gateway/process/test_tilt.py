from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import Quality
from gateway.process.aggregate import Aggregate
from gateway.process.limits import LimitsError, LimitsResolver
from gateway.process.tilt import TiltAggregator
from tests.gateway.process.support import local, reading


def by_channel(aggregates: list[Aggregate]) -> dict[str, Aggregate]:
    return {a.channel: a for a in aggregates}


@settings(max_examples=40, deadline=None)
@given(
    st.floats(min_value=-50.0, max_value=50.0),
    st.floats(min_value=-20.0, max_value=20.0),
    st.floats(min_value=-5.0, max_value=5.0),
)
def test_a_linear_creep_gives_its_rate_and_deviation(offset: float, rate_per_h: float, baseline: float) -> None:
    tilt = TiltAggregator(
        LimitsResolver(), channels=("slope_x",), windows=("10min",), baselines={"f1": {"slope_x": baseline}}
    )
    out: list[Aggregate] = []
    for s in range(600):
        value = offset + rate_per_h * s / 3600.0
        out += tilt.feed(reading("slope_x", value, local(13, second=s), node="f1", kind="tilt", unit="permille"))
    stats = by_channel(out + tilt.advance(local(13, 10)))
    assert stats["slope_x_10min_rate"].value == pytest.approx(rate_per_h, abs=1e-6)
    assert stats["slope_x_10min_rate"].unit == "permille/h"
    mean_value = offset + rate_per_h * 299.5 / 3600.0
    assert stats["slope_x_10min_deviation_mean"].value == pytest.approx(mean_value - baseline, abs=1e-6)
    ends = (offset - baseline, offset + rate_per_h * 599 / 3600.0 - baseline)
    assert stats["slope_x_10min_deviation_max"].value == pytest.approx(max(ends, key=abs), abs=1e-9)
    assert stats["slope_x_10min_count"].value == 600


def test_first_value_baseline_and_zero_baseline() -> None:
    first = TiltAggregator(LimitsResolver(), channels=("slope_y",), windows=("10min",), baseline="first")
    zero = TiltAggregator(LimitsResolver(), channels=("slope_y",), windows=("10min",))
    values = [None, 2.0, 2.5, 1.5]
    for i, value in enumerate(values):
        quality = Quality.NORMAL if value is not None else Quality.COMMUNICATION_FAILURE
        r = reading("slope_y", value, local(13, second=i), quality=quality)
        first.feed(r)
        zero.feed(r)
    a = by_channel(first.advance(local(14)))
    b = by_channel(zero.advance(local(14)))
    assert first.baseline("n1", "slope_y") == 2.0
    assert a["slope_y_10min_deviation_mean"].value == pytest.approx(0.0)
    assert a["slope_y_10min_deviation_max"].value == pytest.approx(0.5)
    assert b["slope_y_10min_deviation_mean"].value == pytest.approx(2.0)
    assert b["slope_y_10min_count"].value == 3


def test_a_single_sample_has_no_rate_and_bad_settings_are_refused() -> None:
    tilt = TiltAggregator(LimitsResolver(), windows=("10min",))
    tilt.feed(reading("slope_x", 1.0, local(13)))
    stats = by_channel(tilt.advance(local(14)))
    assert stats["slope_x_10min_rate"].value is None  # and the window is invalid anyway
    assert not stats["slope_x_10min_rate"].valid
    with pytest.raises(LimitsError):
        TiltAggregator(LimitsResolver(), baseline="median")
    with pytest.raises(LimitsError):
        TiltAggregator(LimitsResolver(), baselines={"f1": {"slope_x": "zero"}})  # type: ignore[dict-item]
