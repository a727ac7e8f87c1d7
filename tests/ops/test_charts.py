"""The status page's charts: SVG drawn by gateway/ops/charts.py from the recent-readings ring, checked as XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.model import Quality, Reading
from gateway.ops.charts import (
    Limit,
    Series,
    day_night_steps,
    rose_fractions,
    sector_of,
    time_chart,
    wind_rose,
)
from gateway.ops.page_charts import page_charts
from gateway.ops.recent import RecentReadings
from gateway.process.limits import LimitsResolver

SVG = "{http://www.w3.org/2000/svg}"
T = 1_796_300_000.0  # an epoch instant; 2026-12-03


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def y_of(root: ET.Element, value: float) -> float:
    lo, hi = float(root.attrib["data-ymin"]), float(root.attrib["data-ymax"])
    return 24 + (hi - value) / (hi - lo) * (240 - 24 - 22)


def polyline(root: ET.Element, label: str) -> list[tuple[float, float]]:
    line = next(e for e in root.iter(SVG + "polyline") if e.attrib["data-label"] == label)
    return [(float(a), float(b)) for a, b in (p.split(",") for p in line.attrib["points"].split())]


def test_a_gust_above_the_crane_limit_is_drawn_above_its_line() -> None:
    gusts = [(T - 600 + i * 10, 5.0 + (i == 30) * 6.0) for i in range(60)]  # one 11 m/s gust
    root = parse(time_chart("wind", "m/s", [Series("gust", gusts)], [Limit("crane", 9.0)], T, 1800))
    line = next(e for e in root.iter(SVG + "line") if e.attrib.get("class") == "limit")
    assert line.attrib["data-value"] == "9"
    assert float(line.attrib["y1"]) == pytest.approx(y_of(root, 9.0), abs=0.06)
    points = polyline(root, "gust")
    assert len(points) == 60
    peak = min(points, key=lambda p: p[1])  # SVG y grows downwards
    assert peak[1] < float(line.attrib["y1"]) and peak[1] == pytest.approx(y_of(root, 11.0), abs=0.06)
    assert points[-1][0] == pytest.approx(640 - 10 - (10 / 1800) * (640 - 46 - 10), abs=0.06)  # 10 s before the end


def test_points_outside_the_span_are_not_drawn_and_an_empty_chart_says_so() -> None:
    root = parse(time_chart("dust", "ug/m3", [Series("PM10", [(T - 4000, 99.0)])], [Limit("limit", 150)], T, 1800,
                            no_data="暂无数据"))
    assert polyline(root, "PM10") == []
    assert [e.text for e in root.iter(SVG + "text") if e.attrib.get("class") == "no-data"] == ["暂无数据"]


def test_names_from_the_configuration_are_escaped() -> None:
    root = parse(time_chart('<b>&"x', "m/s", [Series('a<"&', [(T, 1.0)])], [], T, 60))
    assert root.attrib["aria-label"] == '<b>&"x'


def test_tilt_is_symmetric_about_zero_with_both_levels_either_way() -> None:
    levels = [Limit("alarm", 4.0), Limit("alarm", -4.0)]
    root = parse(time_chart("tilt", "‰", [Series("x", [(T - 5, -1.0)])], levels, T, 60, symmetric=True))
    assert float(root.attrib["data-ymin"]) == -float(root.attrib["data-ymax"]) < -4.0


def test_wind_direction_sectors_wrap_around_north() -> None:
    assert sector_of(350.0) == sector_of(10.0) == sector_of(0.0) == sector_of(360.0) == 0
    assert sector_of(11.25) == 1 and sector_of(90.0) == 4 and sector_of(348.74) == 15 and sector_of(-90) == 12
    fractions, strongest, calm = rose_fractions([(350, 5.0), (10, 12.0), (90, 3.0), (180, 0.1)], calm_speed=0.3)
    assert fractions[0] == 0.5 and fractions[4] == 0.25 and calm == 0.25 and strongest[0] == 12.0


def test_the_rose_colours_a_sector_whose_wind_reached_the_crane_limit() -> None:
    root = parse(wind_rose("rose", [(0, 10.0), (0, 4.0), (90, 4.0)], 0.3, 9.0))
    sectors = {int(e.attrib["data-sector"]): e for e in root.iter(SVG + "path")}
    assert set(sectors) == {0, 4}
    assert sectors[0].attrib["fill"] == "#c62828" and sectors[4].attrib["fill"] != "#c62828"
    assert float(sectors[0].attrib["data-fraction"]) == pytest.approx(2 / 3, abs=1e-4)
    assert "no data" in wind_rose("rose", [], 0.3, 9.0)


def test_the_noise_limit_steps_at_night_start_in_site_local_time() -> None:
    t0 = 1796302800.0  # 2026-12-03 13:00 UTC: 21:00 at +08:00
    local_hour = ((t0 + 8 * 3600) % 86400) / 3600
    assert local_hour == 21.0
    steps = day_night_steps(t0, t0 + 2 * 3600, 70.0, 55.0, 6 * 3600, 22 * 3600, 8 * 3600)
    assert steps == [(t0, 70.0), (t0 + 3600, 55.0)]
    over_a_day = day_night_steps(t0, t0 + 86400, 70.0, 55.0, 6 * 3600, 22 * 3600, 8 * 3600)
    assert [v for _, v in over_a_day] == [70.0, 55.0, 70.0]
    assert over_a_day[2][0] == t0 + 9 * 3600  # 06:00 local the next day


@given(st.lists(st.tuples(st.floats(T - 2000, T + 10), st.floats(-1e6, 1e6)), max_size=40),
       st.lists(st.floats(-1e6, 1e6), max_size=3), st.booleans())
def test_any_finite_data_gives_well_formed_svg_inside_its_view_box(points: list[tuple[float, float]],
                                                                  limits: list[float], symmetric: bool) -> None:
    root = parse(time_chart("t", "u", [Series("s", sorted(points))], [Limit("l", v) for v in limits], T, 1800,
                            symmetric=symmetric))
    for x, y in polyline(root, "s"):
        assert 46 - 0.1 <= x <= 630.1 and 24 - 0.1 <= y <= 218.1


def reading(node: str, kind: str, channel: str, value: float | None, t: float) -> Reading:
    quality = Quality.NORMAL if value is not None else Quality.COMMUNICATION_FAILURE
    return Reading(node, kind, channel, value, "", quality, t, 0)


def test_the_ring_keeps_the_peak_of_each_step_and_stays_bounded() -> None:
    recent = RecentReadings(span_s=100.0, points=10)  # one point per 10 s
    for i in range(1000):
        recent.update([reading("wind-1", "wind", "wind_gust_3s", 20.0 if i == 953 else 1.0, T + i)])
    kept = recent.series("wind-1", "wind_gust_3s", 0.0)
    assert len(kept) <= 11
    assert max(v for _, v in kept) == 20.0  # the one-second gust survived the decimation
    recent.update([reading("wind-1", "wind", "wind_gust_3s", None, T + 2000)])  # no value: no point, no crash
    recent.update([reading("wind-1", "wind", "wind_gust_3s", 3.0, T)])  # older than the newest point
    assert recent.skipped_old == 1 and len(recent.series("wind-1", "wind_gust_3s", 0.0)) <= 11


def test_the_rose_pairs_direction_and_speed_of_one_sample() -> None:
    recent = RecentReadings()
    recent.update([reading("wind-1", "wind", "wind_dir", 350.0, T), reading("wind-1", "wind", "wind_speed", 4.0, T),
                   reading("wind-1", "wind", "wind_dir", 90.0, T + 1)])  # a direction without its speed
    assert recent.rose("wind-1", 0.0) == [(350.0, 4.0)]


def test_the_page_charts_use_each_nodes_own_limits() -> None:
    recent = RecentReadings()
    for i in range(5):
        t = T - 100 + i
        recent.update([reading("wind-1", "wind", "wind_speed", 6.0, t), reading("wind-1", "wind", "wind_dir", 45.0, t),
                       reading("wind-1", "wind", "wind_gust_3s", 8.0, t), reading("dust-1", "dust", "pm10", 200.0, t),
                       reading("noise-1", "noise", "laeq_1s", 60.0, t), reading("tilt-1", "tilt", "slope_x", 1.0, t)])
    resolver = LimitsResolver.from_config({"dust": {"pm10_1h_limit": 120.0}}, {"wind-1": {"wind": {"crane_gust": 7.5}}})
    charts = page_charts(recent, resolver.for_node, T, "en")
    assert [c["id"] for c in charts] == ["wind-wind-1", "wind-wind-1-rose", "dust-dust-1", "noise-noise-1",
                                         "tilt-tilt-1"]
    by_id = {c["id"]: parse(c["svg"]) for c in charts}
    limits = {e.attrib["data-label"]: e.attrib["data-value"] for e in by_id["wind-wind-1"].iter(SVG + "line")
              if e.attrib.get("class") == "limit"}
    assert limits == {"crane erection": "7.5", "stop work at height": "10.8", "stop lifting": "12"}
    assert [e.attrib["data-value"] for e in by_id["dust-dust-1"].iter(SVG + "line")
            if e.attrib.get("class") == "limit"] == ["120"]
    assert len(polyline(by_id["dust-dust-1"], "PM10")) == 1  # five seconds fall in one 5 s step (the peak kept)
    assert [e.attrib["data-label"] for e in by_id["noise-noise-1"].iter(SVG + "path")] == ["day/night limit"]
    tilt = sorted(float(e.attrib["data-value"]) for e in by_id["tilt-tilt-1"].iter(SVG + "line")
                  if e.attrib.get("class") == "limit")
    assert tilt == [-4.0, -3.2, 3.2, 4.0]
    assert "风向玫瑰图" in page_charts(recent, resolver.for_node, T, "zh")[1]["svg"]


def test_a_node_of_a_kind_without_charts_of_its_own_gets_its_channels_charted() -> None:
    """A kind added as a profile (here one this process has not installed) still shows on the page's charts."""
    recent = RecentReadings()
    for i in range(5):
        t = T - 100 + i
        recent.update([reading("pit-1", "water_level", "level", 2.0 + i / 10, t),
                       reading("pit-1", "water_level", "temperature", 18.0, t)])
    charts = page_charts(recent, LimitsResolver().for_node, T, "en")
    assert [c["id"] for c in charts] == ["water_level-pit-1"]  # one unit: one chart
    svg = parse(charts[0]["svg"])
    assert len(polyline(svg, "level")) == 1 and len(polyline(svg, "temperature")) == 1
    assert "water_level pit-1" in charts[0]["svg"]  # not installed here: the kind's own name
    assert not [e for e in svg.iter(SVG + "line") if e.attrib.get("class") == "limit"]
