"""The bureau's six dashboards, built with grafana-foundation-sdk: titles in Chinese, descriptions in English.

Every number a panel draws against (a limit line, a colour step) comes from gateway/process/limits.py,
the one place the gateway's alarms read them from: the default of each setting. A site that overrides
a limit in its `[limits]` still alarms at its own limit; the dashboards show the default, which their
descriptions say.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.influxql import DATASOURCE, NODE_FILTER, SITE_FILTER, VALID, Influx, eq, where
from gateway.process.limits import SiteLimits

LIMITS = SiteLimits()  # the defaults
PM10_LIMIT = LIMITS.dust.pm10_1h_limit
CRANE_GUST = LIMITS.wind.crane_gust
LIFTING_GUST = LIMITS.wind.lifting_gust
WORK_AT_HEIGHT_BEAUFORT = 6  # JGJ 80-2016 3.0.8; LIMITS.wind.work_at_height is its lower bound in m/s
NOISE_DAY = LIMITS.noise.day_limit
NOISE_NIGHT = LIMITS.noise.night_limit
NOISE_NIGHT_LMAX = LIMITS.noise.night_lmax_limit
TILT_PREWARNING = LIMITS.tilt.prewarning_permille
TILT_ALARM = LIMITS.tilt.alarm_permille
NOISE_MINUTES = LIMITS.noise.evaluation_period_s // 60
NOISE_PERIOD = f"{NOISE_MINUTES}min"  # the window the noise alarms read: its aggregates are noise_20min_*

UNIT_PM = "conμgm3"
UNIT_WIND = "velocityms"
UNIT_DBA = "suffix: dB(A)"
UNIT_PERMILLE = "suffix: ‰"

GREEN, ORANGE, RED = "green", "orange", "red"
SERIES_ALIAS = "$tag_site $tag_node"


def steps(*pairs: tuple[float | None, str]) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=value, color=color) for value, color in pairs])
    )


def limit_lines() -> common_builders.GraphThresholdsStyleConfig:
    return common_builders.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.DASHED)


def series(title: str, description: str, unit: str, targets: Sequence[Influx]) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .targets(list(targets))
        .span(12)
        .height(9)
        .span_nulls(False)
    )


def aggregate_query(channel: str) -> str:
    """The latest revision of every valid window of an aggregate channel, one series per site and node."""
    return (
        f'SELECT "value" FROM "aggregate" WHERE {where(eq("channel", channel), VALID, NODE_FILTER)}'
        ' GROUP BY "site", "node"'
    )


def variables(kind: str | None) -> list[cogbuilder.Builder[dm.VariableModel]]:
    """district, site and (for a kind's dashboard, or every node) node: multi-value, "All" matching anything."""

    def variable(name: str, label: str, query: str, description: str) -> db.QueryVariable:
        return (
            db.QueryVariable(name)
            .label(label)
            .description(description)
            .datasource(DATASOURCE)
            .query(query)
            .multi(True)
            .include_all(True)
            .all_value(".*")  # sites without a district tag ('') match too
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dm.VariableSort.ALPHABETICAL_ASC)
        )

    kind_filter = f""" AND "kind" = '{kind}'""" if kind else ""
    return [
        variable("district", "区域", 'SHOW TAG VALUES FROM "reading" WITH KEY = "district"',
                 "District of the site (the InfluxDB sink's `district`)."),
        variable("site", "工地", 'SHOW TAG VALUES FROM "reading" WITH KEY = "site" WHERE "district" =~ /^$district$/',
                 "Sites of the selected districts."),
        variable("node", "节点",
                 f'SHOW TAG VALUES FROM "reading" WITH KEY = "node" WHERE "site" =~ /^$site$/{kind_filter}',
                 "Sensor nodes of the selected sites."),
    ]


def board(uid: str, title: str, description: str, kind: str | None, with_node: bool = True) -> db.Dashboard:
    chosen = variables(kind) if with_node else variables(kind)[:2]
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["sitewatch"])
        .timezone("browser")
        .time("now-24h", "now")
        .refresh("1m")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .variables(chosen)
    )


# ---------------------------------------------------------------------------
# 总览 (overview)
# ---------------------------------------------------------------------------

OVERVIEW_COLUMNS = {  # query field -> column title
    "pm10": "PM10 (μg/m³)",
    "wind_speed": "风速 (m/s)",
    "wind_gust": "3 秒阵风 (m/s)",
    "alarms_raised": "报警",
    "alarms_cleared": "已解除",
    "last_seen": "最后数据",
}


def latest(field: str, channel: str, ref: str) -> Influx:
    query = (
        f'SELECT last("value") AS "{field}" FROM "reading" WHERE '
        f"""{where(eq("channel", channel), eq("quality", "N"), SITE_FILTER)} GROUP BY "site\""""
    )
    return Influx(ref, query, "table")


def alarm_count(field: str, state: str, ref: str) -> Influx:
    query = (
        f'SELECT count("limit") AS "{field}" FROM "alarm" WHERE '
        f"""{where(eq("state", state), SITE_FILTER)} GROUP BY "site\""""
    )
    return Influx(ref, query, "table")


def overview() -> db.Dashboard:
    last_seen = Influx(
        "A", f'SELECT last("seq") AS "last_seen" FROM "reading" WHERE {where(SITE_FILTER)} GROUP BY "site"', "table"
    )
    sites = (
        table.Panel()
        .title("各工地现状")
        .description(
            "Every selected site in one row: its latest valid PM10 and wind speed and 3-s gust (the last sample in "
            "the time range, flag N), the alarm events raised and cleared in the range (any alarm: dust, wind, "
            "noise, tilt), the alarms still active (raised minus cleared) and when its last sample was taken (data "
            "freshness). Sorted with the sites that have active alarms first; PM10 red above the default "
            f"dust setting ({PM10_LIMIT:g} μg/m³, a 1-h mean limit: a single sample above it is a warning sign), "
            f"gust orange from {CRANE_GUST:g} m/s (crane stop) and red from {LIFTING_GUST:g} m/s (lifting stop)."
        )
        .datasource(DATASOURCE)
        .targets([
            last_seen,
            latest("pm10", "pm10", "B"),
            latest("wind_speed", "wind_speed", "C"),
            latest("wind_gust", "wind_gust_3s", "D"),
            alarm_count("alarms_raised", "raised", "E"),
            alarm_count("alarms_cleared", "cleared", "F"),
        ])
        # InfluxQL cannot join measurements nor return a time as a value: Grafana joins the six frames by
        # site; their "Time" columns are told apart as "Time 1".."Time 6" in query order. The freshness query
        # goes first, so that its time stays "Time 1" (or "Time", alone) when a later query has no rows (no
        # alarm in the range). Not run in tests: dashboards/README.md section 4.
        .with_transformation(dm.DataTransformerConfig(id_val="joinByField", options={"byField": "site",
                                                                                     "mode": "outer"}))
        .with_transformation(dm.DataTransformerConfig(id_val="calculateField", options={
            "mode": "binary", "alias": "active_alarms", "replaceFields": False,
            "binary": {"left": "alarms_raised", "operator": "-", "right": "alarms_cleared"},
        }))
        .with_transformation(dm.DataTransformerConfig(id_val="organize", options={
            "excludeByName": {f"Time {n}": True for n in range(2, 7)},
            "renameByName": {"site": "工地", "Time": OVERVIEW_COLUMNS["last_seen"],
                             "Time 1": OVERVIEW_COLUMNS["last_seen"], "active_alarms": "未解除报警",
                             **{k: v for k, v in OVERVIEW_COLUMNS.items() if k != "last_seen"}},
        }))
        .sort_by([common_builders.TableSortByFieldState().display_name("未解除报警").desc(True)])
        .override_by_name(OVERVIEW_COLUMNS["pm10"], [
            dm.DynamicConfigValue(id_val="unit", value=UNIT_PM),
            dm.DynamicConfigValue(id_val="thresholds", value=steps((None, GREEN), (PM10_LIMIT, RED)).build()),
            dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
        ])
        .override_by_name(OVERVIEW_COLUMNS["wind_gust"], [
            dm.DynamicConfigValue(id_val="unit", value=UNIT_WIND),
            dm.DynamicConfigValue(id_val="thresholds", value=steps(
                (None, GREEN), (CRANE_GUST, ORANGE), (LIFTING_GUST, RED)).build()),
            dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
        ])
        .override_by_name(OVERVIEW_COLUMNS["wind_speed"], [dm.DynamicConfigValue(id_val="unit", value=UNIT_WIND)])
        .override_by_name(OVERVIEW_COLUMNS["last_seen"], [
            dm.DynamicConfigValue(id_val="unit", value="dateTimeFromNow"),
        ])
        .override_by_name("未解除报警", [
            dm.DynamicConfigValue(id_val="thresholds", value=steps((None, GREEN), (1, RED)).build()),
            dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
        ])
        .span(24)
        .height(12)
    )
    return board("sitewatch-overview", "总览", "Every site the bureau oversees: latest dust and wind, alarms and "
                 "data freshness.", None, with_node=False).with_panel(sites)


# ---------------------------------------------------------------------------
# 扬尘监测 (dust)
# ---------------------------------------------------------------------------


def exceedance_query(limit: float) -> str:
    return (
        'SELECT count("value") AS "exceedances" FROM "aggregate" WHERE '
        f"""{where(eq("channel", "pm10_1h_mean"), VALID, f'"value" > {limit:g}', NODE_FILTER)}"""
        ' GROUP BY "site", "node"'
    )


def dust() -> db.Dashboard:
    pm10 = (
        series("PM10 1 小时均值", "Hourly PM10 mean per monitor (the latest revision of each window, valid windows "
               f"only: at least 75 % of the expected samples), against the dust setting of {PM10_LIMIT:g} μg/m³ "
               "(the default of [limits.dust] pm10_1h_limit, unconfirmed: no Guangdong limit was found).", UNIT_PM,
               [Influx("A", aggregate_query("pm10_1h_mean"), alias=SERIES_ALIAS)])
        .thresholds(steps((None, GREEN), (PM10_LIMIT, RED)))
        .thresholds_style(limit_lines())
    )
    pm25 = series("PM2.5 1 小时均值", "Hourly PM2.5 mean per monitor (latest revision, valid windows only).",
                  UNIT_PM, [Influx("A", aggregate_query("pm25_1h_mean"), alias=SERIES_ALIAS)])
    raw = series(
        "PM10 / PM2.5 实测", "The monitors' samples averaged per display interval; only samples flagged N "
        "(normal), so a fault, a spike or a stuck sensor does not show as dust.", UNIT_PM,
        [Influx("A", 'SELECT mean("value") FROM "reading" WHERE '
                f"""{where('"channel" =~ /^pm(10|25)$/', eq("quality", "N"), NODE_FILTER)}"""
                ' GROUP BY time($__interval), "site", "node", "channel" fill(none)',
                alias="$tag_site $tag_node $tag_channel")],
    )
    exceed = (
        stat.Panel()
        .title("超标小时数")
        .description(f"Hours in the range whose valid PM10 1-h mean exceeded {PM10_LIMIT:g} μg/m³, per monitor.")
        .datasource(DATASOURCE)
        .targets([Influx("A", exceedance_query(PM10_LIMIT), "table")])
        .unit("none")
        .no_value("0")
        .thresholds(steps((None, GREEN), (1, RED)))
        .span(12)
        .height(9)
    )
    humid = (
        statetimeline.Panel()
        .title("高湿时段")
        .description(
            f"Periods when the relative humidity at a dust monitor was above {LIMITS.humidity.rh_flag_threshold:g} % "
            "(the gateway's pm_humid flag, [limits.humidity] rh_flag_threshold): optical PM sensors read high in "
            "humid air, so PM values of these periods are flagged as doubtful."
        )
        .datasource(DATASOURCE)
        .targets([Influx("A", 'SELECT max("value") FROM "reading" WHERE '
                          f"""{where(eq("channel", "pm_humid"), NODE_FILTER)}"""
                          ' GROUP BY time($__interval), "site", "node" fill(none)', alias=SERIES_ALIAS)])
        .mappings([dm.ValueMap(options={
            "0": dm.ValueMappingResult(text="正常", color=GREEN),
            "1": dm.ValueMappingResult(text="高湿", color=ORANGE),
        })])
        .unit("bool")
        .span(24)
        .height(6)
    )
    return (
        board("sitewatch-dust", "扬尘监测", "Dust at the boundary monitors: PM2.5 and PM10, hourly means against "
              "the limit, exceedances, humid periods.", "dust")
        .with_panel(pm10).with_panel(pm25).with_panel(raw).with_panel(exceed).with_panel(humid)
    )


# ---------------------------------------------------------------------------
# 风速风向 (wind)
# ---------------------------------------------------------------------------

WIND_ALARM_QUERY = (
    'SELECT "value", "limit", "reason" FROM "alarm" WHERE '
    f"""{where('"alarm" =~ /_wind$/', NODE_FILTER)} GROUP BY "site", "node", "alarm", "severity", "state\""""
)


def wind() -> db.Dashboard:
    speed = (
        series("10 分钟平均风速与 3 秒阵风", "10-min mean wind speed (WMO) and the window's highest 3-s gust "
               f"(WMO-No. 306), against the crane-stop gust of {CRANE_GUST:g} m/s (GB 55034-2022 3.4.7: crane "
               f"installation, dismantling, jacking) and {LIFTING_GUST:g} m/s (JGJ 33-2012 4.1.15: open-air lifting).",
               UNIT_WIND,
               [Influx("A", aggregate_query("wind_10min_speed_mean"), alias="$tag_site $tag_node 平均"),
                Influx("B", aggregate_query("wind_10min_gust"), alias="$tag_site $tag_node 阵风")])
        .thresholds(steps((None, GREEN), (CRANE_GUST, ORANGE), (LIFTING_GUST, RED)))
        .thresholds_style(limit_lines())
    )
    force = (
        series("蒲福风级", "Beaufort force of the 10-min mean speed; from force "
               f"{WORK_AT_HEIGHT_BEAUFORT} no work at height (JGJ 80-2016 3.0.8).", "none",
               [Influx("A", aggregate_query("wind_10min_beaufort"), alias=SERIES_ALIAS)])
        .thresholds(steps((None, GREEN), (WORK_AT_HEIGHT_BEAUFORT, RED)))
        .thresholds_style(limit_lines())
        .draw_style(common.GraphDrawStyle.BARS)
    )
    direction = (
        series("风向", "10-min mean wind direction, degrees from north the wind comes from (a circular mean of "
               "unit vectors; calm samples left out).", "degree",
               [Influx("A", aggregate_query("wind_10min_dir_mean"), alias=SERIES_ALIAS)])
        .draw_style(common.GraphDrawStyle.POINTS)
        .min(0)
        .max(360)
    )
    events = (
        table.Panel()
        .title("风速报警")
        .description("Wind alarm events of the range (crane, lifting, work at height, placing boom): when each was "
                     "raised and cleared, the value that caused it and the limit.")
        .datasource(DATASOURCE)
        .targets([Influx("A", WIND_ALARM_QUERY, "table")])
        .override_by_name("value", [dm.DynamicConfigValue(id_val="unit", value=UNIT_WIND)])
        .override_by_name("limit", [dm.DynamicConfigValue(id_val="unit", value=UNIT_WIND)])
        .span(12)
        .height(9)
    )
    annotation = (
        db.AnnotationQuery()
        .name("风速报警")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color(RED)
    )
    return (
        board("sitewatch-wind", "风速风向", "Wind at the masts and crane tops: mean speed, 3-s gusts, Beaufort force, "
              "direction, crane-stop thresholds and alarms.", "wind")
        .with_panel(speed).with_panel(force).with_panel(direction).with_panel(events)
        .annotation(annotation)
    )


# The wind dashboard's annotation: InfluxDB annotations take a raw query the SDK has no field for
# (generate.py writes it into the annotation's JSON).
WIND_ANNOTATION_QUERY = (
    'SELECT "value", "reason" FROM "alarm" WHERE '
    f"""{where('"alarm" =~ /_wind$/', eq("state", "raised"), NODE_FILTER)}"""
)


# ---------------------------------------------------------------------------
# 噪声 (noise)
# ---------------------------------------------------------------------------


def noise() -> db.Dashboard:
    leq = (
        series(f"等效声级 LAeq ({NOISE_MINUTES} 分钟)",
               f"Equivalent continuous A-weighted level of each {NOISE_PERIOD} evaluation period "
               "(energy mean, GB 12523-2011), against the day limit of "
               f"{NOISE_DAY:g} dB(A) (06:00-22:00) and the night limit of {NOISE_NIGHT:g} dB(A) (22:00-06:00).",
               UNIT_DBA, [Influx("A", aggregate_query(f"noise_{NOISE_PERIOD}_leq"), alias=SERIES_ALIAS)])
        .thresholds(steps((None, GREEN), (NOISE_NIGHT, ORANGE), (NOISE_DAY, RED)))
        .thresholds_style(limit_lines())
    )
    lmax = (
        series(f"最大声级 Lmax ({NOISE_MINUTES} 分钟)",
               f"Highest 1-s level of each {NOISE_PERIOD} period. At night it may exceed the night limit by at "
               f"most {LIMITS.noise.night_lmax_excess:g} dB(A): the line at "
               f"{NOISE_NIGHT_LMAX:g} dB(A) applies 22:00-06:00 (GB 12523-2011).",
               UNIT_DBA, [Influx("A", aggregate_query(f"noise_{NOISE_PERIOD}_lmax"), alias=SERIES_ALIAS)])
        .thresholds(steps((None, GREEN), (NOISE_NIGHT_LMAX, RED)))
        .thresholds_style(limit_lines())
    )
    return (
        board("sitewatch-noise", "噪声", "Boundary noise: LAeq against the day and night limits, night Lmax.",
              "noise")
        .with_panel(leq).with_panel(lmax)
    )


# ---------------------------------------------------------------------------
# 倾斜 (tilt)
# ---------------------------------------------------------------------------


def tilt_steps() -> db.ThresholdsConfig:
    return steps((None, RED), (-TILT_ALARM, ORANGE), (-TILT_PREWARNING, GREEN), (TILT_PREWARNING, ORANGE),
                 (TILT_ALARM, RED))


def tilt() -> db.Dashboard:
    slope = (
        series("倾斜", "Slope of each high-formwork inclinometer axis from its zeroed baseline, per-mille, averaged "
               f"per display interval (flag N only), against the pre-warning ({TILT_PREWARNING:g} ‰) and alarm "
               f"({TILT_ALARM:g} ‰) levels of DBJ/T 15-197-2020 table 8.0.4 (as quoted, unconfirmed).", UNIT_PERMILLE,
               [Influx("A", 'SELECT mean("value") FROM "reading" WHERE '
                       f"""{where('"channel" =~ /^slope_(x|y)$/', eq("quality", "N"), NODE_FILTER)}"""
                       ' GROUP BY time($__interval), "site", "node", "channel" fill(none)',
                       alias="$tag_site $tag_node $tag_channel")])
        .thresholds(tilt_steps())
        .thresholds_style(limit_lines())
    )
    largest = (
        series("10 分钟最大偏移", "Largest deviation (signed) of each axis in each 10-min window.", UNIT_PERMILLE,
               [Influx("A", aggregate_query("slope_x_10min_deviation_max"), alias="$tag_site $tag_node x"),
                Influx("B", aggregate_query("slope_y_10min_deviation_max"), alias="$tag_site $tag_node y")])
        .thresholds(tilt_steps())
        .thresholds_style(limit_lines())
    )
    return (
        board("sitewatch-tilt", "倾斜", "High formwork inclination against the pre-warning and alarm levels.", "tilt")
        .with_panel(slope).with_panel(largest)
    )


# ---------------------------------------------------------------------------
# 网关 (gateways)
# ---------------------------------------------------------------------------

GATEWAY_FIELDS = ("nodes_online", "nodes_total", "queue_depth", "queue_oldest_age_s", "dropped_total", "uptime_s")


def gateways() -> db.Dashboard:
    now = (
        table.Panel()
        .title("网关状态")
        .description("Each gateway's latest health record (measurement gateway_health, written every [health] "
                     "interval_s): nodes online of configured, records queued and not yet delivered to every sink "
                     "and the age of the oldest, readings dropped since install, uptime.")
        .datasource(DATASOURCE)
        .targets([Influx("A", "SELECT " + ", ".join(f'last("{f}") AS "{f}"' for f in GATEWAY_FIELDS)
                         + f' FROM "gateway_health" WHERE {where(SITE_FILTER)} GROUP BY "site", "gateway"', "table")])
        .override_by_name("queue_oldest_age_s", [dm.DynamicConfigValue(id_val="unit", value="s")])
        .override_by_name("uptime_s", [dm.DynamicConfigValue(id_val="unit", value="s")])
        .span(24)
        .height(8)
    )
    queue = series(
        "队列积压", "Records in the gateway's durable queue not yet delivered to every sink, and the age of the "
        "oldest (right axis): a growing queue is an uplink that is down.", "short",
        [Influx("A", f'SELECT max("queue_depth") FROM "gateway_health" WHERE {where(SITE_FILTER)}'
                ' GROUP BY time($__interval), "site", "gateway" fill(none)', alias="$tag_site $tag_gateway 积压"),
         Influx("B", f'SELECT max("queue_oldest_age_s") FROM "gateway_health" WHERE {where(SITE_FILTER)}'
                ' GROUP BY time($__interval), "site", "gateway" fill(none)', alias="$tag_site $tag_gateway 最旧")],
    ).override_by_query("B", [dm.DynamicConfigValue(id_val="unit", value="s"),
                              dm.DynamicConfigValue(id_val="custom.axisPlacement", value="right")])
    drops = series(
        "丢弃记录", "Readings and aggregates the gateway dropped (quotas, refused) per display interval: the "
        "increase of its dropped_total counter.", "short",
        [Influx("A", 'SELECT non_negative_difference(max("dropped_total")) FROM "gateway_health" WHERE '
                f'{where(SITE_FILTER)} GROUP BY time($__interval), "site", "gateway" fill(none)',
                alias="$tag_site $tag_gateway")],
    )
    success = series(
        "轮询成功率", "Share of the node's polls that succeeded over the gateway's recent window (node_health "
        "success_rate), per node.", "percentunit",
        [Influx("A", f'SELECT mean("success_rate") FROM "node_health" WHERE {where(NODE_FILTER)}'
                ' GROUP BY time($__interval), "site", "node" fill(none)', alias=SERIES_ALIAS)],
    ).min(0).max(1)
    online = (
        statetimeline.Panel()
        .title("节点在线")
        .description("Whether each node answered its polls (node_health online), every health report: a node "
                     "offline for one report shows, however long the display interval (a last() per interval would "
                     "hide an outage that ended before the interval did).")
        .datasource(DATASOURCE)
        .targets([Influx("A", f'SELECT "online" FROM "node_health" WHERE {where(NODE_FILTER)} GROUP BY "site", "node"',
                         alias=SERIES_ALIAS)])
        .mappings([dm.ValueMap(options={
            "true": dm.ValueMappingResult(text="在线", color=GREEN),
            "false": dm.ValueMappingResult(text="离线", color=RED),
        })])
        .unit("bool_on_off")
        .span(24)
        .height(6)
    )
    outages = (
        table.Panel()
        .title("节点中断")
        .description("Outages of the range: when a node (or the gateway itself) delivered nothing, for how long and "
                     "how many samples were missed (measurement outage).")
        .datasource(DATASOURCE)
        .targets([Influx("A", 'SELECT "duration_s", "missed", "reason" FROM "outage" WHERE '
                          f'{where(NODE_FILTER)} GROUP BY "site", "node"', "table")])
        .override_by_name("duration_s", [dm.DynamicConfigValue(id_val="unit", value="s")])
        .span(24)
        .height(8)
    )
    return (
        board("sitewatch-gateways", "网关", "The sites' gateways: online state, queue depth and age, drops, poll "
              "success.", None)
        .with_panel(now).with_panel(queue).with_panel(drops).with_panel(success).with_panel(online)
        .with_panel(outages)
    )


BOARDS = {"overview": overview, "dust": dust, "wind": wind, "noise": noise, "tilt": tilt, "gateways": gateways}
