"""The report as a PDF (fpdf2): a summary page of tables, then the charts, then the lists of periods.

Every text goes through ``Writer.text``, which refuses a character the CJK font has no glyph for
(it would print as an empty box): a report that cannot be read is an error, not a silent box.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos
from fpdf.fonts import FontFace

from gateway.report.fonts import missing_glyphs
from gateway.report.model import Bin, DaySummary, NoisePart, Period
from gateway.report.summary import ReportError
from gateway.report.text import (
    ALARM_NAMES,
    SECTIONS,
    SEVERITIES,
    TITLE,
    TITLE_EN,
    clock,
    duration,
    number,
)

FAMILY = "cjk"
MARGIN = 15.0  # mm
BODY = 8.5  # pt
DETAIL_ROWS = 8  # periods of one kind per node listed in the details (the longest)


class Writer:
    def __init__(self, font: Path) -> None:
        self.font = font
        self._charmap_text: set[str] = set()
        self.pdf = FPDF(orientation="P", unit="mm", format="A4")
        self.pdf.set_margins(MARGIN, MARGIN, MARGIN)
        self.pdf.set_auto_page_break(True, margin=MARGIN)
        self.pdf.add_font(FAMILY, "", str(font))
        self.pdf.set_font(FAMILY, size=BODY)
        self.pdf.set_title(TITLE_EN)

    def text(self, value: str) -> str:
        """`value`, once the font is known to have every glyph of it."""
        if value not in self._charmap_text:
            missing = missing_glyphs(value, self.font)
            if missing:
                raise ReportError(f"font {self.font} has no glyph for {missing!r} (in {value!r})")
            self._charmap_text.add(value)
        return value

    def line(self, value: str, size: float = BODY, height: float = 5.0) -> None:
        self.pdf.set_font(FAMILY, size=size)
        self.pdf.multi_cell(0, height, self.text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.pdf.set_font(FAMILY, size=BODY)

    def heading(self, value: str) -> None:
        if self.pdf.get_y() > self.pdf.h - 60:
            self.pdf.add_page()
        self.pdf.ln(2)
        self.line(value, size=12, height=7)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float]) -> None:
        if not rows:
            self.line("（无 none）")
            return
        self.pdf.set_font(FAMILY, size=BODY - 0.5)
        with self.pdf.table(col_widths=tuple(widths), text_align=Align.L, line_height=4.2,
                            first_row_as_headings=True,
                            headings_style=FontFace(fill_color=(225, 230, 238))) as table:
            row = table.row()
            for cell in header:
                row.cell(self.text(cell))
            for values in rows:
                row = table.row()
                for cell in values:
                    row.cell(self.text(cell))
        self.pdf.set_font(FAMILY, size=BODY)
        self.pdf.ln(1)

    def image(self, path: Path) -> None:
        width = self.pdf.w - 2 * MARGIN
        self.pdf.image(str(path), w=width)
        self.pdf.ln(2)


def _periods(periods: Sequence[Period], summary: DaySummary) -> str:
    if not periods:
        return "—"
    return ", ".join(f"{clock(p.start, summary)}–{clock(p.end, summary, open_text='…')}" for p in periods)


def _total(periods: Sequence[Period], summary: DaySummary) -> float:
    total = 0.0
    for p in periods:
        a = max(summary.start, p.start if p.start is not None else summary.start)
        b = min(summary.end, p.end if p.end is not None else summary.end)
        total += max(0.0, b - a)
    return total


def _noise_row(node: str, part: NoisePart, summary: DaySummary) -> list[str]:
    label = "昼 day" if part.label == "day" else "夜 night"
    verdict = "超标 over" if part.over else ("达标 within" if part.leq is not None else "—")
    lmax = number(part.lmax)
    if part.lmax_limit is not None and part.lmax is not None:
        lmax += f" (> {part.lmax_limit:g}!)" if part.lmax_over else f" (≤ {part.lmax_limit:g})"
    return [
        node, label, f"{number(part.leq)} / {part.limit:g}", verdict, f"{lmax} {clock(part.lmax_time, summary)}",
        f"{number(part.l10)} / {number(part.l50)} / {number(part.l90)}", str(part.periods_over),
        f"{part.count}/{part.expected}",
    ]


def write_pdf(summary: DaySummary, charts: dict[str, Path], font: Path, path: Path, source: str) -> Path:
    w = Writer(font)
    s = summary
    w.pdf.add_page()
    w.line(f"{TITLE} {TITLE_EN}", size=18, height=10)
    offset = s.tz_offset_s // 60
    zone = f"UTC{'+' if offset >= 0 else '-'}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    w.line(f"工地 Site: {s.site}    日期 Date: {s.day.isoformat()} (00:00–24:00 {zone})", size=11, height=6)
    w.line(f"数据来源 Source: {source}    读数 readings: {s.readings}", size=BODY)

    w.heading(SECTIONS["dust"])
    w.table(
        ["监测点 node", "PM2.5 日均 24-h", "PM10 日均 24-h", "PM10 最大小时 max 1 h", "超标小时 hours > limit",
         "高湿样本 RH samples"],
        [
            [
                n.node,
                f"{number(n.pm25_day.value)} ({n.pm25_day.count}/{n.pm25_day.expected}"
                f"{'' if n.pm25_day.valid else ', <75 %'})",
                f"{number(n.pm10_day.value)} ({n.pm10_day.count}/{n.pm10_day.expected}"
                f"{'' if n.pm10_day.valid else ', <75 %'})",
                _max_hour(n.pm10_hours, s),
                f"{len(n.exceedances)} (> {n.pm10_limit:g})",
                f"{n.humid_samples} (RH > {n.rh_threshold:g} %)",
            ]
            for n in s.dust
        ],
        [22, 30, 30, 34, 26, 38],
    )
    w.line("µg/m³；有效样本不足 75 % 的均值标注 <75 %. Means from fewer than 75 % of the expected samples are "
           "marked. 超标 = 小时均值 > 限值 (limits.dust.pm10_1h_limit).", size=7)

    w.heading(SECTIONS["noise"])
    w.table(
        ["监测点 node", "时段 part", "LAeq / 限值 limit", "评价 verdict", "Lmax 时间 time", "L10/L50/L90",
         "超标时段 periods over", "样本 samples"],
        [row for n in s.noise for row in (_noise_row(n.node, n.day, s), _noise_row(n.node, n.night, s))],
        [20, 16, 26, 18, 34, 28, 18, 20],
    )
    w.line("dB(A)。昼间 06:00–22:00，夜间 22:00–06:00；能量平均 Leq by summed energy; 评价时段 evaluation period "
           "20 min.", size=7)

    w.heading(SECTIONS["wind"])
    w.table(
        ["监测点 node", "日均 mean", "最大10分钟 max 10 min", "最大阵风 max gust", "风向 direction",
         "塔吊停止 crane stop", "停止吊装 lifting stop"],
        [
            [
                n.node,
                f"{number(n.mean.value)} m/s",
                "—" if n.max_mean_10min is None else
                f"{number(n.max_mean_10min.value)} ({clock(n.max_mean_10min.start, s)})",
                f"{number(n.gust)} ({clock(n.gust_time, s)})",
                number(n.direction, 0, "°"),
                f"{len(n.crane_stops)} × {duration(_total(n.crane_stops, s))}",
                f"{len(n.lifting_stops)} × {duration(_total(n.lifting_stops, s))}",
            ]
            for n in s.wind
        ],
        [22, 20, 30, 28, 20, 31, 31],
    )
    if s.wind:
        first = s.wind[0]
        w.line(f"阵风 ≥ {first.crane_limit:g} m/s 塔吊停止安装/拆卸/顶升 (GB 55034-2022 3.4.7); "
               f"≥ {first.lifting_limit:g} m/s 停止露天吊装 (JGJ 33-2012 4.1.15). A stop lasts until gusts "
               "stayed below the limit minus the margin for the hold time (the gateway's alarm rule).", size=7)

    w.heading(SECTIONS["tilt"])
    w.table(
        ["监测点 node", "最大合成 peak", "时间 time", "X 最大 max x", "Y 最大 max y", "≥ 预警 pre-warning",
         "≥ 报警 alarm"],
        [
            [
                n.node, number(n.peak, 2, "‰"), clock(n.peak_time, s), number(n.peak_x, 2), number(n.peak_y, 2),
                f"{duration(n.seconds_over_prewarning)} (≥ {n.prewarning:g})",
                f"{duration(n.seconds_over_alarm)} (≥ {n.alarm:g})",
            ]
            for n in s.tilt
        ],
        [24, 24, 18, 22, 22, 36, 34],
    )

    for kind, nodes in groupby(s.kinds, key=lambda n: n.kind):  # kinds added as profiles: their channels' days
        w.heading(SECTIONS.get(kind, kind))
        w.table(
            ["监测点 node", "通道 channel", "日均 mean", "最低 min", "最高 max", "样本 samples"],
            [
                [
                    n.node, c.channel, number(c.mean.value, 2, c.unit), number(c.low, 2), number(c.high, 2),
                    f"{c.mean.count}/{c.mean.expected}{'' if c.mean.valid else ', <75 %'}",
                ]
                for n in nodes
                for c in n.channels
            ],
            [28, 30, 36, 28, 28, 30],
        )

    w.heading(SECTIONS["alarms"])
    w.table(
        ["报警 alarm", "监测点 node", "级别 severity", "开始 start", "结束 end", "值/限值 value/limit"],
        [
            [
                ALARM_NAMES.get(a.alarm, a.alarm), a.node, SEVERITIES.get(a.severity, a.severity),
                clock(a.start, s, open_text="（之前 before）"), clock(a.end, s, open_text="（持续 ongoing）"),
                f"{number(a.peak, 2)} / {number(a.limit, 2)}",
            ]
            for a in s.alarms
        ],
        [46, 24, 26, 24, 26, 34],
    )

    w.heading(SECTIONS["completeness"])
    w.table(
        ["监测点 node", "类型 kind", "采样间隔 interval", "收到/应有 received/expected", "中断 outages",
         "丢失 lost", "无数据 no samples"],
        [
            [
                c.node, c.kind, f"{c.interval_s:g} s", f"{c.received}/{c.expected} ({100 * c.fraction:.1f} %)",
                f"{len(c.outages)} × {duration(_total(c.outages, s))}",
                f"{len(c.gaps)}",
                f"{len(c.silences)} × {duration(_total(c.silences, s))}",
            ]
            for c in s.completeness
        ],
        [24, 16, 22, 38, 28, 16, 36],
    )
    w.line(f"网关停机 Gateway not running: {_periods(s.gateway_outages, s)}", size=BODY)
    if s.until is not None:
        w.line(f"当日未结束 Day in progress: counted up to {clock(s.until, s)}", size=BODY)

    for key in ("dust", "noise", "wind", "tilt", "completeness"):
        chart = charts.get(key)
        if chart is not None:
            if w.pdf.get_y() > w.pdf.h - 90:
                w.pdf.add_page()
            w.image(chart)

    w.heading("时段明细 Periods")
    details: list[list[str]] = []
    for n in s.wind:
        details += [[n.node, "塔吊停止 crane stop", clock(p.start, s), clock(p.end, s, open_text="…"),
                     f"阵风 gust {number(p.peak, 1)} m/s"] for p in n.crane_stops]
        details += [[n.node, "停止吊装 lifting stop", clock(p.start, s), clock(p.end, s, open_text="…"),
                     f"阵风 gust {number(p.peak, 1)} m/s"] for p in n.lifting_stops]
    for d in s.dust:
        details += [[d.node, "PM10 超标 over", clock(b.start, s), clock(b.end, s),
                     f"{number(b.value)} µg/m³ ({b.count}/{b.expected})"] for b in d.exceedances]
    for c in s.completeness:
        for what, periods in (("中断 outage", c.outages), ("丢失 lost", c.gaps), ("无数据 no samples", c.silences)):
            # The longest first, at most DETAIL_ROWS of each: a flaky line makes hundreds of one-minute outages.
            longest = sorted(periods, key=lambda p: -((p.end or s.end) - (p.start or s.start)))[:DETAIL_ROWS]
            details += [[c.node, what, clock(p.start, s), clock(p.end, s), p.label]
                        for p in sorted(longest, key=lambda p: p.start or s.start)]
            if len(periods) > DETAIL_ROWS:
                rest = [p for p in periods if p not in longest]
                details.append([c.node, what, "", "", f"… {len(rest)} more, {duration(_total(rest, s))} in all"])
    w.table(["监测点 node", "类型 what", "开始 start", "结束 end", "说明 detail"], details, [24, 34, 22, 22, 78])
    try:
        w.pdf.output(str(path))
    except OSError as error:
        raise ReportError(f"{path}: cannot write the PDF ({error})") from error
    return path


def _max_hour(hours: Sequence[Bin], summary: DaySummary) -> str:
    best = max((b for b in hours if b.value is not None), key=lambda b: b.value or 0.0, default=None)
    return "—" if best is None else f"{number(best.value)} ({clock(best.start, summary)})"
