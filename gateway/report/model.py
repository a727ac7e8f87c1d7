"""What a daily site report says: the summary of one site's local day, as plain immutable values.

gateway/report/summary.py computes it from records (sans-IO); gateway/report/charts.py and
gateway/report/pdf.py render it. Times are seconds since the epoch (like Reading.timestamp); the
report shows them in the site's local time (limits.time.tz_offset).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class Bin:
    """A statistic over one stretch of the day (an hour, 10 or 20 minutes) with its sample counts.

    valid: count >= the validity fraction (75 %) of expected (domain.md section 3).
    """

    start: float
    end: float
    value: float | None
    count: int
    expected: int
    valid: bool
    peak: float | None = None  # the largest value in it, where the chart wants one (gust, Lmax, tilt)


@dataclass(frozen=True, slots=True)
class Period:
    """A stretch of time: a crane stop, an alarm, an outage, a stretch without samples.

    end None: still going at the end of what the report saw. start None: began before it.
    """

    start: float | None
    end: float | None
    label: str = ""  # what it is, for people (a reason, a severity)
    peak: float | None = None  # the largest value in it
    peak_time: float | None = None


@dataclass(frozen=True, slots=True)
class PmNode:
    node: str
    pm25_day: Bin  # the 24-h mean
    pm10_day: Bin
    pm25_hours: tuple[Bin, ...]
    pm10_hours: tuple[Bin, ...]
    pm10_limit: float  # limits.dust.pm10_1h_limit: an hour whose mean exceeds it is an exceedance
    exceedances: tuple[Bin, ...]  # hours whose PM10 mean > the limit (each with its validity)
    humid_samples: int  # samples taken above limits.humidity.rh_flag_threshold (optical PM reads high)
    rh_threshold: float


@dataclass(frozen=True, slots=True)
class NoisePart:
    """GB 12523 day (06:00-22:00) or night (22:00-06:00) of the report's local day, by summed energy."""

    label: str  # "day" or "night"
    leq: float | None
    lmax: float | None
    lmax_time: float | None
    l10: float | None
    l50: float | None
    l90: float | None
    count: int
    expected: int
    limit: float  # LAeq limit
    lmax_limit: float | None  # night only: limit + 15 dB(A)
    periods_over: int  # evaluation periods (20 min) whose Leq exceeds the limit

    @property
    def over(self) -> bool:
        return self.leq is not None and self.leq > self.limit

    @property
    def lmax_over(self) -> bool:
        return self.lmax is not None and self.lmax_limit is not None and self.lmax > self.lmax_limit


@dataclass(frozen=True, slots=True)
class NoiseNode:
    node: str
    day: NoisePart
    night: NoisePart
    periods: tuple[Bin, ...]  # Leq of each evaluation period, peak = its Lmax
    day_start: float  # the GB 12523 day of the report's date (06:00-22:00 local by default), epoch seconds
    day_end: float


@dataclass(frozen=True, slots=True)
class WindNode:
    node: str
    mean: Bin  # the day's mean speed
    max_mean_10min: Bin | None  # the windiest 10-min mean
    gust: float | None  # the day's largest 3-s gust
    gust_time: float | None
    direction: float | None  # mean direction of unit vectors (calm samples left out), degrees from north
    bins: tuple[Bin, ...]  # 10-min mean speed, peak = the 10-min gust
    crane_limit: float  # limits.wind.crane_gust
    lifting_limit: float  # limits.wind.lifting_gust
    crane_stops: tuple[Period, ...]  # gust >= crane limit until it clears (the crane_wind alarm's rule)
    lifting_stops: tuple[Period, ...]


@dataclass(frozen=True, slots=True)
class TiltNode:
    node: str
    peak: float | None  # the largest combined slope sqrt(x^2 + y^2), per-mille
    peak_time: float | None
    peak_x: float | None  # the largest slope along each axis (signed, largest in size)
    peak_y: float | None
    bins: tuple[Bin, ...]  # 10-min mean combined slope, peak = its largest
    prewarning: float  # per-mille
    alarm: float
    seconds_over_prewarning: float  # samples at or above the level times the sample interval
    seconds_over_alarm: float


@dataclass(frozen=True, slots=True)
class Completeness:
    node: str
    kind: str
    interval_s: float  # the node's sample interval (measured from its samples)
    expected: int  # samples the day should have held
    received: int  # samples that arrived
    valid: int  # samples with a usable value on the kind's main channel
    outages: tuple[Period, ...]  # the gateway's outage records (node silent or stale), clipped to the day
    gaps: tuple[Period, ...]  # samples lost for good (backfill gaps); label says how many and why
    silences: tuple[Period, ...]  # stretches longer than three intervals without a sample

    @property
    def fraction(self) -> float:
        return self.received / self.expected if self.expected else 0.0


@dataclass(frozen=True, slots=True)
class AlarmEpisode:
    alarm: str
    node: str
    channel: str
    severity: str
    start: float | None  # None: raised before the records the report read
    end: float | None  # None: still active at the end of the day
    peak: float | None  # the value that raised it
    limit: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class ChannelDay:
    """One channel's day: the mean of its valid samples (with their counts), the lowest and highest."""

    channel: str
    unit: str
    mean: Bin
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class KindNode:
    """A node of a kind without a report section of its own (a kind added as a profile): its channels' days."""

    node: str
    kind: str
    channels: tuple[ChannelDay, ...]


@dataclass(frozen=True, slots=True)
class DaySummary:
    site: str
    day: date
    start: float  # local midnight, epoch seconds
    end: float  # the next local midnight
    tz_offset_s: int
    dust: tuple[PmNode, ...]
    noise: tuple[NoiseNode, ...]
    wind: tuple[WindNode, ...]
    tilt: tuple[TiltNode, ...]
    alarms: tuple[AlarmEpisode, ...]
    completeness: tuple[Completeness, ...]
    gateway_outages: tuple[Period, ...]  # when the gateway itself was not running
    readings: int  # records the summary was computed from
    until: float | None = None  # the day was still in progress: completeness counts up to this time
    kinds: tuple[KindNode, ...] = ()  # nodes of the kinds without a section of their own, by kind then node
