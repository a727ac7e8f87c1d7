from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.model import Quality
from gateway.process.alarms import (
    AlarmEvent,
    AlarmMachine,
    AlarmSet,
    EventState,
    Levels,
    Severity,
    default_definitions,
)
from gateway.process.limits import LimitsResolver
from gateway.process.registry import create_alarms
from tests.gateway.process.support import local, reading

RAISED, CLEARED = EventState.RAISED, EventState.CLEARED
ALARM, PRE = Severity.ALARM, Severity.PREWARNING


def summary(events: list[AlarmEvent]) -> list[tuple[Severity, EventState]]:
    return [(e.severity, e.state) for e in events]


def test_raise_at_the_limit_clear_below_the_margin_and_no_chatter_between() -> None:
    machine = AlarmMachine("crane_wind", "w1", "wind_gust_3s", "m/s", "GB 55034-2022 3.4.7")
    levels = Levels(9.0, margin=1.0)
    assert machine.update(8.99, 0.0, levels) == []
    (raised,) = machine.update(9.0, 1.0, levels)
    assert (raised.alarm, raised.node, raised.severity, raised.state) == ("crane_wind", "w1", ALARM, RAISED)
    assert (raised.value, raised.limit, raised.time) == (9.0, 9.0, 1.0)
    assert raised.reason == "wind_gust_3s 9 m/s >= 9 m/s (GB 55034-2022 3.4.7)"
    # Inside the band [8, 9) and above the limit again: nothing new.
    for i, value in enumerate([8.5, 8.01, 9.7, 8.0, 8.9, 12.0]):
        assert machine.update(value, 2.0 + i, levels) == []
    (cleared,) = machine.update(7.99, 10.0, levels)
    assert (cleared.severity, cleared.state, cleared.limit) == (ALARM, CLEARED, 9.0)
    assert "below 8 m/s" in cleared.reason
    assert machine.update(7.0, 11.0, levels) == [] and machine.state is None


def test_hold_time_needs_the_value_to_stay_low() -> None:
    machine = AlarmMachine("a", "n", "c")
    levels = Levels(10.0, margin=1.0, hold_s=600.0)
    assert summary(machine.update(11.0, 0.0, levels)) == [(ALARM, RAISED)]
    assert machine.update(5.0, 100.0, levels) == []
    assert machine.update(5.0, 650.0, levels) == []
    assert machine.update(9.5, 690.0, levels) == []  # back into the band: the hold restarts
    assert machine.update(5.0, 700.0, levels) == []
    assert machine.update(5.0, 1299.0, levels) == []
    (cleared,) = machine.update(5.0, 1300.0, levels)
    assert (cleared.severity, cleared.state, cleared.time) == (ALARM, CLEARED, 1300.0)
    assert cleared.reason == "c 5 below 9 for 600 s"


def test_invalid_readings_neither_move_the_state_nor_count_as_low() -> None:
    definitions = create_alarms("dust", LimitsResolver(), {"channels": ["pm10_1h_mean"]})
    alarms = AlarmSet(definitions, LimitsResolver.from_config({"dust": {"hold_s": 3600}}))
    assert summary(alarms.feed(reading("pm10_1h_mean", 151.0, 0.0))) == [(ALARM, RAISED)]
    assert alarms.feed(reading("pm10_1h_mean", 20.0, 3600.0)) == []
    assert alarms.feed(reading("pm10_1h_mean", None, 5400.0, quality=Quality.COMMUNICATION_FAILURE)) == []
    assert alarms.feed(reading("pm10_1h_mean", 5.0, 7200.0, quality=Quality.DEVICE_FAULT)) == []
    assert alarms.feed(reading("pm10_1h_mean", 20.0, 7200.0)) == []  # the hold restarted at the gap
    assert summary(alarms.feed(reading("pm10_1h_mean", 20.0, 10800.0))) == [(ALARM, CLEARED)]


def test_prewarning_and_alarm_transitions_of_the_formwork_tilt() -> None:
    # Per axis (the option; the default judges the combined slope: tests/gateway/process/test_tilt_alarm.py).
    alarms = AlarmSet(create_alarms("formwork_tilt", LimitsResolver(), {"rule": "axis"}), LimitsResolver())

    def feed(value: float, t: float, channel: str = "slope_x") -> list[tuple[Severity, EventState]]:
        return summary(alarms.feed(reading(channel, value, t, kind="tilt", unit="permille")))

    assert feed(3.1, 0) == []
    assert feed(-3.2, 1) == [(PRE, RAISED)]  # either way: |value|
    assert feed(3.1, 2) == []  # inside the pre-warning band [3.0, 3.2)
    assert feed(4.0, 3) == [(PRE, CLEARED), (ALARM, RAISED)]
    assert feed(3.9, 4) == []
    assert feed(3.5, 5) == [(ALARM, CLEARED), (PRE, RAISED)]
    assert feed(4.1, 6) == [(PRE, CLEARED), (ALARM, RAISED)]
    assert feed(0.5, 7) == [(ALARM, CLEARED)]  # straight down: the pre-warning is not re-raised
    assert feed(3.9, 8, "slope_y") == [(PRE, RAISED)]  # each axis has its own machine
    superseded, event = alarms.feed(reading("slope_y", 5.0, 9.0))
    assert (superseded.severity, superseded.state, superseded.limit) == (PRE, CLEARED, 3.2)
    assert superseded.reason == "superseded by alarm"
    assert (event.channel, event.limit) == ("slope_y", 4.0)
    assert event.reason.startswith("slope_y 5 permille >= 4 permille (DBJ/T 15-197-2020")
    active = {(a.channel, a.severity) for a in alarms.active()}
    assert active == {("slope_y", ALARM)}


def test_noise_limit_follows_day_and_night_and_night_lmax_only_applies_at_night() -> None:
    limits = LimitsResolver()
    alarms = AlarmSet(create_alarms("noise", limits) + create_alarms("noise_night_lmax", limits), limits)

    def feed(channel: str, value: float, t: float) -> list[tuple[str, Severity, EventState]]:
        return [(e.alarm, e.severity, e.state) for e in alarms.feed(reading(channel, value, t, kind="noise"))]

    assert feed("noise_20min_leq", 68.0, local(21, 40)) == []  # day: limit 70
    assert feed("noise_20min_leq", 70.0, local(21, 40)) == []  # "exceeds": 70 is not above 70
    assert feed("noise_20min_leq", 60.0, local(22)) == [("noise", ALARM, RAISED)]  # night: limit 55
    assert feed("noise_20min_lmax", 70.0, local(22)) == []
    assert feed("noise_20min_lmax", 71.0, local(23)) == [("noise_night_lmax", ALARM, RAISED)]
    (cleared,) = alarms.feed(reading("noise_20min_lmax", 90.0, local(6)))
    assert (cleared.alarm, cleared.state, cleared.limit) == ("noise_night_lmax", CLEARED, 70.0)
    assert cleared.reason == "outside the alarm's evaluation period"
    assert feed("noise_20min_leq", 60.0, local(6)) == [("noise", ALARM, CLEARED)]  # day again: 60 < 70 - 3
    assert feed("noise_20min_leq", 60.0, local(5, 40)) == [("noise", ALARM, RAISED)]


def test_nodes_and_per_node_limits() -> None:
    limits = LimitsResolver(nodes={"tall-crane": {"wind": {"crane_gust": 8.0}}})
    alarms = AlarmSet(create_alarms("crane_wind", limits, {"nodes": ["tall-crane", "crane-2"]}), limits)
    assert alarms.feed(reading("wind_gust_3s", 20.0, 0.0, node="ground")) == []  # not a crane-top node
    assert summary(alarms.feed(reading("wind_gust_3s", 8.5, 0.0, node="tall-crane"))) == [(ALARM, RAISED)]
    assert alarms.feed(reading("wind_gust_3s", 8.5, 0.0, node="crane-2")) == []


def test_default_definitions_have_the_domain_limits() -> None:
    limits = LimitsResolver()
    site = limits.site
    expected = {
        "crane_wind": ("wind_gust_3s", 9.0, True),
        "lifting_wind": ("wind_gust_3s", 12.0, True),
        "work_at_height_wind": ("wind_2min_speed_mean", 10.8, True),
        "placing_boom_wind": ("wind_gust_3s", 10.8, True),
        "dust": ("pm10_1h_mean", 150.0, False),
        "formwork_tilt": ("slope_x", 4.0, True),
        "noise": ("noise_20min_leq", 70.0, False),  # at noon
        "noise_night_lmax": ("noise_20min_lmax", None, False),  # at noon: does not apply
    }
    for definition in default_definitions(limits):
        channel, limit, inclusive = expected[definition.name]
        assert definition.channels[0] == channel
        levels = definition.levels(site, local(12))
        assert (levels.alarm if levels else None) == limit
        assert levels is None or levels.inclusive == inclusive


values = st.floats(min_value=0.0, max_value=20.0, allow_nan=False)


@given(st.lists(st.tuples(values, st.floats(min_value=0.0, max_value=100.0)), max_size=60))
def test_events_come_in_order_once_per_episode(steps: list[tuple[float, float]]) -> None:
    machine = AlarmMachine("a", "n", "c")
    levels = Levels(10.0, prewarning=8.0, margin=1.0, hold_s=30.0)
    events: list[AlarmEvent] = []
    t = 0.0
    for value, dt in steps:
        t += dt
        before = machine.state
        new = machine.update(value, t, levels)
        events += new
        # Never both directions in one severity at once, and the state matches the events.
        assert len(new) <= 2
        if new:
            assert new[-1].state is RAISED or machine.state is None
            assert before != machine.state
        for event in new:
            if event.state is RAISED and event.severity is ALARM:
                assert value >= 10.0
            elif event.state is RAISED:
                assert value >= 8.0 or (before is ALARM and value >= 7.0)  # or still in its band
            elif event.severity is ALARM:
                assert value < 9.0
            elif event.reason != "superseded by alarm":
                assert value < 7.0
    for severity in (PRE, ALARM):
        states = [e.state for e in events if e.severity is severity]
        # raised, cleared, raised, cleared, ...: never two raises or two clears in a row.
        assert states == [RAISED, CLEARED] * (len(states) // 2) + [RAISED] * (len(states) % 2)
    open_ = [s for s in (PRE, ALARM) if [e.state for e in events if e.severity is s][-1:] == [RAISED]]
    assert open_ == ([] if machine.state is None else [machine.state])


@given(st.lists(st.floats(min_value=9.0 + 1e-9, max_value=9.999), max_size=50))
def test_no_chatter_inside_the_hysteresis_band(wobble: list[float]) -> None:
    machine = AlarmMachine("a", "n", "c")
    levels = Levels(10.0, margin=1.0)
    assert len(machine.update(10.0, 0.0, levels)) == 1
    for i, value in enumerate(wobble):
        assert machine.update(value, float(i + 1), levels) == []
    assert machine.state is ALARM


def test_a_prewarning_that_stops_applying_clears() -> None:
    machine = AlarmMachine("a", "n", "c")
    assert summary(machine.update(8.5, 0.0, Levels(10.0, prewarning=8.0))) == [(PRE, RAISED)]
    (cleared,) = machine.update(8.5, 1.0, Levels(10.0))
    assert (cleared.severity, cleared.state) == (PRE, CLEARED)
    assert cleared.reason == "the pre-warning no longer applies"


def test_a_value_exactly_at_a_limit_is_at_it_whatever_the_binary_rounding_of_its_arithmetic() -> None:
    # Limits are judged on sums and differences of decimal readings. 4.1 per-mille read against a 0.1 baseline
    # is 3.9999999999999996 in binary, an hour of PM10 whose mean is exactly 150.0 often sums to 150.00000000000003:
    # "at 4 per-mille" must still alarm and "above 150 ug/m3" must still not.
    limits = LimitsResolver()
    tilt = AlarmSet(create_alarms("formwork_tilt", limits, {"rule": "axis"}), limits)
    deviation = 4.1 - 0.1
    assert deviation < 4.0
    raised = tilt.feed(reading("slope_x", deviation, local(9), node="tilt-1", kind="tilt"))
    assert [(e.severity, e.state) for e in raised] == [(Severity.ALARM, EventState.RAISED)]
    dust = AlarmSet(create_alarms("dust", limits, {"channels": ["pm10_1h_mean"]}), limits)
    hour = [150.4, 149.9, 149.7] * 1200
    total = 0.0
    for value in hour:
        total += value
    mean = total / len(hour)
    assert 150.0 < mean < 150.0 + 1e-9
    assert dust.feed(reading("pm10_1h_mean", mean, local(9))) == []
