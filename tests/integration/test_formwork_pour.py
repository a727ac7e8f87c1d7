"""formwork_pour.toml through the real gateway: bay A's pre-warning, then its alarm; bays B and C quiet.

One run of the scenario at 600x from 04:06 into it (11:06 local, the pour nearly done) until bay
A's alarm is raised, the gateway polling the three formwork inclinometers (formwork bus, units
1-3, 38400 baud) back to back. Bay A's slope passes 3.2 per-mille (80 % of the alarm limit) while
the load grows, then, as the props creep under the full load, 4 per-mille about two hours later.

Numbers changed for speed, and why: the inclinometers sample once a minute (sample_interval =
60000 ms; limits.sampling.interval_s = 60), so that the line, about 45 polls a second, sees every
sample of the two hours the creep takes in about twelve real seconds. The limits (4 per-mille,
pre-warning at 80 %), margin and hold time are the defaults. The gateway judges each axis
(slope_x, slope_y) on every sample; bay A leans mostly along x (azimuth 15 degrees).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator

import pytest

from tests.integration.support import Polled, Run, run_scenario, usable

ALARM, PREWARNING, MARGIN = 4.0, 3.2, 0.2  # DBJ/T 15-197-2020 table 8.0.4 (quoted); margin: [limits.tilt]
SPEED = 600.0
BAYS = [Polled("formwork", unit, 60.0) for unit in (1, 2, 3)]
BAY_A, QUIET_BAYS = "tilt-bay-a", ("tilt-bay-b", "tilt-bay-c")
CHANNELS = ("slope_x", "slope_y")


def alarm_raised(run: Run) -> bool:
    return any(e.severity.value == "alarm" and e.state.value == "raised" for e in run.alarms("formwork_tilt"))


@pytest.fixture(scope="module")
def pour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield asyncio.run(
        run_scenario(
            tmp_path_factory.mktemp("formwork"), "formwork_pour", skip=4.1 * 3600, until=7.5 * 3600, speed=SPEED,
            polled=BAYS, stop_when=alarm_raised,
        )
    )


Expected = tuple[str, str, float, float]  # severity, state, time, value


def tilt_rule(values: Iterable[tuple[float, float | None]]) -> list[Expected]:
    """The events of a two-level alarm with hysteresis on |slope| (domain.md section 4), replayed."""
    out: list[Expected] = []
    state: str | None = None
    rank = {None: 0, "prewarning": 1, "alarm": 2}
    limits = {"prewarning": PREWARNING, "alarm": ALARM}
    below: dict[str, float] = {}

    def move(target: str | None, t: float, v: float) -> None:
        nonlocal state
        if state is not None:
            out.append((state, "cleared", t, v))
        if target is not None:
            out.append((target, "raised", t, v))
        state = target

    for t, value in values:
        if value is None:
            below.clear()
            continue
        v = abs(value)
        for severity, limit in limits.items():
            if v < limit - MARGIN:
                below.setdefault(severity, t)
            else:
                below.pop(severity, None)
        if rank[state] < 2 and v >= ALARM:
            move("alarm", t, v)
        elif rank[state] < 1 and v >= PREWARNING:
            move("prewarning", t, v)
        elif state == "alarm" and "alarm" in below:
            move("prewarning" if v >= PREWARNING - MARGIN else None, t, v)
        elif state == "prewarning" and "prewarning" in below:
            move(None, t, v)
    return out


def tilt_events(run: Run, node: str, channel: str) -> list[Expected]:
    return [(e.severity.value, e.state.value, e.time, e.value) for e in run.alarms("formwork_tilt", node)
            if e.channel == channel]


def check_rule(run: Run) -> None:
    for node in (BAY_A, *QUIET_BAYS):
        for channel in CHANNELS:
            values = [(r.timestamp, usable(r)) for r in run.readings(node, channel)]
            assert len(values) >= 60, (node, channel)
            assert tilt_events(run, node, channel) == tilt_rule(values), (node, channel)


def test_bay_a_passes_the_prewarning_then_the_alarm(pour: Run) -> None:
    check_rule(pour)
    slope_x = [r for r in pour.readings(BAY_A, "slope_x") if usable(r) is not None]
    assert abs(slope_x[0].value or 0.0) < PREWARNING  # it leaned into it
    events = pour.alarms("formwork_tilt", BAY_A)
    assert [(e.severity.value, e.state.value, e.channel) for e in events] == [
        ("prewarning", "raised", "slope_x"),
        ("prewarning", "cleared", "slope_x"),  # superseded
        ("alarm", "raised", "slope_x"),
    ]
    prewarning, superseded, alarm = events
    assert prewarning.limit == PREWARNING and PREWARNING <= prewarning.value < ALARM
    rule = "DBJ/T 15-197-2020 table 8.0.4 (unconfirmed)"
    assert prewarning.reason == f"slope_x {prewarning.value:g} permille >= {PREWARNING:g} permille ({rule})"
    assert superseded.time == alarm.time and superseded.reason == "superseded by alarm"
    assert alarm.limit == ALARM and alarm.value >= ALARM
    assert alarm.time - prewarning.time > 3600.0  # the creep: an hour and more under the full load
    before = [abs(r.value) for r in slope_x if r.value is not None and r.timestamp < alarm.time]
    assert max(before) < ALARM


def test_bays_b_and_c_stay_inside_the_limits(pour: Run) -> None:
    for node in QUIET_BAYS:
        assert pour.alarms("formwork_tilt", node) == []
        values = [abs(r.value) for c in CHANNELS for r in pour.readings(node, c) if r.value is not None]
        assert max(values) < PREWARNING
