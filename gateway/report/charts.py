"""The report's charts as PNG files (matplotlib, Agg: no display needed), one per section.

Each function draws one section of a DaySummary against the local hours of the day and returns
the file it wrote, or None when the site has no node of that kind. The x axis is hours after
local midnight (0-24); limits are drawn as lines, stop periods and outages as shaded spans.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gateway.report.model import Bin, DaySummary, Period
from gateway.report.text import SECTIONS, hours

DPI = 110  # small files: the sample report in docs/ stays a few hundred KB
SIZE = (7.2, 3.0)  # inches: the width of an A4 page's text
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
LIMIT = "#d62728"
PREWARNING = "#ff9f1c"


def use_font(font: Path) -> str:
    """Register the CJK font with matplotlib; returns its family name for the figures."""
    font_manager.fontManager.addfont(str(font))
    return str(font_manager.FontProperties(fname=str(font)).get_name())


def _figure(family: str, rows: int = 1) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(SIZE[0], SIZE[1] * rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)
    out = [row[0] for row in axes]
    for ax in out:
        ax.set_xlim(0, 24)
        ax.set_xticks(range(0, 25, 2))
        ax.set_xticklabels([f"{h:02d}:00" for h in range(0, 25, 2)], fontsize=7, family=family)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    return figure, out


def _text(ax: Axes, family: str, title: str, ylabel: str) -> None:
    ax.set_title(title, family=family, fontsize=10, loc="left")
    ax.set_ylabel(ylabel, family=family, fontsize=8)


def _steps(ax: Axes, summary: DaySummary, series: Sequence[Bin], label: str, colour: str, family: str) -> None:
    """A bin series as horizontal steps; invalid bins (< 75 % of samples) thin and dotted."""
    ax.plot([], [], color=colour, lw=2.0, label=label)  # the legend's entry: the style of a valid bin
    for b in series:
        if b.value is None:
            continue
        x0, x1 = hours(b.start, summary), hours(b.end, summary)
        ax.plot([x0, x1], [b.value, b.value], color=colour, lw=2.0 if b.valid else 1.0,
                ls="-" if b.valid else ":")


def _hours_of(p: Period, summary: DaySummary) -> tuple[float, float]:
    """A period's start and end in hours after midnight, clipped to the day (open ends at the day's edges)."""
    a = hours(max(p.start if p.start is not None else summary.start, summary.start), summary)
    b = hours(min(p.end if p.end is not None else summary.end, summary.end), summary)
    return a, b


def _peaks(summary: DaySummary, bins: Sequence[Bin]) -> list[tuple[float, float]]:
    """(mid-bin hour, peak) of the bins that have a peak."""
    return [(hours((b.start + b.end) / 2, summary), b.peak) for b in bins if b.peak is not None]


def _peak_line(ax: Axes, summary: DaySummary, bins: Sequence[Bin], colour: str, label: str) -> None:
    peaks = _peaks(summary, bins)
    if peaks:
        ax.plot([x for x, _ in peaks], [y for _, y in peaks], color=colour, lw=0.8, alpha=0.7, label=label)


def _spans(ax: Axes, summary: DaySummary, periods: Sequence[Period], colour: str, label: str) -> None:
    for i, p in enumerate(periods):
        a, b = _hours_of(p, summary)
        ax.axvspan(a, b, color=colour, alpha=0.15, label=label if i == 0 else None)


def _save(figure: Figure, family: str, path: Path) -> Path:
    for ax in figure.axes:
        legend = ax.get_legend_handles_labels()
        if legend[0]:
            ax.legend(prop={"family": family, "size": 7}, loc="upper left", ncols=3)
    figure.savefig(path, dpi=DPI)
    return path


def dust_chart(summary: DaySummary, family: str, path: Path) -> Path | None:
    if not summary.dust:
        return None
    figure, (ax,) = _figure(family)
    for i, node in enumerate(summary.dust):
        _steps(ax, summary, node.pm10_hours, f"{node.node} PM10", COLOURS[(2 * i) % len(COLOURS)], family)
        _steps(ax, summary, node.pm25_hours, f"{node.node} PM2.5", COLOURS[(2 * i + 1) % len(COLOURS)], family)
    limit = summary.dust[0].pm10_limit
    ax.axhline(limit, color=LIMIT, ls="--", lw=1, label=f"PM10 1 h 限值 limit {limit:g}")
    ax.set_ylim(bottom=0)
    _text(ax, family, SECTIONS["dust"] + " — 小时均值 hourly means", "µg/m³")
    return _save(figure, family, path)


def noise_chart(summary: DaySummary, family: str, path: Path) -> Path | None:
    if not summary.noise:
        return None
    figure, (ax,) = _figure(family)
    for i, node in enumerate(summary.noise):
        colour = COLOURS[i % len(COLOURS)]
        _steps(ax, summary, node.periods, f"{node.node} LAeq 20 min", colour, family)
        peaks = _peaks(summary, node.periods)
        if peaks:
            ax.scatter([x for x, _ in peaks], [y for _, y in peaks], s=6, color=colour, marker="^",
                       label=f"{node.node} Lmax")
    first = summary.noise[0]
    # The limit by the hour: night limit before the day starts and after the night starts.
    day_from, night_from = hours(first.day_start, summary), hours(first.day_end, summary)
    xs = [0.0, day_from, day_from, night_from, night_from, 24.0]
    ys = [first.night.limit, first.night.limit, first.day.limit, first.day.limit, first.night.limit,
          first.night.limit]
    ax.plot(xs, ys, color=LIMIT, ls="--", lw=1, label="LAeq 限值 limit")
    if first.night.lmax_limit is not None:
        ax.plot([0.0, day_from], [first.night.lmax_limit] * 2, color=PREWARNING, ls=":", lw=1,
                label="夜间 Lmax 限值 night Lmax limit")
        ax.plot([night_from, 24.0], [first.night.lmax_limit] * 2, color=PREWARNING, ls=":", lw=1)
    _text(ax, family, SECTIONS["noise"] + " — 20 min 评价时段 evaluation periods", "dB(A)")
    return _save(figure, family, path)


def wind_chart(summary: DaySummary, family: str, path: Path) -> Path | None:
    if not summary.wind:
        return None
    figure, (ax,) = _figure(family)
    for i, node in enumerate(summary.wind):
        colour = COLOURS[i % len(COLOURS)]
        _steps(ax, summary, node.bins, f"{node.node} 10 min 均值 mean", colour, family)
        _peak_line(ax, summary, node.bins, colour, f"{node.node} 3 s 阵风 gust")
        _spans(ax, summary, node.crane_stops, PREWARNING, "塔吊停止 crane stop" if i == 0 else "")
        _spans(ax, summary, node.lifting_stops, LIMIT, "停止吊装 lifting stop" if i == 0 else "")
    first = summary.wind[0]
    ax.axhline(first.crane_limit, color=PREWARNING, ls="--", lw=1, label=f"{first.crane_limit:g} m/s")
    ax.axhline(first.lifting_limit, color=LIMIT, ls="--", lw=1, label=f"{first.lifting_limit:g} m/s")
    ax.set_ylim(bottom=0)
    _text(ax, family, SECTIONS["wind"] + " — 平均风速与阵风 mean speed and gusts", "m/s")
    return _save(figure, family, path)


def tilt_chart(summary: DaySummary, family: str, path: Path) -> Path | None:
    if not summary.tilt:
        return None
    figure, (ax,) = _figure(family)
    for i, node in enumerate(summary.tilt):
        colour = COLOURS[i % len(COLOURS)]
        _steps(ax, summary, node.bins, f"{node.node} 10 min", colour, family)
        _peak_line(ax, summary, node.bins, colour, f"{node.node} 最大 max")
    first = summary.tilt[0]
    ax.axhline(first.prewarning, color=PREWARNING, ls="--", lw=1, label=f"预警 pre-warning {first.prewarning:g} ‰")
    ax.axhline(first.alarm, color=LIMIT, ls="--", lw=1, label=f"报警 alarm {first.alarm:g} ‰")
    ax.set_ylim(bottom=0)
    _text(ax, family, SECTIONS["tilt"] + " — 合成倾斜 combined slope", "‰")
    return _save(figure, family, path)


def completeness_chart(summary: DaySummary, family: str, path: Path) -> Path | None:
    if not summary.completeness:
        return None
    rows = summary.completeness
    figure = Figure(figsize=(SIZE[0], 0.9 + 0.35 * (len(rows) + 1)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    labels = [c.node for c in rows] + ["gateway"]
    for y, c in enumerate(rows):
        _bar(ax, summary, y, c.silences, "#bbbbbb")
        _bar(ax, summary, y, c.outages, LIMIT)
        _bar(ax, summary, y, c.gaps, "#000000")
    _bar(ax, summary, len(rows), summary.gateway_outages, LIMIT)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, family=family, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 2))
    ax.set_xticklabels([f"{h:02d}:00" for h in range(0, 25, 2)], fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(SECTIONS["completeness"] + " — 灰 无数据 no samples · 红 中断 outage · 黑 丢失 lost",
                 family=family, fontsize=10, loc="left")
    figure.savefig(path, dpi=DPI)
    return path


def _bar(ax: Axes, summary: DaySummary, y: int, periods: Sequence[Period], colour: str) -> None:
    spans = []
    for p in periods:
        a, b = _hours_of(p, summary)
        spans.append((a, max(b - a, 0.05)))
    if spans:
        ax.broken_barh(spans, (y - 0.35, 0.7), color=colour)


CHARTS: dict[str, Callable[[DaySummary, str, Path], Path | None]] = {
    "dust": dust_chart,
    "noise": noise_chart,
    "wind": wind_chart,
    "tilt": tilt_chart,
    "completeness": completeness_chart,
}
