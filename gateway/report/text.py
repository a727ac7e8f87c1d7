"""Words and number formats the report's charts and PDF share (Chinese first, English after it)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from gateway.profiles.kinds import alarm_texts, kind_profiles
from gateway.profiles.live import LiveTable
from gateway.report.model import DaySummary

TITLE = "工地环境与安全日报"
TITLE_EN = "Daily site report"


def _sections() -> dict[str, str]:
    return {**{name: p.report_title for name, p in kind_profiles().items()},
            "alarms": "报警 Alarms", "completeness": "数据完整性 Data completeness"}


# Section headings: each kind's (its profile's [report] title), then the report's own.
SECTIONS: Mapping[str, str] = LiveTable(_sections)
# Alarm names in the alarm table (the profiles' [alarm_text] short names).
ALARM_NAMES: Mapping[str, str] = LiveTable(lambda: {name: text.short for name, text in alarm_texts().items()})
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
