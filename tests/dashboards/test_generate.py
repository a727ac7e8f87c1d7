"""The committed provisioning is what dashboards/generate.py makes, and it says what the bureau needs."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import boards, generate
from gateway.process.limits import DustLimits, NoiseLimits, SiteLimits, TiltLimits, WindLimits
from tests.dashboards import grafana

ROOT = Path(generate.__file__).resolve().parent
HAN = re.compile(r"[\u4e00-\u9fff]")


def test_the_committed_files_are_what_the_generator_makes() -> None:
    rendered = generate.render()
    for relative, text in rendered.items():
        assert (ROOT / relative).read_text(encoding="utf-8") == text, f"{relative}: run python -m dashboards.generate"
    committed = {str(p.relative_to(ROOT)) for p in ROOT.glob("provisioning/**/*.yaml")} | \
        {str(p.relative_to(ROOT)) for p in ROOT.glob("json/*.json")}
    assert committed == set(rendered)  # nothing stale left behind
    assert generate.main(["--check"]) == 0


def test_check_reports_a_file_that_differs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert generate.main(["--out", str(tmp_path)]) == 0
    (tmp_path / "json" / "dust.json").write_text("{}", encoding="utf-8")
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1
    assert "json/dust.json" in capsys.readouterr().err


def every_panel() -> list[grafana.Panel]:
    return [p for name in boards.BOARDS for p in grafana.panels(name)]


def test_titles_are_chinese_descriptions_english_and_units_set() -> None:
    titles = {name: grafana.load(name)["title"] for name in boards.BOARDS}
    assert titles == {"overview": "总览", "dust": "扬尘监测", "wind": "风速风向", "noise": "噪声", "tilt": "倾斜",
                      "gateways": "网关"}
    for panel in every_panel():
        assert HAN.search(panel.title), panel.title
        description = panel.raw["description"]
        assert len(description) > 40 and not HAN.search(description.replace("μg/m³", "")), panel.title
        units = [panel.raw["fieldConfig"]["defaults"].get("unit")] + [
            prop["value"] for o in panel.raw["fieldConfig"]["overrides"] for prop in o["properties"]
            if prop["id"] == "unit"]
        assert any(units), f"{panel.board}/{panel.title}: no unit"
        assert all(t["datasource"]["uid"] == "sitewatch-influxdb" and t["rawQuery"] for t in panel.targets)


def test_every_board_but_the_overview_has_district_site_and_node_variables() -> None:
    for name in boards.BOARDS:
        variables = grafana.variable_queries(name)
        expected = ["district", "site"] if name == "overview" else ["district", "site", "node"]
        assert list(variables) == expected, name
        assert all(v["multi"] and v["includeAll"] and v["allValue"] == ".*" for v in variables.values())
        for panel in grafana.panels(name):
            for target in panel.targets:  # every query is limited to the selection
                assert '"district" =~ /^$district$/ AND "site" =~ /^$site$/' in target["query"], panel.title


def threshold_values(name: str, title: str) -> list[float]:
    steps = grafana.panel(name, title).raw["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [s["value"] for s in steps if s["value"] is not None]


def test_limit_lines_come_from_the_gateways_limits() -> None:
    limits = SiteLimits()
    assert threshold_values("dust", "PM10 1 小时均值") == [limits.dust.pm10_1h_limit]
    assert threshold_values("wind", "10 分钟平均风速与 3 秒阵风") == [limits.wind.crane_gust, limits.wind.lifting_gust]
    assert threshold_values("noise", "等效声级 LAeq (20 分钟)") == [limits.noise.night_limit, limits.noise.day_limit]
    night_lmax = limits.noise.night_limit + limits.noise.night_lmax_excess
    assert threshold_values("noise", "最大声级 Lmax (20 分钟)") == [night_lmax]
    tilt = limits.tilt
    assert threshold_values("tilt", "倾斜") == [-tilt.alarm_permille, -tilt.prewarning_permille,
                                                tilt.prewarning_permille, tilt.alarm_permille]
    rules = yaml.safe_load((ROOT / "provisioning/alerting/sitewatch.yaml").read_text(encoding="utf-8"))
    thresholds = {r["uid"]: r["data"][2]["model"]["conditions"][0]["evaluator"] for r in rules["groups"][0]["rules"]}
    assert thresholds == {
        "sitewatch-dust-pm10-1h": {"params": [limits.dust.pm10_1h_limit], "type": "gt"},
        "sitewatch-wind-crane": {"params": [limits.wind.crane_gust], "type": "gte"},
        "sitewatch-wind-lifting": {"params": [limits.wind.lifting_gust], "type": "gte"},
    }


def test_a_changed_limit_changes_what_is_generated(monkeypatch: pytest.MonkeyPatch) -> None:
    """The numbers are read from limits.py when the boards are built, not copied into them."""
    changed = SiteLimits(dust=DustLimits(pm10_1h_limit=120.0), wind=WindLimits(crane_gust=8.0),
                         noise=NoiseLimits(day_limit=65.0), tilt=TiltLimits(alarm_permille=5.0))
    monkeypatch.setattr(boards, "LIMITS", changed)
    for name, value in (("PM10_LIMIT", 120.0), ("CRANE_GUST", 8.0), ("NOISE_DAY", 65.0), ("TILT_ALARM", 5.0),
                        ("TILT_PREWARNING", 4.0)):
        monkeypatch.setattr(boards, name, value)
    dust = generate.dashboard_json("dust")
    steps = dust["panels"][0]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 120.0]
    assert "120" in dust["panels"][0]["description"]
    assert dataclasses.asdict(changed.dust)["pm10_1h_limit"] == 120.0


def test_the_provisioning_files_are_what_grafana_reads() -> None:
    datasources = yaml.safe_load((ROOT / "provisioning/datasources/sitewatch.yaml").read_text(encoding="utf-8"))
    (source,) = datasources["datasources"]
    assert source["type"] == "influxdb" and source["jsonData"]["version"] == "InfluxQL"
    assert source["uid"] == "sitewatch-influxdb" and "password" not in json.dumps(source["jsonData"])
    providers = yaml.safe_load((ROOT / "provisioning/dashboards/sitewatch.yaml").read_text(encoding="utf-8"))
    assert providers["providers"][0]["options"]["path"] == generate.DASHBOARD_PATH
    rules: dict[str, Any] = yaml.safe_load((ROOT / "provisioning/alerting/sitewatch.yaml").read_text(encoding="utf-8"))
    for rule in rules["groups"][0]["rules"]:
        assert rule["condition"] == "C" and [d["refId"] for d in rule["data"]] == ["A", "B", "C"]
        assert rule["data"][0]["datasourceUid"] == "sitewatch-influxdb" and "$timeFilter" in \
            rule["data"][0]["model"]["query"]
    for name in boards.BOARDS:
        board = grafana.load(name)
        assert board["uid"].startswith("sitewatch-") and len(board["uid"]) <= 40
        ids = [p["id"] for p in board["panels"]]
        assert len(set(ids)) == len(ids)


def test_the_overview_transformations_name_the_columns_its_queries_return() -> None:
    """Grafana's join names the queries' Time columns "Time 1".. in query order (dashboards/README.md section 4):
    the freshness query is first, so that a later query without rows only removes a hidden column; every
    other name a transformation uses is a column one of the queries returns."""
    panel = grafana.panel("overview", "各工地现状")
    queries = [t["query"] for t in panel.targets]
    assert [t["refId"] for t in panel.targets] == list("ABCDEF")
    assert 'AS "last_seen"' in queries[0] and all("last_seen" not in q for q in queries[1:])
    columns = {m.group(1) for q in queries for m in re.finditer(r' AS "(\w+)"', q)} | {"site"}
    steps = {t["id"]: t["options"] for t in panel.raw["transformations"]}
    assert list(steps) == ["joinByField", "calculateField", "organize"]
    assert steps["joinByField"] == {"byField": "site", "mode": "outer"}
    binary = steps["calculateField"]["binary"]
    assert {binary["left"], binary["right"]} <= columns
    organize = steps["organize"]
    assert set(organize["excludeByName"]) == {f"Time {n}" for n in range(2, len(queries) + 1)}
    renamed = organize["renameByName"]
    freshness = boards.OVERVIEW_COLUMNS["last_seen"]
    assert renamed["Time"] == renamed["Time 1"] == freshness
    assert set(renamed) - {"Time", "Time 1"} <= columns | {steps["calculateField"]["alias"]}
    assert set(boards.OVERVIEW_COLUMNS) <= columns
