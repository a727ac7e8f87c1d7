"""Every threshold and default of the processing stage, in one place.

Each value carries its source as a comment. Values marked *unconfirmed* are
the defaults domain.md asks for where the rule itself is not confirmed;
values marked *project choice* are ours (hysteresis margins, hold times,
sensor ranges) and exist because an alarm or a check needs *some* number.

The tables are frozen dataclasses. A site overrides them from its TOML
config, and a node overrides the site::

    [limits.wind]              # site-wide
    crane_gust = 8.0

    [node_limits."crane-top".wind]    # just this node
    crane_gust = 7.5

``LimitsResolver.from_config(site_table, {node: node_table})`` merges both
over the defaults and hands out one ``SiteLimits`` per node. Unknown keys and
wrongly typed values are refused (``LimitsError``) rather than ignored: a
misspelt threshold must not silently keep its default.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from gateway.profiles.kinds import kind_profiles

# Beaufort scale, lower bound of each force in m/s (domain.md section 3).
# A fact, not a setting: it is not overridable.
BEAUFORT_LOWER_BOUNDS: tuple[float, ...] = (0.0, 0.3, 1.6, 3.4, 5.5, 8.0, 10.8, 13.9, 17.2, 20.8, 24.5, 28.5, 32.7)

SECONDS_PER_DAY = 86400

# Judged values are sums, means and differences of decimal readings (0.1 ug/m3, 0.01 per-mille): binary
# rounding leaves a value that is exactly at a limit a hair above or below it (4.1 - 0.1 = 3.9999999999999996,
# a mean of exactly 150.0 often sums to 150.00000000000003). Within this relative distance a value is at the
# limit: "at or above" holds there, "exceeds" and "below" do not.
LIMIT_TOLERANCE = 1e-9


def limit_slack(limit: float) -> float:
    """How far a value may lie from `limit` and still count as exactly at it."""
    return LIMIT_TOLERANCE * max(1.0, abs(limit))


class LimitsError(ValueError):
    """A limits table in the config is wrong (unknown key, wrong type, impossible value)."""


_OFFSET_RE = re.compile(r"^([+-])(\d{2}):(\d{2})$")
_TIME_RE = re.compile(r"^(\d{2}):(\d{2})$")


def parse_utc_offset(text: str) -> int:
    """'+08:00' -> 28800 seconds. Only the ISO 8601 '+HH:MM' / '-HH:MM' form."""
    match = _OFFSET_RE.match(text)
    if match is None:
        raise LimitsError(f"UTC offset {text!r}: expected +HH:MM or -HH:MM")
    sign = 1 if match.group(1) == "+" else -1
    hours, minutes = int(match.group(2)), int(match.group(3))
    if hours > 14 or minutes > 59:
        raise LimitsError(f"UTC offset {text!r} out of range")
    return sign * (hours * 3600 + minutes * 60)


def parse_time_of_day(text: str) -> int:
    """'06:00' -> 21600 seconds after local midnight."""
    match = _TIME_RE.match(text)
    if match is None:
        raise LimitsError(f"time of day {text!r}: expected HH:MM")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours > 23 or minutes > 59:
        raise LimitsError(f"time of day {text!r} out of range")
    return hours * 3600 + minutes * 60


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise LimitsError(message)


# ---------------------------------------------------------------------------
# Field parsers for values that are not plain scalars. TOML gives lists and
# tables; the dataclasses hold tuples and read-only mappings so that a
# SiteLimits stays immutable.
# ---------------------------------------------------------------------------


def _ranges(value: object) -> Mapping[str, tuple[float, float]]:
    _require(isinstance(value, Mapping), f"expected a table of channel = [low, high], got {value!r}")
    assert isinstance(value, Mapping)
    out: dict[str, tuple[float, float]] = {}
    for channel, pair in value.items():
        ok = (
            isinstance(channel, str)
            and isinstance(pair, list | tuple)
            and len(pair) == 2
            and all(_is_number(v) for v in pair)
        )
        _require(ok, f"range of {channel!r}: expected [low, high], got {pair!r}")
        low, high = float(pair[0]), float(pair[1])
        _require(low < high, f"range of {channel!r}: low {low} must be below high {high}")
        out[str(channel)] = (low, high)
    return MappingProxyType(out)


def _seconds_by_channel(value: object) -> Mapping[str, float]:
    _require(isinstance(value, Mapping), f"expected a table of channel = number, got {value!r}")
    assert isinstance(value, Mapping)
    out: dict[str, float] = {}
    for channel, number in value.items():
        _require(isinstance(channel, str) and _is_number(number), f"{channel!r}: expected a number, got {number!r}")
        _require(float(number) >= 0.0, f"{channel!r}: must not be negative")
        out[str(channel)] = float(number)
    return MappingProxyType(out)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


V = TypeVar("V")


def _frozen(mapping: Mapping[str, V]) -> Callable[[], Mapping[str, V]]:
    return lambda: MappingProxyType(dict(mapping))


# ---------------------------------------------------------------------------
# The tables.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeSettings:
    # Site's offset from UTC: windows of a day (24 h, noise day/night) follow
    # local time. China has one zone, UTC+8, without daylight saving, so a
    # fixed offset is exact there (domain.md asks for an offset setting).
    tz_offset: str = "+08:00"

    def __post_init__(self) -> None:
        parse_utc_offset(self.tz_offset)

    @property
    def tz_offset_s(self) -> int:
        return parse_utc_offset(self.tz_offset)


@dataclass(frozen=True)
class SamplingSettings:
    # The node's default sample interval: holding register sample_interval,
    # default 1000 ms (firmware/regmap.py). Used to know how many samples a
    # window should have held until the node's own interval is measured from
    # its samples (gateway/process/aggregate.py SampleIntervals).
    interval_s: float = 1.0
    # A mean built from fewer than 75 % valid samples is marked (domain.md section 3).
    validity_fraction: float = 0.75

    def __post_init__(self) -> None:
        _require(self.interval_s > 0, "sampling.interval_s must be positive")
        _require(0.0 < self.validity_fraction <= 1.0, "sampling.validity_fraction must be in (0, 1]")


@dataclass(frozen=True)
class WindLimits:
    # Stop crane installation / dismantling / jacking: gust >= 9.0 m/s at the
    # crane's top (GB 55034-2022 3.4.7; JGJ 33-2012 4.1.14).
    crane_gust: float = 9.0
    # Stop open-air lifting: gust >= 12.0 m/s (JGJ 33-2012 4.1.15; JGJ 196-2010 4.0.9).
    lifting_gust: float = 12.0
    # No work at height / climbing at Beaufort 6 or more (JGJ 80-2016 3.0.8):
    # the lower bound of force 6.
    work_at_height: float = BEAUFORT_LOWER_BOUNDS[6]
    # Concrete placing boom stops at >= 10.8 m/s (JGJ 33-2012 8.10.8).
    placing_boom: float = 10.8
    # Hysteresis: clear only below limit - margin ... (project choice)
    margin: float = 1.0
    # ... held for this long: work resumes after 10 calm minutes, not after
    # the first lull between gusts (project choice, unconfirmed).
    hold_s: float = 600.0
    # Below this speed a vane's direction means nothing: such samples are
    # left out of the mean direction. Beaufort 0 ("calm") is < 0.3 m/s.
    calm_speed: float = BEAUFORT_LOWER_BOUNDS[1]

    def __post_init__(self) -> None:
        for name in ("crane_gust", "lifting_gust", "work_at_height", "placing_boom"):
            _require(getattr(self, name) > 0, f"wind.{name} must be positive")
        _require(self.margin >= 0 and self.hold_s >= 0 and self.calm_speed >= 0, "wind: negative setting")


@dataclass(frozen=True)
class NoiseLimits:
    # Boundary noise limits of GB 12523-2011: day LAeq > 70 dB(A), night > 55 dB(A).
    day_limit: float = 70.0
    night_limit: float = 55.0
    # Night maximum level: Lmax may exceed the night limit by at most 15 dB(A) (GB 12523-2011).
    night_lmax_excess: float = 15.0
    # Day is 06:00-22:00 local time, night 22:00-06:00 (GB 12523-2011).
    day_start: str = "06:00"
    night_start: str = "22:00"
    # Evaluation period, 20 min of continuous measurement (GB 12523-2011;
    # *unconfirmed* per domain.md). The alarms read the Leq of this window.
    evaluation_period_s: int = 1200
    # Hysteresis (project choice): 3 dB is a halving of sound energy.
    margin: float = 3.0
    hold_s: float = 0.0

    def __post_init__(self) -> None:
        _require(parse_time_of_day(self.day_start) != parse_time_of_day(self.night_start), "noise: day = night")
        _require(self.evaluation_period_s > 0, "noise.evaluation_period_s must be positive")
        _require(SECONDS_PER_DAY % self.evaluation_period_s == 0, "noise.evaluation_period_s must divide a day")
        _require(self.margin >= 0 and self.hold_s >= 0 and self.night_lmax_excess >= 0, "noise: negative setting")
        # Evaluation windows are aligned to local midnight: a day or night start between two of their
        # boundaries would put one window in both parts of the day, judged by the limit of its start.
        period = self.evaluation_period_s
        for key in ("day_start", "night_start"):
            _require(
                parse_time_of_day(getattr(self, key)) % period == 0,
                f"noise.{key} {getattr(self, key)} is not on a boundary of the evaluation windows "
                f"(noise.evaluation_period_s = {period} s, aligned to local midnight)",
            )

    @property
    def night_lmax_limit(self) -> float:
        return self.night_limit + self.night_lmax_excess

    @property
    def day_start_s(self) -> int:
        return parse_time_of_day(self.day_start)

    @property
    def night_start_s(self) -> int:
        return parse_time_of_day(self.night_start)


@dataclass(frozen=True)
class TiltLimits:
    # High formwork tilt: alarm at 4 per-mille, pre-warning at 80 % of it
    # (Guangdong DBJ/T 15-197-2020 table 8.0.4, as quoted: *unconfirmed*).
    alarm_permille: float = 4.0
    prewarning_fraction: float = 0.8
    # Same table: horizontal displacement 12 mm, settlement 8 mm. No node
    # measures them yet; kept here so that the one table stays complete.
    displacement_mm: float = 12.0
    settlement_mm: float = 8.0
    # Hysteresis (project choice): 0.2 per-mille is about twice the noise of
    # an SCL3300 slope over a one-second sample.
    margin: float = 0.2
    hold_s: float = 0.0

    def __post_init__(self) -> None:
        _require(self.alarm_permille > 0, "tilt.alarm_permille must be positive")
        _require(0.0 < self.prewarning_fraction <= 1.0, "tilt.prewarning_fraction must be in (0, 1]")
        _require(self.margin >= 0 and self.hold_s >= 0, "tilt: negative setting")

    @property
    def prewarning_permille(self) -> float:
        return self.alarm_permille * self.prewarning_fraction


@dataclass(frozen=True)
class DustLimits:
    # PM10 1-h mean > 150 ug/m3. No Guangdong limit was found (Hebei
    # DB13/2934-2019 uses 80 ug/m3 above the district's hourly mean):
    # *unconfirmed*, a setting.
    pm10_1h_limit: float = 150.0
    # Hysteresis (project choice).
    margin: float = 10.0
    hold_s: float = 0.0

    def __post_init__(self) -> None:
        _require(self.pm10_1h_limit > 0, "dust.pm10_1h_limit must be positive")
        _require(self.margin >= 0 and self.hold_s >= 0, "dust: negative setting")


@dataclass(frozen=True)
class SprayLimits:
    # Spray / fog cannon: on when the PM10 15-min mean exceeds the dust
    # setting (DustLimits.pm10_1h_limit), run at least 30 min, with
    # hysteresis (local practice in Zhangzhou, *unconfirmed*).
    min_on_s: float = 1800.0
    # Off only below the dust setting minus this margin (project choice).
    margin: float = 20.0
    # With no valid PM10 mean for this long, auto mode stops spraying once the
    # minimum on-time is over: two missed 15-min means (project choice).
    stale_s: float = 1800.0

    def __post_init__(self) -> None:
        _require(self.min_on_s >= 0 and self.margin >= 0 and self.stale_s > 0, "spray: negative setting")


@dataclass(frozen=True)
class HumidityLimits:
    # Optical PM sensors read high above ~75 % RH (Jayaratne 2018, AMT 11:4883);
    # same default as the node's rh_flag_threshold holding register.
    rh_flag_threshold: float = 75.0
    # kappa-Koehler growth correction (Crilley 2018, AMT 11:709), *unconfirmed
    # form*, optional: C = 1 + (k/1.65)/(1/aw - 1), PM_dry = PM / C.
    correction: bool = False
    kappa: float = 0.3
    # The humidity a PM sample is judged by must be at most this old (project choice).
    max_age_s: float = 120.0

    def __post_init__(self) -> None:
        _require(0.0 < self.rh_flag_threshold <= 100.0, "humidity.rh_flag_threshold must be in (0, 100]")
        _require(0.0 <= self.kappa <= 2.0, "humidity.kappa must be in [0, 2] (the node's register range)")
        _require(self.max_age_s > 0, "humidity.max_age_s must be positive")


# Measuring ranges (a value outside is flagged T, over range), stuck times
# (the same value for this long = a stuck sensor) and Hampel spike floors (the
# smallest deviation ever called a spike), per channel: each kind's profile
# gives its own, with their sources (gateway/profiles/kinds/<kind>.toml).
# Channels that can legitimately stay constant have no stuck time; only the
# optical PM channels have a spike floor (a wind gust or a noise impulse is the
# very thing an alarm must see). A kind installed later adds its channels here
# (gateway/process/kind_stages.py); tables built before keep what they had.
def _per_channel(table: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for kind in kind_profiles().values():
        for channel, value in getattr(kind, table).items():
            _require(merged.get(channel, value) == value, f"{kind.path}: {table}.{channel}: {value} differs from "
                     f"the {merged.get(channel)} another kind gives this channel")
            merged[channel] = value
    return merged


DEFAULT_RANGES: dict[str, tuple[float, float]] = _per_channel("ranges")
DEFAULT_STUCK_S: dict[str, float] = _per_channel("stuck_s")
DEFAULT_HAMPEL_FLOOR: dict[str, float] = _per_channel("hampel_floor")


@dataclass(frozen=True)
class QualityChecks:
    # The mappings are read-only views (a SiteLimits is immutable); they are
    # left out of the hash, which a mapping cannot take part in.
    ranges: Mapping[str, tuple[float, float]] = field(
        default_factory=_frozen(DEFAULT_RANGES), hash=False, metadata={"parse": _ranges}
    )
    stuck_s: Mapping[str, float] = field(
        default_factory=_frozen(DEFAULT_STUCK_S), hash=False, metadata={"parse": _seconds_by_channel}
    )
    # Values closer than this count as "the same" for stuck detection.
    stuck_tolerance: float = 0.0
    # Hampel filter over a trailing window of this many samples, spike when
    # further than n_sigmas * 1.4826 * MAD from the median (the usual choice).
    hampel_window: int = 7
    hampel_sigmas: float = 3.0
    hampel_floor: Mapping[str, float] = field(
        default_factory=_frozen(DEFAULT_HAMPEL_FLOOR), hash=False, metadata={"parse": _seconds_by_channel}
    )

    def __post_init__(self) -> None:
        _require(self.hampel_window >= 3, "quality.hampel_window must be at least 3")
        _require(self.hampel_sigmas > 0, "quality.hampel_sigmas must be positive")
        _require(self.stuck_tolerance >= 0, "quality.stuck_tolerance must not be negative")


@dataclass(frozen=True)
class SiteLimits:
    time: TimeSettings = field(default_factory=TimeSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    wind: WindLimits = field(default_factory=WindLimits)
    noise: NoiseLimits = field(default_factory=NoiseLimits)
    tilt: TiltLimits = field(default_factory=TiltLimits)
    dust: DustLimits = field(default_factory=DustLimits)
    spray: SprayLimits = field(default_factory=SprayLimits)
    humidity: HumidityLimits = field(default_factory=HumidityLimits)
    quality: QualityChecks = field(default_factory=QualityChecks)


# ---------------------------------------------------------------------------
# Overrides.
# ---------------------------------------------------------------------------


def _convert(path: str, current: object, new: object) -> object:
    """Check a TOML value against the type of the value it replaces."""
    if isinstance(current, bool):
        ok = isinstance(new, bool)
    elif isinstance(current, int):
        ok = isinstance(new, int) and not isinstance(new, bool)
    elif isinstance(current, float):
        ok = _is_number(new)
        if ok:
            assert isinstance(new, int | float)
            new = float(new)
    elif isinstance(current, str):
        ok = isinstance(new, str)
    else:  # pragma: no cover - every non-scalar field has a parser
        raise LimitsError(f"{path}: no parser for this setting")
    _require(ok, f"{path}: expected {type(current).__name__}, got {new!r}")
    return new


def _override_table(obj: object, table: Mapping[str, object], path: str) -> object:
    assert dataclasses.is_dataclass(obj) and not isinstance(obj, type)
    known = {f.name: f for f in dataclasses.fields(obj)}
    changes: dict[str, object] = {}
    for key, new in table.items():
        where = f"{path}.{key}" if path else key
        if key not in known:
            raise LimitsError(f"unknown setting {where!r} (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        parse = known[key].metadata.get("parse")
        if dataclasses.is_dataclass(current):
            _require(isinstance(new, Mapping), f"{where}: expected a table, got {new!r}")
            assert isinstance(new, Mapping)
            changes[key] = _override_table(current, new, where)
        elif parse is not None:
            try:
                parsed = parse(new)
            except LimitsError as exc:
                raise LimitsError(f"{where}: {exc}") from exc
            # A partial table extends the mapping it overrides.
            assert isinstance(current, Mapping) and isinstance(parsed, Mapping)
            changes[key] = MappingProxyType({**current, **parsed})
        else:
            changes[key] = _convert(where, current, new)
    try:
        return dataclasses.replace(obj, **changes)
    except LimitsError as exc:
        raise LimitsError(f"{path or 'limits'}: {exc}") from exc


def override(limits: SiteLimits, table: Mapping[str, object]) -> SiteLimits:
    """A copy of `limits` with the values of a `[limits]` TOML table applied."""
    result = _override_table(limits, table, "")
    assert isinstance(result, SiteLimits)
    return result


class LimitsResolver:
    """The limits of each node: defaults, then the site's table, then the node's."""

    def __init__(self, site: SiteLimits | None = None, nodes: Mapping[str, Mapping[str, object]] | None = None):
        self.site = site if site is not None else SiteLimits()
        self._node_tables = dict(nodes or {})
        self._cache: dict[str, SiteLimits] = {}
        # Fail at start-up, not at the first reading of a misconfigured node.
        for node in self._node_tables:
            self.for_node(node)

    @classmethod
    def from_config(
        cls,
        site_table: Mapping[str, object] | None = None,
        node_tables: Mapping[str, Mapping[str, object]] | None = None,
    ) -> LimitsResolver:
        site = override(SiteLimits(), site_table or {})
        return cls(site, node_tables)

    def changed(self, setting: str, value: object, node: str | None = None) -> LimitsResolver:
        """A resolver with one setting ("wind.crane_gust") changed, site-wide or for one node (checked)."""
        *tables, key = setting.split(".")
        table: dict[str, object] = {key: value}
        for name in reversed(tables):
            table = {name: table}
        nodes = dict(self._node_tables)
        if node is None:
            resolver = LimitsResolver(override(self.site, table), nodes)
        else:
            override(self.for_node(node), table)  # the error names the setting if it is wrong
            nodes[node] = _merge(nodes.get(node, {}), table)
            resolver = LimitsResolver(self.site, nodes)
        return resolver

    def for_node(self, node: str) -> SiteLimits:
        limits = self._cache.get(node)
        if limits is None:
            table = self._node_tables.get(node)
            limits = self.site if table is None else override(self.site, table)
            self._cache[node] = limits
        return limits


P = TypeVar("P")


class NodePlans(Generic[P]):
    """What a stage needs of a node's limits, worked out once per node instead of once per reading.

    A resolver's tables never change: a changed limit comes as a new resolver
    (LimitsResolver.changed, a reload). Setting `limits` to one forgets every plan.
    """

    __slots__ = ("_derive", "_limits", "_plans")

    def __init__(self, limits: LimitsResolver, derive: Callable[[SiteLimits], P]) -> None:
        self._limits = limits
        self._derive = derive
        self._plans: dict[str, P] = {}

    @property
    def limits(self) -> LimitsResolver:
        return self._limits

    @limits.setter
    def limits(self, limits: LimitsResolver) -> None:
        self._limits = limits
        self._plans = {}

    def __call__(self, node: str) -> P:
        plan = self._plans.get(node)
        if plan is None:
            plan = self._plans[node] = self._derive(self._limits.for_node(node))
        return plan


def _merge(base: Mapping[str, object], extra: Mapping[str, object]) -> dict[str, object]:
    out = dict(base)
    for key, value in extra.items():
        current = out.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            out[key] = _merge(current, value)
        else:
            out[key] = value
    return out
# ---------------------------------------------------------------------------
# Revision horizon of aggregation windows (docs/revisions.md).
# ---------------------------------------------------------------------------

# Samples a node keeps in its history ring for the gateway's backfill
# (firmware/node.py HISTORY_CAPACITY; a test keeps the two equal).
NODE_HISTORY_SAMPLES = 600
# A backfill fetches a sample some time after the ring could still hold it:
# the outage must first be noticed and the bus have time for it (project choice).
REVISION_MARGIN_S = 300.0


def default_revision_horizon_s(interval_s: float) -> float:
    """How long a closed window stays revisable: as far back as a backfill can reach, plus a margin."""
    return NODE_HISTORY_SAMPLES * interval_s + REVISION_MARGIN_S
