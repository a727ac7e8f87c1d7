"""Particulate matter: 1-min, 15-min, 1-h and 24-h means with valid-sample counts (domain.md section 3).

Per channel and window: mean, min, max of the valid samples, and the count
of valid samples. A window holding fewer than the validity fraction (75 %)
of the samples it should have held (window length / sample interval) is
marked: ``Aggregate.valid`` is False and its flag is not N (see
gateway.process.aggregate). Output channels: ``<channel>_<window>_<statistic>``,
e.g. ``pm10_1h_mean``, ``pm10_1h_count``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.model import Quality, Reading
from gateway.process.aggregate import (
    USABLE,
    Aggregate,
    Tally,
    Window,
    WindowedAggregator,
    make_aggregates,
    str_tuple,
)
from gateway.process.limits import LimitsResolver
from gateway.process.registry import AGGREGATORS


@dataclass(slots=True)
class MeanAccumulator:
    """Running sum, min and max: constant memory even for a day of 1-s samples."""

    tally: Tally = field(default_factory=Tally)
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    unit: str = ""

    def add(self, reading: Reading) -> None:
        self.unit = reading.unit
        if self.tally.add(reading):
            assert reading.value is not None
            self.total += reading.value
            self.low = min(self.low, reading.value)
            self.high = max(self.high, reading.value)

    @property
    def mean(self) -> float | None:
        return self.total / self.tally.count if self.tally.count else None

    @property
    def minimum(self) -> float | None:
        return self.low if self.tally.count else None

    @property
    def maximum(self) -> float | None:
        return self.high if self.tally.count else None


DEFAULT_CHANNELS = ("pm25", "pm10", "pm1")
DEFAULT_WINDOWS = ("1min", "15min", "1h", "24h")


@AGGREGATORS.register("pm")
class PmAggregator(WindowedAggregator[dict[str, MeanAccumulator]]):
    def __init__(
        self,
        limits: LimitsResolver,
        channels: Sequence[str] = DEFAULT_CHANNELS,
        windows: Sequence[str] = DEFAULT_WINDOWS,
    ) -> None:
        super().__init__(limits, windows)
        self._channels = str_tuple(channels, "pm.channels")
        self._takes = frozenset(self._channels)
        self._accepted = self._takes

    def outputs(self) -> frozenset[str]:
        stats = ("mean", "min", "max", "count")
        return frozenset(f"{c}_{w}_{s}" for c in self._channels for w in self.labels for s in stats)

    def _accepts(self, reading: Reading) -> bool:
        return reading.channel in self._takes

    def _make(self, node: str, label: str) -> dict[str, MeanAccumulator]:
        return {}

    def _add(self, acc: dict[str, MeanAccumulator], reading: Reading) -> None:
        mean = acc.get(reading.channel)
        if mean is None:  # not setdefault: that built an accumulator (and its Counter) per reading
            mean = acc[reading.channel] = MeanAccumulator()
        mean.add(reading)

    def _add_sample(self, targets: list[dict[str, MeanAccumulator]], readings: list[Reading]) -> None:
        # `_add` of each reading to each window, with the reading's validity judged once, not per window
        # (a PM reading goes to four windows by default: issue 13).
        for reading in readings:
            value, flag, channel = reading.value, reading.quality, reading.channel
            valid = value is not None and flag in USABLE and math.isfinite(value)
            over = flag is Quality.OVER_RANGE
            for acc in targets:
                mean = acc.get(channel)
                if mean is None:
                    mean = acc[channel] = MeanAccumulator()
                mean.unit = reading.unit
                if not valid:
                    mean.tally.add(reading)
                    continue
                assert value is not None
                tally = mean.tally  # the valid branch of Tally.add, inlined: once per reading and window
                tally.count += 1
                if over:
                    tally.over_range += 1
                mean.total += value
                if value < mean.low:  # min() and max(), without the calls
                    mean.low = value
                if value > mean.high:
                    mean.high = value

    def _finish(self, window: Window[dict[str, MeanAccumulator]]) -> list[Aggregate]:
        out: list[Aggregate] = []
        for channel in self._channels:
            acc = window.acc.get(channel)
            if acc is None:
                continue
            stats = (
                ("mean", acc.mean, acc.unit),
                ("min", acc.minimum, acc.unit),
                ("max", acc.maximum, acc.unit),
            )
            out += make_aggregates(window, channel, channel, self._validity(window, acc.tally), stats)
        return out
