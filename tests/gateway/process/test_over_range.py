"""Over-range (flag T) is information: it counts in means and Lmax and it moves alarms (docs/data-quality.md)."""

from __future__ import annotations

import pytest

from gateway.deliver.records import Record
from gateway.model import Quality
from gateway.pipeline import SprayPlan, build_pipeline
from gateway.process.aggregate import Aggregate, Tally, validity
from gateway.process.alarms import AlarmEvent, AlarmSet, EventState, dust
from gateway.process.limits import LimitsResolver
from gateway.process.noise import NoiseAggregator
from gateway.process.spray import SprayCommand
from tests.gateway.process.support import local, reading

T0 = local(9, 0)


def _aggregate(records: list[Record], channel: str) -> Aggregate:
    (found,) = [r for r in records if isinstance(r, Aggregate) and r.channel == channel]
    return found


def test_an_hour_of_pm10_above_the_range_makes_a_flagged_mean_a_dust_alarm_and_spray() -> None:
    # PM10 alternating 1200 / 900 ug/m3: every 1200 is above the sensor's 1000 range (T).
    pipeline = build_pipeline(LimitsResolver(), spray=SprayPlan())
    out: list[Record] = []
    for i in range(3600):
        value = 1200.0 if i % 2 == 0 else 900.0
        r = reading("pm10", value, T0 + i, node="dust-1", kind="dust", unit="ug/m3", sequence=i + 1)
        out += pipeline.feed([r], T0 + i)
    out += pipeline.tick(T0 + 3600 + 60)
    mean = _aggregate(out, "pm10_1h_mean")
    assert mean.value == pytest.approx(1050.0)  # the T values count, at their measured value
    assert mean.valid and mean.count == 3600
    assert mean.quality is Quality.OVER_RANGE
    assert _aggregate(out, "pm10_1h_max").value == 1200.0
    raised = [e for e in out if isinstance(e, AlarmEvent) and e.alarm == "dust" and e.state is EventState.RAISED]
    assert raised, "an hour above 900 ug/m3 must raise the dust alarm"
    assert any(isinstance(c, SprayCommand) and c.on for c in out), "and switch the spray on"


def test_a_window_flag_follows_the_precedence_invalid_then_over_range_then_normal() -> None:
    tally = Tally()
    for q in (Quality.NORMAL, Quality.OVER_RANGE, Quality.NORMAL, Quality.NORMAL):
        tally.add(reading("pm10", 100.0, T0, quality=q))
    check = validity(tally, T0, T0 + 4, 1.0, 0.75)
    assert check.valid and check.count == 4 and check.quality is Quality.OVER_RANGE
    tally.add(reading("pm10", None, T0, quality=Quality.DEVICE_FAULT))
    tally.add(reading("pm10", None, T0, quality=Quality.DEVICE_FAULT))
    short = validity(tally, T0, T0 + 8, 1.0, 0.75)
    assert not short.valid and short.quality is Quality.DEVICE_FAULT
    normal = Tally()
    normal.add(reading("pm10", 100.0, T0))
    assert validity(normal, T0, T0 + 1, 1.0, 0.75).quality is Quality.NORMAL


def test_lamax_above_130_db_counts_in_lmax_with_flag_t() -> None:
    aggregator = NoiseAggregator(LimitsResolver(), windows=("1min",))
    out: list[Aggregate] = []
    for i in range(60):
        t = T0 + i
        out += aggregator.feed(reading("laeq_1s", 80.0, t, kind="noise", unit="dB(A)"))
        lamax = 134.5 if i == 30 else 90.0
        quality = Quality.OVER_RANGE if lamax > 130 else Quality.NORMAL
        out += aggregator.feed(reading("lamax_1s", lamax, t, kind="noise", unit="dB(A)", quality=quality))
    out += aggregator.advance(T0 + 60)
    lmax = next(a for a in out if a.channel == "noise_1min_lmax")
    assert lmax.value == 134.5
    assert lmax.quality is Quality.OVER_RANGE


def test_an_over_range_reading_raises_an_alarm_whose_limit_is_below_the_range() -> None:
    limits = LimitsResolver()
    alarms = AlarmSet(dust(limits, channels=("pm10",)), limits)
    events = alarms.feed(reading("pm10", 1000.0, T0, quality=Quality.OVER_RANGE))
    assert [(e.severity.value, e.state) for e in events] == [("alarm", EventState.RAISED)]


def test_an_over_range_reading_without_a_finite_value_counts_as_the_range_limit() -> None:
    # A saturated sensor may report infinity; the alarm judges it as the top of the channel's range.
    limits = LimitsResolver()
    alarms = AlarmSet(dust(limits, channels=("pm10",)), limits)
    events = alarms.feed(reading("pm10", float("inf"), T0, quality=Quality.OVER_RANGE))
    assert [(e.state, e.value) for e in events] == [(EventState.RAISED, 1000.0)]
