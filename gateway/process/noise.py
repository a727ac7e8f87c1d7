"""Noise: equivalent levels by energy, never by arithmetic on decibels (domain.md section 3).

Leq = 10 * log10(mean(10^(L_i / 10))) over equal-duration samples (the
node's 1-s LAeq). Every window keeps the *sum of energies* and the sample
count, so an hour or a day is computed from summed energy, exactly as if
it had been computed over all samples, and never from averaged minute Leqs.

Per window the aggregator reports Leq, Lmax, Lmin and the statistical
levels L10, L50, L90 (level exceeded 10 / 50 / 90 % of the time). Lmax and
Lmin come from the node's Fast (125 ms) max / min channels when those arrive
(GB 12523 asks for the Fast maximum level), otherwise from the 1-s levels.
The statistical levels are taken over the 1-s levels (nearest rank).
Over-range levels (flag T, e.g. a Fast maximum above the module's 130 dB(A))
count at their value and flag the window T (docs/data-quality.md).

Windows default to 1 min, 20 min (the GB 12523 evaluation period), 1 h, the
GB 12523 day (06:00-22:00) and night (22:00-06:00), and the local day (24 h).
Output channels: ``<prefix>_<window>_<statistic>``, e.g. ``noise_20min_leq``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.model import Quality, Reading
from gateway.process.aggregate import (
    USABLE,
    Aggregate,
    Tally,
    Window,
    WindowedAggregator,
    is_valid,
    make_aggregates,
)
from gateway.process.limits import LimitsResolver
from gateway.process.registry import AGGREGATORS

# A level beyond this (either way) is no sound: air carries at most about 194 dB. Its energy 10^(L/10) does
# not fit a float (above about 3,082 dB it overflows, below about -3,233 dB it is 0), and a day of them summed
# must stay finite too. A garbled register (the wire encodes up to 6553.5 dB) counts as a device fault (D),
# like a value that is not finite, instead of stopping the window with an OverflowError.
LEVEL_LIMIT_DB = 3000.0


def _as_level(reading: Reading) -> Reading:
    value = reading.value
    if value is not None and not -LEVEL_LIMIT_DB <= value <= LEVEL_LIMIT_DB and reading.quality in USABLE:
        return reading.with_quality(Quality.DEVICE_FAULT)
    return reading


def energy(level_db: float) -> float:
    """Relative sound energy of a level: 10^(L/10)."""
    return math.pow(10.0, level_db / 10.0)


def level_from_energy(total_energy: float, count: int) -> float:
    """Leq of `count` equal-duration samples whose energies sum to `total_energy`."""
    if count <= 0 or total_energy <= 0.0:
        raise ValueError("Leq of no samples")
    return 10.0 * math.log10(total_energy / count)


def leq(levels: Iterable[float]) -> float:
    """Equivalent continuous level of equal-duration samples."""
    values = list(levels)
    return level_from_energy(math.fsum(energy(v) for v in values), len(values))


def exceeded_level(histogram: Mapping[float, int], percent: float) -> float:
    """L_N: the level exceeded during N % of the time, from level -> sample count.

    Nearest rank on the ascending order: the k-th smallest sample with
    k = ceil((100 - N) / 100 * n), at least 1. At most N % of the samples lie
    strictly above it.
    """
    n = sum(histogram.values())
    if n <= 0:
        raise ValueError("statistical level of no samples")
    rank = max(1, math.ceil((100.0 - percent) / 100.0 * n - 1e-9))
    seen = 0
    for level in sorted(histogram):
        seen += histogram[level]
        if seen >= rank:
            return level
    raise AssertionError("unreachable: rank <= n")  # pragma: no cover


@dataclass(slots=True)
class NoiseAccumulator:
    tally: Tally = field(default_factory=Tally)
    energy: float = 0.0
    # Wire levels have 0.1 dB resolution, so a day of 1-s samples has at most
    # about a thousand distinct levels: exact percentiles in bounded memory.
    levels: Counter[float] = field(default_factory=Counter)
    fast_max: float | None = None
    fast_min: float | None = None

    def add_level(self, level_db: float) -> None:
        self.energy += energy(level_db)
        self.levels[level_db] += 1

    @property
    def leq(self) -> float | None:
        return level_from_energy(self.energy, self.tally.count) if self.tally.count else None

    @property
    def lmax(self) -> float | None:
        candidates = [v for v in (self.fast_max, max(self.levels, default=None)) if v is not None]
        return max(candidates) if candidates else None

    @property
    def lmin(self) -> float | None:
        candidates = [v for v in (self.fast_min, min(self.levels, default=None)) if v is not None]
        return min(candidates) if candidates else None

    def exceeded(self, percent: float) -> float | None:
        return exceeded_level(self.levels, percent) if self.levels else None


DEFAULT_WINDOWS = ("1min", "20min", "1h", "day", "night", "24h")


@AGGREGATORS.register("noise")
class NoiseAggregator(WindowedAggregator[NoiseAccumulator]):
    def __init__(
        self,
        limits: LimitsResolver,
        channel: str = "laeq_1s",
        max_channel: str = "lamax_1s",
        min_channel: str = "lamin_1s",
        prefix: str = "noise",
        windows: Sequence[str] = DEFAULT_WINDOWS,
        unit: str = "dB(A)",
    ) -> None:
        super().__init__(limits, windows)
        self._channel, self._max_channel, self._min_channel = channel, max_channel, min_channel
        self._takes = frozenset((channel, max_channel, min_channel))
        self._accepted = self._takes
        self._prefix = prefix
        self._unit = unit

    def outputs(self) -> frozenset[str]:
        stats = ("leq", "lmax", "lmin", "l10", "l50", "l90", "count")
        return frozenset(f"{self._prefix}_{w}_{s}" for w in self.labels for s in stats)

    def _accepts(self, reading: Reading) -> bool:
        return reading.channel in self._takes

    def _make(self, node: str, label: str) -> NoiseAccumulator:
        return NoiseAccumulator()

    def _add(self, acc: NoiseAccumulator, reading: Reading) -> None:
        reading = _as_level(reading)
        if reading.channel == self._channel:
            if acc.tally.add(reading):
                assert reading.value is not None
                acc.add_level(reading.value)
        elif is_valid(reading):
            assert reading.value is not None
            if reading.quality is Quality.OVER_RANGE:
                acc.tally.over_range += 1  # an Lmax above the range makes the window's statistics T
            if reading.channel == self._max_channel:
                acc.fast_max = reading.value if acc.fast_max is None else max(acc.fast_max, reading.value)
            else:
                acc.fast_min = reading.value if acc.fast_min is None else min(acc.fast_min, reading.value)

    def _add_sample(self, targets: list[NoiseAccumulator], readings: list[Reading]) -> None:
        # `_add` of each reading to each window, with its validity and energy worked out once, not per
        # window (a level goes to six windows by default: issue 13).
        for reading in readings:
            value, flag = reading.value, reading.quality
            valid = value is not None and flag in USABLE and -LEVEL_LIMIT_DB <= value <= LEVEL_LIMIT_DB
            if not valid:
                reading = _as_level(reading)
            if reading.channel != self._channel:  # a Fast maximum or minimum: only a valid one counts
                if valid:
                    assert value is not None
                    self._add_extreme(targets, reading.channel == self._max_channel, value, flag)
                continue
            if not valid:
                for acc in targets:
                    acc.tally.add(reading)
                continue
            assert value is not None
            level_energy = energy(value)
            over = flag is Quality.OVER_RANGE
            for acc in targets:
                tally = acc.tally  # the valid branch of Tally.add, inlined: once per level and window
                tally.count += 1
                if over:
                    tally.over_range += 1
                acc.energy += level_energy
                acc.levels[value] += 1

    @staticmethod
    def _add_extreme(targets: list[NoiseAccumulator], is_max: bool, value: float, flag: Quality) -> None:
        """A valid Fast maximum (or minimum) into each window, as `_add` does."""
        over = flag is Quality.OVER_RANGE  # an Lmax above the range makes the window's statistics T
        for acc in targets:
            if over:
                acc.tally.over_range += 1
            if is_max:
                if acc.fast_max is None or value > acc.fast_max:  # max(), without the call
                    acc.fast_max = value
            elif acc.fast_min is None or value < acc.fast_min:
                acc.fast_min = value

    def _finish(self, window: Window[NoiseAccumulator]) -> list[Aggregate]:
        acc = window.acc
        unit = self._unit
        stats = (
            ("leq", acc.leq, unit),
            ("lmax", acc.lmax, unit),
            ("lmin", acc.lmin, unit),
            ("l10", acc.exceeded(10.0), unit),
            ("l50", acc.exceeded(50.0), unit),
            ("l90", acc.exceeded(90.0), unit),
        )
        return make_aggregates(window, self._channel, self._prefix, self._validity(window, acc.tally), stats)
