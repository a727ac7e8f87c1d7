"""Which charts the status page shows, from the recent readings (recent.py) and each node's limits. Pure.

Per wind node: speed and 3 s gust against the crane, lifting and work-at-height thresholds, and a wind rose;
per dust node: PM2.5 and PM10 against the PM10 limit; per noise node: LAeq (1 s) against the day/night limit
in force; per tilt node: both slopes against the pre-warning and alarm levels, either way. The limits are the
ones the alarms judge by (a `threshold` command's change shows at the next refresh). A node of any other kind
(one added as a profile) gets a chart of its channels (the profile's mean channels, or every one it reports),
titled with the kind's name from its profile, without limit lines: a profile alarm's limit may be overridden
in [[processing.alarm]], which the limits here do not carry, and a chart must not show a limit nobody judges by.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.ops.charts import ALARM, PREWARNING, Limit, Series, StepLimit, day_night_steps, time_chart, wind_rose
from gateway.ops.recent import RecentReadings
from gateway.process.limits import SiteLimits
from gateway.profiles.kinds import kind_label, kind_profiles

WORDS = {
    "zh": {"wind": "风速", "gust": "3秒阵风", "rose": "风向玫瑰图", "dust": "扬尘", "noise": "噪声", "tilt": "倾斜",
           "crane": "塔吊安拆", "lifting": "停止吊装", "height": "停止高处作业", "pm10_limit": "PM10限值",
           "day_night": "昼/夜限值", "prewarning": "预警", "alarm": "报警", "calm": "静风", "no_data": "暂无数据",
           "minutes": "分钟"},
    "en": {"wind": "Wind", "gust": "gust 3 s", "rose": "Wind rose", "dust": "Dust", "noise": "Noise", "tilt": "Tilt",
           "crane": "crane erection", "lifting": "stop lifting", "height": "stop work at height",
           "pm10_limit": "PM10 limit", "day_night": "day/night limit", "prewarning": "pre-warning", "alarm": "alarm",
           "calm": "calm", "no_data": "no data yet", "minutes": "minutes"},
}


def page_charts(recent: RecentReadings, limits_of: Callable[[str], SiteLimits], now: float,
                lang: str = "zh") -> list[dict[str, str]]:
    """[{"id", "kind", "node", "svg"}] in a stable order: wind, dust, noise, tilt, then other kinds by name;
    nodes by name."""
    w = WORDS.get(lang, WORDS["zh"])
    span = recent.span_s
    since = now - span
    charts: list[dict[str, str]] = []

    def add(kind: str, node: str, suffix: str, svg: str) -> None:
        charts.append({"id": f"{kind}-{node}{suffix}", "kind": kind, "node": node, "svg": svg})

    for node in recent.nodes("wind"):
        wind = limits_of(node).wind
        add("wind", node, "", time_chart(
            f"{w['wind']} {node}", "m/s",
            [Series(w["wind"], recent.series(node, "wind_speed", since)),
             Series(w["gust"], recent.series(node, "wind_gust_3s", since))],
            [Limit(w["crane"], wind.crane_gust, PREWARNING), Limit(w["height"], wind.work_at_height, ALARM),
             Limit(w["lifting"], wind.lifting_gust, ALARM)],
            now, span, no_data=w["no_data"]))
        add("wind", node, "-rose", wind_rose(f"{w['rose']} {node}", recent.rose(node, since), wind.calm_speed,
                                             wind.crane_gust, w["calm"], w["no_data"]))
    for node in recent.nodes("dust"):
        dust = limits_of(node).dust
        add("dust", node, "", time_chart(
            f"{w['dust']} {node}", "ug/m3",
            [Series("PM2.5", recent.series(node, "pm25", since)), Series("PM10", recent.series(node, "pm10", since))],
            [Limit(w["pm10_limit"], dust.pm10_1h_limit)], now, span, no_data=w["no_data"]))
    for node in recent.nodes("noise"):
        limits = limits_of(node)
        noise = limits.noise
        steps = day_night_steps(since, now, noise.day_limit, noise.night_limit, noise.day_start_s,
                                noise.night_start_s, limits.time.tz_offset_s)
        add("noise", node, "", time_chart(
            f"{w['noise']} {node}", "dB(A)", [Series("LAeq 1 s", recent.series(node, "laeq_1s", since))], [],
            now, span, steps=[StepLimit(w["day_night"], steps)], no_data=w["no_data"]))
    for node in recent.nodes("tilt"):
        tilt = limits_of(node).tilt
        levels = []
        for sign in (1, -1):
            levels += [Limit(w["prewarning"], sign * tilt.prewarning_permille, PREWARNING),
                       Limit(w["alarm"], sign * tilt.alarm_permille, ALARM)]
        add("tilt", node, "", time_chart(
            f"{w['tilt']} {node}", "‰",
            [Series("x", recent.series(node, "slope_x", since)), Series("y", recent.series(node, "slope_y", since))],
            levels, now, span, symmetric=True, no_data=w["no_data"]))
    for kind in sorted(recent.kinds() - CHARTED):
        profile = kind_profiles().get(kind)
        wanted = (profile.mean_channels or profile.measurement_names) if profile is not None else ()
        title = kind_label(kind, lang if lang in WORDS else "zh")
        for node in recent.nodes(kind):
            seen = recent.channels(node)
            channels = [c for c in wanted if c in seen] or sorted(seen)
            for i, unit in enumerate(dict.fromkeys(seen[c] for c in channels)):  # one chart per unit
                series = [Series(c, recent.series(node, c, since)) for c in channels if seen[c] == unit]
                add(kind, node, f"-{i}" if i else "", time_chart(f"{title} {node}", unit, series, [], now, span,
                                                                 no_data=w["no_data"]))
    return charts


CHARTED = frozenset({"wind", "dust", "noise", "tilt"})  # the kinds with charts of their own above
