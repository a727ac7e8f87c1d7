"""The formwork tilt alarm judges the combined inclination, from the tilt aggregator's own baseline."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.deliver.records import Record
from gateway.model import Quality, Reading
from gateway.pipeline import StageSpec, build_pipeline
from gateway.process import create_alarms
from gateway.process.alarms import COMBINED_TILT_CHANNEL, AlarmEvent, AlarmSet, EventState, Severity
from gateway.process.limits import LimitsError, LimitsResolver
from tests.gateway.process.support import local, reading

T0 = local(9, 0)


def tilt_sample(
    x: float | None, y: float | None, t: float, seq: int, quality: Quality = Quality.NORMAL
) -> list[Reading]:
    return [
        reading(channel, value, t, node="tilt-1", kind="tilt", unit="permille", quality=quality, sequence=seq)
        for channel, value in (("slope_x", x), ("slope_y", y))
    ]


def events(alarms: AlarmSet, readings: list[Reading]) -> list[AlarmEvent]:
    return [e for r in readings for e in alarms.feed(r)]


def test_a_tilt_along_the_diagonal_raises_the_alarm_that_no_axis_reaches() -> None:
    limits = LimitsResolver()
    combined = AlarmSet(create_alarms("formwork_tilt", limits), limits)
    (raised,) = events(combined, tilt_sample(3.0, -3.0, T0, 1))
    assert (raised.severity, raised.state, raised.channel) == (Severity.ALARM, EventState.RAISED, COMBINED_TILT_CHANNEL)
    assert raised.value == pytest.approx(math.hypot(3.0, 3.0))
    per_axis = AlarmSet(create_alarms("formwork_tilt", limits, {"rule": "axis"}), limits)
    assert events(per_axis, tilt_sample(3.0, -3.0, T0, 1)) == []  # 3.0 < the 3.2 pre-warning on each axis


def test_a_sample_with_an_unusable_slope_does_not_move_the_alarm() -> None:
    limits = LimitsResolver()
    alarms = AlarmSet(create_alarms("formwork_tilt", limits), limits)
    assert events(alarms, tilt_sample(None, None, T0, 0, Quality.COMMUNICATION_FAILURE)) == []
    (raised,) = events(alarms, tilt_sample(5.0, 0.0, T0 + 1, 2))
    assert raised.state is EventState.RAISED
    assert events(alarms, tilt_sample(None, None, T0 + 2, 0, Quality.COMMUNICATION_FAILURE)) == []  # holds


def test_the_alarm_uses_the_baseline_of_the_tilt_aggregator() -> None:
    # The formwork was set up leaning 5 per-mille along x; the aggregator is told so. The alarm must agree.
    pipeline = build_pipeline(
        LimitsResolver(), processors=[],
        aggregators=[StageSpec("tilt", {"baselines": {"tilt-1": {"slope_x": 5.0, "slope_y": 0.0}}})],
    )
    out: list[Record] = pipeline.feed(tilt_sample(5.5, 0.5, T0, 1), T0)
    assert [r for r in out if isinstance(r, AlarmEvent)] == []
    out = pipeline.feed(tilt_sample(8.3, 0.0, T0 + 1, 2), T0 + 1)  # 3.3 per-mille from it: the pre-warning
    assert [(e.severity, e.state) for e in out if isinstance(e, AlarmEvent)] == [
        (Severity.PREWARNING, EventState.RAISED)
    ]


def test_first_value_baselines_are_one_object_for_aggregator_and_alarm() -> None:
    pipeline = build_pipeline(LimitsResolver(), processors=[], aggregators=[StageSpec("tilt", {"baseline": "first"})])
    pipeline.feed(tilt_sample(10.0, -2.0, T0, 1), T0)
    out = pipeline.feed(tilt_sample(10.5, -2.5, T0 + 1, 2), T0 + 1)
    assert [r for r in out if isinstance(r, AlarmEvent)] == []


def test_a_rule_that_is_neither_is_refused() -> None:
    with pytest.raises(LimitsError, match=r"formwork_tilt\.rule"):
        create_alarms("formwork_tilt", LimitsResolver(), {"rule": "max"})


slopes = st.floats(-20.0, 20.0, allow_nan=False)


@given(slopes, slopes)
def test_the_combined_slope_is_never_below_either_axis(x: float, y: float) -> None:
    limits = LimitsResolver()
    alarms = AlarmSet(create_alarms("formwork_tilt", limits), limits)
    judged = events(alarms, tilt_sample(x, y, T0, 1))
    if max(abs(x), abs(y)) >= 3.2:
        assert judged, "an axis at or above the pre-warning must move the combined alarm"
