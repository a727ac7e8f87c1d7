"""A site's day from its records: the numbers of the daily report, sans-IO.

``summarize(site, day, records, limits)`` takes what the gateway stored (readings, alarm events,
outages, gaps) and returns a ``DaySummary`` (gateway/report/model.py). Nothing here reads a file
or a clock: the sources (gateway/report/sources.py) fetch the records, the renderers draw them.

The statistics follow the gateway's own rules and reuse its maths, so the report says what the
gateway's aggregates and alarms said:

* PM: the day's (24-h) mean and each local hour's mean of the valid samples (flag N or T with a
  finite value, gateway.process.aggregate.is_valid), with the count of valid samples; a mean from
  fewer than ``limits.sampling.validity_fraction`` (75 %) of the samples expected is marked
  invalid. An exceedance is an hour whose PM10 mean is above ``limits.dust.pm10_1h_limit`` (the
  dust alarm's rule, ">"). limits.py has no PM2.5 limit: PM2.5 is reported, not judged.
* Noise (GB 12523): day (06:00-22:00) and night Leq by summed energy, never by averaging decibels
  (gateway.process.noise), Lmax from the Fast maximum channel (or the 1-s levels), L10/L50/L90,
  and the Leq of each evaluation period (20 min) against the limit of the part of the day it
  starts in. The night of a calendar day is its 00:00-06:00 and 22:00-24:00.
* Wind: the day's mean speed, 10-min means, the largest 3-s gust (the node's ``wind_gust_3s`` and
  the gateway's running means of its speeds, as the wind aggregator does), the mean direction of
  unit vectors with calm samples left out. Crane-stop and lifting-stop periods apply the crane_wind
  and lifting_wind alarms' rule (gateway.process.alarms.AlarmMachine: from a gust at the limit until
  gusts stayed below limit - margin for hold_s) to the gust readings; readings from before midnight
  (the sources fetch LOOKBACK_S of them) only set the state the day starts in.
* Tilt: the combined slope sqrt(x^2 + y^2) of each sample (the formwork alarm's default rule),
  its peak and time, and how long it stood at or above the pre-warning and alarm levels.
* Alarms: raised and cleared events paired into episodes per (alarm, node, channel, severity).
* Completeness per node: samples expected over the day at the node's sample interval (measured
  from its sequence numbers and times), samples received, the gateway's outage records, the
  backfill's gaps (samples lost for good), and every stretch of more than three intervals without
  a sample (the day's edges included).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from itertools import pairwise

from gateway.deliver.records import GATEWAY_NODE, Outage
from gateway.model import Gap, Reading
from gateway.process.aggregate import is_valid, window_spec
from gateway.process.alarms import AlarmEvent, AlarmMachine, EventState, Levels
from gateway.process.limits import LimitsResolver, SiteLimits
from gateway.process.noise import energy, exceeded_level, level_from_energy
from gateway.process.wind import circular_mean, gust
from gateway.profiles.kinds import kind_profiles
from gateway.report.model import (
    AlarmEpisode,
    Bin,
    ChannelDay,
    Completeness,
    DaySummary,
    KindNode,
    NoiseNode,
    NoisePart,
    Period,
    PmNode,
    TiltNode,
    WindNode,
)

LOOKBACK_S = 3600.0  # readings before midnight a source fetches, so that a crane stop going on at midnight shows
INTERVAL_TOLERANCE = 0.01  # a measured sample interval this close to the configured one is the configured one
SILENCE_INTERVALS = 3  # a stretch without samples longer than this many intervals is listed
WIND_BIN_S = 600  # WMO 10-min means
TILT_BIN_S = 600
PM_BIN_S = 3600


@dataclass(frozen=True)
class DayRecords:
    """What a source fetched for one day: readings from LOOKBACK_S before midnight to the next midnight;
    alarm events up to the next midnight (earlier ones pair up with the day's); outages and gaps that
    overlap the day."""

    readings: Sequence[Reading] = ()
    alarms: Sequence[AlarmEvent] = ()
    outages: Sequence[Outage] = ()
    gaps: Sequence[Gap] = ()


class ReportError(ValueError):
    """A report that cannot be made as asked (no such day, no records, a bad option)."""


def day_bounds(day: date, tz_offset_s: int) -> tuple[float, float]:
    """Local midnight to the next local midnight of `day`, epoch seconds."""
    zone = timezone(timedelta(seconds=tz_offset_s))
    start = datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
    return start, start + 86400.0


# ---------------------------------------------------------------------------
# Small pieces.
# ---------------------------------------------------------------------------

Sample = tuple[int, float]  # (sequence, timestamp): one node sample, shared by its channels


def measured_interval(samples: Iterable[Sample], configured: float) -> float:
    """The node's sample interval from its samples (sequence, time), in whole ms.

    dt / dseq of consecutive samples of one boot; the median keeps a reboot or a stray sequence
    out, and the pairs near it are summed (sum dt / sum dseq) so that the timestamps' jitter
    divides by the whole span. A measured interval within INTERVAL_TOLERANCE of the configured one
    (limits.sampling.interval_s) is that one: the node's register holds whole milliseconds and the
    measurement cannot do better than the jitter.
    """
    ordered = sorted({s for s in samples if s[0] > 0}, key=lambda s: s[1])
    pairs = [(t2 - t1, s2 - s1) for (s1, t1), (s2, t2) in pairwise(ordered) if s2 > s1 and t2 > t1]
    if not pairs:
        return configured
    typical = statistics.median(dt / ds for dt, ds in pairs)
    near = [(dt, ds) for dt, ds in pairs if abs(dt / ds - typical) <= 0.1 * typical]
    measured = max(round(1000.0 * math.fsum(dt for dt, _ in near) / sum(ds for _, ds in near)), 1) / 1000.0
    return configured if abs(measured - configured) <= INTERVAL_TOLERANCE * configured else measured


def expected_samples(seconds: float, interval_s: float) -> int:
    return max(1, round(seconds / interval_s))


def is_valid_count(count: int, expected: int, fraction: float) -> bool:
    return count >= fraction * expected - 1e-9


def mean_bin(
    values: Sequence[tuple[float, float]], start: float, end: float, interval_s: float, fraction: float
) -> Bin:
    """The mean of (time, value) samples in [start, end), with count, expected count and validity."""
    inside = [v for t, v in values if start <= t < end]
    expected = expected_samples(end - start, interval_s)
    mean = math.fsum(inside) / len(inside) if inside else None
    return Bin(start, end, mean, len(inside), expected, is_valid_count(len(inside), expected, fraction),
               max(inside, default=None))


def bins(
    values: Sequence[tuple[float, float]],
    start: float,
    end: float,
    width: int,
    make: Callable[[Sequence[tuple[float, float]], float, float], Bin],
) -> tuple[Bin, ...]:
    """Back-to-back bins of `width` seconds from `start`; bins without a sample are left out."""
    ordered = sorted(values)
    out = []
    lo = 0
    t = start
    while t < end:
        hi = lo
        while hi < len(ordered) and ordered[hi][0] < t + width:
            hi += 1
        chunk = [s for s in ordered[lo:hi] if s[0] >= t]
        if chunk:
            out.append(make(chunk, t, t + width))
        lo = hi
        t += width
    return tuple(out)


def peaks_by_bin(values: Iterable[tuple[float, float]], start: float, width: int) -> dict[float, float]:
    """The largest value of each bin of `width` seconds from `start`, keyed by the bin's start (one pass)."""
    out: dict[float, float] = {}
    for t, v in values:
        key = start + width * math.floor((t - start) / width)
        if v > out.get(key, -math.inf):
            out[key] = v
    return out


def in_day(values: Iterable[tuple[float, float]], start: float, end: float) -> list[tuple[float, float]]:
    return [(t, v) for t, v in values if start <= t < end]


def leq_of(levels: Sequence[float]) -> float | None:
    return level_from_energy(math.fsum(energy(v) for v in levels), len(levels)) if levels else None


# ---------------------------------------------------------------------------
# Readings of one node, by channel.
# ---------------------------------------------------------------------------


@dataclass
class NodeReadings:
    node: str
    kind: str
    channels: dict[str, list[Reading]] = field(default_factory=lambda: defaultdict(list))

    def valid(self, channel: str) -> list[tuple[float, float]]:
        """(time, value) of the channel's usable readings, in time order."""
        out = [(r.timestamp, r.value) for r in self.channels.get(channel, ()) if is_valid(r) and r.value is not None]
        out.sort()
        return out

    def samples(self) -> set[Sample]:
        return {(r.sequence, r.timestamp) for rs in self.channels.values() for r in rs}


def by_node(readings: Iterable[Reading]) -> dict[str, NodeReadings]:
    nodes: dict[str, NodeReadings] = {}
    for r in readings:
        entry = nodes.get(r.node)
        if entry is None:
            entry = nodes[r.node] = NodeReadings(r.node, r.kind)
        entry.channels[r.channel].append(r)
    return nodes


# ---------------------------------------------------------------------------
# Per kind.
# ---------------------------------------------------------------------------


def summarize_pm(nr: NodeReadings, start: float, end: float, limits: SiteLimits, interval: float) -> PmNode:
    fraction = limits.sampling.validity_fraction

    def make(chunk: Sequence[tuple[float, float]], a: float, b: float) -> Bin:
        return mean_bin(chunk, a, b, interval, fraction)

    pm25, pm10 = in_day(nr.valid("pm25"), start, end), in_day(nr.valid("pm10"), start, end)
    pm10_hours = bins(pm10, start, end, PM_BIN_S, make)
    limit = limits.dust.pm10_1h_limit
    threshold = limits.humidity.rh_flag_threshold
    humid = sum(1 for _, v in in_day(nr.valid("humidity"), start, end) if v > threshold)
    return PmNode(
        nr.node,
        make(pm25, start, end),
        make(pm10, start, end),
        bins(pm25, start, end, PM_BIN_S, make),
        pm10_hours,
        limit,
        tuple(b for b in pm10_hours if b.value is not None and b.value > limit),
        humid,
        threshold,
    )


def _noise_part(
    label: str,
    levels: Sequence[tuple[float, float]],
    maxima: Sequence[tuple[float, float]],
    seconds: float,
    interval: float,
    limit: float,
    lmax_limit: float | None,
    periods: Sequence[Bin],
) -> NoisePart:
    values = [v for _, v in levels]
    histogram = Counter(values)
    # Lmax: the Fast maximum when the node reports one, else the 1-s levels (the noise aggregator's rule).
    peak = max([*maxima, *levels], key=lambda s: (s[1], -s[0]), default=None)
    return NoisePart(
        label,
        leq_of(values),
        None if peak is None else peak[1],
        None if peak is None else peak[0],
        exceeded_level(histogram, 10.0) if values else None,
        exceeded_level(histogram, 50.0) if values else None,
        exceeded_level(histogram, 90.0) if values else None,
        len(values),
        expected_samples(seconds, interval) if seconds > 0 else 0,
        limit,
        lmax_limit,
        sum(1 for p in periods if p.value is not None and p.value > limit),
    )


def summarize_noise(nr: NodeReadings, start: float, end: float, limits: SiteLimits, interval: float) -> NoiseNode:
    noise = limits.noise
    fraction = limits.sampling.validity_fraction
    levels = in_day(nr.valid("laeq_1s"), start, end)
    maxima = in_day(nr.valid("lamax_1s"), start, end)
    period_s = noise.evaluation_period_s
    max_of = peaks_by_bin(maxima, start, period_s)

    def make(chunk: Sequence[tuple[float, float]], a: float, b: float) -> Bin:
        count = len(chunk)
        expected = expected_samples(b - a, interval)
        peak = max([*(v for _, v in chunk), *([] if (m := max_of.get(a)) is None else [m])], default=None)
        return Bin(a, b, leq_of([v for _, v in chunk]), count, expected, is_valid_count(count, expected, fraction),
                   peak)

    periods = bins(levels, start, end, period_s, make)

    night_spec = window_spec("night", limits)  # built once: a day of 1-s samples asks 86 400 times

    def night(t: float) -> bool:
        return night_spec.bounds(t) is not None

    night_seconds = sum(60.0 for m in range(1440) if night(start + 60.0 * m + 30.0))
    day_part = _noise_part(
        "day",
        [s for s in levels if not night(s[0])],
        [s for s in maxima if not night(s[0])],
        end - start - night_seconds,
        interval,
        noise.day_limit,
        None,
        [p for p in periods if not night(p.start)],
    )
    night_part = _noise_part(
        "night",
        [s for s in levels if night(s[0])],
        [s for s in maxima if night(s[0])],
        night_seconds,
        interval,
        noise.night_limit,
        noise.night_lmax_limit,
        [p for p in periods if night(p.start)],
    )
    return NoiseNode(nr.node, day_part, night_part, periods, start + noise.day_start_s, start + noise.night_start_s)


def stop_periods(
    gusts: Sequence[tuple[float, float | None]], limit: float, margin: float, hold_s: float, node: str, name: str
) -> tuple[Period, ...]:
    """Periods from a gust at `limit` until the alarm's rule clears it (AlarmMachine, gateway.process.alarms).

    gusts: (time, value) in time order; None: a reading without a usable value (restarts the hold).
    """
    machine = AlarmMachine(name, node, "wind_gust_3s")
    levels = Levels(limit, margin=margin, hold_s=hold_s)
    out: list[Period] = []
    start: float | None = None
    peak: tuple[float, float] | None = None
    for t, v in gusts:
        if v is None:
            machine.invalid()
            continue
        events = machine.update(v, t, levels)
        if start is not None and (peak is None or v > peak[1]):
            peak = (t, v)
        for event in events:
            if event.state is EventState.RAISED:
                start, peak = t, (t, v)
            elif start is not None:
                out.append(Period(start, t, name, None if peak is None else peak[1], None if peak is None else peak[0]))
                start, peak = None, None
    if start is not None:
        out.append(Period(start, None, name, None if peak is None else peak[1], None if peak is None else peak[0]))
    return tuple(out)


def summarize_wind(nr: NodeReadings, start: float, end: float, limits: SiteLimits, interval: float) -> WindNode:
    wind = limits.wind
    fraction = limits.sampling.validity_fraction
    speeds_all = nr.valid("wind_speed")
    speeds = in_day(speeds_all, start, end)
    node_gusts = in_day(nr.valid("wind_gust_3s"), start, end)
    # The gateway's own 3-s running means of the speed samples, as the wind aggregator forms them.
    running = gust(speeds, interval)
    candidates = [*node_gusts] + ([] if running is None else [(_time_of(speeds, running, interval), running)])
    top = max(candidates, key=lambda s: (s[1], -s[0]), default=None)

    def make(chunk: Sequence[tuple[float, float]], a: float, b: float) -> Bin:
        inside = mean_bin(chunk, a, b, interval, fraction)
        g = gust(chunk, interval)
        peak = max([*([] if (p := gust_of.get(a)) is None else [p]), *([] if g is None else [g])], default=None)
        return Bin(a, b, inside.value, inside.count, inside.expected, inside.valid, peak)

    gust_of = peaks_by_bin(node_gusts, start, WIND_BIN_S)
    ten = bins(speeds, start, end, WIND_BIN_S, make)
    valid_tens = [b for b in ten if b.valid and b.value is not None]
    # Direction: unit vectors, calm samples (speed below calm_speed, same sample) left out.
    speed_of = {(r.sequence, r.timestamp): r.value for r in nr.channels.get("wind_speed", ()) if is_valid(r)}
    directions = [
        r.value
        for r in nr.channels.get("wind_dir", ())
        if is_valid(r) and r.value is not None and start <= r.timestamp < end
        and not ((s := speed_of.get((r.sequence, r.timestamp))) is not None and s < wind.calm_speed)
    ]
    gust_input: list[tuple[float, float | None]] = sorted(
        (r.timestamp, r.value if is_valid(r) else None)
        for r in nr.channels.get("wind_gust_3s", ())
        if r.timestamp < end
    )

    def clip(periods: tuple[Period, ...]) -> tuple[Period, ...]:
        return tuple(p for p in periods if p.end is None or p.end >= start)

    return WindNode(
        nr.node,
        mean_bin(speeds, start, end, interval, fraction),
        max(valid_tens, key=lambda b: b.value or 0.0, default=None),
        None if top is None else top[1],
        None if top is None else top[0],
        circular_mean(directions) if directions else None,
        ten,
        wind.crane_gust,
        wind.lifting_gust,
        clip(stop_periods(gust_input, wind.crane_gust, wind.margin, wind.hold_s, nr.node, "crane_wind")),
        clip(stop_periods(gust_input, wind.lifting_gust, wind.margin, wind.hold_s, nr.node, "lifting_wind")),
    )


def _time_of(speeds: Sequence[tuple[float, float]], running: float, interval: float) -> float:
    """When the running mean `running` was formed (the last sample of its span)."""
    n = max(1, round(3.0 / interval))
    for i in range(n - 1, len(speeds)):
        if math.isclose(math.fsum(v for _, v in speeds[i - n + 1 : i + 1]) / n, running, rel_tol=1e-12):
            return speeds[i][0]
    return speeds[-1][0]


def summarize_tilt(nr: NodeReadings, start: float, end: float, limits: SiteLimits, interval: float) -> TiltNode:
    tilt = limits.tilt
    fraction = limits.sampling.validity_fraction
    xs = {(r.sequence, r.timestamp): r.value for r in nr.channels.get("slope_x", ()) if is_valid(r)}
    ys = {(r.sequence, r.timestamp): r.value for r in nr.channels.get("slope_y", ()) if is_valid(r)}
    combined = sorted(
        (key[1], math.hypot(x, y))
        for key, x in xs.items()
        if x is not None and (y := ys.get(key)) is not None and start <= key[1] < end
    )

    def largest(values: Iterable[float | None]) -> float | None:
        return max((v for v in values if v is not None), key=abs, default=None)

    def in_range(values: dict[Sample, float | None]) -> list[float | None]:
        return [v for k, v in values.items() if start <= k[1] < end]

    top = max(combined, key=lambda s: (s[1], -s[0]), default=None)

    def make(chunk: Sequence[tuple[float, float]], a: float, b: float) -> Bin:
        return mean_bin(chunk, a, b, interval, fraction)

    return TiltNode(
        nr.node,
        None if top is None else top[1],
        None if top is None else top[0],
        largest(in_range(xs)),
        largest(in_range(ys)),
        bins(combined, start, end, TILT_BIN_S, make),
        tilt.prewarning_permille,
        tilt.alarm_permille,
        interval * sum(1 for _, v in combined if v >= tilt.prewarning_permille),
        interval * sum(1 for _, v in combined if v >= tilt.alarm_permille),
    )


# ---------------------------------------------------------------------------
# Alarms and completeness.
# ---------------------------------------------------------------------------


def alarm_episodes(events: Iterable[AlarmEvent], start: float, end: float) -> tuple[AlarmEpisode, ...]:
    """Raised/cleared events paired per (alarm, node, channel, severity); the episodes that overlap [start, end)."""
    open_: dict[tuple[str, str, str, str], AlarmEvent] = {}
    out: list[AlarmEpisode] = []
    for e in sorted((e for e in events if e.time < end), key=lambda e: e.time):
        key = (e.alarm, e.node, e.channel, e.severity.value)
        if e.state is EventState.RAISED:
            earlier = open_.pop(key, None)
            if earlier is not None:  # raised twice without a clear: the first one's end is unknown
                out.append(_episode(earlier, None))
            open_[key] = e
        else:
            raised = open_.pop(key, None)
            if raised is None:
                out.append(AlarmEpisode(e.alarm, e.node, e.channel, e.severity.value, None, e.time, None, e.limit,
                                        e.reason))
            else:
                out.append(_episode(raised, e.time))
    out.extend(_episode(e, None) for e in open_.values())
    kept = [a for a in out if (a.end is None or a.end >= start) and (a.start is None or a.start < end)]
    return tuple(sorted(kept, key=lambda a: (a.start if a.start is not None else -math.inf, a.alarm, a.node)))


def _episode(raised: AlarmEvent, end: float | None) -> AlarmEpisode:
    limit = raised.limit if math.isfinite(raised.limit) else None
    return AlarmEpisode(raised.alarm, raised.node, raised.channel, raised.severity.value, raised.time, end,
                        raised.value, limit, raised.reason)


def _clip(a: float, b: float, start: float, end: float) -> tuple[float, float] | None:
    lo, hi = max(a, start), min(b, end)
    return (lo, hi) if hi > lo or (a == b and start <= a < end) else None


def outage_periods(outages: Iterable[Outage], node: str, start: float, end: float) -> tuple[Period, ...]:
    out = []
    for o in sorted((o for o in outages if o.node == node), key=lambda o: o.start):
        clipped = _clip(o.start, o.end, start, end)
        if clipped is not None:
            label = o.reason if o.closed else f"{o.reason} (still open when the gateway stopped)"
            out.append(Period(clipped[0], clipped[1], label))
    return tuple(out)


def gap_periods(gaps: Iterable[Gap], node: str, start: float, end: float) -> tuple[Period, ...]:
    out = []
    for g in sorted((g for g in gaps if g.node == node), key=lambda g: g.start):
        clipped = _clip(g.start, g.end, start, end)
        if clipped is not None:
            missing = "an unknown number of samples" if g.missing is None else f"{g.missing} samples"
            out.append(Period(clipped[0], clipped[1], f"{missing} lost ({g.reason})"))
    return tuple(out)


def silences(times: Sequence[float], start: float, end: float, interval: float) -> tuple[Period, ...]:
    """Stretches longer than SILENCE_INTERVALS intervals without a sample, the day's edges included."""
    edges = [start - interval, *sorted(times), end]
    # The day's first sample is due one interval after midnight at the latest: count from there.
    out = []
    for a, b in pairwise(edges):
        if b - a > SILENCE_INTERVALS * interval:
            out.append(Period(max(a, start), b, f"no sample for {b - max(a, start):.0f} s"))
    return tuple(out)


def completeness(
    nr: NodeReadings, records: DayRecords, start: float, end: float, interval: float
) -> Completeness:
    samples = [(s, t) for s, t in nr.samples() if start <= t < end]
    usable = {(r.sequence, r.timestamp) for rs in nr.channels.values() for r in rs if is_valid(r)}
    received_times = sorted({t for s, t in samples if s > 0 or (s, t) in usable})
    return Completeness(
        nr.node,
        nr.kind,
        interval,
        expected_samples(end - start, interval),
        len(received_times),
        len({k for k in samples if k in usable}),
        outage_periods(records.outages, nr.node, start, end),
        gap_periods(records.gaps, nr.node, start, end),
        silences(received_times, start, end, interval),
    )


# ---------------------------------------------------------------------------
# The day.
# ---------------------------------------------------------------------------

def summarize_means(nr: NodeReadings, start: float, end: float, limits: SiteLimits, interval: float) -> KindNode:
    """A kind without a section of its own: each channel's daily mean (with its validity), lowest and highest."""
    profile = kind_profiles().get(nr.kind)
    order = {c: i for i, c in enumerate(profile.measurement_names)} if profile is not None else {}
    shown = (profile.mean_channels or profile.measurement_names) if profile is not None else tuple(nr.channels)
    days = []
    for channel in sorted((c for c in nr.channels if c in shown), key=lambda c: (order.get(c, len(order)), c)):
        values = in_day(nr.valid(channel), start, end)
        unit = next((r.unit for r in nr.channels[channel]), "")
        days.append(ChannelDay(channel, unit, mean_bin(values, start, end, interval, limits.sampling.validity_fraction),
                               min((v for _, v in values), default=None), max((v for _, v in values), default=None)))
    return KindNode(nr.node, nr.kind, tuple(days))


# A kind's report section follows the aggregator its profile names ([stages] aggregators): the kinds with maths
# of their own have a section of their own; every other kind gets its channels' daily means (summarize_means).
SUMMARIZERS: dict[str, Callable[[NodeReadings, float, float, SiteLimits, float], object]] = {
    "pm": summarize_pm,
    "noise": summarize_noise,
    "wind": summarize_wind,
    "tilt": summarize_tilt,
}


def summarizer_of(kind: str) -> Callable[[NodeReadings, float, float, SiteLimits, float], object]:
    profile = kind_profiles().get(kind)
    for aggregator in profile.aggregators if profile is not None else ():
        if aggregator in SUMMARIZERS:
            return SUMMARIZERS[aggregator]
    return summarize_means


def report_channels() -> dict[str, frozenset[str]]:
    """The channels each kind's section reads (the profiles' [report] channels): a source may leave the others
    out (a node's every sample carries these, so the completeness counts the same). Kinds without the list are
    read whole."""
    return {name: frozenset(p.report_channels) for name, p in kind_profiles().items() if p.report_channels}


def summarize(
    site: str, day: date, records: DayRecords, limits: LimitsResolver, until: float | None = None
) -> DaySummary:
    """The report's numbers for `site` on the local day `day` (local time: limits.site.time.tz_offset).

    until: now, when the report is made before the day is over: completeness counts up to it (the hours
    still to come are no silence); a day that is over is reported whole.
    """
    tz = limits.site.time.tz_offset_s
    start, end = day_bounds(day, tz)
    until = until if until is not None and until < end else None
    upto = end if until is None else max(start, until)
    nodes = by_node(r for r in records.readings if start - LOOKBACK_S <= r.timestamp < end)
    made: dict[str, list[object]] = defaultdict(list)
    complete: list[Completeness] = []
    for name in sorted(nodes):
        nr = nodes[name]
        node_limits = limits.for_node(name)
        interval = measured_interval(nr.samples(), node_limits.sampling.interval_s)
        made[nr.kind].append(summarizer_of(nr.kind)(nr, start, end, node_limits, interval))
        complete.append(completeness(nr, records, start, upto, interval))
    # Nodes that sent nothing all day but have outage records still show in the completeness table.
    for o in records.outages:
        if o.node != GATEWAY_NODE and o.node not in nodes and outage_periods([o], o.node, start, end):
            nodes[o.node] = NodeReadings(o.node, o.kind)
            interval = limits.for_node(o.node).sampling.interval_s
            complete.append(completeness(nodes[o.node], records, start, upto, interval))
    return DaySummary(
        site=site,
        day=day,
        start=start,
        end=end,
        tz_offset_s=tz,
        dust=tuple(x for xs in made.values() for x in xs if isinstance(x, PmNode)),
        noise=tuple(x for xs in made.values() for x in xs if isinstance(x, NoiseNode)),
        wind=tuple(x for xs in made.values() for x in xs if isinstance(x, WindNode)),
        tilt=tuple(x for xs in made.values() for x in xs if isinstance(x, TiltNode)),
        alarms=alarm_episodes(records.alarms, start, end),
        completeness=tuple(sorted(complete, key=lambda c: c.node)),
        gateway_outages=outage_periods(records.outages, GATEWAY_NODE, start, end),
        readings=sum(1 for r in records.readings if start <= r.timestamp < end),
        until=until,
        kinds=tuple(x for kind in sorted(made) for x in made[kind] if isinstance(x, KindNode)),
    )
