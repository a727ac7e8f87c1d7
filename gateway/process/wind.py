"""Wind: WMO means, 3-s gusts, circular direction statistics, Beaufort force (domain.md section 3).

* Speed: arithmetic mean over 2 min and 10 min (WMO), clock-aligned.
* Gust: the maximum of 3-second running means (WMO-No. 306). The gateway
  forms running means from the node's speed samples: at each sample, the
  mean of the samples of the last 3 s, formed only when all
  round(3 s / interval) of them are valid. The node's own
  ``wind_gust_3s`` channel (running means over its faster pulse counts)
  counts too: the window's gust is the larger of the two.
* Direction: a direction is a circular quantity. The mean is
  atan2(sum sin, sum cos) of **unit vectors** by default (the vane's
  direction, each sample counted once); ``weighting = "speed"`` weights each
  vector by the speed of the same sample instead (the direction the air
  mass moved). Samples slower than limits.wind.calm_speed are left out of
  both: a vane in calm air points anywhere. The spread is Yamartino's
  standard deviation of the unit vectors. Degrees are never averaged
  arithmetically.
* Beaufort force of the window's mean speed, from the lower bounds table.

Speed and direction of one node sample are paired by (sequence, timestamp).
Output channels: ``<prefix>_<window>_speed_mean``, ``_gust``, ``_beaufort``,
``_count`` (valid speed samples), ``_dir_mean``, ``_dir_sigma``,
``_dir_count`` (valid direction samples, calm ones included).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections import deque
from collections.abc import Sequence
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
from gateway.process.limits import BEAUFORT_LOWER_BOUNDS, LimitsError, LimitsResolver, NodePlans
from gateway.process.registry import AGGREGATORS

GUST_SPAN_S = 3.0  # WMO-No. 306: gust = maximum of 3-s running means


def beaufort(speed: float) -> int:
    """Beaufort force of a speed in m/s: the highest force whose lower bound it reaches."""
    if not speed >= 0.0:  # negative or NaN
        return 0
    return bisect.bisect_right(BEAUFORT_LOWER_BOUNDS, speed) - 1


def circular_mean(directions: Sequence[float], weights: Sequence[float] | None = None) -> float | None:
    """Mean direction in [0, 360) of vectors with the given weights (unit vectors by default).

    None when the vectors cancel out (the mean direction is undefined).
    """
    if weights is None:
        weights = [1.0] * len(directions)
    if len(weights) != len(directions):
        raise ValueError("one weight per direction")
    s = math.fsum(w * math.sin(math.radians(d)) for d, w in zip(directions, weights, strict=True))
    c = math.fsum(w * math.cos(math.radians(d)) for d, w in zip(directions, weights, strict=True))
    return _mean_direction(s, c, math.fsum(abs(w) for w in weights))


def _mean_direction(s: float, c: float, total: float) -> float | None:
    """Direction in [0, 360) of the vector sum (s, c) of vectors whose lengths add up to `total`."""
    if total == 0.0 or math.hypot(s, c) <= 1e-12 * total:
        return None
    mean = math.degrees(math.atan2(s, c)) % 360.0
    return 0.0 if mean >= 360.0 else mean  # -1e-17 % 360 rounds to 360.0


def yamartino_sigma(directions: Sequence[float]) -> float | None:
    """Yamartino (1984) estimate of the standard deviation of directions, in degrees."""
    n = len(directions)
    if n == 0:
        return None
    # eps^2 = 1 - (mean sin)^2 - (mean cos)^2. Taken literally, that loses
    # all precision for a narrow spread (1 - 0.99999999...). The same
    # quantity from deviations d about the mean direction, with
    # mean cos d = 1 - h, h = mean 2 sin^2(d / 2), is 2h - h^2 - (mean sin d)^2:
    # accurate when the spread is small.
    radians = [math.radians(d) for d in directions]
    s = math.fsum(math.sin(r) for r in radians)
    c = math.fsum(math.cos(r) for r in radians)
    if math.hypot(s, c) <= 1e-12 * n:
        eps = 1.0  # no mean direction: the widest spread
    else:
        mean = math.atan2(s, c)
        h = math.fsum(2.0 * math.sin((r - mean) / 2.0) ** 2 for r in radians) / n
        sa = math.fsum(math.sin(r - mean) for r in radians) / n
        eps = math.sqrt(max(0.0, 2.0 * h - h * h - sa * sa))
    return _yamartino(eps)


def _yamartino(eps: float) -> float:
    return math.degrees(math.asin(min(1.0, eps)) * (1.0 + (2.0 / math.sqrt(3.0) - 1.0) * eps**3))


# Every finite float is a whole number of 2^-1074 (the smallest subnormal): as such an integer, a sum of
# floats is exact, in one Python int of about 140 bytes. Dividing it by 2^1074 rounds it once, correctly
# (int / int is correctly rounded), which is what math.fsum returns for the same terms: the same float in
# whatever order the terms came (late samples revise windows out of order). Twice as fast per term as
# Shewchuk's partials kept in Python (issue 13).
_EXACT_SHIFT = 1075
_EXACT_UNIT = 1 << 1074


def exact(x: float) -> int:
    """A finite float as a whole number of 2^-1074, exactly."""
    numerator, denominator = x.as_integer_ratio()  # denominator: a power of two, at most 2^1074
    return numerator << (_EXACT_SHIFT - denominator.bit_length())


def exact_value(total: int) -> float:
    """The float nearest to a sum kept by `exact` (what math.fsum gives for its terms)."""
    return total / _EXACT_UNIT


class ExactSum:
    """A float sum kept without rounding error, term by term: the same value as math.fsum over all terms,
    in whatever order they came, in one integer instead of every term."""

    __slots__ = ("_total",)

    def __init__(self) -> None:
        self._total = 0

    def add(self, x: float) -> None:
        self._total += exact(x)

    @property
    def value(self) -> float:
        return exact_value(self._total)

    def copy(self) -> ExactSum:
        other = ExactSum()
        other._total = self._total
        return other


_EXACT_ONE = exact(1.0)


@dataclass(slots=True)
class DirectionSums:
    """The directions chosen for a window's statistics, as sums: the circular mean (unit or weighted
    vectors) and Yamartino's sigma from O(1) memory, however many samples the window holds.

    Yamartino's eps^2 = 1 - (mean sin)^2 - (mean cos)^2 is the same about any reference direction (a
    rotation keeps the vector sum's length), so the deviations are taken from the first direction
    instead of the mean (not known before the end), with the precise form yamartino_sigma uses.
    The sums are exact (`exact`: whole numbers of 2^-1074), so a statistic is the same float however
    the samples were ordered.
    """

    count: int = 0
    sin: int = 0  # unit vectors
    cos: int = 0
    weighted_sin: int = 0
    weighted_cos: int = 0
    weight: int = 0
    reference: float | None = None  # radians
    deviation_sin: int = 0  # sum of sin(r - reference)
    deviation_half: int = 0  # sum of 2 sin^2((r - reference) / 2)

    def add(self, direction: float, weight: float = 1.0) -> None:
        r = math.radians(direction)
        self.add_radians(r, exact(math.sin(r)), exact(math.cos(r)), weight)

    def add_radians(self, r: float, sin: int, cos: int, weight: float = 1.0) -> None:
        """`add` of the direction r (radians) whose unit vector's terms are exact(sin r), exact(cos r): a
        direction that goes to several windows has those worked out once (issue 13, fifth pass)."""
        if self.reference is None:
            self.reference = r
        self.count += 1
        self.sin += sin
        self.cos += cos
        if weight == 1.0:  # a unit vector (the default weighting): weight * x is x, exactly
            self.weighted_sin += sin
            self.weighted_cos += cos
            self.weight += _EXACT_ONE
        else:
            self.weighted_sin += exact(weight * math.sin(r))
            self.weighted_cos += exact(weight * math.cos(r))
            self.weight += exact(abs(weight))
        self.deviation_sin += exact(math.sin(r - self.reference))
        self.deviation_half += exact(2.0 * math.sin((r - self.reference) / 2.0) ** 2)

    def mean(self, weighted: bool) -> float | None:
        if weighted:
            return _mean_direction(
                exact_value(self.weighted_sin), exact_value(self.weighted_cos), exact_value(self.weight)
            )
        return _mean_direction(exact_value(self.sin), exact_value(self.cos), float(self.count))

    def sigma(self) -> float | None:
        n = self.count
        if n == 0:
            return None
        if math.hypot(exact_value(self.sin), exact_value(self.cos)) <= 1e-12 * n:
            return _yamartino(1.0)  # no mean direction: the widest spread
        h = exact_value(self.deviation_half) / n
        sa = exact_value(self.deviation_sin) / n
        return _yamartino(math.sqrt(max(0.0, 2.0 * h - h * h - sa * sa)))

    def copy(self) -> DirectionSums:
        return dataclasses.replace(self)  # the sums are ints: nothing shared that can change


def running_means(
    samples: Sequence[tuple[float, float]], interval_s: float, span_s: float = GUST_SPAN_S
) -> list[float]:
    """The span_s running means of (timestamp, speed) samples taken every interval_s, in time order.

    A mean is formed at a sample when the trailing span holds all
    n = round(span / interval) samples; with timestamps jittering by less
    than half an interval, the span is (t - n * interval + interval / 2, t].
    """
    n = max(1, round(span_s / interval_s))
    reach = n * interval_s - interval_s / 2.0
    out: list[float] = []
    recent: deque[tuple[float, float]] = deque()
    for t, v in samples:
        recent.append((t, v))
        while recent and recent[0][0] <= t - reach:
            recent.popleft()
        if len(recent) >= n:
            out.append(math.fsum(x for _, x in recent) / len(recent))
    return out


def gust(samples: Sequence[tuple[float, float]], interval_s: float, span_s: float = GUST_SPAN_S) -> float | None:
    """Maximum of the running means (None when no full span was seen)."""
    return max(running_means(samples, interval_s, span_s), default=None)


@dataclass
class WindAccumulator:
    tally: Tally = field(default_factory=Tally)  # speed samples
    dir_tally: Tally = field(default_factory=Tally)
    speed_sum: float = 0.0
    gust: float | None = None
    # A direction enters the statistics once the speed of its sample is known (calm ones stay out, the
    # speed is its weight), and is then only a term of sums: the window's memory stays flat whether it
    # spans two minutes or a day. Kept per (sequence, timestamp) are only the speeds and directions of
    # samples whose other half has not arrived yet (normally none: a sample's channels come together).
    chosen: DirectionSums = field(default_factory=DirectionSums)
    speeds: dict[tuple[int, float], float | None] = field(default_factory=dict)  # None: no valid speed
    directions: dict[tuple[int, float], list[float]] = field(default_factory=dict)

    def raise_gust(self, value: float) -> None:
        self.gust = value if self.gust is None else max(self.gust, value)


DEFAULT_WINDOWS = ("2min", "10min")


@AGGREGATORS.register("wind")
class WindAggregator(WindowedAggregator[WindAccumulator]):
    def __init__(
        self,
        limits: LimitsResolver,
        speed_channel: str = "wind_speed",
        direction_channel: str = "wind_dir",
        gust_channel: str = "wind_gust_3s",
        prefix: str = "wind",
        windows: Sequence[str] = DEFAULT_WINDOWS,
        weighting: str = "unit",
    ) -> None:
        super().__init__(limits, windows)
        if weighting not in ("unit", "speed"):
            raise LimitsError(f"wind.weighting: expected 'unit' or 'speed', got {weighting!r}")
        self._speed, self._direction, self._gust = speed_channel, direction_channel, gust_channel
        self._takes = frozenset((speed_channel, direction_channel, gust_channel))
        self._accepted = self._takes
        self._prefix = prefix
        self._weighted = weighting == "speed"
        # Trailing speed samples of each node for the running means; they
        # cross window boundaries, so they live outside the windows.
        self._recent: dict[str, deque[tuple[float, float]]] = {}
        self._running: float | None = None  # running mean formed by the reading being fed
        self._calm_speed = NodePlans(limits, lambda site: site.wind.calm_speed)
        self._first_running: float | None = None  # that of the first reading of a sample (feed_sample)

    def feed(self, reading: Reading) -> list[Aggregate]:
        self._running = self._running_mean(reading) if reading.channel == self._speed else None
        return super().feed(reading)

    def feed_sample(self, readings: list[Reading]) -> list[Aggregate]:
        # As `feed` does: the first reading's running mean is formed before its sample is observed
        # (the node's measured interval may change with it), the others' after.
        first = readings[0]
        self._first_running = self._running_mean(first) if first.channel == self._speed else None
        return super().feed_sample(readings)

    def _add_sample(self, targets: list[WindAccumulator], readings: list[Reading]) -> None:
        # `_add` of each reading to each window (2 by default), with what the reading gives every window
        # worked out once: its validity, a direction's radians and exact unit-vector terms, the node's calm
        # speed; Tally.add's valid branch and raise_gust inlined (issue 13, fifth pass).
        # tests/gateway/process/test_wind_samples.py compares it with `feed` reading by reading.
        speed_channel, direction_channel = self._speed, self._direction
        calm: float | None = None  # the node's calm speed, looked up when first needed
        for i, reading in enumerate(readings):
            channel = reading.channel
            if i == 0:
                running = self._first_running
            else:
                running = self._running_mean(reading) if channel == speed_channel else None
            self._running = running
            value, flag = reading.value, reading.quality
            valid = value is not None and flag in USABLE and math.isfinite(value)  # is_valid, inlined
            over = flag is Quality.OVER_RANGE
            if channel == speed_channel:
                key = (reading.sequence, reading.timestamp)
                speed = value if valid else None
                for acc in targets:
                    if valid:
                        tally = acc.tally
                        tally.count += 1
                        if over:
                            tally.over_range += 1
                        acc.speed_sum += value  # type: ignore[operator]
                    else:
                        acc.tally.add(reading)
                    waiting = acc.directions.pop(key, None)
                    if waiting is None:
                        acc.speeds[key] = speed
                    else:
                        for direction in waiting:
                            self._choose(acc.chosen, reading.node, direction, speed)
                    if running is not None and (acc.gust is None or running > acc.gust):  # raise_gust
                        acc.gust = running
            elif channel == direction_channel:
                key = (reading.sequence, reading.timestamp)
                terms: tuple[float, int, int] | None = None  # radians, exact sin, exact cos
                for acc in targets:
                    known = key in acc.speeds
                    speed = acc.speeds.pop(key, None)
                    if not valid:
                        acc.dir_tally.add(reading)
                        continue
                    assert value is not None
                    tally = acc.dir_tally
                    tally.count += 1
                    if over:
                        tally.over_range += 1
                    if not known:
                        acc.directions.setdefault(key, []).append(value)
                        continue
                    # _choose, with the calm speed and the direction's terms once per reading
                    if speed is not None:
                        if calm is None:
                            calm = self._calm_speed(reading.node)
                        if speed < calm:
                            continue
                    if self._weighted and speed is None:
                        continue  # no speed to weight it with
                    if terms is None:
                        r = math.radians(value)
                        terms = (r, exact(math.sin(r)), exact(math.cos(r)))
                    if self._weighted:
                        assert speed is not None
                        acc.chosen.add_radians(terms[0], terms[1], terms[2], speed)
                    else:
                        acc.chosen.add_radians(terms[0], terms[1], terms[2])
            elif valid:
                for acc in targets:
                    if acc.gust is None or value > acc.gust:  # type: ignore[operator]
                        acc.gust = value

    def _running_mean(self, reading: Reading) -> float | None:
        node, t = reading.node, reading.timestamp
        interval = self.sample_interval(node)
        n = max(1, round(GUST_SPAN_S / interval))
        reach = n * interval - interval / 2.0
        recent = self._recent.get(node)
        if recent is None:  # not setdefault: that built a deque per speed reading
            recent = self._recent[node] = deque()
        if recent and t < recent[-1][0]:
            return None  # out of order: the aggregator drops it anyway
        valid = is_valid(reading)
        if valid:
            assert reading.value is not None
            recent.append((t, reading.value))
        while recent and recent[0][0] <= t - reach:
            recent.popleft()
        if not valid or len(recent) < n:
            return None
        return math.fsum([v for _, v in recent]) / len(recent)

    def outputs(self) -> frozenset[str]:
        stats = ("speed_mean", "gust", "beaufort", "count", "dir_mean", "dir_sigma", "dir_count")
        return frozenset(f"{self._prefix}_{w}_{s}" for w in self.labels for s in stats)

    def _accepts(self, reading: Reading) -> bool:
        return reading.channel in self._takes

    def _make(self, node: str, label: str) -> WindAccumulator:
        return WindAccumulator()

    def _add(self, acc: WindAccumulator, reading: Reading) -> None:
        key = (reading.sequence, reading.timestamp)
        if reading.channel == self._speed:
            speed: float | None = None
            if acc.tally.add(reading):
                assert reading.value is not None
                acc.speed_sum += reading.value
                speed = reading.value
            waiting = acc.directions.pop(key, None)
            if waiting is None:
                acc.speeds[key] = speed
            for direction in waiting or ():
                self._choose(acc.chosen, reading.node, direction, speed)
            if self._running is not None:
                acc.raise_gust(self._running)
        elif reading.channel == self._direction:
            known = key in acc.speeds
            speed = acc.speeds.pop(key, None)
            if acc.dir_tally.add(reading):
                assert reading.value is not None
                if known:
                    self._choose(acc.chosen, reading.node, reading.value, speed)
                else:
                    acc.directions.setdefault(key, []).append(reading.value)
        elif is_valid(reading):
            assert reading.value is not None
            acc.raise_gust(reading.value)

    def _choose(self, chosen: DirectionSums, node: str, direction: float, speed: float | None) -> None:
        """Add a direction to the statistics unless its sample was calm (or, weighted, has no speed)."""
        if speed is not None and speed < self._calm_speed(node):
            return
        if self._weighted:
            if speed is None:
                return  # no speed to weight it with
            chosen.add(direction, speed)
        else:
            chosen.add(direction)

    def _finish(self, window: Window[WindAccumulator]) -> list[Aggregate]:
        acc = window.acc
        mean = acc.speed_sum / acc.tally.count if acc.tally.count else None
        speed_stats = (
            ("speed_mean", mean, "m/s"),
            ("gust", acc.gust, "m/s"),
            ("beaufort", None if mean is None else float(beaufort(mean)), ""),
        )
        chosen = acc.chosen
        if acc.directions:  # directions without a valid speed: counted as they are (a later speed may revise)
            chosen = chosen.copy()
            for waiting in acc.directions.values():
                for direction in waiting:
                    self._choose(chosen, window.node, direction, None)
        direction_stats = (
            ("dir_mean", chosen.mean(self._weighted) if chosen.count else None, "deg"),
            ("dir_sigma", chosen.sigma(), "deg"),
        )
        out = make_aggregates(window, self._speed, self._prefix, self._validity(window, acc.tally), speed_stats)
        out += make_aggregates(
            window,
            self._direction,
            self._prefix,
            self._validity(window, acc.dir_tally),
            direction_stats,
            count_statistic="dir_count",
        )
        return out
