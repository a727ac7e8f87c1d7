"""Tilt: deviation from a baseline and its rate of change, per window.

The node already reports tilt from its zeroed baseline (holding register
zero_baseline), so the default baseline is 0. Where the node was never
zeroed, the gateway can hold one: ``baseline = "first"`` takes the first
valid value it sees of each node and channel, and ``baselines = {node =
{channel = value}}`` sets it explicitly (and wins over both).

Per channel and window: the mean deviation, the largest deviation (signed,
largest in size), the rate of change (least-squares slope of the samples
against time, in units per hour: a slow creep shows before a limit is
reached) and the count of valid samples. Output channels:
``<channel>_<window>_deviation_mean``, ``_deviation_max``, ``_rate``, ``_count``.

The formwork tilt alarm does not wait for these windows: it watches the
readings themselves (gateway.process.alarms), as deviations from the same
``TiltBaseline`` object as this aggregator's (bound by gateway/pipeline.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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
from gateway.process.limits import LimitsError, LimitsResolver
from gateway.process.registry import AGGREGATORS


@dataclass(slots=True)
class TrendAccumulator:
    """Sums for the mean and the least-squares slope; times are relative to the window start."""

    origin: float
    tally: Tally = field(default_factory=Tally)
    sum_t: float = 0.0
    sum_v: float = 0.0
    sum_tt: float = 0.0
    sum_tv: float = 0.0
    extreme: float | None = None
    unit: str = ""

    def add(self, t: float, deviation: float) -> None:
        t -= self.origin
        self.sum_t += t
        self.sum_v += deviation
        self.sum_tt += t * t
        self.sum_tv += t * deviation
        if self.extreme is None or abs(deviation) > abs(self.extreme):
            self.extreme = deviation

    @property
    def mean(self) -> float | None:
        return self.sum_v / self.tally.count if self.tally.count else None

    @property
    def slope_per_s(self) -> float | None:
        n = self.tally.count
        denominator = n * self.sum_tt - self.sum_t * self.sum_t
        # Fewer than two distinct times: no slope.
        if n < 2 or denominator <= 1e-9 * max(1.0, n * self.sum_tt):
            return None
        return (n * self.sum_tv - self.sum_t * self.sum_v) / denominator


DEFAULT_CHANNELS = ("slope_x", "slope_y")
DEFAULT_WINDOWS = ("10min", "1h")


class TiltBaseline:
    """The baseline tilt is measured from: one object shared by the tilt aggregator and the formwork tilt alarm.

    mode "zero": the node's own zeroed baseline (0); "first": the first valid
    (N) value seen of each node and channel; ``table`` (node -> channel ->
    value) sets a baseline explicitly and wins over both.
    """

    def __init__(self, mode: str = "zero", table: Mapping[str, Mapping[str, float]] | None = None) -> None:
        if mode not in ("zero", "first"):
            raise LimitsError(f"tilt.baseline: expected 'zero' or 'first', got {mode!r}")
        self.mode = mode
        self._first = mode == "first"
        self._values: dict[tuple[str, str], float] = {}
        for node, channels in (table or {}).items():
            for channel, value in channels.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise LimitsError(f"tilt.baselines.{node}.{channel}: expected a number, got {value!r}")
                self._values[(node, channel)] = float(value)

    def baseline(self, node: str, channel: str) -> float | None:
        """The baseline in use (None: "first" mode before the first valid value)."""
        return self._values.get((node, channel), None if self._first else 0.0)

    def deviation(self, reading: Reading) -> float | None:
        """Deviation of a reading from its baseline (None for a missing value)."""
        if reading.value is None:
            return None
        key = (reading.node, reading.channel)
        if key not in self._values and self._first and reading.quality is Quality.NORMAL:
            self._values[key] = reading.value
        base = self.baseline(reading.node, reading.channel)
        return None if base is None else reading.value - base


@AGGREGATORS.register("tilt")
class TiltAggregator(WindowedAggregator[dict[str, TrendAccumulator]]):
    def __init__(
        self,
        limits: LimitsResolver,
        channels: Sequence[str] = DEFAULT_CHANNELS,
        windows: Sequence[str] = DEFAULT_WINDOWS,
        baseline: str = "zero",
        baselines: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        super().__init__(limits, windows)
        self.channels = str_tuple(channels, "tilt.channels")
        self._takes = frozenset(self.channels)
        self._accepted = self._takes
        # The formwork tilt alarm judges deviations from this same object (gateway/pipeline.py binds it).
        self.baselines = TiltBaseline(baseline, baselines)

    def baseline(self, node: str, channel: str) -> float | None:
        """The baseline in use (None: "first" mode before the first valid value)."""
        return self.baselines.baseline(node, channel)

    def deviation(self, reading: Reading) -> float | None:
        """Deviation of a reading from its baseline (None for a missing value)."""
        return self.baselines.deviation(reading)

    def outputs(self) -> frozenset[str]:
        stats = ("deviation_mean", "deviation_max", "rate", "count")
        return frozenset(f"{c}_{w}_{s}" for c in self.channels for w in self.labels for s in stats)

    def _accepts(self, reading: Reading) -> bool:
        return reading.channel in self._takes

    def _make(self, node: str, label: str) -> dict[str, TrendAccumulator]:
        return {}

    def _add(self, acc: dict[str, TrendAccumulator], reading: Reading) -> None:
        trend = acc.get(reading.channel)
        if trend is None:
            # Times relative to the first sample keep the sums small and exact enough.
            trend = acc[reading.channel] = TrendAccumulator(origin=reading.timestamp)
        trend.unit = reading.unit
        if trend.tally.add(reading):
            deviation = self.deviation(reading)
            assert deviation is not None
            trend.add(reading.timestamp, deviation)

    def _add_sample(self, targets: list[dict[str, TrendAccumulator]], readings: list[Reading]) -> None:
        # `_add` of each reading to each window, with its validity and deviation worked out once, not per
        # window (issue 13). The baseline's first value is taken at the first valid reading, as in `_add`.
        for reading in readings:
            value, flag, channel = reading.value, reading.quality, reading.channel
            valid = value is not None and flag in USABLE and math.isfinite(value)
            deviation = self.deviation(reading) if valid else None
            over = flag is Quality.OVER_RANGE
            for acc in targets:
                trend = acc.get(channel)
                if trend is None:
                    trend = acc[channel] = TrendAccumulator(origin=reading.timestamp)
                trend.unit = reading.unit
                if not valid:
                    trend.tally.add(reading)
                    continue
                assert deviation is not None
                tally = trend.tally  # the valid branch of Tally.add, inlined: once per reading and window
                tally.count += 1
                if over:
                    tally.over_range += 1
                trend.add(reading.timestamp, deviation)

    def _finish(self, window: Window[dict[str, TrendAccumulator]]) -> list[Aggregate]:
        out: list[Aggregate] = []
        for channel in self.channels:
            trend = window.acc.get(channel)
            if trend is None:
                continue
            slope = trend.slope_per_s
            stats = (
                ("deviation_mean", trend.mean, trend.unit),
                ("deviation_max", trend.extreme, trend.unit),
                ("rate", None if slope is None else slope * 3600.0, f"{trend.unit}/h"),
            )
            out += make_aggregates(window, channel, channel, self._validity(window, trend.tally), stats)
        return out
