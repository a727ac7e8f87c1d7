from __future__ import annotations

import tomllib

import pytest

from gateway.process.limits import (
    BEAUFORT_LOWER_BOUNDS,
    LimitsError,
    LimitsResolver,
    SiteLimits,
    override,
    parse_time_of_day,
    parse_utc_offset,
)


def test_defaults_are_the_domain_values() -> None:
    s = SiteLimits()
    assert (s.wind.crane_gust, s.wind.lifting_gust, s.wind.placing_boom) == (9.0, 12.0, 10.8)
    assert s.wind.work_at_height == BEAUFORT_LOWER_BOUNDS[6] == 10.8
    assert (s.noise.day_limit, s.noise.night_limit, s.noise.night_lmax_limit) == (70.0, 55.0, 70.0)
    assert (s.noise.day_start_s, s.noise.night_start_s) == (6 * 3600, 22 * 3600)
    assert s.noise.evaluation_period_s == 1200
    assert s.tilt.alarm_permille == 4.0
    assert s.tilt.prewarning_permille == pytest.approx(3.2)
    assert (s.tilt.displacement_mm, s.tilt.settlement_mm) == (12.0, 8.0)
    assert s.dust.pm10_1h_limit == 150.0
    assert s.spray.min_on_s == 1800.0
    assert s.sampling.validity_fraction == 0.75
    assert s.humidity.rh_flag_threshold == 75.0 and s.humidity.kappa == 0.3 and not s.humidity.correction
    assert s.time.tz_offset_s == 8 * 3600


def test_site_and_node_tables_override_in_order() -> None:
    config = tomllib.loads(
        """
        [limits.wind]
        crane_gust = 8          # an integer is fine for a float setting
        [limits.quality.ranges]
        pm10 = [0, 500]
        [nodes.crane-top.limits.wind]
        crane_gust = 7.5
        [nodes.crane-top.limits.time]
        tz_offset = "+05:30"
        """
    )
    resolver = LimitsResolver.from_config(
        config["limits"], {name: node["limits"] for name, node in config["nodes"].items()}
    )
    site = resolver.for_node("anything")
    assert site.wind.crane_gust == 8.0 and isinstance(site.wind.crane_gust, float)
    assert site.wind.lifting_gust == 12.0
    # A partial table extends the defaults instead of replacing them.
    assert site.quality.ranges["pm10"] == (0.0, 500.0)
    assert site.quality.ranges["pm25"] == (0.0, 1000.0)
    node = resolver.for_node("crane-top")
    assert node.wind.crane_gust == 7.5
    assert node.time.tz_offset_s == 5 * 3600 + 1800
    assert node.quality.ranges["pm10"] == (0.0, 500.0)  # the site's override still applies


@pytest.mark.parametrize(
    "table",
    [
        {"wind": {"crane_gusts": 8.0}},  # misspelt
        {"wnd": {}},
        {"wind": {"crane_gust": "8"}},
        {"wind": {"crane_gust": True}},
        {"wind": 8.0},
        {"noise": {"evaluation_period_s": 1200.5}},
        {"noise": {"evaluation_period_s": 7 * 60}},  # does not divide a day
        {"noise": {"day_start": "6:00"}},
        {"time": {"tz_offset": "UTC+8"}},
        {"tilt": {"prewarning_fraction": 1.5}},
        {"wind": {"crane_gust": -1}},
        {"quality": {"ranges": {"pm10": [10, 5]}}},
        {"quality": {"ranges": {"pm10": 5}}},
        {"quality": {"stuck_s": {"pm10": -1}}},
    ],
)
def test_bad_overrides_are_refused(table: dict[str, object]) -> None:
    with pytest.raises(LimitsError):
        override(SiteLimits(), table)


def test_a_bad_node_table_fails_at_construction() -> None:
    with pytest.raises(LimitsError):
        LimitsResolver(nodes={"n1": {"dust": {"pm10_1h_limit": "high"}}})


def test_overrides_do_not_touch_the_original() -> None:
    base = SiteLimits()
    changed = override(base, {"dust": {"pm10_1h_limit": 80}})
    assert changed.dust.pm10_1h_limit == 80.0
    assert base.dust.pm10_1h_limit == 150.0
    with pytest.raises(TypeError):
        changed.quality.ranges["pm10"] = (0.0, 1.0)  # type: ignore[index]


def test_time_parsers() -> None:
    assert parse_utc_offset("+08:00") == 28800
    assert parse_utc_offset("-03:30") == -(3 * 3600 + 1800)
    assert parse_time_of_day("22:00") == 79200
    for bad in ("08:00", "+8:00", "+15:00"):
        with pytest.raises(LimitsError):
            parse_utc_offset(bad)
    for bad in ("24:00", "7:00", "06:60"):
        with pytest.raises(LimitsError):
            parse_time_of_day(bad)
