"""The aggregate record and the clock-aligned windows every aggregator shares.

Output record
-------------
An aggregator returns ``Aggregate`` records, one per statistic per closed
window: ``Aggregate(channel="pm10_1h_mean", source="pm10", statistic="mean",
window="1h", start=..., end=..., value=..., count=..., expected=..., valid=...)``.
Each window also yields a ``<base>_<window>_count`` aggregate holding the
count of valid samples, so that the count survives the trip through sinks
that only know readings. ``Aggregate.to_reading()`` makes the ``Reading``
that sinks and alarms take:

* ``channel`` is the aggregate's channel (``pm10_1h_mean``),
* ``timestamp`` is the window's *start* (HJ 212 stamps minute / hour / day
  data with the start of the interval),
* ``quality``: a window with fewer than the validity fraction (75 %) of its
  expected valid samples takes the flag most of its invalid samples had (D,
  B ...), or B (communication failure) when the samples simply never
  arrived; a valid window that includes an over-range sample (T) is T; any
  other valid window is N. Valid samples are those flagged N or T with a
  finite value: an over-range value enters the statistics at its measured
  value (at least the range limit). See docs/data-quality.md.
* ``sequence`` is 0 (there is no node sample behind it).

Windows
-------
Windows are aligned to clock boundaries in the site's local time (a fixed
UTC offset, default +08:00): a 15-min window starts at :00, :15, :30, :45; a
24-h window at local midnight. Periods must divide a day. ``day`` and
``night`` are the GB 12523 parts of the day (06:00-22:00, 22:00-06:00).

A window closes when a reading at or after its end arrives for the same node,
or when ``advance(now)`` passes its end (a silent sensor must still close its
windows). A window that received no reading at all is not emitted: there is
nothing to report, and the uplink sees the gap. A caller that polls slowly
should advance to ``now`` minus its polling delay, so that a sample taken just
before a boundary is not late when it arrives.

Late samples and revisions (docs/revisions.md)
----------------------------------------------
A closed window stays *revisable* for the node's revision horizon (by
default the nodes' history depth times the sample interval, plus a margin:
as far back as a backfill can reach). A sample that arrives for a closed but
revisable window (a backfilled one) is added to it and counted ``late``; the
window's aggregates are emitted again with ``revision`` one higher (same
window, same start) when the batch ends (``flush``), so a backfill of forty
samples makes one revision, not forty. A sample for a revisable window that
was never opened (the node was silent all through it) opens it closed and
it is emitted with revision 0. A sample older than the horizon is counted
``dropped`` (per node) and goes nowhere. Closed windows are kept only while
they are revisable; the revisable state of a 24-h window is its open state.
"""

from __future__ import annotations

import math
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

from gateway.model import Quality, Reading
from gateway.process.limits import (
    SECONDS_PER_DAY,
    LimitsError,
    LimitsResolver,
    SiteLimits,
    default_revision_horizon_s,
)


@dataclass(frozen=True, slots=True)
class Aggregate:
    node: str
    kind: str
    channel: str  # output channel: "<base>_<window>_<statistic>", e.g. "pm10_1h_mean"
    source: str  # input channel, e.g. "pm10"
    statistic: str  # "mean", "leq", "l90", "gust", "count", ...
    window: str  # window label: "1min", "15min", "1h", "24h", "day", "night", ...
    start: float  # seconds since the epoch, inclusive
    end: float  # exclusive
    value: float | None  # None when the window held no valid sample to compute it from
    unit: str
    count: int  # valid samples in the window
    expected: int  # samples the window should have held at the configured interval
    valid: bool  # count >= validity fraction * expected
    quality: Quality
    # 0 when the window is first emitted; each re-emission after late samples
    # counts up. Sinks keep the highest revision of a window (docs/revisions.md).
    revision: int = 0

    def to_reading(self) -> Reading:
        return Reading(
            node=self.node,
            kind=self.kind,
            channel=self.channel,
            value=self.value,
            unit=self.unit,
            quality=self.quality,
            timestamp=self.start,
            sequence=0,
        )


# ---------------------------------------------------------------------------
# Window specifications.
# ---------------------------------------------------------------------------


class WindowSpec(Protocol):
    @property
    def label(self) -> str: ...

    def bounds(self, t: float) -> tuple[float, float] | None:
        """(start, end) of the window holding time t, or None if t is in none of them."""
        ...


@dataclass(frozen=True)
class FixedWindow:
    """Back-to-back windows of one period, aligned to local midnight."""

    label: str
    period_s: int
    tz_offset_s: int

    def bounds(self, t: float) -> tuple[float, float] | None:
        start = math.floor((t + self.tz_offset_s) / self.period_s) * self.period_s - self.tz_offset_s
        return float(start), float(start + self.period_s)


@dataclass(frozen=True)
class DayPartWindow:
    """The part of each local day from `start_s` to `end_s` (seconds after midnight; may wrap midnight)."""

    label: str
    start_s: int
    end_s: int
    tz_offset_s: int

    def bounds(self, t: float) -> tuple[float, float] | None:
        local = t + self.tz_offset_s
        midnight = math.floor(local / SECONDS_PER_DAY) * SECONDS_PER_DAY
        second = local - midnight
        base = midnight - self.tz_offset_s
        if self.start_s < self.end_s:
            if self.start_s <= second < self.end_s:
                return float(base + self.start_s), float(base + self.end_s)
            return None
        # Wraps midnight (night: 22:00-06:00).
        if second >= self.start_s:
            return float(base + self.start_s), float(base + SECONDS_PER_DAY + self.end_s)
        if second < self.end_s:
            return float(base - SECONDS_PER_DAY + self.start_s), float(base + self.end_s)
        return None

    def next_start(self, t: float) -> float:
        """The start of the first part after t (for t in none: where the gap t is in ends)."""
        base = math.floor((t + self.tz_offset_s) / SECONDS_PER_DAY) * SECONDS_PER_DAY - self.tz_offset_s
        start = float(base + self.start_s)
        return start if start > t else start + SECONDS_PER_DAY


_PERIOD_RE = re.compile(r"^(\d+)(s|min|h|d)$")
_UNIT_S = {"s": 1, "min": 60, "h": 3600, "d": SECONDS_PER_DAY}


def period_seconds(label: str) -> int:
    match = _PERIOD_RE.match(label)
    if match is None:
        raise LimitsError(f"window {label!r}: expected e.g. 1min, 15min, 1h, 24h, day, night")
    period = int(match.group(1)) * _UNIT_S[match.group(2)]
    if period <= 0 or SECONDS_PER_DAY % period != 0:
        raise LimitsError(f"window {label!r}: the period must divide a day")
    return period


def period_label(seconds: int) -> str:
    """The window label of a period: 1200 -> '20min', 3600 -> '1h'."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}min"
    return f"{seconds}s"


def is_night(t: float, limits: SiteLimits) -> bool:
    """Whether t falls in the GB 12523 night (22:00-06:00 local time by default)."""
    return window_spec("night", limits).bounds(t) is not None


def window_spec(label: str, limits: SiteLimits) -> WindowSpec:
    """A window from its label; day / night follow the GB 12523 hours of `limits.noise`."""
    tz = limits.time.tz_offset_s
    day, night = limits.noise.day_start_s, limits.noise.night_start_s
    if label == "day":
        return DayPartWindow("day", day, night, tz)
    if label == "night":
        return DayPartWindow("night", night, day, tz)
    return FixedWindow(label, period_seconds(label), tz)


def window_specs(labels: Iterable[str], limits: SiteLimits) -> tuple[WindowSpec, ...]:
    labels = tuple(labels)
    if not labels:
        raise LimitsError("an aggregator needs at least one window")
    if len(set(labels)) != len(labels):
        raise LimitsError(f"windows {labels!r} repeat a label")
    return tuple(window_spec(label, limits) for label in labels)


# ---------------------------------------------------------------------------
# Open windows per node.
# ---------------------------------------------------------------------------

A = TypeVar("A")


WindowKey = tuple[str, str, float]  # (node, window label, start)


@dataclass(eq=False)
class Window(Generic[A]):
    node: str
    kind: str
    label: str
    start: float
    end: float
    acc: A
    # How many times the window was emitted: the revision of its next emission.
    emitted: int = 0

    @property
    def key(self) -> WindowKey:
        return (self.node, self.label, self.start)


def no_horizon(node: str) -> float:
    return 0.0


_NOTHING_CLOSED: list[Window[Any]] = []  # route's answer when nothing closed (read only)


class WindowSet(Generic[A]):
    """The open window of each (node, window label), and the closed ones that are still revisable.

    `horizon(node)`: how far behind the node's newest time (its newest sample,
    or the last `advance`) a sample may lie and still revise its window.
    """

    shortcut = True  # remember where a node's samples go while its windows stay (False: walk every time)

    def __init__(
        self,
        specs: Callable[[str], Sequence[WindowSpec]],
        make: Callable[[str, str], A],
        horizon: Callable[[str], float] = no_horizon,
    ) -> None:
        # specs(node) -> the node's windows (the tz offset may differ per node);
        # make(node, label) -> a fresh accumulator.
        self._specs = specs
        self._make = make
        self._horizon = horizon
        self._open: dict[tuple[str, str], Window[A]] = {}
        # End of the last window closed per key: a reading before it belongs to a
        # closed window (revisable or too old), never to a new open one.
        self._closed_until: dict[tuple[str, str], float] = {}
        # Closed windows still within the horizon, per (node, label).
        self._closed: dict[tuple[str, str], dict[float, Window[A]]] = {}
        # The earliest end of those, per (node, label): `advance` looks for windows to forget only where
        # the node's floor has reached it (issue 13: every key at every tick was a tenth of the pipeline).
        self._earliest_end: dict[tuple[str, str], float] = {}
        # Closed windows that took late samples since they were last emitted.
        self._dirty: dict[WindowKey, Window[A]] = {}
        self._now = -math.inf  # the last advance()
        self._newest: dict[str, float] = {}  # newest sample time per node
        # Per node: (from, until, accumulators) while every sample time in [from, until) goes to those
        # open windows and changes nothing else (issue 13: the common case, one check instead of a
        # walk over the node's windows). Dropped whenever a window of the node opens or closes.
        self._fast: dict[str, tuple[float, float, list[A]]] = {}
        self.late: Counter[str] = Counter()  # per node: samples that went into a closed window
        self.dropped: Counter[str] = Counter()  # per node: samples older than the revision horizon
        self.irregular = 0  # bumped whenever late or dropped changes: readers skip the counters otherwise
        # Where a restart's replay began: closed windows before it were not rebuilt (what they held is unknown
        # here), so a sample for one is too late, however long the node's horizon.
        self.rebuilt_from = -math.inf
        # End of the newest closed window forgotten per key: a sample for it must not open it again as new.
        self._forgotten_until: dict[tuple[str, str], float] = {}

    def floor(self, node: str) -> float:
        """Samples before this time no longer revise a closed window of `node`."""
        return max(self._now, self._newest.get(node, -math.inf)) - self._horizon(node)

    def route(self, node: str, kind: str, t: float, readings: int = 1) -> tuple[list[Window[A]], list[A]]:
        """Close what `t` ends, open what it starts; returns (closed windows, accumulators to feed).

        A sample for a closed window within the horizon is added to it (and the
        window is marked for `take_dirty`); an older one is counted in `dropped`.
        `readings`: how many readings of the sample this routes (late and dropped count readings:
        routing the same node and time again returns the same accumulators and closes nothing).
        The lists returned are the caller's to read, not to change (they may be kept here).
        """
        fast = self._fast.get(node)
        if fast is not None and fast[0] <= t < fast[1]:
            if t > self._newest.get(node, -math.inf):
                self._newest[node] = t
            return _NOTHING_CLOSED, fast[2]
        if fast is not None:
            del self._fast[node]
        closed: list[Window[A]] = []
        targets: list[A] = []
        floor: float | None = None  # only a sample before an open window needs it (issue 13: rarely)
        late = dropped = False
        still_from, still_until = -math.inf, math.inf  # where the same targets would take a sample
        for spec in self._specs(node):
            key = (node, spec.label)
            current = self._open.get(key)
            if current is not None and t >= current.end:
                closed.append(self._close(key))
                current = None
            if current is not None and t >= current.start:
                targets.append(current.acc)
                still_from, still_until = max(still_from, current.start), min(still_until, current.end)
                continue
            bounds = spec.bounds(t)
            if bounds is None:
                if isinstance(spec, DayPartWindow):
                    still_from, still_until = max(still_from, t), min(still_until, spec.next_start(t))
                else:
                    still_until = -math.inf  # a window type whose gaps are not known here: no shortcut
                continue
            if current is None and t >= self._closed_until.get(key, -math.inf):
                current = Window(node, kind, spec.label, bounds[0], bounds[1], self._make(node, spec.label))
                self._open[key] = current
                targets.append(current.acc)
                still_from, still_until = max(still_from, bounds[0]), min(still_until, bounds[1])
                continue
            # Before the open window, or before the end of one already closed.
            still_until = -math.inf
            if floor is None:
                floor = self.floor(node)
            if t < floor or t < self.rebuilt_from or t < self._forgotten_until.get(key, -math.inf):
                dropped = True
                continue
            kept = self._closed.setdefault(key, {})
            window = kept.get(bounds[0])
            if window is None:  # never opened: the node was silent all through it until now
                window = kept[bounds[0]] = Window(
                    node, kind, spec.label, bounds[0], bounds[1], self._make(node, spec.label)
                )
                self._earliest_end[key] = min(self._earliest_end.get(key, math.inf), window.end)
            self._dirty[window.key] = window
            targets.append(window.acc)
            late = True
        if late:
            self.late[node] += readings
            self.irregular += 1
        if dropped:
            self.dropped[node] += readings
            self.irregular += 1
        if t > self._newest.get(node, -math.inf):
            self._newest[node] = t
        if self.shortcut and still_from <= t < still_until:
            self._fast[node] = (still_from, still_until, targets)
        return closed, targets

    def advance(self, now: float) -> list[Window[A]]:
        """Close every window that ended at or before `now`; forget closed ones past the horizon."""
        self._now = max(self._now, now)
        done = sorted((w.end, key) for key, w in self._open.items() if w.end <= now)
        out = [self._close(key) for _, key in done]
        floors: dict[str, float] = {}
        for key in list(self._closed):
            floor = floors.get(key[0])
            if floor is None:
                floor = floors[key[0]] = self.floor(key[0])
            if self._earliest_end.get(key, -math.inf) <= floor:  # else no window of the key is past it
                self._prune(key, floor)
        return out

    def take_dirty(self) -> list[Window[A]]:
        """Closed windows that took late samples since their last emission (each once), oldest first."""
        if not self._dirty:
            return []  # nearly every batch: no sort, no lambda
        dirty = sorted(self._dirty.values(), key=lambda w: (w.start, w.node, w.label))
        self._dirty.clear()
        return dirty

    def open_windows(self) -> list[Window[A]]:
        return list(self._open.values())

    def revisable(self) -> int:
        """Closed windows kept because they can still be revised."""
        return sum(len(kept) for kept in self._closed.values())

    def _close(self, key: tuple[str, str]) -> Window[A]:
        window = self._open.pop(key)
        self._fast.pop(key[0], None)
        self._closed_until[key] = window.end
        self._closed.setdefault(key, {})[window.start] = window
        self._earliest_end[key] = min(self._earliest_end.get(key, math.inf), window.end)
        self._prune(key)
        return window

    def _prune(self, key: tuple[str, str], floor: float | None = None) -> None:
        """Forget the key's closed windows that ended at or before the node's floor (not those dirty)."""
        kept = self._closed.get(key)
        if not kept:
            return
        if floor is None:
            floor = self.floor(key[0])
        for start in [s for s, w in kept.items() if w.end <= floor and w.key not in self._dirty]:
            self._forgotten_until[key] = max(self._forgotten_until.get(key, -math.inf), kept.pop(start).end)
        if kept:
            self._earliest_end[key] = min(w.end for w in kept.values())
        else:
            del self._closed[key]
            self._earliest_end.pop(key, None)


# ---------------------------------------------------------------------------
# Counting valid samples.
# ---------------------------------------------------------------------------


# Flags whose value enters a statistic and an alarm. T (over range) is information, not invalid data:
# the value is at least the range limit (docs/data-quality.md).
USABLE = frozenset({Quality.NORMAL, Quality.OVER_RANGE})


def is_valid(reading: Reading) -> bool:
    """Only readings flagged N or T with a finite value enter a statistic."""
    return reading.value is not None and math.isfinite(reading.value) and reading.quality in USABLE


@dataclass(slots=True)
class Tally:
    """Valid sample count (over-range ones among them) and the flags of the invalid ones."""

    count: int = 0
    over_range: int = 0  # samples flagged T that entered the window's statistics
    invalid: Counter[Quality] = field(default_factory=Counter)

    def add(self, reading: Reading) -> bool:
        value, flag = reading.value, reading.quality
        if value is not None and flag in USABLE and math.isfinite(value):  # is_valid, inlined: every sample
            self.count += 1
            if flag is Quality.OVER_RANGE:
                self.over_range += 1
            return True
        if flag in USABLE:
            # A missing value with a normal flag is still a failed read; a
            # NaN or infinity is the device's fault.
            flag = Quality.COMMUNICATION_FAILURE if reading.value is None else Quality.DEVICE_FAULT
        self.invalid[flag] += 1
        return False


class SampleIntervals:
    """Each node's sample interval, measured from its own sequence numbers and sample times.

    The node's holding register sample_interval (whole ms) sets how often it
    samples and its sample sequence number counts the samples, so between two
    samples of one boot (t_b - t_a) / (seq_b - seq_a) is the interval the node
    uses, whatever was lost between them. A window's expected count follows
    the node's own setting and its changes, for polled and backfilled samples
    alike, without a site-wide constant that a node may contradict. Measured
    across the last SPAN samples (timing jitter divides by the span) and
    rounded to the register's whole milliseconds.
    """

    SPAN = 16

    def __init__(self) -> None:
        self._recent: dict[str, deque[tuple[int, float]]] = {}

    def observe(self, node: str, sequence: int, t: float) -> None:
        if sequence <= 0:
            return  # no sample behind it (a failed poll)
        recent = self._recent.get(node)
        if recent is None:
            recent = self._recent[node] = deque(maxlen=self.SPAN + 1)
        if recent:
            last_sequence, last_t = recent[-1]
            if sequence == last_sequence or t <= last_t:
                return  # another channel of the same sample, or an older sample fetched late
            if sequence < last_sequence:
                recent.clear()  # the node restarted (its sequence starts again at 1): measure afresh
        recent.append((sequence, t))

    def get(self, node: str) -> float | None:
        """The node's measured interval in seconds, or None before two of its samples were seen."""
        recent = self._recent.get(node)
        if not recent or len(recent) < 2:
            return None
        (first_sequence, first_t), (last_sequence, last_t) = recent[0], recent[-1]
        ms = round(1000.0 * (last_t - first_t) / (last_sequence - first_sequence))
        return max(ms, 1) / 1000.0


@dataclass(frozen=True)
class Validity:
    count: int
    expected: int
    valid: bool
    quality: Quality


def validity(tally: Tally, start: float, end: float, interval_s: float, fraction: float) -> Validity:
    expected = max(1, round((end - start) / interval_s))
    valid = tally.count >= fraction * expected - 1e-9
    # Precedence (docs/data-quality.md): a window short of valid samples takes the flag of its invalid
    # samples (B, D, ...); a valid one that includes an over-range value is T; otherwise N.
    if valid:
        quality = Quality.OVER_RANGE if tally.over_range else Quality.NORMAL
    elif tally.invalid:
        # The most common flag; ties go to the flag listed first in Quality.
        order = list(Quality)
        quality = max(tally.invalid, key=lambda q: (tally.invalid[q], -order.index(q)))
    else:
        quality = Quality.COMMUNICATION_FAILURE
    return Validity(tally.count, expected, valid, quality)


def make_aggregates(
    window: Window[A],
    source: str,
    base: str,
    check: Validity,
    values: Sequence[tuple[str, float | None, str]],
    count_statistic: str = "count",
) -> list[Aggregate]:
    """One Aggregate per (statistic, value, unit), plus the window's count.

    In a valid window a statistic without a value (the mean direction of a
    calm spell) is left out rather than sent as a gap with a fault flag.
    """
    out = [
        Aggregate(
            node=window.node,
            kind=window.kind,
            channel=f"{base}_{window.label}_{statistic}",
            source=source,
            statistic=statistic,
            window=window.label,
            start=window.start,
            end=window.end,
            value=value,
            unit=unit,
            count=check.count,
            expected=check.expected,
            valid=check.valid,
            quality=check.quality,
        )
        for statistic, value, unit in values
        if value is not None or not check.valid
    ]
    out.append(
        Aggregate(
            node=window.node,
            kind=window.kind,
            channel=f"{base}_{window.label}_{count_statistic}",
            source=source,
            statistic=count_statistic,
            window=window.label,
            start=window.start,
            end=window.end,
            value=float(check.count),
            unit="",
            count=check.count,
            expected=check.expected,
            valid=check.valid,
            # The count is a fact whatever the window's validity.
            quality=Quality.NORMAL,
        )
    )
    return out


def str_tuple(value: object, what: str) -> tuple[str, ...]:
    """A config list of strings as a tuple; a lone string is refused (a common TOML slip)."""
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise LimitsError(f"{what}: expected a list of strings, got {value!r}")
    return tuple(str(v) for v in value)


KnownKey = tuple[str, str, float]  # (node, channel, start) of an aggregate already emitted


def same_content(a: Aggregate, b: Aggregate) -> bool:
    """Whether two emissions of a window's statistic say the same (the revision aside)."""
    return (a.value, a.unit, a.count, a.expected, a.valid, a.quality, a.end) == (
        b.value, b.unit, b.count, b.expected, b.valid, b.quality, b.end
    )


@dataclass
class _Replay(Generic[A]):
    known: Mapping[KnownKey, Aggregate]
    since: float
    late: Counter[str]  # the counts before the replay, put back after it
    dropped: Counter[str]
    differing: dict[WindowKey, Window[A]] = field(default_factory=dict)  # closed, not (yet) as emitted


class WindowedAggregator(Generic[A]):
    """Shared plumbing: route each reading to its node's open windows, finish closed ones.

    A subclass says which readings it takes (`_accepts`), how to make an
    accumulator (`_make`), how to add a reading to one (`_add`) and how to turn
    a closed window into aggregates (`_finish`).

    Late samples (see the module docstring): `feed` adds them to their closed
    window; `flush` emits the revisions of the windows they changed.
    `revision_horizon_s` (0: from the node's history depth, see
    limits.default_revision_horizon_s) is how long a closed window stays revisable.
    """

    def __init__(self, limits: LimitsResolver, windows: Sequence[str]) -> None:
        self._limits = limits
        self._labels = str_tuple(windows, "windows")
        window_specs(self._labels, limits.site)  # refuse bad labels now, not at the first reading
        self._specs: dict[str, tuple[WindowSpec, ...]] = {}
        self.revision_horizon_s = 0.0
        self._set: WindowSet[A] = WindowSet(self._specs_for, self._make, self.horizon_s)
        self._replay: _Replay[A] | None = None
        self._intervals = SampleIntervals()
        # The channels `_accepts` takes, for a subclass that decides by the channel alone (None: ask
        # `_accepts` for every reading). AggregateStage hands the others to `observe` only.
        self._accepted: frozenset[str] | None = None

    def accepted_channels(self) -> frozenset[str] | None:
        """The only channels `feed` aggregates (None: not known by channel alone)."""
        return self._accepted

    def share_intervals(self, intervals: SampleIntervals) -> None:
        """Measure the nodes' sample intervals in `intervals`, shared with aggregators that see the same
        samples (those of one AggregateStage: each sees every sample, fed or observed). Before any feed."""
        self._intervals = intervals

    def observe(self, reading: Reading) -> None:
        """All that `feed` does with a reading it does not accept: measure the node's sample interval."""
        self._intervals.observe(reading.node, reading.sequence, reading.timestamp)

    def horizon_s(self, node: str) -> float:
        """How long after the node's newest time a closed window of it can still be revised."""
        if self.revision_horizon_s > 0.0:
            return self.revision_horizon_s
        # The ring holds a number of samples: a node sampling slower than the site's setting reaches further
        # back, and its backfilled samples must still revise their windows (measured as for expected counts).
        configured = self._limits.for_node(node).sampling.interval_s
        measured = self._intervals.get(node)
        return default_revision_horizon_s(configured if measured is None else max(configured, measured))

    @property
    def labels(self) -> tuple[str, ...]:
        """The window labels this aggregator makes."""
        return self._labels

    def outputs(self) -> frozenset[str]:
        """Every output channel this aggregator can make (for the configuration's coupling checks)."""
        raise NotImplementedError

    @property
    def late(self) -> int:
        """Readings that arrived after their window closed and revised it."""
        return sum(self._set.late.values())

    @property
    def dropped(self) -> int:
        """Readings too old to revise their window (older than the revision horizon)."""
        return sum(self._set.dropped.values())

    @property
    def irregular(self) -> int:
        """A number that changes whenever `late` or `dropped` does (cheaper than comparing them)."""
        return self._set.irregular

    @property
    def window_set(self) -> WindowSet[A]:
        """The aggregator's windows (to read: `irregular`)."""
        return self._set

    def late_by_node(self) -> dict[str, int]:
        return dict(self._set.late)

    def dropped_by_node(self) -> dict[str, int]:
        return dict(self._set.dropped)

    def feed(self, reading: Reading) -> list[Aggregate]:
        self._intervals.observe(reading.node, reading.sequence, reading.timestamp)
        if not self._accepts(reading):
            return []
        closed, targets = self._set.route(reading.node, reading.kind, reading.timestamp)
        out = self._close(closed)
        for acc in targets:
            self._add(acc, reading)
        return out

    def feed_sample(self, readings: list[Reading]) -> list[Aggregate]:
        """`feed` of each reading in turn, for readings of one node sample (the same node, sequence and
        time) that this aggregator all accepts: the sample is observed and routed once, not per reading."""
        first = readings[0]
        self._intervals.observe(first.node, first.sequence, first.timestamp)
        closed, targets = self._set.route(first.node, first.kind, first.timestamp, len(readings))
        out = self._close(closed) if closed else []
        self._add_sample(targets, readings)
        return out

    def _add_sample(self, targets: list[A], readings: list[Reading]) -> None:
        """Add each reading to each accumulator (a subclass may do it faster, with the same result)."""
        add = self._add
        for reading in readings:
            for acc in targets:
                add(acc, reading)

    def flush(self) -> list[Aggregate]:
        """The revisions of the closed windows that late readings changed since the last flush."""
        return self._close(self._set.take_dirty())

    def advance(self, now: float) -> list[Aggregate]:
        return self.flush() + self._close(self._set.advance(now))

    def replay_since(self, node: str, now: float) -> float:
        """Where a replay must start so that every window of `node` open or revisable at `now` is whole."""
        floor = now - self.horizon_s(node)
        starts = [floor]
        for spec in self._specs_for(node):
            bounds = spec.bounds(floor)
            if bounds is not None:
                starts.append(bounds[0])
        return min(starts)

    def restore(
        self, readings: Iterable[Reading], known: Mapping[KnownKey, Aggregate], since: float, now: float
    ) -> list[Aggregate]:
        """Rebuild the windows from readings fed before a restart, in their original order.

        known: the aggregates emitted before the restart (the highest revision of
        each), from `since` on. Windows are rebuilt without emitting; then every
        window that closed (or closes at `now`) is compared with what was emitted:
        the same content is not emitted again (its revisions go on counting from
        the known one); a window whose emission was lost, or whose last revision
        was, is emitted now with the next revision. Windows starting before
        `since` are partial here and never emitted. The late / dropped counts are
        those of this run: the replay leaves them as they were.
        """
        self.start_replay(known, since)
        for reading in readings:
            self.replay(reading)
        return self.finish_replay(now)

    def start_replay(self, known: Mapping[KnownKey, Aggregate], since: float) -> None:
        """`restore` in steps, for a caller that feeds one stream of readings to several aggregators."""
        self._replay = _Replay(known, since, Counter(self._set.late), Counter(self._set.dropped))
        self._set.rebuilt_from = since

    def replay(self, reading: Reading) -> None:
        state = self._replay
        if state is None:
            raise RuntimeError("replay() outside start_replay() / finish_replay()")
        # The node's interval as the live run measured it: the windows' expected counts (and so their validity)
        # and the revision horizon must come out as they were emitted.
        self._intervals.observe(reading.node, reading.sequence, reading.timestamp)
        if not self._accepts(reading):
            return
        closed, targets = self._set.route(reading.node, reading.kind, reading.timestamp)
        self._settle(closed)
        for acc in targets:
            self._add(acc, reading)
        self._settle(self._set.take_dirty())

    def finish_replay(self, now: float) -> list[Aggregate]:
        state = self._replay
        if state is None:
            raise RuntimeError("finish_replay() without start_replay()")
        self._settle(self._set.advance(now))
        self._set.late, self._set.dropped = state.late, state.dropped
        self._set.irregular += 1
        self._replay = None
        out: list[Aggregate] = []
        for window in sorted(state.differing.values(), key=lambda w: (w.start, w.node, w.label)):
            if not self._reconcile(window, state.known):
                out.extend(self._emit(window))
        return out

    def _settle(self, windows: Iterable[Window[A]]) -> None:
        state = self._replay
        assert state is not None
        for window in windows:
            if window.start < state.since:
                window.emitted = max(window.emitted, 1)  # emitted before the restart; partial here
            elif self._reconcile(window, state.known):
                state.differing.pop(window.key, None)
            else:
                state.differing[window.key] = window

    def _reconcile(self, window: Window[A], known: Mapping[KnownKey, Aggregate]) -> bool:
        """Set the window's revision count from its known emission; whether that says the same."""
        made = self._finish(window)
        found = [known.get((a.node, a.channel, a.start)) for a in made]
        revisions = [k.revision for k in found if k is not None]
        window.emitted = max(revisions) + 1 if revisions else 0
        return bool(made) and all(k is not None and same_content(a, k) for a, k in zip(made, found, strict=True))

    def _close(self, windows: Sequence[Window[A]]) -> list[Aggregate]:
        out: list[Aggregate] = []
        for window in windows:
            out.extend(self._emit(window))
        return out

    def _emit(self, window: Window[A]) -> list[Aggregate]:
        revision = window.emitted
        window.emitted += 1
        made = self._finish(window)
        return made if revision == 0 else [replace(a, revision=revision) for a in made]

    def _specs_for(self, node: str) -> tuple[WindowSpec, ...]:
        specs = self._specs.get(node)
        if specs is None:
            specs = self._specs[node] = window_specs(self._labels, self._limits.for_node(node))
        return specs

    def sample_interval(self, node: str) -> float:
        """The node's sample interval: measured from its samples (SampleIntervals), else limits.sampling."""
        measured = self._intervals.get(node)
        return measured if measured is not None else self._limits.for_node(node).sampling.interval_s

    def _validity(self, window: Window[A], tally: Tally) -> Validity:
        fraction = self._limits.for_node(window.node).sampling.validity_fraction
        return validity(tally, window.start, window.end, self.sample_interval(window.node), fraction)

    def _accepts(self, reading: Reading) -> bool:
        raise NotImplementedError

    def _make(self, node: str, label: str) -> A:
        raise NotImplementedError

    def _add(self, acc: A, reading: Reading) -> None:
        raise NotImplementedError

    def _finish(self, window: Window[A]) -> list[Aggregate]:
        raise NotImplementedError
