from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import Quality
from gateway.process.aggregate import Aggregate
from gateway.process.limits import LimitsResolver
from gateway.process.noise import NoiseAggregator, energy, exceeded_level, leq, level_from_energy
from tests.gateway.process.support import local, reading

levels = st.floats(min_value=20.0, max_value=140.0, allow_nan=False)


def by_channel(aggregates: list[Aggregate]) -> dict[str, Aggregate]:
    return {a.channel: a for a in aggregates}


def test_leq_vectors_by_hand() -> None:
    # 10*log10((10^6 + 10^7) / 2) = 10*log10(5.5e6) = 67.4036...
    assert leq([60.0, 70.0]) == pytest.approx(67.4036, abs=5e-5)
    assert leq([60.0, 60.0]) == pytest.approx(60.0)
    # Doubling the energy adds 10*log10(2) = 3.0103 dB; the arithmetic mean would say 65.
    assert level_from_energy(energy(70.0) + energy(70.0), 1) == pytest.approx(73.0103, abs=5e-5)
    assert leq([50.0, 80.0]) == pytest.approx(10 * math.log10((1e5 + 1e8) / 2))
    with pytest.raises(ValueError):
        leq([])


@given(levels, st.integers(min_value=1, max_value=500))
def test_leq_of_equal_levels_is_that_level(level: float, n: int) -> None:
    assert leq([level] * n) == pytest.approx(level, abs=1e-9)


@given(st.lists(levels, min_size=1, max_size=200))
def test_leq_lies_between_min_and_max_and_above_the_arithmetic_mean(values: list[float]) -> None:
    result = leq(values)
    assert min(values) - 1e-9 <= result <= max(values) + 1e-9
    # Energy averaging weights loud samples: never below the arithmetic mean of the dB values.
    assert result >= math.fsum(values) / len(values) - 1e-9


def test_exceeded_levels_by_hand() -> None:
    hist = Counter({float(v): 1 for v in range(1, 11)})  # 1..10
    assert exceeded_level(hist, 10.0) == 9.0  # only 10 lies above: 10 %
    assert exceeded_level(hist, 50.0) == 5.0
    assert exceeded_level(hist, 90.0) == 1.0
    assert exceeded_level(Counter({55.0: 1}), 90.0) == 55.0


@given(st.lists(levels, min_size=1, max_size=300), st.floats(min_value=0.0, max_value=100.0))
def test_at_most_n_percent_of_samples_exceed_ln(values: list[float], percent: float) -> None:
    ln = exceeded_level(Counter(values), percent)
    assert ln in values
    assert sum(v > ln for v in values) <= percent / 100.0 * len(values) + 1e-9


@settings(max_examples=30, deadline=None)
@given(st.lists(levels, min_size=360, max_size=360), st.sets(st.integers(0, 359), max_size=200))
def test_hour_leq_from_minute_energies_equals_leq_over_all_samples(values: list[float], gaps: set[int]) -> None:
    # One sample every 10 s; some never arrive.
    limits = LimitsResolver.from_config({"sampling": {"interval_s": 10}})
    noise = NoiseAggregator(limits, windows=("1min", "1h"))
    kept = []
    out: list[Aggregate] = []
    for i, value in enumerate(values):
        if i not in gaps:
            kept.append(value)
            out += noise.feed(reading("laeq_1s", value, local(14, second=10 * i), kind="noise", unit="dB(A)"))
    out += noise.advance(local(15))
    minutes = [a for a in out if a.window == "1min" and a.statistic == "leq"]
    hour = by_channel(out)["noise_1h_leq"]
    assert len(minutes) == len({10 * i // 60 for i in range(360) if i not in gaps})
    # Rebuild the hour from each minute's energy (count * 10^(Leq/10)), never from the minute dBs.
    total = math.fsum(m.count * energy(m.value) for m in minutes if m.value is not None)
    assert level_from_energy(total, sum(m.count for m in minutes)) == pytest.approx(leq(kept), abs=1e-9)
    assert hour.value == pytest.approx(leq(kept), abs=1e-9)
    assert hour.count == len(kept) and hour.expected == 360
    assert hour.valid == (len(kept) >= 270)
    stats = by_channel(out)
    assert stats["noise_1h_lmin"].value == min(kept) and stats["noise_1h_lmax"].value == max(kept)
    l10, l50, l90 = (stats[f"noise_1h_l{n}"].value for n in (10, 50, 90))
    assert l10 is not None and l50 is not None and l90 is not None
    assert min(kept) <= l90 <= l50 <= l10 <= max(kept)


def test_lmax_and_lmin_come_from_the_fast_channels() -> None:
    noise = NoiseAggregator(LimitsResolver(), windows=("1min",))
    for s in range(60):
        t = local(10, second=s)
        noise.feed(reading("laeq_1s", 60.0, t, kind="noise"))
        noise.feed(reading("lamax_1s", 64.0 if s != 30 else 91.5, t, kind="noise"))
        noise.feed(reading("lamin_1s", 57.0 if s != 10 else 52.5, t, kind="noise"))
    stats = by_channel(noise.advance(local(10, 1)))
    assert stats["noise_1min_leq"].value == pytest.approx(60.0)
    assert stats["noise_1min_lmax"].value == 91.5
    assert stats["noise_1min_lmin"].value == 52.5
    assert stats["noise_1min_count"].value == 60.0  # Fast max/min samples are not counted twice


def test_day_and_night_windows_split_at_22_00_local_time() -> None:
    noise = NoiseAggregator(LimitsResolver(), windows=("20min", "day", "night"))
    out: list[Aggregate] = []
    # 21:00-23:00, one sample a second: 65 dB by day, 50 dB by night.
    for s in range(2 * 3600):
        t = local(21, second=s)
        out += noise.feed(reading("laeq_1s", 65.0 if t < local(22) else 50.0, t, kind="noise"))
    out += noise.advance(local(6, day=1))
    day = by_channel(out)["noise_day_leq"]
    night = by_channel(out)["noise_night_leq"]
    assert (day.start, day.end) == (local(6), local(22)) and day.value == pytest.approx(65.0)
    assert (night.start, night.end) == (local(22), local(6, day=1)) and night.value == pytest.approx(50.0)
    # An hour of a 16-h day is far below 75 %: marked, and flagged B (the samples never came).
    assert not day.valid and day.quality is Quality.COMMUNICATION_FAILURE
    twenties = [a for a in out if a.window == "20min" and a.statistic == "leq"]
    assert len(twenties) == 6 and all(a.valid for a in twenties)
    assert [a.value for a in twenties] == [pytest.approx(65.0)] * 3 + [pytest.approx(50.0)] * 3


def test_invalid_samples_are_left_out_and_flag_the_window() -> None:
    noise = NoiseAggregator(LimitsResolver(), windows=("1min",))
    for s in range(60):
        quality = Quality.DEVICE_FAULT if s < 20 else Quality.NORMAL
        noise.feed(reading("laeq_1s", 120.0 if s < 20 else 50.0, local(3, second=s), quality=quality))
    leq_1min = by_channel(noise.advance(local(3, 1)))["noise_1min_leq"]
    assert leq_1min.value == pytest.approx(50.0)
    assert (leq_1min.count, leq_1min.valid, leq_1min.quality) == (40, False, Quality.DEVICE_FAULT)


@pytest.mark.parametrize("path", ["feed", "feed_sample"])
@pytest.mark.parametrize("garbage", [5000.0, 3100.0, -3300.0, 6553.5])
def test_a_level_no_sound_can_have_is_a_device_fault_not_an_error(path: str, garbage: float) -> None:
    """A garbled register (up to 6553.5 dB on the wire) flagged T: 10^(L/10) of it overflows a float (or, far
    below zero, is 0), which stopped the window with an OverflowError. It counts as D, as a value that is not
    finite does; the window's other samples make its statistics."""
    noise = NoiseAggregator(LimitsResolver(), windows=("1min",))
    for s in range(60):
        t = local(3, second=s)
        level = garbage if s == 7 else 50.0
        sample = [reading("laeq_1s", level, t, kind="noise", sequence=s,
                          quality=Quality.OVER_RANGE if s == 7 else Quality.NORMAL),
                  reading("lamax_1s", 53.0, t, kind="noise", sequence=s)]
        if path == "feed":
            for r in sample:
                noise.feed(r)
        else:
            noise.feed_sample(sample)
    stats = by_channel(noise.advance(local(3, 1)))
    assert stats["noise_1min_leq"].value == pytest.approx(50.0)
    assert stats["noise_1min_lmin"].value == 50.0 and stats["noise_1min_lmax"].value == 53.0
    leq_1min = stats["noise_1min_leq"]
    assert (leq_1min.count, leq_1min.valid, leq_1min.quality) == (59, True, Quality.NORMAL)
