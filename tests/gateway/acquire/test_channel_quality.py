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
