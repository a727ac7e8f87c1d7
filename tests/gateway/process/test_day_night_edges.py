"""Day / night boundaries of the GB 12523 noise alarms (issue 8), through the default pipeline."""

from __future__ import annotations

import pytest

from gateway.deliver.records import Record
from gateway.model import Quality, Reading
from gateway.pipeline import build_pipeline
from gateway.process.aggregate import is_night
from gateway.process.alarms import AlarmEvent, EventState
from gateway.process.limits import LimitsError, LimitsResolver, SiteLimits, override
from tests.gateway.process.support import local


def noise_run(start: float, seconds: int, laeq: float, lamax: float) -> list[Record]:
    pipeline = build_pipeline(LimitsResolver())
    out: list[Record] = []
    for i in range(seconds):
        t = start + i
        wobble = 0.1 * (i % 2)  # a constant level would be flagged stuck after 30 min
        batch = [Reading("noise-1", "noise", c, v, "dB(A)", Quality.NORMAL, t, i + 1)
                 for c, v in (("laeq_1s", laeq - wobble), ("lamax_1s", lamax - wobble), ("lamin_1s", 40.0))]
        out += pipeline.feed(batch, t + 0.5)
    out += pipeline.tick(start + seconds + 120)
    return out


def events(out: list[Record], alarm: str) -> list[tuple[EventState, float]]:
    return [(e.state, e.time) for e in out if isinstance(e, AlarmEvent) and e.alarm == alarm]


def test_the_night_starts_at_22_00_exactly_and_ends_at_06_00_exactly() -> None:
    site = SiteLimits()
    assert not is_night(local(21, 59, 59.999), site)
    assert is_night(local(22), site) and is_night(local(5, 59, 59.999, day=1), site)
    assert not is_night(local(6, day=1), site)


def test_60_db_is_no_alarm_in_the_last_day_window_and_an_alarm_in_the_first_night_window() -> None:
    out = noise_run(local(21, 40), 2400, laeq=60.0, lamax=70.0)
    assert events(out, "noise") == [(EventState.RAISED, local(22))]


def test_night_lmax_strictly_above_70_raises_and_the_alarm_clears_at_06_00() -> None:
    at_limit = noise_run(local(5, 20), 1200, laeq=50.0, lamax=70.0)
    assert events(at_limit, "noise_night_lmax") == []
    above = noise_run(local(5, 20), 3600, laeq=50.0, lamax=70.1)
    assert events(above, "noise_night_lmax") == [(EventState.RAISED, local(5, 20)), (EventState.CLEARED, local(6))]


@pytest.mark.parametrize("start", ["06:10", "21:50"])
def test_a_day_or_night_start_between_evaluation_windows_is_refused_naming_the_key(start: str) -> None:
    key = "day_start" if start < "12:00" else "night_start"
    with pytest.raises(LimitsError, match=f"noise.{key}"):
        override(SiteLimits(), {"noise": {key: start}})
    # On a boundary of a shorter period it is accepted.
    assert override(SiteLimits(), {"noise": {key: start, "evaluation_period_s": 600}})
