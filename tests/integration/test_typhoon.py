"""typhoon.toml through the real gateway: the wind alarms as the wind rises, and as it eases.

Two runs of the scenario at 1200x (20 simulated minutes a real second), the gateway polling the
10-m mast anemometer (tower bus, unit 1, 19200 baud) back to back:

* the onset, 00:15 to 04:00 into the scenario (12:15-16:00 local): the 10-min mean rises from
  about 6 to 11 m/s;
* the decay, 16:00 to 18:00 (04:00-06:00 local): it falls from about 11 to 6 m/s.

Numbers changed for speed, and why: the anemometer samples once a minute (holding register
sample_interval = 60000 ms; its wind_speed is then the mean over the minute and wind_gust_3s the
largest 3-s mean in it, see simulator/physics/wind.py) and the gateway's limits.sampling.interval_s
is 60, so that a 19200-baud line, which carries about 28 polls a second, sees every sample of
hours of scenario in seconds. The alarm limits, margins and hold times are the defaults.

Every check reads what the gateway queued: its readings, aggregates and alarm events. The alarm
events are compared with an independent replay of the rule (tests/integration/support.py) over
the gateway's own readings; the only use of the simulator's truth is to check that the gateway's
timestamps are simulated time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.model import Reading
from gateway.process.aggregate import Aggregate
from simulator.truth import read_truth
from tests.integration.support import (
    Polled,
    Run,
    circular_mean,
    events_of,
    hysteresis_events,
    run_scenario,
    usable,
)

SPEED = 1200.0
MAST = Polled("tower", 1, 60.0)
NODE = "wind-mast"
# Domain defaults (domain.md section 4; margin and hold: docs/configuration.md, [limits.wind]).
CRANE, LIFTING, HEIGHT, BOOM = 9.0, 12.0, 10.8, 10.8
MARGIN, HOLD_S = 1.0, 600.0
# alarm -> (channel it reads, limit)
WIND_ALARMS = {
    "crane_wind": ("wind_gust_3s", CRANE),
    "lifting_wind": ("wind_gust_3s", LIFTING),
    "placing_boom_wind": ("wind_gust_3s", BOOM),
    "work_at_height_wind": ("wind_2min_speed_mean", HEIGHT),
}


def _run(path: Path, skip: float, until: float, truth: Path | None = None) -> Run:
    return asyncio.run(run_scenario(path, "typhoon", skip=skip, until=until, speed=SPEED, polled=[MAST], truth=truth))


@pytest.fixture(scope="module")
def onset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    path = tmp_path_factory.mktemp("onset")
    yield _run(path, 15 * 60, 4 * 3600, truth=path / "truth.jsonl")


@pytest.fixture(scope="module")
def decay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield _run(tmp_path_factory.mktemp("decay"), 16 * 3600, 18 * 3600)


def alarm_input(run: Run, channel: str) -> list[tuple[float, float | None]]:
    """What the alarm stage saw of a channel, in the order it saw it: readings, or aggregates as readings."""
    out: list[tuple[float, float | None]] = []
    for r in run.records:
        if isinstance(r, Aggregate) and r.node == NODE and r.channel == channel:
            reading = r.to_reading()
            out.append((reading.timestamp, usable(reading)))
        elif isinstance(r, Reading) and r.node == NODE and r.channel == channel:
            out.append((r.timestamp, usable(r)))
    return out


def check_alarms_follow_the_rule(run: Run) -> dict[str, list[tuple[str, float, float]]]:
    """Every wind alarm's events are those the rule gives on the gateway's own values; returns them."""
    found = {}
    for alarm, (channel, limit) in WIND_ALARMS.items():
        expected = hysteresis_events(alarm_input(run, channel), limit, MARGIN, HOLD_S)
        events = run.alarms(alarm, NODE)
        assert events_of(events) == expected, alarm
        assert all(e.channel == channel and e.limit == limit for e in events), alarm
        found[alarm] = expected
    return found


def test_the_gateway_saw_every_sample_at_its_simulated_time(onset: Run) -> None:
    speeds = [r for r in onset.readings(NODE, "wind_speed") if r.value is not None]
    sequences = [r.sequence for r in speeds]
    assert len(speeds) >= 180  # 3 h 30 min or more of one-minute samples
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
    assert onset.site.truth_path is not None
    truth = {r.sequence: r.time for r in read_truth(onset.site.truth_path) if (r.bus, r.unit_id) == ("tower", 1)}
    # At 1200x a millisecond of real time is 1.2 simulated seconds: the timestamps are that close,
    # plus how late the simulated node heard the requests (measured; nothing on an idle host).
    late = onset.hearing_delay("tower")
    errors = [r.timestamp - truth[r.sequence] for r in speeds]
    assert max(abs(e) for e in errors) < 10.0 + late, (min(errors), max(errors), late)
    # The windows are the site's local clock: 10-min means from 12:20, 12:30 ... (+08:00).
    tens = onset.aggregates(NODE, "wind_10min_speed_mean")
    assert tens and all((a.start + 8 * 3600) % 600 == 0 and a.end - a.start == 600 for a in tens)
    assert sum(a.valid for a in tens) >= len(tens) - 1  # the first may have started before the gateway


def test_onset_raises_each_wind_alarm_at_its_level_as_the_wind_rises(onset: Run) -> None:
    events = check_alarms_follow_the_rule(onset)
    first_raise = {}
    for alarm, (channel, limit) in WIND_ALARMS.items():
        raised = [e for e in events[alarm] if e[0] == "raised"]
        assert raised, f"{alarm} was never raised"
        values = [v for _, v in alarm_input(onset, channel) if v is not None]
        assert values[0] < limit  # the wind rose to it: not raised by the first value
        first_raise[alarm] = raised[0][1]
    # Crane work stops first (9 m/s gust), then lifting (12 m/s), then work at height (Beaufort 6 mean).
    assert first_raise["crane_wind"] < first_raise["lifting_wind"] < first_raise["work_at_height_wind"]
    assert first_raise["placing_boom_wind"] <= first_raise["lifting_wind"]
    # Work at height: raised by the first 2-min window of Beaufort 6; every valid one before was 5 or less.
    beaufort = {a.start: a.value for a in onset.aggregates(NODE, "wind_2min_beaufort") if a.valid}
    assert beaufort[first_raise["work_at_height_wind"]] == 6.0
    before = [force for t, force in beaufort.items() if t < first_raise["work_at_height_wind"]]
    assert before and all(force is not None and force <= 5.0 for force in before)


def test_decay_clears_the_alarms_with_hysteresis_as_the_wind_eases(decay: Run) -> None:
    events = check_alarms_follow_the_rule(decay)
    for alarm in ("lifting_wind", "work_at_height_wind", "placing_boom_wind"):
        assert events[alarm][0][0] == "raised"  # still blowing hard when the gateway started
        cleared = [e for e in events[alarm] if e[0] == "cleared"]
        assert cleared, f"{alarm} never cleared"
        channel, limit = WIND_ALARMS[alarm]
        for _, t, value in cleared:
            assert value < limit - MARGIN
            # Not at the first value below the limit: after HOLD_S of values below limit - margin.
            earlier = [(u, v) for u, v in alarm_input(decay, channel) if v is not None and u <= t]
            last_high = max(u for u, v in earlier if v >= limit - MARGIN)
            assert t - last_high >= HOLD_S
    # The wind still gusts near 9 m/s at the end: the crane alarm holds unless ten calm minutes came.
    gusts = alarm_input(decay, "wind_gust_3s")
    for _, t, _ in [e for e in events["crane_wind"] if e[0] == "cleared"]:
        assert all(v is None or v < CRANE - MARGIN for u, v in gusts if t - HOLD_S <= u <= t)


def ten_minute_windows(run: Run) -> list[tuple[Aggregate, Aggregate, Aggregate]]:
    """(speed mean, gust, direction mean) of every valid 10-min window."""
    means = {a.start: a for a in run.aggregates(NODE, "wind_10min_speed_mean") if a.valid}
    gusts = {a.start: a for a in run.aggregates(NODE, "wind_10min_gust")}
    directions = {a.start: a for a in run.aggregates(NODE, "wind_10min_dir_mean") if a.valid}
    return [(means[t], gusts[t], directions[t]) for t in sorted(means) if t in directions]


def test_wind_aggregates_gust_above_mean_vector_mean_direction_and_the_veer(onset: Run, decay: Run) -> None:
    seen: dict[str, list[float]] = {}
    for name, run in (("onset", onset), ("decay", decay)):
        windows = ten_minute_windows(run)
        assert len(windows) >= 8, name
        for mean, gust, direction in windows:
            inside = [r for r in run.of(Reading) if r.node == NODE and mean.start <= r.timestamp < mean.end]
            inside = [r for r in inside if usable(r) is not None]
            speeds = [r.value for r in inside if r.channel == "wind_speed" and r.value is not None]
            gusts = [r.value for r in inside if r.channel == "wind_gust_3s" and r.value is not None]
            dirs = [r.value for r in inside if r.channel == "wind_dir" and r.value is not None]
            assert mean.value == pytest.approx(sum(speeds) / len(speeds))
            assert gust.value is not None and mean.value is not None and gust.value >= mean.value
            assert gust.value == max(gusts)  # the largest 3-s mean the anemometer reported
            # The mean direction of unit vectors, never of degrees.
            assert direction.value is not None
            difference = (direction.value - circular_mean(dirs) + 180.0) % 360.0 - 180.0
            assert abs(difference) < 1e-6
        seen[name] = [d.value for _, _, d in windows if d.value is not None]
    # North-east at the onset, veering (clockwise) as it rises; south to south-west as it eases.
    onset_dirs, decay_dirs = seen["onset"], seen["decay"]
    assert all(0.0 <= d < 90.0 for d in onset_dirs), onset_dirs
    assert all(180.0 <= d < 270.0 for d in decay_dirs), decay_dirs
    first, last = circular_mean(onset_dirs[:6]), circular_mean(onset_dirs[-6:])
    assert 0.0 < (last - first) % 360.0 < 90.0, (first, last)
