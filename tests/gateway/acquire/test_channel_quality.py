"""Quality travels with each value: the decoded sample carries one flag per channel, live and from history."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware import regmap
from gateway.acquire.decode import KIND_BY_NAME, channel_qualities, decode_history, decode_inputs, to_readings
from gateway.model import Quality
from gateway.process.alarms import AlarmSet, EventState, default_definitions
from gateway.process.limits import LimitsResolver

OK = regmap.STATUS_OK
SPLIT = regmap.STATUS_SPLIT
AUX = regmap.STATUS_AUX_SHIFT


def _inputs(kind: str, status: int, values: Mapping[str, float]) -> list[int]:
    code = KIND_BY_NAME[kind]
    words = [0] * regmap.input_count(code)
    for name, value in (("node_kind", code), ("sample_seq", 7), ("sensor_status", status)):
        row = regmap.find(regmap.DIAGNOSTICS, name)
        _put(words, row, value)
    for name, value in values.items():
        _put(words, regmap.find(regmap.MEASUREMENTS[code], name), value)
    return words


def _put(words: list[int], row: tuple[object, ...], value: float) -> None:
    address, fmt, scale = row[1], row[2], row[3]
    assert isinstance(address, int) and isinstance(fmt, int) and isinstance(scale, int)
    raw = regmap.encode(value, fmt, scale)
    if regmap.FORMAT_WORDS[fmt] == 1:
        words[address] = raw
    else:
        words[address], words[address + 1] = raw >> 16, raw & 0xFFFF


def _history(kind: str, status: int, values: Mapping[str, float]) -> list[int]:
    """One history record holding the same sample as _inputs."""
    inputs = _inputs(kind, status, values)
    return [0, 7, 0, 250, status, *inputs[regmap.MEASUREMENT_BASE :]]


DUST = {"pm25": 40.0, "pm10": 1200.0, "pm1": 20.0, "temperature": 21.5, "humidity": 60.0, "pressure": 101.3}
WIND = {"wind_speed": 11.5, "wind_dir": 270.0, "wind_gust_3s": 14.2}
VANE_FAULT = OK | SPLIT | (regmap.STATUS_ABSENT << AUX)


def test_a_vane_fault_flags_only_the_direction() -> None:
    sample = decode_inputs("wind", _inputs("wind", VANE_FAULT, WIND))
    assert sample.quality == {
        "wind_speed": Quality.NORMAL,
        "wind_dir": Quality.DEVICE_FAULT,
        "wind_gust_3s": Quality.NORMAL,
    }
    readings = {r.channel: r for r in to_readings("crane", "wind", sample, 0.0)}
    assert readings["wind_gust_3s"].value == pytest.approx(14.2)
    assert readings["wind_dir"].value is None


def test_a_vane_fault_leaves_the_crane_and_lifting_alarms_working() -> None:
    sample = decode_inputs("wind", _inputs("wind", VANE_FAULT, WIND))
    limits = LimitsResolver()
    alarms = AlarmSet(default_definitions(limits), limits)
    events = [e for r in to_readings("crane", "wind", sample, 1000.0) for e in alarms.feed(r)]
    raised = {e.alarm for e in events if e.state is EventState.RAISED}
    assert {"crane_wind", "lifting_wind"} <= raised


def test_live_and_history_samples_get_the_same_flags() -> None:
    dust = {"pm25": 40.0, "pm10": 1200.0, "pm1": 20.0, "temperature": 21.5, "humidity": 60.0, "pressure": 101.3}
    status = OK | SPLIT | regmap.STATUS_RANGE | (regmap.STATUS_CHECKSUM << AUX)
    live = decode_inputs("dust", _inputs("dust", status, dust))
    (record,) = decode_history("dust", _history("dust", status, dust))
    assert record is not None
    assert live.quality == record.sample.quality
    assert live.quality["pm10"] is Quality.OVER_RANGE
    assert live.quality["humidity"] is Quality.DEVICE_FAULT
    live_readings = to_readings("d", "dust", live, 5.0)
    history_readings = to_readings("d", "dust", record.sample, 5.0)
    assert live_readings == history_readings


def test_a_value_that_is_not_a_number_is_never_within_range() -> None:
    qualities = channel_qualities("dust", OK | regmap.STATUS_RANGE, {**DUST, "pm25": float("nan")})
    assert (qualities["pm25"], qualities["pm10"], qualities["pm1"]) == (Quality.OVER_RANGE,) * 2 + (Quality.NORMAL,)


def test_without_the_split_bit_every_bit_describes_every_channel() -> None:
    qualities = channel_qualities("wind", OK | regmap.STATUS_RANGE)
    assert set(qualities.values()) == {Quality.OVER_RANGE}
    assert set(channel_qualities("dust", regmap.STATUS_ABSENT).values()) == {Quality.DEVICE_FAULT}


def test_a_sample_without_ok_and_without_a_reason_is_a_fault_on_every_channel() -> None:
    assert set(channel_qualities("dust", SPLIT).values()) == {Quality.DEVICE_FAULT}


def test_a_main_sensor_fault_leaves_the_second_sensor_valid() -> None:
    # The PM sensor is warming up (OK cleared for it); the T/RH/P chip is fine.
    qualities = channel_qualities("dust", SPLIT | regmap.STATUS_WARMUP)
    assert qualities["pm10"] is Quality.DEVICE_FAULT
    assert qualities["temperature"] is Quality.NORMAL


def test_stuck_next_to_ok_is_a_fault() -> None:
    assert set(channel_qualities("noise", OK | regmap.STATUS_STUCK).values()) == {Quality.DEVICE_FAULT}


@given(st.sampled_from(sorted(KIND_BY_NAME)), st.integers(0, 0xFFFF))
def test_every_status_word_gives_one_flag_per_channel(kind: str, status: int) -> None:
    qualities = channel_qualities(kind, status)
    names = [row[0] for row in regmap.MEASUREMENTS[KIND_BY_NAME[kind]]]
    assert list(qualities) == names
    assert set(qualities.values()) <= {Quality.NORMAL, Quality.OVER_RANGE, Quality.DEVICE_FAULT}
    if not status & OK:
        # The main sensor's channels are never valid without OK.
        aux = regmap.STATUS_AUX_CHANNELS.get(KIND_BY_NAME[kind], ())
        assert all(qualities[n] is Quality.DEVICE_FAULT for n in names if n not in aux)


# --- Over range lands on the channels that are over range (issue 8) ---------------------------------------
# The node's out_of_range bit is per sensor; the kind profile's ranges say which of its channels is at or
# beyond its range. Ranges used here: gateway/profiles/kinds/*.toml (pm 0-1000 ug/m3, wind 0-60 m/s,
# wind_dir 0-360, pitch/roll +-90000 mdeg, noise 30-130 dB(A)).
RANGE = regmap.STATUS_RANGE


def _flags(kind: str, status: int, values: Mapping[str, float]) -> dict[str, Quality]:
    """The flags of the same sample decoded live and from history: they must agree."""
    live = decode_inputs(kind, _inputs(kind, status, values))
    (record,) = decode_history(kind, _history(kind, status, values))
    assert record is not None
    assert record.sample.quality == live.quality
    assert to_readings("n", kind, record.sample, 1.0) == to_readings("n", kind, live, 1.0)
    return live.quality


@pytest.mark.parametrize("status", [OK | RANGE, OK | SPLIT | RANGE], ids=["one-group", "split"])
def test_pm10_over_range_flags_pm10_only_not_pm25_or_pm1(status: int) -> None:
    flags = _flags("dust", status, DUST)
    assert flags == {
        "pm25": Quality.NORMAL,
        "pm10": Quality.OVER_RANGE,
        "pm1": Quality.NORMAL,
        "temperature": Quality.NORMAL,
        "humidity": Quality.NORMAL,
        "pressure": Quality.NORMAL,
    }


def test_a_value_clipped_to_its_range_limit_counts_as_over_range() -> None:
    # A sensor (or the simulator's over-range fault) that saturates reads exactly its limit.
    flags = _flags("dust", OK | RANGE, {**DUST, "pm10": 1000.0, "pm25": 999.0})
    assert (flags["pm10"], flags["pm25"], flags["pm1"]) == (Quality.OVER_RANGE, Quality.NORMAL, Quality.NORMAL)


@pytest.mark.parametrize("wind_dir", [270.0, 0.0], ids=["west", "north"])
def test_a_gust_over_range_flags_the_gust_only_not_the_mean_or_a_north_wind(wind_dir: float) -> None:
    # Direction 0 (north) and speed 0 sit on their ranges' lower ends: ordinary readings, not over range.
    flags = _flags("wind", OK | RANGE, {"wind_speed": 21.0, "wind_dir": wind_dir, "wind_gust_3s": 63.5})
    assert flags == {"wind_speed": Quality.NORMAL, "wind_dir": Quality.NORMAL, "wind_gust_3s": Quality.OVER_RANGE}


def test_a_mean_over_range_flags_the_mean_and_the_gust() -> None:
    flags = _flags("wind", OK | RANGE, {"wind_speed": 61.0, "wind_dir": 90.0, "wind_gust_3s": 64.0})
    assert flags == {"wind_speed": Quality.OVER_RANGE, "wind_dir": Quality.NORMAL, "wind_gust_3s": Quality.OVER_RANGE}


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        # PM above the sensor's range before the node's humidity correction brought it below 1000.
        ("dust", {**DUST, "pm10": 870.0}),
        ("wind", {"wind_speed": 12.0, "wind_dir": 90.0, "wind_gust_3s": 30.0}),
        # The tilt node's own limit (max_angle_deg, 30 degrees) or a shaken sensor (|g| != 1): pitch is in
        # the profile's +-90 degrees, so nothing says which channel; every channel of the sensor stays T.
        ("tilt", {"pitch": 45000.0, "roll": 1000.0, "slope_x": 1000.0, "slope_y": 17.5, "temperature": 20.0}),
        ("noise", {"laeq_1s": 95.0, "lamax_1s": 110.0, "lamin_1s": 80.0}),
    ],
)
def test_the_range_bit_with_no_channel_at_its_limit_flags_every_channel_of_that_sensor(
    kind: str, values: Mapping[str, float]
) -> None:
    flags = _flags(kind, OK | RANGE, values)
    assert set(flags.values()) == {Quality.OVER_RANGE}


def test_the_range_bit_of_the_second_sensor_with_no_channel_at_its_limit_flags_only_that_sensor() -> None:
    flags = _flags("dust", OK | SPLIT | (RANGE << AUX), {**DUST, "pm10": 80.0})
    assert {flags[c] for c in ("pm25", "pm10", "pm1")} == {Quality.NORMAL}
    assert {flags[c] for c in ("temperature", "humidity", "pressure")} == {Quality.OVER_RANGE}


def test_the_second_sensors_range_bit_lands_on_its_channel_beyond_range() -> None:
    flags = _flags("dust", OK | SPLIT | (RANGE << AUX), {**DUST, "pm10": 80.0, "temperature": -42.0})
    assert (flags["temperature"], flags["humidity"], flags["pressure"]) == (
        Quality.OVER_RANGE, Quality.NORMAL, Quality.NORMAL)
    assert flags["pm10"] is Quality.NORMAL


def test_channels_without_a_range_keep_the_sensors_flag() -> None:
    # Slopes and the chip temperature have no range to judge them by: they follow the over-range pitch.
    values = {"pitch": -91000.0, "roll": 2000.0, "slope_x": -65000.0, "slope_y": 35.0, "temperature": 20.0}
    flags = _flags("tilt", OK | RANGE, values)
    assert flags["roll"] is Quality.NORMAL
    assert {flags[c] for c in ("pitch", "slope_x", "slope_y", "temperature")} == {Quality.OVER_RANGE}


def test_a_fault_still_wins_over_range() -> None:
    flags = _flags("dust", OK | RANGE | regmap.STATUS_STUCK, DUST)
    assert set(flags.values()) == {Quality.DEVICE_FAULT}


def test_without_values_the_range_bit_flags_the_whole_sensor() -> None:
    # Nothing to judge by: the sensor's bit stands for every channel (today's behaviour, never a silent N).
    assert set(channel_qualities("dust", OK | RANGE).values()) == {Quality.OVER_RANGE}


_KIND_VALUES = st.sampled_from(sorted(KIND_BY_NAME)).flatmap(
    lambda kind: st.tuples(
        st.just(kind),
        st.fixed_dictionaries({
            str(row[0]): st.floats(-100000.0, 100000.0, allow_nan=False)
            for row in regmap.MEASUREMENTS[KIND_BY_NAME[kind]]
        }),
        st.integers(0, 0xFFFF),
    )
)


@given(_KIND_VALUES)
def test_nothing_beyond_its_range_passes_as_normal_when_its_sensor_says_out_of_range(
    case: tuple[str, dict[str, float], int],
) -> None:
    from gateway.profiles.kinds import kind_profile

    kind, values, status = case
    status |= OK | RANGE
    qualities = channel_qualities(kind, status, values)
    plain = channel_qualities(kind, status)  # the sensor's own flag for each of its channels
    ranges = kind_profile(kind).ranges
    for name, value in values.items():
        low, high = ranges.get(name, (value, value))
        if plain[name] is Quality.OVER_RANGE and (value >= high or value < low):
            assert qualities[name] is Quality.OVER_RANGE, (name, value)
    # Values only ever lift a T to N, never anything else.
    for name in values:
        moved = (plain[name], qualities[name]) == (Quality.OVER_RANGE, Quality.NORMAL)
        assert qualities[name] is plain[name] or moved
