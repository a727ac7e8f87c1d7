from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware import humidity as firmware_humidity
from gateway.model import Quality, Reading
from gateway.process.limits import LimitsResolver
from gateway.process.processors import (
    HampelFilter,
    HumidityFlag,
    RangeCheck,
    StuckCheck,
    UnitConversion,
    UnitError,
    chain,
    humidity_growth_factor,
)
from gateway.process.registry import Processor
from tests.gateway.process.support import local, reading

LIMITS = LimitsResolver()


def test_range_check_flags_over_range_and_keeps_the_value() -> None:
    check = RangeCheck(LIMITS)
    (inside,) = check.process(reading("pm10", 1000.0, 0.0))
    assert inside.quality is Quality.NORMAL
    (outside,) = check.process(reading("pm10", 1000.5, 0.0))
    assert outside.quality is Quality.OVER_RANGE and outside.value == 1000.5
    (negative,) = check.process(reading("wind_speed", -0.1, 0.0))
    assert negative.quality is Quality.OVER_RANGE
    (nan,) = check.process(reading("no_range_known", math.nan, 0.0))
    assert nan.quality is Quality.OVER_RANGE
    # A flag set upstream stays; a missing value stays missing.
    (failed,) = check.process(reading("pm10", 5000.0, 0.0, quality=Quality.COMMUNICATION_FAILURE))
    assert failed.quality is Quality.COMMUNICATION_FAILURE
    (missing,) = check.process(reading("pm10", None, 0.0))
    assert missing.value is None and missing.quality is Quality.NORMAL
    only_noise = RangeCheck(LIMITS, channels=["laeq_1s"])
    assert only_noise.process(reading("pm10", 5000.0, 0.0))[0].quality is Quality.NORMAL


def test_range_override_per_node() -> None:
    limits = LimitsResolver(nodes={"small": {"quality": {"ranges": {"pm10": [0, 500]}}}})
    check = RangeCheck(limits)
    assert check.process(reading("pm10", 600.0, 0.0, node="small"))[0].quality is Quality.OVER_RANGE
    assert check.process(reading("pm10", 600.0, 0.0, node="other"))[0].quality is Quality.NORMAL


def _hampel_run(values: list[float]) -> list[Quality]:
    hampel = HampelFilter(LIMITS)
    return [hampel.process(reading("pm10", v, float(i)))[0].quality for i, v in enumerate(values)]


def test_hampel_flags_a_lone_spike_and_keeps_its_value() -> None:
    values = [40.0, 42.0, 41.0, 43.0, 40.0, 42.0, 41.0, 400.0, 42.0, 41.0]
    flags = _hampel_run(values)
    assert flags[7] is Quality.DEVICE_FAULT
    assert [f for i, f in enumerate(flags) if i != 7] == [Quality.NORMAL] * 9
    hampel = HampelFilter(LIMITS)
    for i, v in enumerate(values[:7]):
        hampel.process(reading("pm10", v, float(i)))
    (spike,) = hampel.process(reading("pm10", 400.0, 7.0))
    assert spike.value == 400.0


def test_hampel_accepts_a_real_step_once_it_fills_half_the_window() -> None:
    flags = _hampel_run([40.0] * 7 + [300.0] * 6)
    assert flags[7:] == [Quality.DEVICE_FAULT] * 4 + [Quality.NORMAL] * 2


def test_hampel_floor_keeps_quantised_steady_data_normal() -> None:
    # MAD is 0 here: without the floor, 41 would be a "spike".
    assert set(_hampel_run([40.0] * 7 + [41.0, 40.0, 60.0])) == {Quality.NORMAL}


def test_hampel_leaves_channels_without_a_floor_alone() -> None:
    hampel = HampelFilter(LIMITS)
    gusts = [3.0] * 7 + [25.0]
    out = [hampel.process(reading("wind_speed", v, float(i)))[0] for i, v in enumerate(gusts)]
    assert out[-1].quality is Quality.NORMAL


def test_stuck_sensor_is_flagged_after_its_duration_until_the_value_changes() -> None:
    stuck = StuckCheck(LIMITS)  # pm10: 3600 s
    flags = [stuck.process(reading("pm10", 12.0, float(t)))[0].quality for t in range(0, 3601, 600)]
    assert flags == [Quality.NORMAL] * 6 + [Quality.DEVICE_FAULT]
    # A missing sample neither fills in nor ends the run.
    (gap,) = stuck.process(reading("pm10", None, 3700.0))
    assert gap.value is None and gap.quality is Quality.NORMAL
    assert stuck.process(reading("pm10", 12.0, 3800.0))[0].quality is Quality.DEVICE_FAULT
    assert stuck.process(reading("pm10", 13.0, 3900.0))[0].quality is Quality.NORMAL
    # Wind speed may stay at zero all night: not checked by default.
    calm = StuckCheck(LIMITS)
    assert {calm.process(reading("wind_speed", 0.0, float(t)))[0].quality for t in range(0, 86400, 3600)} == {
        Quality.NORMAL
    }


def test_a_sensor_stuck_above_its_range_is_flagged_too() -> None:
    # Over range counts in means and alarms, so a reading frozen at saturation must not drive them for ever.
    stuck = StuckCheck(LIMITS)  # pm10: 3600 s
    flags = [
        stuck.process(reading("pm10", 1200.0, float(t), quality=Quality.OVER_RANGE))[0].quality
        for t in range(0, 3601, 600)
    ]
    assert flags == [Quality.OVER_RANGE] * 6 + [Quality.DEVICE_FAULT]


def test_humidity_growth_factor_by_hand() -> None:
    # C = 1 + (k/1.65) / (1/aw - 1): at 90 % RH, 1/aw - 1 = 1/9.
    assert humidity_growth_factor(90.0, 0.3) == pytest.approx(1 + 0.3 / 1.65 * 9)
    assert humidity_growth_factor(0.0, 0.3) == 1.0
    assert humidity_growth_factor(100.0, 0.3) == humidity_growth_factor(95.0, 0.3)  # capped, finite


def test_the_gateway_and_the_node_correct_humidity_with_one_implementation() -> None:
    # PM10 200 ug/m3 at 98 % RH: the node's firmware/humidity.py gives 44.9; so must the gateway.
    node_value = firmware_humidity.correct(200.0, 98.0, 0.3)
    assert node_value == pytest.approx(44.9, abs=0.05)
    limits = LimitsResolver.from_config({"humidity": {"correction": True, "kappa": 0.3}})
    flag = HumidityFlag(limits)
    flag.process(reading("humidity", 98.0, 0.0))
    _raw, dry = flag.process(reading("pm10", 200.0, 1.0, unit="ug/m3"))
    assert dry.channel == "pm10_dry" and dry.value == pytest.approx(node_value)


def test_humidity_flag_follows_each_humidity_reading() -> None:
    humid = HumidityFlag(LIMITS)
    raw, flag = humid.process(reading("humidity", 80.0, 10.0, sequence=7))
    assert raw.channel == "humidity"
    assert (flag.channel, flag.value, flag.quality, flag.sequence) == ("pm_humid", 1.0, Quality.NORMAL, 7)
    _, dry = humid.process(reading("humidity", 75.0, 11.0))
    assert dry.value == 0.0  # "above" the threshold, not at it
    _, unknown = humid.process(reading("humidity", None, 12.0, quality=Quality.DEVICE_FAULT))
    assert unknown.value is None and unknown.quality is Quality.DEVICE_FAULT
    # Without correction PM passes alone and unchanged.
    pm = reading("pm10", 100.0, 12.5)
    assert humid.process(pm) == [pm]


def test_humidity_correction_adds_a_dry_reading_and_keeps_the_raw_one() -> None:
    limits = LimitsResolver.from_config({"humidity": {"correction": True}})
    humid = HumidityFlag(limits)
    humid.process(reading("humidity", 90.0, 100.0))
    raw, dry = humid.process(reading("pm10", 100.0, 101.0, unit="ug/m3"))
    assert raw.value == 100.0 and raw.channel == "pm10"
    assert dry.channel == "pm10_dry" and dry.unit == "ug/m3"
    assert dry.value == pytest.approx(100.0 / (1 + 0.3 / 1.65 * 9))
    # Humidity older than max_age_s (120 s): no corrected value, flag B.
    _, stale = humid.process(reading("pm10", 100.0, 300.0))
    assert stale.value is None and stale.quality is Quality.COMMUNICATION_FAILURE


def test_unit_conversion() -> None:
    units = UnitConversion(LIMITS, to={"pm10": "mg/m3", "pitch": "deg"})
    (pm,) = units.process(reading("pm10", 150.0, 0.0, unit="ug/m3"))
    assert pm.value == pytest.approx(0.15) and pm.unit == "mg/m3"
    (gap,) = units.process(reading("pm10", None, 0.0, unit="ug/m3", quality=Quality.COMMUNICATION_FAILURE))
    assert (gap.value, gap.unit, gap.quality) == (None, "mg/m3", Quality.COMMUNICATION_FAILURE)
    (pitch,) = units.process(reading("pitch", 2500.0, 0.0, unit="mdeg"))
    assert (pitch.value, pitch.unit) == (2.5, "deg")
    with pytest.raises(UnitError):
        units.process(reading("pm10", 1.0, 0.0, unit="ppm"))
    with pytest.raises(UnitError):
        UnitConversion(LIMITS, to={"pm10": "furlongs"})


def test_chain_feeds_every_output_to_the_next_processor() -> None:
    limits = LimitsResolver.from_config({"humidity": {"correction": True}})
    stages: list[Processor] = [
        RangeCheck(limits),
        HumidityFlag(limits),
        UnitConversion(limits, to={"pm10_dry": "mg/m3"}),
    ]
    chain(stages, reading("humidity", 90.0, 0.0))
    out = chain(stages, reading("pm10", 2000.0, 1.0, unit="ug/m3"))
    assert [(r.channel, r.quality) for r in out] == [("pm10", Quality.OVER_RANGE), ("pm10_dry", Quality.OVER_RANGE)]
    assert out[1].unit == "mg/m3"


values = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@given(st.lists(st.tuples(st.sampled_from(["pm10", "pm25", "laeq_1s", "humidity"]), values), max_size=40))
def test_checks_never_invent_or_change_a_value(items: list[tuple[str, float | None]]) -> None:
    stages: list[Processor] = [RangeCheck(LIMITS), HampelFilter(LIMITS), StuckCheck(LIMITS), HumidityFlag(LIMITS)]
    for i, (channel, value) in enumerate(items):
        source = reading(channel, value, local(8, second=i))
        out = chain(stages, source)
        first: Reading = out[0]
        assert first.channel == channel
        if value is None:
            assert first.value is None
        else:
            assert first.value == value or (math.isnan(value) and first.value is not None and math.isnan(first.value))
        assert first.quality is Quality.NORMAL or source.value is not None
