"""The simulator's physics: determinism, units, and physical plausibility of each model and scenario."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Mapping
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import regmap
from simulator.physics import (
    Change,
    Conditions,
    DustParams,
    EpochSource,
    NodeModel,
    NodeParams,
    NodeSetup,
    NoiseModel,
    NoiseParams,
    SitePhysics,
    TiltModel,
    TiltParams,
    Timeline,
    Weather,
    WindParams,
    constant,
    energy_sum,
    leq,
    millidegrees,
    optical_growth_factor,
    slope_permille,
    stream,
)
from simulator.scenario import Scenario, load_builtin

KINDS = ("dust", "noise", "tilt", "wind")
KIND_CODES = {name: code for code, name in regmap.KIND_NAMES.items()}
BEAUFORT_8 = 17.2  # m/s, lower bound (domain.md section 3)
NIGHT_LIMIT = 55.0  # dB(A), GB 12523-2011
PREWARNING = 3.2  # per-mille
ALARM = 4.0  # per-mille

Sample = dict[str, float]


def run(
    model: NodeModel,
    duration: float,
    dt: float,
    actuators: Callable[[float], Mapping[str, bool]] | None = None,
    start: float = 0.0,
) -> list[tuple[float, Sample]]:
    """Step a model every dt seconds from start + dt to start + duration."""
    out = []
    for k in range(1, round(duration / dt) + 1):
        t = start + k * dt
        out.append((t, model.step(t, dt, actuators(t) if actuators else None)))
    return out


def site(kind: str, seed: int, conditions: Conditions | None = None, params: NodeParams | None = None) -> SitePhysics:
    setup = NodeSetup("bus0", 1, kind, params)
    return SitePhysics(seed, constant(conditions or Conditions()), [setup], start_local_seconds=9 * 3600.0)


def window(series: list[tuple[float, Sample]], start: float, end: float, name: str) -> list[float]:
    return [values[name] for t, values in series if start < t <= end]


def circular_difference(a: float, b: float) -> float:
    """b - a in degrees, in (-180, 180]."""
    return (b - a + 180.0) % 360.0 - 180.0


# ---------------------------------------------------------------------------
# Every model: register names, units, determinism
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_values_are_the_register_maps_measurements_and_fit_their_registers(kind: str) -> None:
    busy = Conditions(earthworks=1.0, trucks=20, excavators=2, piling=1, concrete_pumps=1, load=1.0, wind_mean=6.0)
    model = site(kind, 5, busy).model("bus0", 1)
    rows = regmap.MEASUREMENTS[KIND_CODES[kind]]
    for _, values in run(model, 1800.0, 30.0):
        assert set(values) == {row[0] for row in rows}
        for name, _, fmt, scale, *_ in rows:
            value = values[name]
            assert math.isfinite(value), name
            raw = regmap.encode(value, fmt, scale)
            # encode() clamps silently: a value that survives the round trip fits its register.
            assert regmap.decode_raw(raw, fmt) / scale == pytest.approx(value, abs=0.5 / scale + 1e-9), name


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_gives_the_same_series_and_another_seed_does_not(kind: str) -> None:
    busy = Conditions(earthworks=0.8, trucks=12, excavators=2, concrete_pumps=1, load=0.5, wind_mean=5.0)

    def series(seed: int) -> list[tuple[float, Sample]]:
        return run(site(kind, seed, busy).model("bus0", 1), 1800.0, 7.0)

    first = series(11)
    assert first == series(11)
    assert first != series(12)


@pytest.mark.parametrize("kind", KINDS)
def test_a_node_added_to_the_site_does_not_change_the_others(kind: str) -> None:
    conditions = constant(Conditions(earthworks=0.5, trucks=8, excavators=1, load=0.4))
    alone = SitePhysics(3, conditions, [NodeSetup("a", 1, kind)])
    crowded = SitePhysics(
        3, conditions, [NodeSetup("b", 9, "wind"), NodeSetup("a", 1, kind), NodeSetup("a", 2, "dust")]
    )
    assert run(alone.model("a", 1), 900.0, 10.0) == run(crowded.model("a", 1), 900.0, 10.0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(min_value=-600.0, max_value=7200.0), min_size=1, max_size=30))
def test_weather_at_a_time_does_not_depend_on_what_was_asked_before(times: list[float]) -> None:
    conditions = constant(Conditions(wind_mean=4.0))
    probe = times[-1]
    busy = Weather(8, conditions, 6 * 3600.0)
    for t in times:
        busy.at(t)
    assert busy.at(probe) == Weather(8, conditions, 6 * 3600.0).at(probe)


# ---------------------------------------------------------------------------
# Weather
# ---------------------------------------------------------------------------


def test_diurnal_cycle_warm_afternoon_humid_dawn_windier_afternoon() -> None:
    weather = Weather(2, constant(Conditions(temperature_mean=24.0, temperature_range=8.0)), 0.0)
    dawn = [weather.at(h * 3600.0 + 6 * 3600.0 + d * 86400.0) for d in range(3) for h in (-0.5, 0, 0.5)]
    afternoon = [weather.at(14.5 * 3600.0 + d * 86400.0) for d in range(3)]
    assert statistics.mean(s.temperature for s in afternoon) - statistics.mean(s.temperature for s in dawn) > 5.0
    assert statistics.mean(s.humidity for s in dawn) > statistics.mean(s.humidity for s in afternoon) + 10.0
    assert statistics.mean(s.wind_mean for s in afternoon) > statistics.mean(s.wind_mean for s in dawn)
    for state in dawn + afternoon:
        assert 0.0 <= state.humidity <= 100.0
        assert 0.0 <= state.wind_dir < 360.0


def test_rain_makes_it_humid_and_cuts_the_sunshine() -> None:
    dry = Weather(4, constant(Conditions()), 0.0).at(13 * 3600.0)
    wet = Weather(4, constant(Conditions(rain=10.0)), 0.0).at(13 * 3600.0)
    assert wet.humidity > 90.0 > dry.humidity
    assert wet.sun < dry.sun


# ---------------------------------------------------------------------------
# Wind
# ---------------------------------------------------------------------------


def wind_series(
    seed: int, conditions: Conditions, height: float, duration: float, dt: float
) -> list[tuple[float, Sample]]:
    model = site("wind", seed, conditions, WindParams(height=height)).model("bus0", 1)
    return run(model, duration, dt)


def test_gust_is_never_below_the_mean_over_whole_3_s_windows() -> None:
    # With dt a multiple of 3 s, the 3 s means tile the interval: the largest cannot be below their mean.
    for _, values in wind_series(21, Conditions(wind_mean=6.0), 10.0, 3600.0, 6.0):
        assert values["wind_gust_3s"] >= values["wind_speed"] - 1e-9


def test_gust_factor_is_in_the_range_observed_over_land() -> None:
    # 3 s gust over 10 min mean: roughly 1.3-1.7 over land (WMO/TD-No. 1555; Durst 1960).
    for mean in (3.0, 12.0, 25.0):
        series = wind_series(22, Conditions(wind_mean=mean, wind_diurnal=0.0), 10.0, 6 * 3600.0, 600.0)
        factors = [v["wind_gust_3s"] / v["wind_speed"] for _, v in series]
        assert 1.3 <= statistics.mean(factors) <= 1.75, mean
        assert min(factors) > 1.05


def test_mean_wind_follows_the_conditions() -> None:
    for mean in (2.0, 8.0, 20.0):
        series = wind_series(23, Conditions(wind_mean=mean, wind_diurnal=0.0), 10.0, 4 * 3600.0, 600.0)
        assert statistics.mean(v["wind_speed"] for _, v in series) == pytest.approx(mean, rel=0.15)


def test_crane_top_sees_the_log_profile_and_relatively_less_turbulence() -> None:
    conditions = constant(Conditions(wind_mean=8.0, wind_diurnal=0.0))
    physics = SitePhysics(
        24,
        conditions,
        [NodeSetup("t", 1, "wind", WindParams(height=10.0)), NodeSetup("t", 2, "wind", WindParams(height=45.0))],
    )
    mast = run(physics.model("t", 1), 3 * 3600.0, 600.0)
    crane = run(physics.model("t", 2), 3 * 3600.0, 600.0)
    ratio = statistics.mean(v["wind_speed"] for _, v in crane) / statistics.mean(v["wind_speed"] for _, v in mast)
    assert ratio == pytest.approx(math.log(45.0 / 0.3) / math.log(10.0 / 0.3), rel=0.05)
    gust_mast = statistics.mean(v["wind_gust_3s"] / v["wind_speed"] for _, v in mast)
    gust_crane = statistics.mean(v["wind_gust_3s"] / v["wind_speed"] for _, v in crane)
    assert gust_crane < gust_mast


def test_wind_direction_is_averaged_on_the_circle() -> None:
    # A northerly wind meanders either side of 0/360: an arithmetic mean would report a southerly.
    for _, values in wind_series(25, Conditions(wind_mean=4.0, wind_dir=358.0), 10.0, 3 * 3600.0, 60.0):
        assert 0.0 <= values["wind_dir"] < 360.0
        assert abs(circular_difference(358.0, values["wind_dir"])) < 60.0


# ---------------------------------------------------------------------------
# Dust
# ---------------------------------------------------------------------------

DRY_WINDY_EARTHWORKS = Conditions(
    humidity_mean=35.0, wind_mean=7.0, wind_diurnal=0.0, earthworks=1.0, trucks=20, exposed_soil=0.4
)


def pm10_mean(seed: int, conditions: Conditions, hours: float = 2.0) -> float:
    """Mean PM10 at a monitor downwind of the works (the default wind blows from 150 degrees)."""
    downwind = DustParams(bearing=330.0)
    series = run(site("dust", seed, conditions, downwind).model("bus0", 1), hours * 3600.0, 60.0)
    return statistics.mean(v["pm10"] for _, v in series)


def test_dry_windy_earthworks_raise_pm10_far_above_an_ordinary_day() -> None:
    idle = pm10_mean(31, Conditions())
    ordinary = pm10_mean(31, Conditions(earthworks=0.5, trucks=8))
    episode = pm10_mean(31, DRY_WINDY_EARTHWORKS)
    assert idle < ordinary < episode
    assert episode > 150.0


def test_humid_air_holds_the_dust_down() -> None:
    wet = replace(DRY_WINDY_EARTHWORKS, humidity_mean=92.0)
    assert pm10_mean(32, wet) < 0.7 * pm10_mean(32, DRY_WINDY_EARTHWORKS)


def test_spray_brings_pm10_down_within_minutes_and_it_returns_after() -> None:
    on, off = 2 * 3600.0, 4 * 3600.0
    model = site("dust", 33, DRY_WINDY_EARTHWORKS).model("bus0", 1)
    series = run(model, 6 * 3600.0, 60.0, lambda t: {"spray_relay": on < t <= off})
    before = statistics.mean(window(series, on - 1800.0, on, "pm10"))
    during = statistics.mean(window(series, on + 1800.0, off, "pm10"))
    after = statistics.mean(window(series, off + 3600.0, 6 * 3600.0, "pm10"))
    assert during < 0.6 * before
    assert statistics.mean(window(series, on + 600.0, on + 900.0, "pm10")) < 0.8 * before
    assert after > 1.3 * during


def test_size_fractions_are_ordered_and_fugitive_dust_is_coarse() -> None:
    for conditions in (Conditions(), DRY_WINDY_EARTHWORKS, Conditions(rain=20.0)):
        for _, v in run(site("dust", 34, conditions).model("bus0", 1), 3600.0, 60.0):
            assert 0.0 < v["pm1"] <= v["pm25"] <= v["pm10"]
    quiet = run(site("dust", 34, Conditions()).model("bus0", 1), 3600.0, 60.0)
    dusty = run(site("dust", 34, DRY_WINDY_EARTHWORKS).model("bus0", 1), 3600.0, 60.0)
    ratio = statistics.mean(v["pm25"] / v["pm10"] for _, v in dusty)
    assert ratio < statistics.mean(v["pm25"] / v["pm10"] for _, v in quiet)


def test_a_monitor_downwind_of_the_works_gets_more_dust_than_one_upwind() -> None:
    conditions = constant(Conditions(earthworks=1.0, trucks=15, wind_mean=4.0, wind_dir=90.0))
    physics = SitePhysics(
        35,
        conditions,
        [NodeSetup("b", 1, "dust", DustParams(bearing=270.0)), NodeSetup("b", 2, "dust", DustParams(bearing=90.0))],
    )
    downwind = statistics.mean(v["pm10"] for _, v in run(physics.model("b", 1), 7200.0, 60.0))
    upwind = statistics.mean(v["pm10"] for _, v in run(physics.model("b", 2), 7200.0, 60.0))
    assert downwind > 1.5 * upwind


def test_optical_growth_factor_follows_the_kappa_koehler_form() -> None:
    assert optical_growth_factor(0.0) == 1.0
    assert optical_growth_factor(50.0, 0.3) == pytest.approx(1.0 + 0.3 / 1.65)  # aw = 0.5: 1/aw - 1 = 1
    assert optical_growth_factor(90.0, 0.3) == pytest.approx(1.0 + (0.3 / 1.65) * 9.0)
    factors = [optical_growth_factor(rh) for rh in range(0, 101, 5)]
    assert factors == sorted(factors) and math.isfinite(factors[-1])


# ---------------------------------------------------------------------------
# Noise
# ---------------------------------------------------------------------------


def test_levels_add_as_energy_never_arithmetically() -> None:
    assert energy_sum([60.0, 60.0]) == pytest.approx(63.01, abs=0.01)
    assert energy_sum([70.0, 50.0]) == pytest.approx(70.04, abs=0.01)
    assert leq([60.0, 70.0]) == pytest.approx(67.40, abs=0.01)
    assert leq([55.0] * 8) == pytest.approx(55.0)


def noise_series(
    seed: int, conditions: Conditions, hour: float, hours: float, dt: float, distance: float = 30.0
) -> list[float]:
    model = NoiseModel(constant(conditions), stream(seed, "noise"), NoiseParams(distance=distance), hour * 3600.0)
    return [v["laeq_1s"] for _, v in run(model, hours * 3600.0, dt)]


def test_lamin_laeq_lamax_are_ordered_in_every_sample() -> None:
    model = NoiseModel(constant(Conditions(piling=1, excavators=2, trucks=10)), stream(41, "n"), NoiseParams(), 36000.0)
    for _, v in run(model, 1800.0, 1.0):
        assert v["lamin_1s"] <= v["laeq_1s"] <= v["lamax_1s"]


def test_a_quiet_night_stays_below_50_and_a_working_day_is_loud() -> None:
    assert leq(noise_series(42, Conditions(), 23.0, 4.0, 10.0)) < 50.0
    assert leq(noise_series(42, Conditions(excavators=2, trucks=10), 9.0, 2.0, 10.0)) > 60.0
    piling = noise_series(42, Conditions(piling=1), 9.0, 2.0, 10.0)
    assert leq(piling) > leq(noise_series(42, Conditions(excavators=1), 9.0, 2.0, 10.0))


def test_noise_falls_with_distance() -> None:
    near = leq(noise_series(43, Conditions(concrete_pumps=1), 10.0, 1.0, 10.0, distance=20.0))
    far = leq(noise_series(43, Conditions(concrete_pumps=1), 10.0, 1.0, 10.0, distance=80.0))
    assert 8.0 < near - far < 14.0  # 20 log10(4) = 12 dB for the pump, less where background counts


def test_coarse_and_fine_steps_give_the_same_level() -> None:
    conditions = Conditions(excavators=2, trucks=10)
    fine = leq(noise_series(44, conditions, 10.0, 2.0, 1.0))
    coarse = leq(noise_series(44, conditions, 10.0, 2.0, 60.0))
    assert coarse == pytest.approx(fine, abs=1.5)


# ---------------------------------------------------------------------------
# Tilt
# ---------------------------------------------------------------------------


def test_slope_is_one_thousand_times_the_tangent() -> None:
    assert slope_permille(millidegrees(4.0)) == pytest.approx(4.0)
    assert millidegrees(4.0) == pytest.approx(229.18, abs=0.01)
    assert slope_permille(-1000.0 * 45.0) == pytest.approx(-1000.0)


@given(st.floats(min_value=-80_000.0, max_value=80_000.0))
def test_slope_and_angle_convert_both_ways(angle: float) -> None:
    assert millidegrees(slope_permille(angle)) == pytest.approx(angle, abs=1e-6)


def test_unloaded_support_stays_near_zero() -> None:
    model = TiltModel(*_tilt_inputs(Conditions(), 51), TiltParams())
    for _, v in run(model, 24 * 3600.0, 300.0):
        assert abs(v["pitch"]) < 40.0 and abs(v["roll"]) < 40.0
        assert v["slope_x"] == pytest.approx(slope_permille(v["pitch"]))


def test_tilt_follows_the_load_then_creeps() -> None:
    params = TiltParams(sensitivity=100.0, azimuth=90.0, creep=0.5, creep_time=3600.0, thermal=0.0, noise=0.0)
    conditions = Timeline(Conditions(), [Change(3600.0, {"load": 1.0})])
    weather = Weather(52, conditions, 0.0)
    model = TiltModel(weather, conditions, stream(52, "tilt"), params)
    series = dict(run(model, 6 * 3600.0 + 3600.0, 60.0))
    assert series[3600.0]["roll"] == pytest.approx(100.0, abs=2.0)  # elastic, at once
    assert series[3600.0 + 5 * 3600.0]["roll"] == pytest.approx(150.0, abs=2.0)  # plus creep after 5 time constants
    assert abs(series[7 * 3600.0]["pitch"]) < 1e-6


def _tilt_inputs(conditions: Conditions, seed: int) -> tuple[Weather, Callable[[float], Conditions], random.Random]:
    source = constant(conditions)
    return Weather(seed, source, 0.0), source, stream(seed, "tilt")


# ---------------------------------------------------------------------------
# The shipped scenarios do what they say
# ---------------------------------------------------------------------------


def scenario_series(
    scenario: Scenario,
    bus: str,
    unit_id: int,
    dt: float,
    until: float | None = None,
    actuators: Callable[[float], Mapping[str, bool]] | None = None,
) -> list[tuple[float, Sample]]:
    model = scenario.physics().model(bus, unit_id)
    return run(model, until if until is not None else scenario.duration, dt, actuators)


def hour_of(scenario: Scenario, t: float) -> float:
    local = scenario.local_time(t)
    return local.hour + local.minute / 60.0


def test_typhoon_mean_wind_passes_beaufort_8_with_gusts_and_veers() -> None:
    typhoon = load_builtin("typhoon")
    series = scenario_series(typhoon, "tower", 1, 600.0, until=14 * 3600.0)
    means = [v["wind_speed"] for _, v in series]
    assert max(means) >= BEAUFORT_8
    assert sum(mean >= BEAUFORT_8 for mean in means) >= 12  # two hours of 10 min means, at least
    assert all(v["wind_gust_3s"] > v["wind_speed"] for _, v in series)
    assert max(v["wind_gust_3s"] for _, v in series) > 30.0
    early = [v["wind_dir"] for t, v in series if t <= 2 * 3600.0]
    late = [v["wind_dir"] for t, v in series if t >= 12 * 3600.0]
    turn = circular_difference(statistics.mean(early), statistics.mean(late))
    assert 90.0 < turn < 180.0  # clockwise: veering from north-east towards south


def test_typhoon_pressure_falls() -> None:
    typhoon = load_builtin("typhoon")
    pressures = [v["pressure"] for _, v in scenario_series(typhoon, "boundary", 1, 600.0, until=12 * 3600.0)]
    assert pressures[0] > 100.0
    assert min(pressures) < 97.8


def test_dust_episode_pm10_rises_with_the_works_and_the_wind_and_the_spray_loop_brings_it_down() -> None:
    episode = load_builtin("dust_episode")
    open_loop = scenario_series(episode, "boundary", 1, 60.0, until=6 * 3600.0)
    before_work = statistics.mean(v["pm10"] for t, v in open_loop if hour_of(episode, t) < 8.0)
    windy_work = statistics.mean(v["pm10"] for t, v in open_loop if 11.0 <= hour_of(episode, t) < 13.0)
    assert windy_work > 150.0
    assert windy_work > 2.5 * before_work

    # Closed loop, like the gateway's linkage: the 15 min mean over 150 switches the spray on
    # for at least 30 min; it goes off again below 120.
    recent: list[float] = []
    state = {"on": False, "since": 0.0}
    switched_on: list[float] = []

    def controller(t: float) -> Mapping[str, bool]:
        if len(recent) >= 15:
            mean = statistics.mean(recent[-15:])
            if not state["on"] and mean > 150.0:
                state.update(on=True, since=t)
                switched_on.append(t)
            elif state["on"] and t - state["since"] >= 1800.0 and mean < 120.0:
                state["on"] = False
        return {"spray_relay": bool(state["on"])}

    model = episode.physics().model("boundary", 1)
    closed: list[tuple[float, float]] = []
    for k in range(1, 8 * 60 + 1):
        t = 60.0 * k
        pm10 = model.step(t, 60.0, controller(t))["pm10"]
        recent.append(pm10)
        closed.append((t, pm10))
    assert switched_on, "the controller never switched the spray on"
    first = switched_on[0]
    at_switch = statistics.mean(p for t, p in closed if first - 900.0 < t <= first)
    later = statistics.mean(p for t, p in closed if first + 900.0 < t <= first + 1800.0)
    assert later < 0.6 * at_switch


def test_night_work_breaks_the_night_limit_and_the_night_after_is_quiet() -> None:
    night = load_builtin("night_work")  # 19:00 to 05:00, the pour ends at 01:30
    series = scenario_series(night, "boundary", 1, 10.0)
    periods: dict[float, list[float]] = {}  # 20 min evaluation periods by start hour
    for t, v in series:
        start = (t - 1e-6) // 1200.0 * 1200.0
        periods.setdefault(hour_of(night, start), []).append(v["laeq_1s"])
    during = [leq(levels) for hour, levels in periods.items() if hour >= 22.0 or hour < 1.0]
    after = [leq(levels) for hour, levels in periods.items() if 2.0 <= hour < 5.0]
    assert len(during) == 9 and len(after) == 9
    assert min(during) > NIGHT_LIMIT
    assert max(after) < 50.0


def test_normal_day_is_loud_by_day_and_quiet_at_night() -> None:
    day = load_builtin("normal_day")  # 06:00 to 06:00 the next day
    for unit in (3, 4):
        series = scenario_series(day, "boundary", unit, 30.0)
        working = [v["laeq_1s"] for t, v in series if 2 * 3600.0 < t <= 5 * 3600.0]  # 08:00-11:00
        night = [v["laeq_1s"] for t, v in series if 16.5 * 3600.0 < t <= 23 * 3600.0]  # 22:30-05:00
        assert leq(working) > 60.0, unit
        assert leq(night) < 50.0, unit


def test_formwork_pour_crosses_the_prewarning_then_the_alarm_and_the_braced_bays_do_not() -> None:
    pour = load_builtin("formwork_pour")
    physics = pour.physics()

    def slopes(unit: int) -> list[tuple[float, float]]:
        return [
            (t, math.hypot(v["slope_x"], v["slope_y"]))
            for t, v in run(physics.model("formwork", unit), pour.duration, 60.0)
        ]

    bay_a = slopes(1)
    assert bay_a[0][1] < 1.0
    prewarning = next(t for t, s in bay_a if s >= PREWARNING)
    alarm = next(t for t, s in bay_a if s >= ALARM)
    assert prewarning < alarm
    assert 8.0 < hour_of(pour, prewarning) < 12.0  # during the pour
    assert max(s for _, s in bay_a) < 6.0  # a drift, not a collapse
    for unit in (2, 3):
        assert max(s for _, s in slopes(unit)) < PREWARNING


def test_epoch_source_steps_the_model_by_the_time_between_calls_and_passes_the_spray() -> None:
    start = 1_744_678_800.0
    direct = site("dust", 81, DRY_WINDY_EARTHWORKS).model("bus0", 1)
    adapted = EpochSource(site("dust", 81, DRY_WINDY_EARTHWORKS).model("bus0", 1), start, first_dt=1.0)
    expected = [direct.step(1.0, 1.0), direct.step(61.0, 60.0), direct.step(3661.0, 3600.0, {"spray_relay": True})]
    got = [adapted.values(start + 1.0), adapted.values(start + 61.0)]
    assert adapted.values(start + 61.0) == got[1]  # asking again at the same time does not step
    adapted.actuators = {"spray_relay": True}
    got.append(adapted.values(start + 3661.0))
    assert got == expected
