"""The 3 s gust of a vendor anemometer that reports only its speed (profile ``gust = "gateway"``). Pure.

A sitewatch wind node reports ``wind_gust_3s`` itself; the crane and
lifting alarms watch that channel (gateway/process/alarms.py). For a device
that reports only a (1 s) speed, the bus owner forms the same channel from
the device's speed samples, by the rule the wind aggregator uses for its
window gusts (gateway/process/wind.py): at each sample, the mean of the
samples of the last 3 s, formed only when all round(3 s / interval) of
them are valid (WMO-No. 306).
"""

from __future__ import annotations

import math
from collections import deque

from gateway.process.wind import GUST_SPAN_S

GUST_CHANNEL = "wind_gust_3s"


class RunningGust:
    def __init__(self, interval: float, span: float = GUST_SPAN_S) -> None:
        if not interval > 0:
            raise ValueError(f"interval: {interval!r} must be positive")
        self.count = max(1, round(span / interval))
        self.reach = self.count * interval - interval / 2.0
        self._recent: deque[tuple[float, float]] = deque()

    def add(self, taken: float, speed: float | None) -> float | None:
        """One speed sample (None: invalid or missed) taken at `taken` seconds; the running mean, if formed."""
        if speed is not None:
            self._recent.append((taken, speed))
        while self._recent and self._recent[0][0] <= taken - self.reach:
            self._recent.popleft()
        if speed is None or len(self._recent) < self.count:
            return None
        return math.fsum(v for _, v in self._recent) / len(self._recent)
