"""The firmware's maths in single precision, as the ESP32 computes it (CPython only).

The ESP32 port of MicroPython rounds every float to binary32; the tests'
interpreters use binary64. Each test runs the firmware's own code with its
floats replaced by tests.support.float32.F32 (state, coefficients, inputs,
and for module functions the module's `math` and `float`), so every step is
rounded as on the board, and compares with the same code in double
precision over realistic run lengths.
"""

from __future__ import annotations

import math
import random
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import aweight, tilt, wind
from tests.support.float32 import F32, Math32, round32

FILTER_FIELDS = ("gain", "a11", "a12", "a21", "a22", "a31", "a32")
STATE_FIELDS = ("x1", "x2", "u1", "u2", "v1", "v2", "y1", "y2")


def single_meter(fs: int) -> aweight.SoundLevelMeter:
    meter = aweight.SoundLevelMeter(fs, 0.0)
    flt = meter.filter
    for name in FILTER_FIELDS + STATE_FIELDS:
        setattr(flt, name, F32(getattr(flt, name)))
    meter._sum = F32(0.0)
    meter.aggregator._energy = F32(0.0)
    return meter


def block_levels(meter: aweight.SoundLevelMeter, samples: list[float], single: bool) -> list[float]:
    levels = []
    step = meter.block_len
    for start in range(0, len(samples) - step + 1, step):
        buf = [F32(x) if single else x for x in samples[start : start + step]]
        meter.feed(buf, step)
        levels.append(float(meter.aggregator.last))
    return levels


@pytest.mark.parametrize(
    ("fs", "freq", "amplitude"),
    [(16000, 1000.0, 1.0), (16000, 100.0, 1e-3), (48000, 31.5, 1.0), (48000, 1000.0, 1e-4)],
)
def test_a_weighted_levels_hold_in_single_precision(fs: int, freq: float, amplitude: float) -> None:
    # A MEMS microphone's DC offset (1 % of full scale) rides on the tone: the filter must remove it
    # without the single-precision rounding of its near-unity poles showing in the level.
    samples = [0.01 + amplitude * math.sin(2 * math.pi * freq * i / fs) for i in range(fs // 2)]
    double = block_levels(aweight.SoundLevelMeter(fs, 0.0), samples, single=False)
    single = block_levels(single_meter(fs), samples, single=True)
    assert len(double) == 4
    # The first block holds the filter's start-up; from the second on the levels must agree.
    for d, s in zip(double[1:], single[1:], strict=True):
        assert abs(d - s) <= 0.02, (d, s)


def reference_leq(levels: list[float]) -> float:
    return 10.0 * math.log10(sum(10.0 ** (level / 10.0) for level in levels) / len(levels))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_hour_of_fast_levels_keeps_every_laeq_within_a_hundredth_of_a_db(seed: int) -> None:
    rng = random.Random(seed)
    agg = aweight.LeqAggregator(8)
    agg._energy = F32(0.0)
    hour = 3600 * 8  # 125 ms levels
    period: list[float] = []
    worst = 0.0
    for _ in range(hour):
        level = round32(rng.uniform(25.0, 140.0))
        period.append(level)
        if agg.add_level(F32(level)):
            worst = max(worst, abs(float(agg.laeq) - reference_leq(period)))
            period = []
    assert agg.periods == 3600
    assert worst <= 0.01


def single_module(monkeypatch: pytest.MonkeyPatch, module: ModuleType, constants: tuple[str, ...]) -> None:
    monkeypatch.setattr(module, "math", Math32)
    monkeypatch.setattr(module, "float", F32, raising=False)
    for name in constants:
        monkeypatch.setattr(module, name, F32(getattr(module, name)))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-600000, 600000), st.integers(-600000, 600000), st.integers(150000, 600000), st.integers(-90000, 90000)
)
def test_tilt_angles_and_slopes_in_single_precision(ax: int, ay: int, az: int, baseline: int) -> None:
    # ADXL355 counts (20 bits, 256000 per g at +-2 g); the alarm is at 4 per mille.
    double = tilt.Tilt(baseline, -baseline)
    double.update(ax, ay, az)
    with pytest.MonkeyPatch.context() as mp:
        single_module(mp, tilt, ("MDEG_PER_RAD",))
        single = tilt.Tilt(baseline, -baseline)
        single.update(ax, ay, az)
    assert abs(single.pitch - double.pitch) <= 1  # mdeg: the register's resolution
    assert abs(single.roll - double.roll) <= 1
    if abs(double.pitch) <= 30000:  # the measurable range; beyond it the node flags out of range
        assert abs(float(single.slope_x) - double.slope_x) <= 0.02 + 1e-5 * abs(double.slope_x)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, wind.COUNT_MASK), st.integers(1, 60 * 60 * 1000), st.integers(1, 65535), st.integers(0, 5000))
def test_wind_speed_from_pulses_in_single_precision(pulses: int, elapsed_ms: int, factor: int, offset: int) -> None:
    # Pulse counts up to the counter's wrap, over up to an hour (a sample interval is at most 60 s).
    k = factor / 10000
    c = offset / 1000
    double = wind.speed(wind.frequency(pulses, elapsed_ms), k, c)
    single = wind.speed(wind.frequency(F32(pulses), F32(elapsed_ms)), F32(k), F32(c))
    assert abs(float(single) - double) <= 1e-6 * max(1.0, abs(double))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 3599), min_size=1, max_size=240))
def test_vane_vector_mean_in_single_precision(tenths: list[int]) -> None:
    # A 60 s interval of 250 ms steps: the unit-vector sums stay within a tenth of a degree.
    rad = math.pi / 180.0
    s64 = sum(math.sin(t / 10 * rad) for t in tenths)
    c64 = sum(math.cos(t / 10 * rad) for t in tenths)
    s32 = F32(0.0)
    c32 = F32(0.0)
    r32 = F32(rad)
    for t in tenths:
        s32 += Math32.sin(F32(t / 10) * r32)
        c32 += Math32.cos(F32(t / 10) * r32)
    if math.hypot(s64, c64) < 1e-3 * len(tenths):
        return  # no prevailing direction: the mean is undefined in any precision
    d64 = math.degrees(math.atan2(s64, c64))
    d32 = float(Math32.atan2(s32, c32)) / rad
    diff = (d32 - d64 + 180.0) % 360.0 - 180.0
    assert abs(diff) <= 0.1
