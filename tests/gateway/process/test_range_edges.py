"""Values exactly at and just beyond a sensor's range limit, through the default pipeline (issue 8).

At the limit a value is in range (N); just beyond it is T and still counts in means, Lmax and alarms.
"""

from __future__ import annotations

import pytest

from gateway.deliver.records import Record
from gateway.model import Quality, Reading
from gateway.pipeline import build_pipeline
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent, EventState
from gateway.process.limits import LimitsResolver
from tests.gateway.process.support import local

T0 = local(10)


def run(channel: str, kind: str, unit: str, values: list[float], extra: dict[str, float] | None = None,
        start: float = T0) -> list[Record]:
    pipeline = build_pipeline(LimitsResolver())
    out: list[Record] = []
    for i, value in enumerate(values):
        t = start + i
        batch = [Reading(f"{kind}-1", kind, channel, value, unit, Quality.NORMAL, t, i + 1)]
        batch += [Reading(f"{kind}-1", kind, c, v, unit, Quality.NORMAL, t, i + 1) for c, v in (extra or {}).items()]
        out += pipeline.feed(batch, t + 0.5)
    out += pipeline.tick(start + len(values) + 120)
    return out


def flags(out: list[Record], channel: str) -> set[Quality]:
    return {r.quality for r in out if isinstance(r, Reading) and r.channel == channel and r.value is not None}


def aggregate(out: list[Record], channel: str) -> Aggregate:
    (found,) = [r for r in out if isinstance(r, Aggregate) and r.channel == channel and r.revision == 0]
    return found


@pytest.mark.parametrize(("value", "flag"), [(1000.0, Quality.NORMAL), (1000.1, Quality.OVER_RANGE)])
def test_pm10_at_its_range_limit_is_normal_and_just_above_is_t_in_the_reading_and_the_mean(
    value: float, flag: Quality
) -> None:
    out = run("pm10", "dust", "ug/m3", [value] * 60)
    assert flags(out, "pm10") == {flag}
    mean = aggregate(out, "pm10_1min_mean")
    assert mean.value == pytest.approx(value)
    assert (mean.count, mean.valid, mean.quality) == (60, True, flag)


def test_a_single_lamax_just_above_130_db_is_the_windows_lmax_and_flags_it_t() -> None:
    lamax = [95.0] * 60
    lamax[17] = 130.1
    out = run("lamax_1s", "noise", "dB(A)", lamax, extra={"laeq_1s": 80.0})
    lmax = aggregate(out, "noise_1min_lmax")
    assert (lmax.value, lmax.quality) == (130.1, Quality.OVER_RANGE)
    at_limit = run("lamax_1s", "noise", "dB(A)", [130.0] * 60, extra={"laeq_1s": 80.0})
    assert aggregate(at_limit, "noise_1min_lmax").quality is Quality.NORMAL


@pytest.mark.parametrize(("gust", "raised"), [(8.99, False), (9.0, True), (60.5, True)])
def test_the_crane_alarm_raises_at_exactly_its_limit_and_on_a_gust_beyond_the_anemometers_range(
    gust: float, raised: bool
) -> None:
    out = run("wind_gust_3s", "wind", "m/s", [gust] * 5, extra={"wind_speed": 5.0, "wind_dir": 90.0})
    crane = [e for e in out if isinstance(e, AlarmEvent) and e.alarm == "crane_wind" and e.state is EventState.RAISED]
    assert bool(crane) is raised
    if gust > 60.0:
        assert flags(out, "wind_gust_3s") == {Quality.OVER_RANGE}


@pytest.mark.parametrize(("mean", "raised"), [(150.0, False), (150.01, True)])
def test_the_dust_alarm_needs_an_hourly_mean_strictly_above_the_setting(mean: float, raised: bool) -> None:
    out = run("pm10", "dust", "ug/m3", [mean] * 3600, start=local(10))
    assert aggregate(out, "pm10_1h_mean").value == pytest.approx(mean)
    dust = [e for e in out if isinstance(e, AlarmEvent) and e.alarm == "dust" and e.state is EventState.RAISED]
    assert bool(dust) is raised
