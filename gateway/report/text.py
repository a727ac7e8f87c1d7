"""Words and number formats the report's charts and PDF share (Chinese first, English after it)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gateway.report.model import DaySummary

TITLE = "工地环境与安全日报"
TITLE_EN = "Daily site report"
SECTIONS = {
    "dust": "扬尘 Dust (PM2.5 / PM10)",
    "noise": "噪声 Noise (GB 12523-2011)",
    "wind": "风速风向 Wind",
    "tilt": "高支模倾斜 Formwork tilt",
    "alarms": "报警 Alarms",
    "completeness": "数据完整性 Data completeness",
}
ALARM_NAMES = {
    "crane_wind": "塔吊停止作业 crane stop",
    "lifting_wind": "停止吊装 lifting stop",
    "work_at_height_wind": "停止高处作业 work at height",
    "placing_boom_wind": "布料机停止 placing boom",
    "noise": "噪声超标 noise",
    "noise_night_lmax": "夜间最大声级 night Lmax",
    "formwork_tilt": "高支模倾斜 formwork tilt",
    "dust": "扬尘超标 dust",
}
SEVERITIES = {"alarm": "报警 alarm", "prewarning": "预警 pre-warning"}


def local(t: float, summary: DaySummary) -> datetime:
    return datetime.fromtimestamp(t, timezone(timedelta(seconds=summary.tz_offset_s)))


def clock(t: float | None, summary: DaySummary, *, open_text: str = "—") -> str:
    """HH:MM in the site's local time; with the date when `t` is outside the report's day."""
    if t is None:
        return open_text
    when = local(t, summary)
    if summary.start <= t < summary.end:
        return when.strftime("%H:%M")
    if t == summary.end:
        return "24:00"
    return when.strftime("%m-%d %H:%M")


def hours(t: float, summary: DaySummary) -> float:
    """Hours after local midnight of the report's day (the charts' x axis)."""
    return (t - summary.start) / 3600.0


def number(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "—"
    text = f"{value:.{digits}f}"
    return f"{text} {unit}" if unit else text


def duration(seconds: float) -> str:
    minutes = round(seconds / 60.0)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
