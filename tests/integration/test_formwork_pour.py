"""formwork_pour.toml through the real gateway: bay A's pre-warning, then its alarm; bays B and C quiet.

One run of the scenario at 600x from 03:36 into it (10:36 local, the pour nearly done) until bay
A's alarm is raised, the gateway polling the three formwork inclinometers (formwork bus, units
1-3, 38400 baud) back to back. Bay A's slope passes 3.2 per-mille (80 % of the alarm limit) while
the load grows, then, as the props creep under the full load, 4 per-mille about an hour later.

Numbers changed for speed, and why: the inclinometers sample once a minute (sample_interval =
60000 ms; limits.sampling.interval_s = 60), so that the line, about 45 polls a second, sees every
sample of the two hours the creep takes in about twelve real seconds. The limits (4 per-mille,
pre-warning at 80 %), margin and hold time are the defaults. The gateway judges the combined slope
sqrt(x^2 + y^2) of every sample (channel slope_combined, docs/data-quality.md); bay A leans mostly
along x (azimuth 15 degrees).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Iterator

import pytest

from tests.integration.support import Polled, Run, run_scenario, usable

ALARM, PREWARNING, MARGIN = 4.0, 3.2, 0.2  # DBJ/T 15-197-2020 table 8.0.4 (quoted); margin: [limits.tilt]
SPEED = 600.0
BAYS = [Polled("formwork", unit, 60.0) for unit in (1, 2, 3)]
BAY_A, QUIET_BAYS = "tilt-bay-a", ("tilt-bay-b", "tilt-bay-c")
CHANNELS = ("slope_x", "slope_y")
COMBINED = "slope_combined"


def alarm_raised(run: Run) -> bool:
    return any(e.severity.value == "alarm" and e.state.value == "raised" for e in run.alarms("formwork_tilt"))


@pytest.fixture(scope="module")
def pour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield asyncio.run(
        run_scenario(
            tmp_path_factory.mktemp("formwork"), "formwork_pour", skip=3.6 * 3600, until=7.5 * 3600, speed=SPEED,
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


def tilt_events(run: Run, node: str) -> list[Expected]:
    return [(e.severity.value, e.state.value, e.time, e.value) for e in run.alarms("formwork_tilt", node)
            if e.channel == COMBINED]


def combined(run: Run, node: str) -> list[tuple[float, float | None]]:
    """sqrt(x^2 + y^2) of each sample's two slopes (None when either is unusable), in the order they came."""
    xs = {(r.sequence, r.timestamp): usable(r) for r in run.readings(node, "slope_x")}
    out: list[tuple[float, float | None]] = []
    for r in run.readings(node, "slope_y"):
        x, y = xs.get((r.sequence, r.timestamp)), usable(r)
        out.append((r.timestamp, None if x is None or y is None else math.hypot(x, y)))
    return out


def check_rule(run: Run) -> None:
    for node in (BAY_A, *QUIET_BAYS):
        values = combined(run, node)
        assert len(values) >= 60, node
        assert tilt_events(run, node) == tilt_rule(values), node


def test_bay_a_passes_the_prewarning_then_the_alarm(pour: Run) -> None:
    check_rule(pour)
    tilt = [(t, v) for t, v in combined(pour, BAY_A) if v is not None]
    assert tilt[0][1] < PREWARNING  # it leaned into it
    events = pour.alarms("formwork_tilt", BAY_A)
    assert [(e.severity.value, e.state.value, e.channel) for e in events] == [
        ("prewarning", "raised", COMBINED),
        ("prewarning", "cleared", COMBINED),  # superseded
        ("alarm", "raised", COMBINED),
    ]
    prewarning, superseded, alarm = events
    assert prewarning.limit == PREWARNING and PREWARNING <= prewarning.value < ALARM
    rule = "DBJ/T 15-197-2020 table 8.0.4 (unconfirmed)"
    assert prewarning.reason == f"{COMBINED} {prewarning.value:g} permille >= {PREWARNING:g} permille ({rule})"
    assert superseded.time == alarm.time and superseded.reason == "superseded by alarm"
    assert alarm.limit == ALARM and alarm.value >= ALARM
    assert alarm.time - prewarning.time > 3000.0  # the creep: about an hour under the full load
    before = [v for t, v in tilt if t < alarm.time]
    assert max(before) < ALARM
    # Never below either axis: the combined slope reached the alarm no later than slope_x alone would have.
    slope_x = [abs(v) for t, v in ((r.timestamp, usable(r)) for r in pour.readings(BAY_A, "slope_x"))
               if v is not None and t < alarm.time]
    assert max(slope_x) <= max(before) + 1e-9


def test_bays_b_and_c_stay_inside_the_limits(pour: Run) -> None:
    for node in QUIET_BAYS:
        assert pour.alarms("formwork_tilt", node) == []
        values = [v for _t, v in combined(pour, node) if v is not None]
        assert max(values) < PREWARNING
