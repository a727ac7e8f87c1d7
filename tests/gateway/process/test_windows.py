from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.model import Quality
from gateway.process.aggregate import (
    DayPartWindow,
    FixedWindow,
    Tally,
    is_night,
    period_label,
    period_seconds,
    validity,
    window_spec,
)
from gateway.process.limits import LimitsError, LimitsResolver, SiteLimits, override
from gateway.process.pm import PmAggregator
from tests.gateway.process.support import MIDNIGHT, local, reading

CST = 8 * 3600
times = st.floats(min_value=1.0e9, max_value=2.0e9, allow_nan=False)


def test_fixed_windows_align_to_local_clock() -> None:
    quarter = FixedWindow("15min", 900, CST)
    assert quarter.bounds(local(10, 7, 30)) == (local(10), local(10, 15))
    assert quarter.bounds(local(10, 15)) == (local(10, 15), local(10, 30))  # a boundary opens the next one
    day = FixedWindow("24h", 86400, CST)
    assert day.bounds(local(23, 59, 59)) == (MIDNIGHT, MIDNIGHT + 86400)
    # Local midnight is 16:00 UTC the day before.
    assert MIDNIGHT % 86400 == 16 * 3600


@given(times, st.sampled_from([60, 120, 600, 900, 1200, 3600, 86400]), st.sampled_from([0, CST, -5 * 3600, 19800]))
def test_fixed_windows_hold_their_time_and_tile(t: float, period: int, tz: int) -> None:
    spec = FixedWindow("w", period, tz)
    bounds = spec.bounds(t)
    assert bounds is not None
    start, end = bounds
    assert start <= t < end and end - start == period
    assert (start + tz) % period == 0
    assert spec.bounds(end) == (end, end + period)


def test_day_and_night_follow_gb12523_hours() -> None:
    day = DayPartWindow("day", 6 * 3600, 22 * 3600, CST)
    night = DayPartWindow("night", 22 * 3600, 6 * 3600, CST)
    assert day.bounds(local(6)) == (local(6), local(22))
    assert day.bounds(local(5, 59, 59)) is None
    assert day.bounds(local(22)) is None
    assert night.bounds(local(22)) == (local(22), local(6, day=1))
    assert night.bounds(local(3)) == (local(22, day=-1), local(6))
    assert night.bounds(local(12)) is None


@given(times)
def test_every_instant_is_in_exactly_one_of_day_and_night(t: float) -> None:
    limits = SiteLimits()
    in_day = window_spec("day", limits).bounds(t) is not None
    assert in_day != is_night(t, limits)


def test_window_labels() -> None:
    assert [period_seconds(x) for x in ("1min", "15min", "20min", "1h", "24h", "1d", "30s")] == [
        60, 900, 1200, 3600, 86400, 86400, 30,
    ]  # fmt: skip
    assert [period_label(x) for x in (60, 1200, 3600, 86400, 30)] == ["1min", "20min", "1h", "24h", "30s"]
    for bad in ("7min", "1 h", "hour", "0min"):
        with pytest.raises(LimitsError):
            period_seconds(bad)


def test_validity_rule_and_the_flag_of_an_invalid_window() -> None:
    tally = Tally(count=45)
    assert validity(tally, 0.0, 60.0, 1.0, 0.75).valid  # exactly 75 %
    tally = Tally(count=44, invalid=Counter({Quality.DEVICE_FAULT: 10, Quality.OVER_RANGE: 3}))
    check = validity(tally, 0.0, 60.0, 1.0, 0.75)
    assert (check.count, check.expected, check.valid, check.quality) == (44, 60, False, Quality.DEVICE_FAULT)
    # Samples that never arrived: communication failure.
    assert validity(Tally(count=10), 0.0, 60.0, 1.0, 0.75).quality is Quality.COMMUNICATION_FAILURE


def test_windows_close_on_a_later_reading_or_on_advance_and_late_readings_revise_them() -> None:
    pm = PmAggregator(LimitsResolver(), channels=("pm10",), windows=("1min",))
    assert pm.feed(reading("pm10", 10.0, local(9, 0, 5))) == []
    assert pm.feed(reading("pm10", 20.0, local(9, 0, 59.9))) == []
    closed = pm.feed(reading("pm10", 30.0, local(9, 1)))
    mean = next(a for a in closed if a.statistic == "mean")
    assert (mean.value, mean.count, mean.start, mean.end, mean.revision) == (15.0, 2, local(9), local(9, 1), 0)
    assert mean.to_reading().timestamp == local(9)
    # Older than the open window: it revises the closed one (emitted at the end of the batch).
    assert pm.feed(reading("pm10", 99.0, local(9, 0, 30))) == []
    revised = next(a for a in pm.flush() if a.statistic == "mean")
    assert (revised.value, revised.count, revised.start, revised.revision) == (43.0, 3, local(9), 1)
    assert (pm.late, pm.dropped) == (1, 0)
    assert pm.advance(local(9, 1, 59)) == []
    closed = pm.advance(local(9, 2))
    assert [a.value for a in closed if a.statistic == "mean"] == [30.0]
    # Nothing open, nothing to emit: the silent minutes are not invented.
    assert pm.advance(local(9, 3)) == []
    # A sample of a window that advance() already closed revises it rather than reopening it.
    assert pm.feed(reading("pm10", 5.0, local(9, 1, 30))) == []
    assert [(a.value, a.revision) for a in pm.advance(local(9, 3)) if a.statistic == "mean"] == [(17.5, 1)]
    assert pm.late == 2
    assert pm.advance(local(13)) == []


def test_each_node_has_its_own_windows_and_timezone() -> None:
    limits = LimitsResolver(override(SiteLimits(), {}), {"far": {"time": {"tz_offset": "+05:30"}}})
    pm = PmAggregator(limits, channels=("pm10",), windows=("1h",))
    t = local(10, 10)
    pm.feed(reading("pm10", 1.0, t, node="here"))
    pm.feed(reading("pm10", 2.0, t, node="far"))
    out = pm.advance(t + 3 * 3600)
    starts = {a.node: a.start for a in out if a.statistic == "mean"}
    assert starts["here"] == local(10)
    assert starts["far"] == local(9, 30)  # +05:30 hours start at :30 in +08:00 terms
