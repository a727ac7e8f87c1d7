"""The status page's charts as SVG, drawn by this module (no chart library). Pure: numbers in, markup out.

Every chart is one ``<svg>`` with a viewBox, so it scales to a phone's width. Elements carry classes and
``data-`` attributes (``series``/``limit`` with ``data-label``/``data-value``, ``sector`` with
``data-fraction``) so that tests and people can tell what is drawn. Text is escaped: node names come from the
configuration.

- ``time_chart``: lines over the last span, horizontal limit lines, and step limits (noise day/night).
- ``wind_rose``: 16 sectors, each wedge's length the share of non-calm samples from that direction, coloured
  by the strongest wind from it against the crane threshold.
- ``day_night_steps``: the noise limit in force over a time range (day and night start in site local time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 46, 10, 24, 22
SECTORS = 16
COLOURS = ("#1565c0", "#6a1b9a", "#00838f", "#5d4037")
PREWARNING, ALARM, LIMIT = "#ef8f00", "#c62828", "#c62828"


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]  # (epoch seconds, value), oldest first


@dataclass(frozen=True)
class Limit:
    label: str
    value: float
    colour: str = LIMIT


@dataclass(frozen=True)
class StepLimit:
    """A limit that changes over time: (from epoch seconds, value) steps, oldest first."""

    label: str
    steps: Sequence[tuple[float, float]]
    colour: str = LIMIT


def _num(x: float) -> str:
    return f"{x:.1f}"


def _scale(lo: float, hi: float) -> tuple[float, float]:
    if hi - lo < 1e-9:
        hi = lo + 1.0
    pad = (hi - lo) * 0.08
    return lo - pad if lo < 0 else lo, hi + pad


def time_chart(title: str, unit: str, series: Sequence[Series], limits: Sequence[Limit], t_end: float, span_s: float,
               steps: Sequence[StepLimit] = (), symmetric: bool = False, no_data: str = "no data") -> str:
    """Lines of `series` over [t_end - span_s, t_end] with the limits; y from 0 (or symmetric about 0)."""
    t0 = t_end - span_s
    values = [v for s in series for t, v in s.points if t >= t0]
    values += [lim.value for lim in limits] + [v for st in steps for _, v in st.steps]
    if symmetric:
        top = max((abs(v) for v in values), default=1.0)
        lo, hi = _scale(-top, top)
    else:
        lo, hi = _scale(min(0.0, *values) if values else 0.0, max(values, default=1.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (min(max(t, t0), t_end) - t0) / span_s * plot_w

    def y(v: float) -> float:
        return TOP + (hi - v) / (hi - lo) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
           f'role="img" aria-label="{escape(title)}" data-ymin="{lo:.3f}" data-ymax="{hi:.3f}">',
           f'<text x="{LEFT}" y="18" font-size="19" font-weight="bold">{escape(title)} ({escape(unit)})</text>',
           f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>']
    for v in _ticks(lo, hi):
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_num(y(v))}" y2="{_num(y(v))}" stroke="#eee"/>'
                   f'<text x="{LEFT - 4}" y="{_num(y(v) + 4)}" font-size="15" text-anchor="end">{v:g}</text>')
    for minutes in range(0, int(span_s // 60) + 1, max(1, int(span_s // 60) // 6)):
        tx = x(t_end - minutes * 60)
        out.append(f'<text x="{_num(tx)}" y="{HEIGHT - 5}" font-size="15" text-anchor="middle">'
                   f'{"0" if minutes == 0 else f"-{minutes}"}</text>')
    for lim in limits:
        out.append(f'<line class="limit" data-label="{escape(lim.label)}" data-value="{lim.value:g}" x1="{LEFT}" '
                   f'x2="{WIDTH - RIGHT}" y1="{_num(y(lim.value))}" y2="{_num(y(lim.value))}" stroke="{lim.colour}" '
                   f'stroke-dasharray="6 4"/><text x="{WIDTH - RIGHT - 2}" y="{_num(y(lim.value) - 3)}" font-size="15"'
                   f' text-anchor="end" fill="{lim.colour}">{escape(lim.label)} {lim.value:g}</text>')
    for st in steps:
        path = []
        for i, (t, v) in enumerate(st.steps):
            end = st.steps[i + 1][0] if i + 1 < len(st.steps) else t_end
            path.append(f"{'M' if i == 0 else 'L'}{_num(x(t))} {_num(y(v))} L{_num(x(end))} {_num(y(v))}")
        out.append(f'<path class="limit step" data-label="{escape(st.label)}" d="{" ".join(path)}" fill="none" '
                   f'stroke="{st.colour}" stroke-dasharray="6 4"/>')
    drawn = 0
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        pts = [(t, v) for t, v in s.points if t0 <= t <= t_end]
        drawn += len(pts)
        coords = " ".join(f"{_num(x(t))},{_num(y(v))}" for t, v in pts)
        out.append(f'<polyline class="series" data-label="{escape(s.label)}" data-points="{len(pts)}" '
                   f'points="{coords}" fill="none" stroke="{colour}" stroke-width="1.6"/>'
                   f'<text x="{LEFT + 6 + 130 * i}" y="{TOP + 17}" font-size="16" fill="{colour}">'
                   f'{escape(s.label)}</text>')
    if not drawn:
        out.append(f'<text class="no-data" x="{LEFT + plot_w / 2:.0f}" y="{TOP + plot_h / 2:.0f}" font-size="18" '
                   f'text-anchor="middle" fill="#888">{escape(no_data)}</text>')
    out.append("</svg>")
    return "".join(out)


def _ticks(lo: float, hi: float) -> list[float]:
    raw = (hi - lo) / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step) + 1)]


def sector_of(direction: float) -> int:
    """The 16-point sector of a direction in degrees from north: 0 = N (348.75 .. 11.25), 4 = E, ..."""
    return int(((direction % 360.0) + 180.0 / SECTORS) // (360.0 / SECTORS)) % SECTORS


def rose_fractions(samples: Sequence[tuple[float, float]], calm_speed: float) -> tuple[list[float], list[float], float]:
    """Per sector: share of all samples and the strongest speed; and the calm share (speed below calm_speed)."""
    counts, strongest = [0] * SECTORS, [0.0] * SECTORS
    calm = 0
    for direction, speed in samples:
        if speed < calm_speed:
            calm += 1
            continue
        k = sector_of(direction)
        counts[k] += 1
        strongest[k] = max(strongest[k], speed)
    total = len(samples)
    if not total:
        return [0.0] * SECTORS, strongest, 0.0
    return [c / total for c in counts], strongest, calm / total


def wind_rose(title: str, samples: Sequence[tuple[float, float]], calm_speed: float, crane_gust: float,
              calm_word: str = "calm", no_data: str = "no data") -> str:
    size, cx, cy, radius = 240, 120, 130, 92
    fractions, strongest, calm = rose_fractions(samples, calm_speed)
    top = max(fractions) or 1.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart rose" viewBox="0 0 {size} {size + 10}" '
           f'width="100%" role="img" aria-label="{escape(title)}">',
           f'<text x="6" y="15" font-size="14" font-weight="bold">{escape(title)}</text>']
    for r in (radius / 3, radius * 2 / 3, radius):
        out.append(f'<circle cx="{cx}" cy="{cy}" r="{r:.1f}" fill="none" stroke="#ddd"/>')
    for label, angle in (("N", 0), ("E", 90), ("S", 180), ("W", 270)):
        lx = cx + (radius + 12) * math.sin(math.radians(angle))
        ly = cy - (radius + 12) * math.cos(math.radians(angle)) + 4
        out.append(f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="12" text-anchor="middle">{label}</text>')
    half = 360.0 / SECTORS / 2
    for k, fraction in enumerate(fractions):
        if fraction <= 0:
            continue
        length = radius * fraction / top
        a0, a1 = math.radians(k * 22.5 - half), math.radians(k * 22.5 + half)
        x0, y0 = cx + length * math.sin(a0), cy - length * math.cos(a0)
        x1, y1 = cx + length * math.sin(a1), cy - length * math.cos(a1)
        colour = ALARM if strongest[k] >= crane_gust else "#1565c0"
        out.append(f'<path class="sector" data-sector="{k}" data-fraction="{fraction:.4f}" '
                   f'data-strongest="{strongest[k]:.2f}" d="M{cx} {cy} L{x0:.1f} {y0:.1f} '
                   f'A{length:.1f} {length:.1f} 0 0 1 {x1:.1f} {y1:.1f} Z" fill="{colour}" fill-opacity="0.7" '
                   f'stroke="#fff"/>')
    if samples:
        out.append(f'<text class="calm" x="6" y="{size + 4}" font-size="12">{escape(calm_word)} {calm * 100:.0f}%, '
                   f'n = {len(samples)}</text>')
    else:
        out.append(f'<text class="no-data" x="{cx}" y="{cy}" font-size="14" text-anchor="middle" fill="#888">'
                   f'{escape(no_data)}</text>')
    out.append("</svg>")
    return "".join(out)


def day_night_steps(t0: float, t1: float, day_limit: float, night_limit: float, day_start_s: int,
                    night_start_s: int, tz_offset_s: int) -> list[tuple[float, float]]:
    """The noise limit in force from t0 to t1: (epoch seconds, limit) at t0 and at every day/night change."""

    def limit_at(t: float) -> float:
        local = (t + tz_offset_s) % 86400
        if day_start_s < night_start_s:
            return day_limit if day_start_s <= local < night_start_s else night_limit
        return night_limit if night_start_s <= local < day_start_s else day_limit

    steps = [(t0, limit_at(t0))]
    midnight = math.floor((t0 + tz_offset_s) / 86400) * 86400 - tz_offset_s
    changes = sorted(midnight + day * 86400 + s for day in range(int((t1 - t0) // 86400) + 2)
                     for s in (day_start_s, night_start_s))
    for t in changes:
        if t0 < t < t1:
            steps.append((t, limit_at(t)))
    return steps
