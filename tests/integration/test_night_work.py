"""night_work.toml through the real gateway: the night noise limit after 22:00, Leq by energy.

One run of the scenario at 600x from 02:35 (21:35 local) until the gateway has closed the 20-min
evaluation window 22:00-22:20, the gateway polling the noise monitor next to the concrete pump
(boundary bus, unit 1, 9600 baud) back to back. The pour goes on all evening: the same machines
are judged against the day limit (70 dB(A)) before 22:00 and the night limit (55 dB(A)) after.

Numbers changed for speed, and why: the noise node samples once a minute (sample_interval =
60000 ms, each sample its LAeq over one second; limits.sampling.interval_s = 60), so that a
9600-baud line, about 14 polls a second, follows 45 minutes of scenario in five real seconds. A
20-min window then holds 20 one-second levels instead of 1200: the Leq is still the energy mean
of what was sampled. The limits, the evaluation period (20 min), margin and day and night hours
are the defaults.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from gateway.process.aggregate import Aggregate
from tests.integration.support import Polled, Run, events_of, hysteresis_events, leq, local_clock, run_scenario, usable

NODE = "noise-pump"
DAY_LIMIT, NIGHT_LIMIT, LMAX_EXCESS, MARGIN = 70.0, 55.0, 15.0, 3.0  # GB 12523-2011; margin: [limits.noise]
SPEED = 600.0


def night_window_closed(run: Run) -> bool:
    return any(local_clock(run.site, a.start) == "22:00:00" for a in run.aggregates(NODE, "noise_20min_leq"))


@pytest.fixture(scope="module")
def evening(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield asyncio.run(
        run_scenario(
            tmp_path_factory.mktemp("night"), "night_work", skip=2 * 3600 + 35 * 60, until=3.5 * 3600, speed=SPEED,
            polled=[Polled("boundary", 1, 60.0)], stop_when=night_window_closed,
        )
    )


def is_night(run: Run, t: float) -> bool:
    hour = run.site.scenario.local_time(run.scenario_seconds(t)).hour
    return hour >= 22 or hour < 6


def windows(run: Run, statistic: str) -> list[Aggregate]:
    return run.aggregates(NODE, f"noise_20min_{statistic}")


def test_night_limit_raises_the_noise_alarm_after_22_and_the_day_limit_does_not_apply_at_night(evening: Run) -> None:
    leqs = windows(evening, "leq")
    by_clock = {local_clock(evening.site, a.start): a for a in leqs}
    day, night = by_clock["21:40:00"], by_clock["22:00:00"]
    assert day.valid and night.valid
    # The pour is as loud before 22:00 as after: over the night limit both times.
    assert day.value is not None and night.value is not None
    assert day.value > NIGHT_LIMIT and night.value > NIGHT_LIMIT
    # What the rule gives on the gateway's own 20-min Leqs, with the limit of each window's start.
    def limit(t: float) -> float:
        return NIGHT_LIMIT if is_night(evening, t) else DAY_LIMIT

    expected = hysteresis_events(((a.start, usable(a.to_reading())) for a in leqs), limit, MARGIN, 0.0, inclusive=False)
    events = evening.alarms("noise", NODE)
    assert events_of(events) == expected
    raised = [e for e in events if e.state.value == "raised"]
    assert raised and raised[-1].time == night.start and raised[-1].value == night.value
    assert raised[-1].limit == NIGHT_LIMIT and raised[-1].channel == "noise_20min_leq"
    # At night the limit is 55, never the day's 70.
    assert all(e.limit == NIGHT_LIMIT for e in events if is_night(evening, e.time))
    assert all(e.limit == DAY_LIMIT for e in events if not is_night(evening, e.time))


def test_night_lmax_limit_applies_only_at_night(evening: Run) -> None:
    lmax = windows(evening, "lmax")
    expected = hysteresis_events(
        ((a.start, usable(a.to_reading())) for a in lmax if is_night(evening, a.start)),
        NIGHT_LIMIT + LMAX_EXCESS, MARGIN, 0.0, inclusive=False,
    )
    assert events_of(evening.alarms("noise_night_lmax", NODE)) == expected
    # The pump and the trucks peak above 70 dB(A) (Fast): after 22:00 that is an alarm of its own.
    assert [(state, local_clock(evening.site, t)) for state, t, _ in expected] == [("raised", "22:00:00")]


def test_leq_is_the_energy_mean_of_the_levels_never_their_arithmetic_mean(evening: Run) -> None:
    levels = evening.readings(NODE, "laeq_1s")
    highs = evening.readings(NODE, "lamax_1s")
    checked = 0
    for window in windows(evening, "leq"):
        inside = [v for r in levels if window.start <= r.timestamp < window.end if (v := usable(r)) is not None]
        assert window.count == len(inside)
        if not window.valid:
            continue
        assert window.value is not None and window.value == pytest.approx(leq(inside), abs=1e-9)
        assert window.value > sum(inside) / len(inside) + 0.01  # energy weighs the loud seconds
        stats = {a.statistic: a.value for a in evening.of(Aggregate) if a.node == NODE and a.start == window.start
                 and a.window == "20min"}
        loudest = max(v for r in highs if window.start <= r.timestamp < window.end if (v := usable(r)) is not None)
        assert stats["lmax"] == loudest  # the Fast maximum the node reported
        lmax, l10, l50, l90 = stats["lmax"], stats["l10"], stats["l50"], stats["l90"]
        assert lmax is not None and l10 is not None and l50 is not None and l90 is not None
        assert lmax >= l10 >= l50 >= l90 >= min(inside)
        checked += 1
    assert checked >= 2
