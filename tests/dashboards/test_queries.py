"""Every panel's query of the committed dashboards, run against InfluxDB 1.6.7 and compared with the ground truth.

The database was filled by the gateway's own InfluxDB sink from two simulated sites (conftest.py,
fill.py). A query is interpolated as Grafana would (grafana.py) and its numbers are compared with the
simulator's truth: the true value of each sample, as the gateway reads it from its register
(encoded and decoded, tests/support/campaign.py expected_reading), placed in time where the gateway
stamped it (its queued readings, matched to the truth by sample sequence). Windows are recomputed from
those values here: means, energy means (Leq), maxima, circular means, Beaufort forces.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from dashboards.alerts import RULES
from dashboards.boards import BOARDS, GATEWAY_FIELDS, PM10_LIMIT, exceedance_query
from gateway.deliver.line_protocol import timestamp
from gateway.deliver.records import HealthReport, Outage
from gateway.model import Quality, Reading
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent
from gateway.process.limits import BEAUFORT_LOWER_BOUNDS, SiteLimits
from simulator.truth import TruthRecord
from tests.dashboards import grafana
from tests.dashboards.conftest import Filled
from tests.dashboards.fill import HEALTH_INTERVAL_S, SILENCE, FilledSite
from tests.integration.support import circular_mean, leq
from tests.support.campaign import expected_reading

pytestmark = pytest.mark.slow

NS = 1_000_000_000
INTERVAL = "10m"
INTERVAL_S = 600.0
ALL_VALUES = {"district": ".*", "site": ".*", "node": ".*"}
DEMO, TYPHOON = "zs-demo", "zs-typhoon"
LIMITS = SiteLimits()


# ---------------------------------------------------------------------------
# Ground truth, placed where the gateway stamped each sample.
# ---------------------------------------------------------------------------


def kind_of(site: FilledSite, node: str) -> str:
    return next(n.spec.kind for n in site.run.site.nodes if n.name == node)


def truth_of(site: FilledSite, node: str) -> dict[int, TruthRecord]:
    return {t.sequence: t for t in site.node_truth(node) if t.sequence is not None}


def samples(site: FilledSite, node: str, channel: str, start: float, end: float,
            truth_channel: str | None = None) -> list[tuple[float, float]]:
    """(gateway's timestamp, value the gateway read of the true value) of the node's flag-N samples in [start, end)."""
    truth = truth_of(site, node)
    kind = kind_of(site, node)
    out = []
    for r in site.run.readings(node, channel):
        if start <= r.timestamp < end and r.quality is Quality.NORMAL:
            true = truth[r.sequence].values[truth_channel or channel]
            out.append((r.timestamp, expected_reading(kind, truth_channel or channel, true)))
    return out


def values(site: FilledSite, node: str, channel: str, start: float, end: float) -> list[float]:
    return [v for _, v in samples(site, node, channel, start, end)]


def site_range(site: FilledSite) -> tuple[float, float]:
    """The dashboard's time range for a site: its run, and an hour after it (aggregates are stamped at window start)."""
    origin = site.run.site.scenario.start_epoch
    return origin + site.spec.skip - 60.0, origin + site.spec.until + 3600.0


def nodes_of(site: FilledSite, kind: str) -> list[str]:
    return sorted({r.node for r in site.run.of(Reading) if r.kind == kind})


def run(filled: Filled, board: str, query: str, site: str | None, start: float, end: float,
        district: Sequence[str] | None = grafana.ALL) -> list[dict[str, Any]]:
    variables: dict[str, Sequence[str] | None] = {"district": district, "site": None if site is None else [site],
                                                   "node": grafana.ALL}
    return filled.rows(grafana.interpolate(query, variables, ALL_VALUES, start, end, INTERVAL))


def by_window(rows: list[dict[str, Any]], key: str = "value") -> dict[tuple[str, int], float]:
    """(node, window start in ns) -> value, of rows that have one."""
    return {(row["node"], row["time"]): row[key] for row in rows if row[key] is not None}


def aggregate_check(filled: Filled, board: str, title: str, ref: str, channel: str, kind: str, window_s: float,
                    expected: Any) -> int:
    """Run the panel's query for every site; compare each window with `expected(site, node, start, end)`."""
    query = grafana.panel(board, title).query(ref)
    checked = 0
    for site in filled.sites:
        start, end = site_range(site)
        rows = run(filled, board, query, site.spec.site, start, end)
        assert {r["site"] for r in rows} <= {site.spec.site}
        got = by_window(rows)
        for node in nodes_of(site, kind):
            windows = sorted(t for n, t in got if n == node)
            # The windows shown are the gateway's valid ones (latest revision), none left out, none added.
            assert windows == valid_windows(site, node, channel), (site.spec.site, node, channel)
            for t in windows:
                want = expected(site, node, t / NS, t / NS + window_s)
                assert got[(node, t)] == pytest.approx(want, abs=1e-6), (site.spec.site, node, channel, t)
                checked += 1
    return checked


def valid_windows(site: FilledSite, node: str, channel: str) -> list[int]:
    """Window starts (ns) of the node's aggregates of `channel` whose latest revision is valid, with a value."""
    latest: dict[float, Aggregate] = {}
    for a in site.run.aggregates(node, channel):
        if a.start not in latest or a.revision >= latest[a.start].revision:
            latest[a.start] = a
    return sorted(timestamp(a.start, "ns") for a in latest.values() if a.valid and a.value is not None)


def bucket_means(site: FilledSite, node: str, channel: str) -> dict[int, float]:
    """Mean per display interval (as GROUP BY time(10m), aligned to the epoch) of the node's samples."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for t, v in samples(site, node, channel, -math.inf, math.inf):
        buckets[int(t // INTERVAL_S * INTERVAL_S) * NS].append(v)
    return {t: sum(vs) / len(vs) for t, vs in buckets.items()}


# ---------------------------------------------------------------------------
# The panels each test covers; a panel added without a test fails test_every_panel_is_checked.
# ---------------------------------------------------------------------------

COVERED = {
    ("overview", "各工地现状"),
    ("dust", "PM10 1 小时均值"), ("dust", "PM2.5 1 小时均值"), ("dust", "PM10 / PM2.5 实测"), ("dust", "超标小时数"),
    ("dust", "高湿时段"),
    ("wind", "10 分钟平均风速与 3 秒阵风"), ("wind", "蒲福风级"), ("wind", "风向"), ("wind", "风速报警"),
    ("noise", "等效声级 LAeq (20 分钟)"),
    ("noise", "最大声级 Lmax (20 分钟)"),
    ("tilt", "倾斜"), ("tilt", "10 分钟最大偏移"),
    ("gateways", "网关状态"), ("gateways", "队列积压"), ("gateways", "丢弃记录"), ("gateways", "轮询成功率"),
    ("gateways", "节点在线"), ("gateways", "节点中断"),
}


def test_every_panel_is_checked() -> None:
    present = {(name, p.title) for name in BOARDS for p in grafana.panels(name)}
    assert present == COVERED


def test_the_variables_list_districts_sites_and_nodes(filled: Filled) -> None:
    dust_vars = grafana.variable_queries("dust")

    def tag_values(query: str, **chosen: Sequence[str] | None) -> list[str]:
        text = grafana.interpolate(query, chosen, ALL_VALUES)
        return sorted(row["value"] for row in filled.rows(text))

    assert tag_values(dust_vars["district"]["query"]) == ["dongqu", "shiqi"]
    assert tag_values(dust_vars["site"]["query"], district=["shiqi"]) == [DEMO]
    assert tag_values(dust_vars["site"]["query"], district=["dongqu", "shiqi"]) == [DEMO, TYPHOON]
    assert tag_values(dust_vars["site"]["query"], district=grafana.ALL) == [DEMO, TYPHOON]
    assert tag_values(dust_vars["node"]["query"], site=[TYPHOON]) == ["dust-1"]
    assert tag_values(grafana.variable_queries("wind")["node"]["query"], site=grafana.ALL) == ["wind-2", "wind-mast"]
    assert tag_values(grafana.variable_queries("gateways")["node"]["query"], site=[DEMO]) == \
        ["dust-1", "noise-3", "tilt-4", "wind-2"]


# ---------------------------------------------------------------------------
# 总览
# ---------------------------------------------------------------------------


def last_sample(site: FilledSite, node_kind: str, channel: str) -> tuple[float, float]:
    node = nodes_of(site, node_kind)[0]
    return max(samples(site, node, channel, -math.inf, math.inf))


def test_overview_has_each_sites_latest_dust_and_wind_alarms_and_freshness(filled: Filled) -> None:
    overview = grafana.panel("overview", "各工地现状")
    start = min(site_range(s)[0] for s in filled.sites)
    end = max(site_range(s)[1] for s in filled.sites)
    got: dict[str, dict[str, Any]] = defaultdict(dict)
    for target in overview.targets:
        for row in run(filled, "overview", target["query"], None, start, end):
            fields = {k: v for k, v in row.items() if k not in ("site", "time")}
            got[row["site"]].update(fields)
            if "last_seen" in fields:
                got[row["site"]]["last_seen_time"] = row["time"]
    assert set(got) == {DEMO, TYPHOON}
    for site in filled.sites:
        row = got[site.spec.site]
        assert row["pm10"] == pytest.approx(last_sample(site, "dust", "pm10")[1])
        assert row["wind_speed"] == pytest.approx(last_sample(site, "wind", "wind_speed")[1])
        assert row["wind_gust"] == pytest.approx(last_sample(site, "wind", "wind_gust_3s")[1])
        events = site.run.of(AlarmEvent)
        raised = sum(e.state.value == "raised" for e in events)
        cleared = sum(e.state.value == "cleared" for e in events)
        assert row.get("alarms_raised", 0) == raised and row.get("alarms_cleared", 0) == cleared
        # Freshness: when the site's last sample was taken, as the gateway stamped it, and as the truth has it
        # (as close as the simulated clock's speed allows, plus how late the simulated node heard the requests
        # on a busy host: tests/integration/test_typhoon.py).
        newest = max(site.run.of(Reading), key=lambda r: r.timestamp)
        assert row["last_seen_time"] == timestamp(newest.timestamp, "ns")
        bus = next(n.bus for n in site.run.site.nodes if n.name == newest.node)
        error = row["last_seen_time"] / NS - truth_of(site, newest.node)[newest.sequence].time
        assert abs(error) < 10.0 + site.run.hearing_delay(bus), error
    # The typhoon's site is over the crane limit in the truth, and its alarms say so; the demo site is not.
    typhoon = filled.site(TYPHOON)
    gusts = values(typhoon, "wind-mast", "wind_gust_3s", -math.inf, math.inf)
    assert max(gusts) >= LIMITS.wind.crane_gust and got[TYPHOON]["alarms_raised"] >= 1
    assert max(values(filled.site(DEMO), "wind-2", "wind_gust_3s", -math.inf, math.inf)) < LIMITS.wind.crane_gust
    assert "alarms_raised" not in got[DEMO]
    # A district selects its sites only.
    only = run(filled, "overview", overview.query("A"), None, start, end, district=["shiqi"])
    assert [r["site"] for r in only] == [DEMO]


# ---------------------------------------------------------------------------
# 扬尘监测
# ---------------------------------------------------------------------------


def mean_of(channel: str) -> Any:
    def expected(site: FilledSite, node: str, start: float, end: float) -> float:
        got = values(site, node, channel, start, end)
        assert len(got) >= 0.75 * (end - start) / 60.0  # a valid window: at least 75 % of its samples
        return sum(got) / len(got)
    return expected


@pytest.mark.parametrize(("title", "channel"), [("PM10 1 小时均值", "pm10"), ("PM2.5 1 小时均值", "pm25")])
def test_hourly_pm_means_are_the_means_of_the_true_samples(filled: Filled, title: str, channel: str) -> None:
    checked = aggregate_check(filled, "dust", title, "A", f"{channel}_1h_mean", "dust", 3600.0, mean_of(channel))
    assert checked == 2  # one closed hour at each site
    assert grafana.panel("dust", title).raw["fieldConfig"]["defaults"]["unit"] == "conμgm3"


def test_pm_samples_are_averaged_per_display_interval(filled: Filled) -> None:
    query = grafana.panel("dust", "PM10 / PM2.5 实测").query()
    for site in filled.sites:
        start, end = site_range(site)
        rows = run(filled, "dust", query, site.spec.site, start, end)
        for channel in ("pm10", "pm25"):
            got = {r["time"]: r["mean"] for r in rows if r["channel"] == channel}
            want = bucket_means(site, "dust-1", channel)
            assert got.keys() == want.keys() and want
            for t, v in want.items():
                assert got[t] == pytest.approx(v), (site.spec.site, channel, t)


def test_exceedance_hours_count_hourly_means_over_the_limit(filled: Filled) -> None:
    panel = grafana.panel("dust", "超标小时数")
    assert panel.query() == exceedance_query(PM10_LIMIT)
    means = {site.spec.site: mean_of("pm10")(site, "dust-1", *hour_of(site)) for site in filled.sites}
    # The default limit (no hour above it at either site), and a limit between the two sites' means, as a
    # site's override would put it: the count follows the truth in both.
    for limit in (PM10_LIMIT, (means[DEMO] + means[TYPHOON]) / 2):
        want = {site: 1 for site, mean in means.items() if mean > limit}
        query = panel.query() if limit == PM10_LIMIT else exceedance_query(limit)
        got = {}
        for site in filled.sites:
            for row in run(filled, "dust", query, site.spec.site, *site_range(site)):
                got[row["site"]] = row["exceedances"]
        assert got == want
    assert any(mean > (means[DEMO] + means[TYPHOON]) / 2 for mean in means.values())


def hour_of(site: FilledSite) -> tuple[float, float]:
    start = site.run.site.scenario.start_epoch + site.spec.skip
    return start, start + 3600.0


def test_humid_periods_are_where_the_true_humidity_was_above_the_flag_threshold(filled: Filled) -> None:
    query = grafana.panel("dust", "高湿时段").query()
    threshold = LIMITS.humidity.rh_flag_threshold
    seen = set()
    for site in filled.sites:
        rows = run(filled, "dust", query, site.spec.site, *site_range(site))
        got = {r["time"]: r["max"] for r in rows}
        humid: dict[int, list[float]] = defaultdict(list)
        for t, rh in samples(site, "dust-1", "humidity", -math.inf, math.inf):
            humid[int(t // INTERVAL_S * INTERVAL_S) * NS].append(rh)
        assert got.keys() == humid.keys()
        for t, rhs in humid.items():
            assert got[t] == (1.0 if max(rhs) > threshold else 0.0), (site.spec.site, t, rhs)
            seen.add(got[t])
    assert seen == {0.0, 1.0}  # both states occur in the fill


# ---------------------------------------------------------------------------
# 风速风向
# ---------------------------------------------------------------------------


def gust_of(site: FilledSite, node: str, start: float, end: float) -> float:
    # The window's gust: the largest of the node's 3-s gusts and of the gateway's running 3-s means of its
    # speed samples (with one sample a minute, a running mean is the sample itself).
    return max(values(site, node, "wind_gust_3s", start, end) + values(site, node, "wind_speed", start, end))


def beaufort_of(speed: float) -> float:
    return float(sum(1 for bound in BEAUFORT_LOWER_BOUNDS[1:] if speed >= bound))


def test_wind_means_gusts_force_and_direction_are_those_of_the_true_samples(filled: Filled) -> None:
    title = "10 分钟平均风速与 3 秒阵风"
    assert aggregate_check(filled, "wind", title, "A", "wind_10min_speed_mean", "wind", 600.0,
                           mean_of("wind_speed")) >= 10
    assert aggregate_check(filled, "wind", title, "B", "wind_10min_gust", "wind", 600.0, gust_of) >= 10

    def force(site: FilledSite, node: str, start: float, end: float) -> float:
        return beaufort_of(mean_of("wind_speed")(site, node, start, end))

    assert aggregate_check(filled, "wind", "蒲福风级", "A", "wind_10min_beaufort", "wind", 600.0, force) >= 10

    def direction(site: FilledSite, node: str, start: float, end: float) -> float:
        speeds = dict(samples(site, node, "wind_speed", start, end))
        dirs = [d for t, d in samples(site, node, "wind_dir", start, end) if speeds.get(t, 0.0) >= 0.3]
        return circular_mean(dirs)

    assert aggregate_check(filled, "wind", "风向", "A", "wind_10min_dir_mean", "wind", 600.0, direction) >= 10


def test_wind_alarm_events_and_annotations_are_the_gateways_events_at_true_gusts(filled: Filled) -> None:
    table = grafana.panel("wind", "风速报警").query()
    annotation = next(a for a in grafana.load("wind")["annotations"]["list"] if a["name"] == "风速报警")
    typhoon = filled.site(TYPHOON)
    rows = run(filled, "wind", table, TYPHOON, *site_range(typhoon))
    events = [e for e in typhoon.run.of(AlarmEvent) if e.alarm.endswith("_wind")]
    assert events
    assert sorted((r["alarm"], r["state"], r["time"], r["value"]) for r in rows) == \
        sorted((e.alarm, e.state.value, timestamp(e.time, "ns"), e.value) for e in events)
    gusts = {timestamp(t, "ns"): v for t, v in samples(typhoon, "wind-mast", "wind_gust_3s", -math.inf, math.inf)}
    for row in rows:
        if row["state"] == "raised":  # the value that raised it is a true gust at or over the limit
            assert row["value"] == pytest.approx(gusts[row["time"]]) and row["value"] >= row["limit"]
    marks = run(filled, "wind", annotation["target"]["query"], TYPHOON, *site_range(typhoon))
    assert sorted(r["time"] for r in marks) == sorted(r["time"] for r in rows if r["state"] == "raised")
    assert run(filled, "wind", table, DEMO, *site_range(filled.site(DEMO))) == []


# ---------------------------------------------------------------------------
# 噪声, 倾斜
# ---------------------------------------------------------------------------


def test_noise_leq_is_the_energy_mean_and_lmax_the_highest_true_level(filled: Filled) -> None:
    def energy(site: FilledSite, node: str, start: float, end: float) -> float:
        return leq(values(site, node, "laeq_1s", start, end))

    def highest(site: FilledSite, node: str, start: float, end: float) -> float:
        return max(values(site, node, "lamax_1s", start, end))

    leq_title, lmax_title = "等效声级 LAeq (20 分钟)", "最大声级 Lmax (20 分钟)"
    assert aggregate_check(filled, "noise", leq_title, "A", "noise_20min_leq", "noise", 1200.0, energy) >= 4
    assert aggregate_check(filled, "noise", lmax_title, "A", "noise_20min_lmax", "noise", 1200.0, highest) >= 4


def test_tilt_slopes_per_interval_and_largest_deviation(filled: Filled) -> None:
    demo = filled.site(DEMO)
    rows = run(filled, "tilt", grafana.panel("tilt", "倾斜").query(), DEMO, *site_range(demo))
    for channel in ("slope_x", "slope_y"):
        got = {r["time"]: r["mean"] for r in rows if r["channel"] == channel}
        want = bucket_means(demo, "tilt-4", channel)
        assert got.keys() == want.keys() and want
        assert all(got[t] == pytest.approx(v) for t, v in want.items())

    def largest(axis: str) -> Any:
        def expected(site: FilledSite, node: str, start: float, end: float) -> float:
            return max(values(site, node, axis, start, end), key=abs)  # the baseline is the node's zero
        return expected

    for ref, axis in (("A", "slope_x"), ("B", "slope_y")):
        assert aggregate_check(filled, "tilt", "10 分钟最大偏移", ref, f"{axis}_10min_deviation_max", "tilt", 600.0,
                               largest(axis)) >= 5
    # The pour loads the formwork: the lean grows over the run.
    xs = values(demo, "tilt-4", "slope_x", -math.inf, math.inf)
    assert abs(xs[-1]) > abs(xs[0])


# ---------------------------------------------------------------------------
# 网关
# ---------------------------------------------------------------------------
# What the panels show is compared with the reports the gateways' own health task queued (read back
# from their queue files) as InfluxDB keeps them: a report is one point per measurement, identified by
# its time, so two reports measured at the same simulated instant (the site's clock waits for the
# gateway) are one point, the later one's fields written over the earlier's. And with what is known
# of the runs: the nodes configured, the typhoon's noise monitor silent (fill.SILENCE), no drops.


def stored_reports(site: FilledSite) -> list[HealthReport]:
    """The site's reports as InfluxDB keeps gateway_health: the last written of each timestamp, by time."""
    kept: dict[int, HealthReport] = {}
    for report in site.health():
        kept[timestamp(report.time, "ns")] = report
    return [kept[t] for t in sorted(kept)]


def stored_nodes(site: FilledSite) -> dict[tuple[str, int], dict[str, Any]]:
    """(node, time in ns) -> node_health fields as InfluxDB keeps them (a later point's fields over an earlier's;
    a field left out, a None, keeps the earlier value)."""
    kept: dict[tuple[str, int], dict[str, Any]] = {}
    for report in site.health():
        for node in report.nodes:
            fields = {k: v for k, v in dataclasses.asdict(node).items() if v is not None}
            kept.setdefault((node.node, timestamp(report.time, "ns")), {}).update(fields)
    return kept


def bucket_of(ns: int) -> int:
    return ns // round(INTERVAL_S * NS) * round(INTERVAL_S * NS)


def whole_range(filled: Filled) -> tuple[float, float]:
    return min(site_range(s)[0] for s in filled.sites), max(site_range(s)[1] for s in filled.sites)


def test_the_gateways_reported_their_health_through_the_sink(filled: Filled) -> None:
    """Every report the gateway queued reached InfluxDB; what they say agrees with what the runs are known to be."""
    for site in filled.sites:
        reports = site.health()
        # Simulated seconds between reports: at most this (a clock held for the gateway passes slower), but a
        # busy host can start the task late.
        interval = HEALTH_INTERVAL_S * site.spec.speed
        assert len(reports) >= 0.75 * (site.spec.until - site.spec.skip) / interval, len(reports)
        stored = filled.rows(f"SELECT * FROM \"gateway_health\" WHERE \"gateway\" = '{site.spec.gateway}'")
        assert [r["time"] for r in stored] == [timestamp(r.time, "ns") for r in stored_reports(site)]
        polled = {n.name for n in site.run.site.nodes
                  if any((p.bus, p.unit_id) == (n.bus, n.spec.unit_id) for p in site.spec.polled)}
        for index, report in enumerate(reports):
            g = report.gateway
            assert {n.node for n in report.nodes} == polled
            assert g.nodes_total == len(polled) and g.nodes_online == sum(n.online for n in report.nodes)
            # Nothing was dropped (no quota, a disk that takes every write, a valid clock) ...
            assert g.dropped_total == 0 and g.clock_valid
            # ... and what is queued is at most what the gateway had appended before this report.
            assert 0 <= g.queue_depth <= index + sum(1 for r in site.run.records[:site.run.records.index(report)]
                                                     if not isinstance(r, HealthReport))
        assert site.run.gateway.queue.dropped_total == 0
        assert max(r.gateway.queue_depth for r in reports) > 0  # records do wait in the queue between deliveries


def test_gateway_table_shows_each_gateways_latest_health(filled: Filled) -> None:
    query = grafana.panel("gateways", "网关状态").query()
    rows = {r["gateway"]: r for r in run(filled, "gateways", query, None, *whole_range(filled))}
    assert set(rows) == {s.spec.gateway for s in filled.sites}
    for site in filled.sites:
        last = stored_reports(site)[-1]
        row = rows[site.spec.gateway]
        assert row["site"] == site.spec.site
        for field in GATEWAY_FIELDS:
            assert row[field] == pytest.approx(getattr(last.gateway, field)), field
        assert row["nodes_total"] == len(site.spec.polled) and row["dropped_total"] == 0


def test_gateway_queue_and_drops_per_interval(filled: Filled) -> None:
    start, end = whole_range(filled)
    queue = grafana.panel("gateways", "队列积压")
    buckets: dict[tuple[str, int], list[HealthReport]] = defaultdict(list)
    for site in filled.sites:
        for report in stored_reports(site):
            buckets[(site.spec.gateway, bucket_of(timestamp(report.time, "ns")))].append(report)
    for ref, field in (("A", "queue_depth"), ("B", "queue_oldest_age_s")):
        got = {(r["gateway"], r["time"]): r["max"] for r in run(filled, "gateways", queue.query(ref), None,
                                                                 start, end)}
        assert got == pytest.approx({k: max(getattr(r.gateway, field) for r in rs) for k, rs in buckets.items()})
    # The increase of dropped_total per interval: none dropped in these runs, so a 0 for every interval after
    # each gateway's first (non_negative_difference needs the one before), not an empty panel.
    drops = run(filled, "gateways", grafana.panel("gateways", "丢弃记录").query(), None, start, end)
    got_drops = {(r["gateway"], r["time"]): r["non_negative_difference"] for r in drops}
    firsts = {min(k for k in buckets if k[0] == g) for g, _ in buckets}
    assert got_drops == {k: 0 for k in buckets if k not in firsts}


def test_gateway_node_success_and_online_per_interval(filled: Filled) -> None:
    start, end = whole_range(filled)
    kept: dict[tuple[tuple[str, str], int], list[dict[str, Any]]] = defaultdict(list)
    for site in filled.sites:
        for (node, t), fields in sorted(stored_nodes(site).items(), key=lambda item: item[0][1]):
            kept[((site.spec.site, node), bucket_of(t))].append(fields)
    success = run(filled, "gateways", grafana.panel("gateways", "轮询成功率").query(), None, start, end)
    got_rate = {((r["site"], r["node"]), r["time"]): r["mean"] for r in success}
    want_rate = {k: sum(rates) / len(rates) for k, fs in kept.items()
                 if (rates := [f["success_rate"] for f in fs if "success_rate" in f])}
    assert got_rate == pytest.approx(want_rate)
    # Every report's online state, not one per display interval: a node offline for part of an interval shows.
    online = run(filled, "gateways", grafana.panel("gateways", "节点在线").query(), None, start, end)
    got_online = {(r["site"], r["node"], r["time"]): r["online"] for r in online}
    assert got_online == {(site.spec.site, node, t): fields["online"]
                          for site in filled.sites for (node, t), fields in stored_nodes(site).items()}
    # The silenced noise monitor shows offline during its silence (found offline after three failed polls,
    # online again at its first answer after it), and only then; online again at the end.
    typhoon = filled.site(TYPHOON)
    origin = typhoon.run.site.scenario.start_epoch
    offline = sorted(t / NS - origin for (site, node, t), up in got_online.items()
                     if (site, node) == (TYPHOON, "noise-2") and up is False)
    assert offline and any(SILENCE.start < t < SILENCE.end + INTERVAL_S for t in offline), offline
    # Outside the silence only where the gateway itself recorded an outage of the node (replies late past the
    # timeout on a loaded host: stress run s5c); the reports are the gateway's, the panel shows them as they are.
    outages = [(o.start - origin, o.end - origin) for o in typhoon.run.of(Outage) if o.node == "noise-2"]
    for t in offline:
        if not SILENCE.start < t < SILENCE.end + INTERVAL_S:
            assert any(start <= t <= end + INTERVAL_S for start, end in outages), (t, outages)
    assert stored_nodes(typhoon)[("noise-2", timestamp(stored_reports(typhoon)[-1].time, "ns"))]["online"] is True


def test_gateway_outages_are_the_gateways_outage_records(filled: Filled) -> None:
    query = grafana.panel("gateways", "节点中断").query()
    for site in filled.sites:
        rows = run(filled, "gateways", query, site.spec.site, *site_range(site))
        # A point's identity is its series and time: outages of one node with the same start are one point,
        # the one written last. Under the held simulated clock a poll can fail and the next one answer at the
        # same instant, twice in a row: two records, identical to the last digit, one point.
        points = {(o.node, timestamp(o.start, "ns")): o for o in site.run.of(Outage)}
        want = sorted((node, time, o.missed) for (node, time), o in points.items())
        got = sorted((r["node"], r["time"], r["missed"]) for r in rows)
        assert got == want
        durations = {key: o.end - o.start for key, o in points.items()}
        assert all(r["duration_s"] == pytest.approx(durations[(r["node"], r["time"])]) for r in rows)
    # The silence is one of them: an outage of the noise monitor that covers most of it.
    typhoon = filled.site(TYPHOON)
    origin = typhoon.run.site.scenario.start_epoch
    covering = [o for o in typhoon.run.outages("noise-2")
                if o.start - origin < SILENCE.start + 120.0 and o.end - origin > SILENCE.end - 120.0]
    assert covering, [(o.start - origin, o.end - origin) for o in typhoon.run.outages("noise-2")]


# ---------------------------------------------------------------------------
# Alert rules
# ---------------------------------------------------------------------------


def evaluate(filled: Filled, rule_uid: str, at: float, limit: float | None = None) -> dict[tuple[str, str], bool]:
    """Grafana's evaluation of a provisioned rule at `at`: query A over its range, reduce (B), threshold (C)."""
    spec = next(r for r in RULES if r.uid == rule_uid)
    if limit is not None:  # as if the rule's threshold were edited
        spec = dataclasses.replace(spec, limit=limit)
    variables: Mapping[str, Sequence[str] | None] = {}
    rows = filled.rows(grafana.interpolate(spec.query, variables, ALL_VALUES, at - spec.range_s, at))
    series: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        value = row.get("value", row.get("max"))
        if value is not None:
            series[(row["site"], row["node"])].append((row["time"], value))
    reduce = {"last": lambda vs: sorted(vs)[-1][1], "max": lambda vs: max(v for _, v in vs)}[spec.reducer]
    compare = {"gt": lambda v: v > spec.limit, "gte": lambda v: v >= spec.limit}[spec.comparison]
    return {key: compare(reduce(vs)) for key, vs in series.items()}


def test_alert_rules_fire_where_the_truth_is_over_the_limit(filled: Filled) -> None:
    fired = 0
    for site in filled.sites:
        origin = site.run.site.scenario.start_epoch + site.spec.skip
        # Moments a few seconds off the minute, so that no sample sits on the edge of a rule's range.
        for at in (origin + 1807.0, origin + 3607.0, origin + 3907.0):
            for spec in RULES:
                got = {k: v for k, v in evaluate(filled, spec.uid, at).items() if k[0] == site.spec.site}
                want: dict[tuple[str, str], bool] = {}
                if spec.uid.startswith("sitewatch-dust"):
                    start, end = hour_of(site)  # the one closed hour, stamped at its start
                    if at - spec.range_s <= start <= at:
                        want[(site.spec.site, "dust-1")] = mean_of("pm10")(site, "dust-1", start, end) > spec.limit
                else:
                    for node in nodes_of(site, "wind"):
                        gusts = values(site, node, "wind_gust_3s", at - spec.range_s, at)
                        if gusts:
                            want[(site.spec.site, node)] = max(gusts) >= spec.limit
                assert got == want, (spec.uid, site.spec.site, at)
                fired += sum(want.values())
    assert fired >= 1


def test_the_dust_rule_fires_for_the_site_whose_true_hourly_mean_is_over_its_threshold(filled: Filled) -> None:
    """Neither site's hour is over the default 150 ug/m3: with the threshold between the two means, one fires."""
    means = {site.spec.site: mean_of("pm10")(site, "dust-1", *hour_of(site)) for site in filled.sites}
    between = (means[DEMO] + means[TYPHOON]) / 2
    for site in filled.sites:
        at = hour_of(site)[1] + 307.0
        got = {k: v for k, v in evaluate(filled, "sitewatch-dust-pm10-1h", at, between).items()
               if k[0] == site.spec.site}
        assert got == {(site.spec.site, "dust-1"): means[site.spec.site] > between}
