"""The gateway's recent readings for the status page's charts: a bounded ring per node and channel, in memory.

Bounded twice: by time (``span_s``, default 30 min, what the charts show) and by points (one point per
``span_s / points`` seconds, default 5 s). A step that gets several readings keeps the value farthest from
zero: a gust, a dust peak or a tilt excursion is never hidden by decimation, which is what a safety chart
must show (the means are the aggregates' job, not the chart's). Readings without a value (flag B/D) are not
points: the chart shows a gap there rather than a made-up line.

Wind direction is kept as (direction, speed) pairs of one sample (a wind rose needs both of the same moment),
in a ring of at most ``rose_samples`` per node.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from gateway.model import Reading

DEFAULT_SPAN_S = 1800.0
DEFAULT_POINTS = 360
DEFAULT_ROSE_SAMPLES = 1800

Point = tuple[float, float]  # (epoch seconds, value)


class RecentReadings:
    def __init__(self, span_s: float = DEFAULT_SPAN_S, points: int = DEFAULT_POINTS,
                 rose_samples: int = DEFAULT_ROSE_SAMPLES) -> None:
        if span_s <= 0 or points < 2 or rose_samples < 1:
            raise ValueError(f"recent readings: span_s must be positive and points >= 2 (got {span_s}, {points})")
        self.span_s = span_s
        self.step_s = span_s / points
        self.points = points
        self._series: dict[tuple[str, str], deque[Point]] = {}
        self._kinds: dict[str, str] = {}
        self._units: dict[tuple[str, str], str] = {}  # (node, channel) -> unit of its readings
        self._rose: dict[str, deque[tuple[float, float, float]]] = {}  # node -> (time, direction, speed)
        self.skipped_old = 0  # samples older than their chart's newest point (backfill): in the store, not charted

    def update(self, readings: Iterable[Reading]) -> None:
        by_sample: dict[tuple[str, float], dict[str, float]] = {}
        for r in readings:
            self._kinds[r.node] = r.kind
            self._units[(r.node, r.channel)] = r.unit
            if r.value is None or not math.isfinite(r.value):
                continue
            self._add(r.node, r.channel, r.timestamp, r.value)
            if r.channel in ("wind_dir", "wind_speed"):
                by_sample.setdefault((r.node, r.timestamp), {})[r.channel] = r.value
        for (node, t), values in by_sample.items():
            if len(values) == 2:
                rose = self._rose.setdefault(node, deque(maxlen=DEFAULT_ROSE_SAMPLES))
                rose.append((t, values["wind_dir"], values["wind_speed"]))

    def _add(self, node: str, channel: str, t: float, value: float) -> None:
        ring = self._series.get((node, channel))
        if ring is None:
            ring = self._series[(node, channel)] = deque(maxlen=self.points + 1)
        if ring and math.floor(ring[-1][0] / self.step_s) == math.floor(t / self.step_s):
            if abs(value) > abs(ring[-1][1]):
                ring[-1] = (ring[-1][0], value)
            return
        if ring and t < ring[-1][0]:
            self.skipped_old += 1  # a backfilled sample: the store has it, the chart would have to be re-sorted
            return
        ring.append((t, value))

    def nodes(self, kind: str) -> list[str]:
        return sorted(n for n, k in self._kinds.items() if k == kind)

    def kinds(self) -> set[str]:
        return set(self._kinds.values())

    def channels(self, node: str) -> dict[str, str]:
        """The node's channels seen so far, with the unit of their readings."""
        return {channel: unit for (n, channel), unit in self._units.items() if n == node}

    def series(self, node: str, channel: str, since: float) -> list[Point]:
        return [p for p in self._series.get((node, channel), ()) if p[0] >= since]

    def rose(self, node: str, since: float) -> list[tuple[float, float]]:
        """(direction in degrees, speed) of the samples since `since`."""
        return [(d, s) for t, d, s in self._rose.get(node, ()) if t >= since]
