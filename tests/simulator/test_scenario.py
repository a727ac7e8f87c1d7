"""Scenario files: the shipped ones load and run, the loader's errors name file and key, timelines."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware import regmap
from simulator.faults import FaultKind, NodeId
from simulator.physics import Change, Conditions, DustParams, NoiseParams, Timeline, WindParams
from simulator.scenario import (
    SHANGHAI,
    Scenario,
    ScenarioError,
    builtin_names,
    builtin_path,
    load_builtin,
    load_scenario,
    loads_scenario,
    parse_duration,
)

REQUIRED = {"normal_day", "dust_episode", "typhoon", "night_work", "formwork_pour", "faults", "demo"}

BASE = """
name = "tiny"
description = "two buses"
seed = 3
duration = "4h"
start = 2025-04-15T20:00:00+08:00

[conditions]
humidity_mean = 80.0

[[buses]]
name = "north"
baud = 9600

[[buses.nodes]]
kind = "dust"
unit_id = 1
params = { bearing = 90.0 }

[[buses.nodes]]
kind = "noise"
unit_id = 2

[[buses]]
name = "tower"
baud = 19200

[[buses.nodes]]
kind = "wind"
unit_id = 1
params = { height = 45.0 }
"""


def write(tmp_path: Path, text: str, name: str = "site.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# Shipped scenarios
# ---------------------------------------------------------------------------


def test_every_required_scenario_is_shipped() -> None:
    assert set(builtin_names()) >= REQUIRED


@pytest.mark.parametrize("name", builtin_names())
def test_every_shipped_scenario_loads_and_every_node_produces_its_measurements(name: str) -> None:
    scenario = load_builtin(name)
    assert scenario.name == name  # the file name and the scenario's name agree
    assert scenario.description.strip()
    assert scenario.start.utcoffset() == timedelta(hours=8)
    physics = scenario.physics()
    for bus, node in scenario.nodes():
        values = physics.step(bus.name, node.unit_id, 60.0, 60.0)
        assert set(values) == {row[0] for row in regmap.MEASUREMENTS[node.kind_code]}
        assert all(math.isfinite(v) for v in values.values())
    for change in scenario.changes:
        assert 0.0 <= change.at <= scenario.duration
    for fault in scenario.faults:
        assert 0.0 <= fault.start <= scenario.duration


def test_demo_is_one_bus_with_dust_1_wind_2_noise_3_tilt_4() -> None:
    demo = load_builtin("demo")
    assert len(demo.buses) == 1
    layout = {node.unit_id: node.kind for node in demo.buses[0].nodes}
    assert layout == {1: "dust", 2: "wind", 3: "noise", 4: "tilt"}
    assert demo.conditions.humidity_mean == Conditions().humidity_mean  # normal weather


def test_shipped_faults_scenario_exercises_every_fault_kind() -> None:
    assert {fault.kind for fault in load_builtin("faults").faults} == set(FaultKind)


def test_unknown_shipped_name_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match="demo"):
        builtin_path("no_such_scenario")


# ---------------------------------------------------------------------------
# What a loaded scenario holds
# ---------------------------------------------------------------------------


def test_a_small_scenario_loads_with_its_defaults(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, BASE))
    assert scenario.name == "tiny" and scenario.seed == 3 and scenario.duration == 4 * 3600.0
    assert scenario.start == datetime(2025, 4, 15, 20, 0, tzinfo=SHANGHAI)
    assert scenario.start_local_seconds == 20 * 3600.0
    assert scenario.conditions == Conditions(humidity_mean=80.0)
    assert [(b.name, b.baud) for b in scenario.buses] == [("north", 9600), ("tower", 19200)]
    assert scenario.node("north", 1).params == DustParams(bearing=90.0)
    assert scenario.node("north", 2).params == NoiseParams()
    assert scenario.node("tower", 1).params == WindParams(height=45.0)
    assert [n.name for _, n in scenario.nodes()] == ["dust-1", "noise-2", "wind-1"]
    assert scenario.local_time(3 * 3600.0) == datetime(2025, 4, 15, 23, 0, tzinfo=SHANGHAI)


def test_a_local_start_time_is_shanghai_time_and_other_offsets_are_converted(tmp_path: Path) -> None:
    local = load_scenario(write(tmp_path, BASE.replace("2025-04-15T20:00:00+08:00", "2025-04-15T20:00:00")))
    utc = load_scenario(write(tmp_path, BASE.replace("2025-04-15T20:00:00+08:00", "2025-04-15T12:00:00Z")))
    assert local.start == utc.start == datetime(2025, 4, 15, 12, 0, tzinfo=UTC)
    assert utc.start_local_seconds == 20 * 3600.0


@pytest.mark.parametrize(
    ("at", "seconds"),
    [
        ('"90m"', 5400.0),
        ("600", 600.0),
        ('"22:00"', 7200.0),  # start is 20:00
        ("22:30:00", 9000.0),  # a TOML local time
        ('"23:59:59"', 14399.0),
        ("2025-04-15T23:00:00+08:00", 10800.0),
        ("2025-04-15T15:30:00Z", 12600.0),
        ('"20:00"', 0.0),
    ],
)
def test_moments_can_be_offsets_times_of_day_or_date_times(tmp_path: Path, at: str, seconds: float) -> None:
    text = BASE + f"\n[[timeline]]\nat = {at}\nset = {{ trucks = 5 }}\n"
    assert load_scenario(write(tmp_path, text)).changes[0].at == seconds


def test_a_time_of_day_before_the_start_means_the_next_day(tmp_path: Path) -> None:
    text = BASE.replace('duration = "4h"', 'duration = "12h"') + '\n[[timeline]]\nat = "06:00"\nset = { trucks = 5 }\n'
    assert load_scenario(write(tmp_path, text)).changes[0].at == 10 * 3600.0


DURATIONS = [
    ("90s", 90.0),
    ("15m", 900.0),
    ("15min", 900.0),
    ("2h", 7200.0),
    ("1h30m", 5400.0),
    ("1d", 86400.0),
    ("500ms", 0.5),
    ("1.5h", 5400.0),
    ("1h 30m 15s", 5415.0),
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "fast", "10", "1x", "h", "1h30", "-5m", "1e3s"])
def test_not_durations(text: str) -> None:
    assert parse_duration(text) is None


@given(st.integers(0, 30), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_duration_parts_add_up(days: int, hours: int, minutes: int, seconds: int) -> None:
    text = f"{days}d{hours}h{minutes}m{seconds}s"
    assert parse_duration(text) == days * 86400 + hours * 3600 + minutes * 60 + seconds


def test_faults_from_the_timeline_become_a_plan(tmp_path: Path) -> None:
    text = (
        BASE
        + """
[[timeline]]
at = "1h"
fault = "late_reply"
bus = "north"
unit_id = 2
duration = "10m"
delay_ms = 250

[[timeline]]
at = "2h"
fault = "bus_unplugged"
bus = "tower"

[[timeline]]
at = "3h"
fault = "reboot"
bus = "north"
unit_id = 1
"""
    )
    scenario = load_scenario(write(tmp_path, text))
    plan = scenario.fault_plan()
    late = plan.active(NodeId("north", 2), 3600.0 + 60.0)
    assert [(f.kind, f.delay_ms, f.end) for f in late] == [(FaultKind.LATE_REPLY, 250.0, 3600.0 + 600.0)]
    assert plan.active(NodeId("north", 2), 3600.0 + 600.0) == ()
    unplugged = plan.active(NodeId("tower", 1), scenario.duration - 1.0)
    assert [f.kind for f in unplugged] == [FaultKind.BUS_UNPLUGGED] and unplugged[0].end == math.inf
    reboot = plan.started(NodeId("north", 1), 3 * 3600.0 - 1.0, 3 * 3600.0)
    assert [(f.kind, f.end - f.start) for f in reboot] == [(FaultKind.REBOOT, 2.0)]
    assert plan.active(NodeId("north", 1), 3600.0 * 2.5) == ()
    plan.clear(0.0, future=True)
    assert len(scenario.fault_plan()) == 3  # every plan is a fresh copy


# ---------------------------------------------------------------------------
# Loader errors name the file, the key and the problem
# ---------------------------------------------------------------------------


def edit(old: str, new: str) -> Callable[[str], str]:
    def apply(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return apply


def append(extra: str) -> Callable[[str], str]:
    return lambda text: text + "\n" + extra


ERROR_CASES: list[tuple[str, Callable[[str], str], str, str]] = [
    ("missing name", edit('name = "tiny"\n', ""), "name", "missing"),
    ("seed as text", edit("seed = 3", 'seed = "three"'), "seed", "expected an integer"),
    ("typo at the top", edit("seed = 3", "sede = 3"), "sede", "unknown key"),
    ("start as text", edit("start = 2025-04-15T20:00:00+08:00", 'start = "tonight"'), "start", "date-time"),
    ("bad duration", edit('duration = "4h"', 'duration = "4 hours"'), "duration", "not a duration"),
    ("zero duration", edit('duration = "4h"', "duration = 0"), "duration", "longer than 0"),
    ("no buses", lambda text: text.split("[[buses]]")[0], "buses", "missing"),
    ("bad baud", edit("baud = 19200", "baud = 1200"), "buses[1].baud", "1200"),
    ("bad bus name", edit('name = "north"', 'name = "north side"'), "buses[0].name", "letters"),
    ("unknown kind", edit('kind = "noise"', 'kind = "vibration"'), "buses[0].nodes[1].kind", "vibration"),
    ("unit id twice", edit("unit_id = 2", "unit_id = 1"), "buses[0].nodes[1].unit_id", "already used"),
    ("unit id too big", edit("unit_id = 2", "unit_id = 300"), "buses[0].nodes[1].unit_id", "247"),
    ("unit id as float", edit("unit_id = 2", "unit_id = 2.0"), "buses[0].nodes[1].unit_id", "integer"),
    (
        "unknown node parameter",
        edit("params = { height = 45.0 }", "params = { heigth = 45.0 }"),
        "buses[1].nodes[0].params.heigth",
        "not a parameter of a wind node",
    ),
    (
        "impossible node parameter",
        edit("params = { height = 45.0 }", "params = { height = 0.5 }"),
        "buses[1].nodes[0].params.height",
        "outside",
    ),
    (
        "same default name on two buses",
        edit('kind = "wind"\nunit_id = 1\nparams = { height = 45.0 }', 'kind = "dust"\nunit_id = 1'),
        "buses[1].nodes[0].name",
        "already used",
    ),
    ("unknown condition", edit("humidity_mean = 80.0", "humidity = 80.0"), "conditions.humidity", "unknown"),
    (
        "condition out of range",
        edit("humidity_mean = 80.0", "humidity_mean = 800.0"),
        "conditions.humidity_mean",
        "800",
    ),
    (
        "unknown condition in a change",
        append('[[timeline]]\nat = "1h"\nset = { wind_speed = 3 }'),
        "timeline[0].set.wind_speed",
        "unknown condition",
    ),
    (
        "change and fault in one entry",
        append('[[timeline]]\nat = "1h"\nset = { trucks = 3 }\nfault = "no_reply"'),
        "timeline[0]",
        "exactly one",
    ),
    ("after the end", append('[[timeline]]\nat = "5h"\nset = { trucks = 3 }'), "timeline[0].at", "outside the run"),
    ("a date is no moment", append("[[timeline]]\nat = 2025-04-15\nset = { trucks = 3 }"), "timeline[0].at", "date"),
    ("unknown fault", append('[[timeline]]\nat = "1h"\nfault = "smoke"\nbus = "north"'), "timeline[0].fault", "smoke"),
    (
        "fault on an unknown bus",
        append('[[timeline]]\nat = "1h"\nfault = "bus_unplugged"\nbus = "south"'),
        "timeline[0].bus",
        "south",
    ),
    (
        "fault on an unknown node",
        append('[[timeline]]\nat = "1h"\nfault = "no_reply"\nbus = "north"\nunit_id = 9'),
        "timeline[0].unit_id",
        "no node 9",
    ),
    (
        "node fault without a node",
        append('[[timeline]]\nat = "1h"\nfault = "no_reply"\nbus = "north"'),
        "timeline[0].unit_id",
        "missing",
    ),
    (
        "bus fault with a node",
        append('[[timeline]]\nat = "1h"\nfault = "bus_unplugged"\nbus = "north"\nunit_id = 1'),
        "timeline[0].unit_id",
        "whole bus",
    ),
    (
        "parameter the fault does not take",
        append('[[timeline]]\nat = "1h"\nfault = "no_reply"\nbus = "north"\nunit_id = 1\ndelay_ms = 5'),
        "timeline[0].delay_ms",
        "takes no delay_ms",
    ),
    (
        "channel the node does not have",
        append('[[timeline]]\nat = "1h"\nfault = "stuck_value"\nbus = "north"\nunit_id = 1\nchannel = "laeq_1s"'),
        "timeline[0].channel",
        "not a dust measurement",
    ),
    (
        "probability above one",
        append('[[timeline]]\nat = "1h"\nfault = "crc_corruption"\nbus = "north"\nprobability = 2'),
        "timeline[0].probability",
        "outside 0 .. 1",
    ),
    ("not TOML", append("this is = = not toml"), "(toml)", "not valid TOML"),
]


@pytest.mark.parametrize(("case", "change", "key", "problem"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_name_the_file_the_key_and_the_problem(
    tmp_path: Path, case: str, change: Callable[[str], str], key: str, problem: str
) -> None:
    path = write(tmp_path, change(BASE), "broken.toml")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    error = caught.value
    assert error.source == str(path)
    assert error.key == key
    assert problem in error.problem
    assert str(error).startswith(f"{path}: {key}: ")


def test_an_unreadable_file_is_reported_by_name(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"missing\.toml"):
        load_scenario(tmp_path / "missing.toml")


def test_text_without_a_file_is_named_by_its_source() -> None:
    with pytest.raises(ScenarioError, match=r"^console: seed: "):
        loads_scenario(BASE.replace("seed = 3", "seed = -1"), "console")


# ---------------------------------------------------------------------------
# Timeline: ramps and steps
# ---------------------------------------------------------------------------


def test_a_ramp_moves_linearly_from_the_value_in_force() -> None:
    timeline = Timeline(Conditions(wind_mean=2.0), [Change(1000.0, {"wind_mean": 12.0}, ramp=1000.0)])
    assert [timeline(t).wind_mean for t in (0.0, 1000.0, 1500.0, 2000.0, 9000.0)] == [2.0, 2.0, 7.0, 12.0, 12.0]


def test_a_step_applies_at_its_moment() -> None:
    timeline = Timeline(Conditions(), [Change(60.0, {"piling": 1.0})])
    assert timeline(59.999).piling == 0.0 and timeline(60.0).piling == 1.0


def test_a_new_change_takes_over_from_where_a_ramp_had_got_to() -> None:
    changes = [Change(0.0, {"load": 1.0}, ramp=100.0), Change(50.0, {"load": 0.0}, ramp=50.0)]
    timeline = Timeline(Conditions(), changes)
    assert timeline(50.0).load == pytest.approx(0.5)
    assert timeline(75.0).load == pytest.approx(0.25)
    assert timeline(100.0).load == 0.0


def test_wind_direction_ramps_the_short_way_round() -> None:
    timeline = Timeline(Conditions(wind_dir=350.0), [Change(0.0, {"wind_dir": 30.0}, ramp=400.0)])
    assert timeline(100.0).wind_dir % 360.0 == pytest.approx(0.0)  # through north, not through south
    assert timeline(400.0).wind_dir % 360.0 == pytest.approx(30.0)


def test_changes_at_the_same_moment_apply_in_file_order(tmp_path: Path) -> None:
    text = BASE + '\n[[timeline]]\nat = "1h"\nset = { trucks = 5 }\n\n[[timeline]]\nat = "1h"\nset = { trucks = 9 }\n'
    scenario = load_scenario(write(tmp_path, text))
    assert scenario.conditions_at(3600.0).trucks == 9.0
    assert scenario.conditions_at(3599.0).trucks == 0.0


def test_changes_may_be_listed_out_of_order(tmp_path: Path) -> None:
    text = BASE + '\n[[timeline]]\nat = "2h"\nset = { trucks = 2 }\n\n[[timeline]]\nat = "1h"\nset = { trucks = 1 }\n'
    scenario: Scenario = load_scenario(write(tmp_path, text))
    assert [scenario.conditions_at(t).trucks for t in (0.0, 3600.0, 7200.0)] == [0.0, 1.0, 2.0]


def test_timeline_changes_reach_the_physics(tmp_path: Path) -> None:
    quiet = BASE
    loud = BASE + '\n[[timeline]]\nat = "0s"\nset = { piling = 1 }\n'

    def level(text: str) -> float:
        physics = load_scenario(write(tmp_path, text)).physics()
        return physics.step("north", 2, 600.0, 1.0)["laeq_1s"]

    assert level(loud) > level(quiet) + 15.0


def test_bus_and_node_line_settings() -> None:
    text = """
name = "lines"
seed = 1
duration = "1h"
start = 2025-04-15T09:00:00+08:00

[[buses]]
name = "b"
baud = 19200
parity = "e"

[[buses.nodes]]
kind = "dust"
unit_id = 1

[[buses.nodes]]
kind = "wind"
unit_id = 2
baud = 57600
parity = "O"
"""
    bus = loads_scenario(text).buses[0]
    assert (bus.baud, bus.parity) == (19200, "E")
    assert [(n.baud, n.parity) for n in bus.nodes] == [(None, None), (57600, "O")]
    with pytest.raises(ScenarioError, match=r"buses\[0\]\.nodes\[1\]\.parity: 'M' is not one of N, E, O"):
        loads_scenario(text.replace('parity = "O"', 'parity = "M"'))
    with pytest.raises(ScenarioError, match=r"buses\[0\]\.nodes\[1\]\.baud: 4800 is not one of 9600"):
        loads_scenario(text.replace("baud = 57600", "baud = 4800"))
