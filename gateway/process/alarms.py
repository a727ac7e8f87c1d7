"""Alarms: one small state machine per (alarm, node, channel), and the site's alarm definitions.

State machine
-------------
States: clear, pre-warning, alarm. An alarm has an alarm limit and may have
a pre-warning limit below it. For each level:

* **raise** as soon as one value reaches the limit (``>=``, or ``>`` where
  the rule says "exceeds"): a safety alarm does not wait;
* **clear** once the value has stayed below ``limit - margin`` for
  ``hold_s`` seconds. margin > 0 and hold_s = 0 is plain hysteresis, margin =
  0 and hold_s > 0 is a hold time, both together need both. Inside the band
  between the clear level and the limit nothing changes: no chatter.

Every change of state emits events: the severity left is *cleared*, the
severity entered is *raised*. So each severity of each alarm has exactly
one raised event and then exactly one cleared event per episode, in order
(clear -> alarm is [raised alarm]; alarm -> pre-warning is [cleared alarm,
raised pre-warning]; pre-warning -> alarm is [cleared pre-warning, raised
alarm]). When an alarm clears, the machine steps down to pre-warning only if
the value is still at or above the pre-warning's clear level; otherwise it
goes straight to clear.

Readings without a value or with a flag other than N or T (over range: the
value is at least the range limit, see ``judged_value``) do not move the state
(no alarm from a faulty sensor, no silent clear either), and they restart
the hold timer: nobody saw the value stay low. When the windows behind such
readings are revised later (late samples filled them, docs/revisions.md) and
every one of them, and every value since, stayed below a level's clear level,
the hold timer that they restarted is given back (``revised``): the calm is
then known, and the next reading clears as it would have without the gap.
A revision never raises an alarm. An event's ``time`` is the
timestamp of the reading that caused it; for an aggregate that is the
start of its window.

A definition may have no limit at some times (the night Lmax limit during
the day): then the machine clears what is active, with that as the reason.

Definitions
-----------
Registered by name in ALARMS; each factory returns a list of definitions:
``crane_wind``, ``lifting_wind``, ``work_at_height_wind``,
``placing_boom_wind``, ``noise``, ``noise_night_lmax``, ``formwork_tilt``,
``dust``. Every factory takes ``channels`` (the readings it watches),
``nodes`` (empty: every node) and ``name``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.model import Quality, Reading
from gateway.process.aggregate import USABLE, is_night, is_valid, period_label, str_tuple
from gateway.process.limits import LimitsError, LimitsResolver, SiteLimits, limit_slack
from gateway.process.registry import ALARMS
from gateway.process.tilt import TiltBaseline


class Severity(StrEnum):
    PREWARNING = "prewarning"
    ALARM = "alarm"


class EventState(StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    alarm: str  # definition name, e.g. "crane_wind"
    node: str
    channel: str  # the reading channel that was judged
    severity: Severity
    state: EventState
    value: float  # the value that caused the event
    limit: float  # the limit of this severity at that time
    time: float  # timestamp of the reading that caused the event
    reason: str  # one line for people: what crossed what, and the rule behind it


@dataclass(frozen=True)
class Levels:
    alarm: float
    prewarning: float | None = None
    margin: float = 0.0
    hold_s: float = 0.0
    inclusive: bool = True  # raise at value >= limit; False: only at value > limit
    # Worked out once from the above (AlarmSet keeps a node's levels for every reading: issue 13):
    # the severities lowest first; per severity, the value a reading must reach (>=, or exceed when not
    # inclusive) to raise it, and the value it must stay below to clear it, both with the limit's slack.
    order: tuple[Severity, ...] = field(init=False, repr=False, compare=False)
    raise_at: dict[Severity, float] = field(init=False, repr=False, compare=False)
    clear_below: dict[Severity, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.prewarning is not None and self.prewarning >= self.alarm:
            raise LimitsError(f"pre-warning limit {self.prewarning} must be below the alarm limit {self.alarm}")
        if self.margin < 0 or self.hold_s < 0:
            raise LimitsError("margin and hold time must not be negative")
        order = (Severity.ALARM,) if self.prewarning is None else (Severity.PREWARNING, Severity.ALARM)
        raise_at, clear_below = {}, {}
        for severity in order:
            limit = self.limit(severity)
            raise_at[severity] = limit - limit_slack(limit) if self.inclusive else limit + limit_slack(limit)
            clear = self.clear_level(severity)
            clear_below[severity] = clear - limit_slack(clear)
        object.__setattr__(self, "order", order)  # a frozen dataclass: set once, here
        object.__setattr__(self, "raise_at", raise_at)
        object.__setattr__(self, "clear_below", clear_below)

    def limit(self, severity: Severity) -> float:
        if severity is Severity.ALARM:
            return self.alarm
        assert self.prewarning is not None
        return self.prewarning

    def clear_level(self, severity: Severity) -> float:
        return self.limit(severity) - self.margin

    def reached(self, value: float, severity: Severity) -> bool:
        return value >= self.raise_at[severity] if self.inclusive else value > self.raise_at[severity]

    def severities(self) -> tuple[Severity, ...]:
        """Lowest first."""
        return self.order


_RANK = {None: 0, Severity.PREWARNING: 1, Severity.ALARM: 2}


GAP_READINGS_KEPT = 1440  # invalid readings in a row whose revisions may give a hold back (a day of minutes)


@dataclass
class _Gap:
    """Invalid readings in a row that restarted the hold timers; the windows behind them may yet be revised."""

    before: dict[Severity, float]  # the hold timers they restarted (severity -> since)
    first: float  # the time of the first of them
    pending: set[float]  # the times of those not yet revised to a valid value
    broken: set[Severity] = field(default_factory=set)  # severities a value since the gap's start did not clear

    def saw(self, value: float, levels: Levels) -> None:
        below = levels.clear_below
        for severity in levels.order:
            if value >= below[severity]:
                self.broken.add(severity)


class AlarmMachine:
    def __init__(self, alarm: str, node: str, channel: str, unit: str = "", source: str = "") -> None:
        self.alarm, self.node, self.channel = alarm, node, channel
        self.unit, self.source = unit, source
        self.state: Severity | None = None
        self.since: float | None = None  # when the present state was entered
        self._below_since: dict[Severity, float] = {}
        self._levels: Levels | None = None  # the last levels seen, for events outside the evaluation period
        self._gap: _Gap | None = None  # the latest run of invalid readings (see `revised`)
        self._in_gap = False  # the last reading was invalid: the next invalid one extends the gap

    def resume(self, event: AlarmEvent) -> None:
        """Take up the state a raised event left (the last run's, read back at a restart)."""
        self.state, self.since = event.severity, event.time
        self._below_since.clear()
        # The limit of the raised severity, until the first reading brings the levels in force.
        if event.severity is Severity.ALARM:
            self._levels = Levels(event.limit)
        else:
            self._levels = Levels(math.inf, prewarning=event.limit)

    def invalid(self, t: float | None = None) -> None:
        """A reading without a usable value (taken at t): the state holds, hold timers restart."""
        if t is not None:
            gap = self._gap
            if gap is None or not self._in_gap or len(gap.pending) >= GAP_READINGS_KEPT:
                # A new gap: an older one cannot be given back any more (the hold was restarted since).
                self._gap = _Gap(dict(self._below_since), t, {t})
            else:
                gap.pending.add(t)
            self._in_gap = True
        self._below_since.clear()

    def revised(self, value: float, t: float, levels: Levels | None) -> None:
        """A valid value for the invalid reading at t (a revised window): once every reading of the gap has one,
        and they and every value since stayed below a severity's clear level, its hold runs from before the gap.
        Nothing is raised or cleared here; the next reading judges with the hold given back."""
        gap = self._gap
        if gap is None or t not in gap.pending:
            return
        if levels is None:
            self._gap = None
            return
        gap.pending.discard(t)
        gap.saw(value, levels)
        if gap.pending:
            return
        for severity in levels.order:
            if severity in gap.broken:
                continue
            since = gap.before.get(severity, gap.first)
            current = self._below_since.get(severity)
            self._below_since[severity] = since if current is None else min(current, since)
        self._gap = None

    def update(self, value: float, t: float, levels: Levels | None) -> list[AlarmEvent]:
        if levels is None:
            self._below_since.clear()
            self._gap = None
            return self._move(None, value, t, None, "outside the alarm's evaluation period")
        self._in_gap = False
        if self._gap is not None:
            self._gap.saw(value, levels)
        self._levels = levels
        below = levels.clear_below
        below_since = self._below_since
        for severity in levels.order:
            if value < below[severity]:
                below_since.setdefault(severity, t)
            else:
                below_since.pop(severity, None)
        # Levels.reached, inlined (every watched reading of a gust or a tilt comes here: issue 13, fourth
        # pass). Below the alarm is None or the pre-warning; below the pre-warning, None.
        state = self.state
        raise_at = levels.raise_at
        if state is not Severity.ALARM:
            limit = raise_at[Severity.ALARM]
            if value >= limit if levels.inclusive else value > limit:
                return self._move(Severity.ALARM, value, t, levels, "")
            if state is None and levels.prewarning is not None:
                limit = raise_at[Severity.PREWARNING]
                if value >= limit if levels.inclusive else value > limit:
                    return self._move(Severity.PREWARNING, value, t, levels, "")
        target = state
        if target is Severity.ALARM and self._cleared(target, t, levels):
            # Down to the pre-warning only while the value is still in its
            # territory; a value already below its clear level goes straight to
            # clear rather than raising a pre-warning it does not deserve.
            still = False
            if levels.prewarning is not None:
                low = levels.clear_level(Severity.PREWARNING)
                still = value >= low - limit_slack(low)
            target = Severity.PREWARNING if still else None
        elif target is Severity.PREWARNING and (levels.prewarning is None or self._cleared(target, t, levels)):
            target = None  # (a definition whose pre-warning vanished clears it at once)
        if target is state:
            return []  # what _move says to no move, without the call (nearly every reading)
        return self._move(target, value, t, levels, "")

    def _cleared(self, severity: Severity, t: float, levels: Levels) -> bool:
        since = self._below_since.get(severity)
        return since is not None and t - since >= levels.hold_s

    def _move(
        self, target: Severity | None, value: float, t: float, levels: Levels | None, why: str
    ) -> list[AlarmEvent]:
        old = self.state
        if target is old:
            return []
        events: list[AlarmEvent] = []
        if old is not None:
            if why:
                reason = why
            elif _RANK[target] > _RANK[old]:
                reason = f"superseded by {target}"
            else:
                assert levels is not None
                if old is Severity.PREWARNING and levels.prewarning is None:
                    reason = "the pre-warning no longer applies"
                else:
                    reason = self._clear_reason(value, levels.clear_level(old), levels.hold_s)
            events.append(self._event(old, EventState.CLEARED, value, t, levels, reason))
        if target is not None:
            assert levels is not None
            if levels.reached(value, target):
                op = ">=" if levels.inclusive else ">"
                reason = f"{self.channel} {value:g}{self._u} {op} {levels.limit(target):g}{self._u}"
            else:
                reason = (
                    f"{self.channel} {value:g}{self._u} still at or above the {target} clear level "
                    f"{levels.clear_level(target):g}{self._u}"
                )
            if self.source:
                reason += f" ({self.source})"
            events.append(self._event(target, EventState.RAISED, value, t, levels, reason))
        self.state = target
        self.since = t if target is not None else None
        return events

    @property
    def _u(self) -> str:
        return f" {self.unit}" if self.unit else ""

    def _clear_reason(self, value: float, clear: float, hold_s: float) -> str:
        held = f" for {hold_s:g} s" if hold_s > 0 else ""
        return f"{self.channel} {value:g}{self._u} below {clear:g}{self._u}{held}"

    def _event(
        self, severity: Severity, state: EventState, value: float, t: float, levels: Levels | None, reason: str
    ) -> AlarmEvent:
        known = levels or self._levels
        if known is None or (severity is Severity.PREWARNING and known.prewarning is None):
            limit = float("nan")  # not reachable through update(); kept total for safety
        else:
            limit = known.limit(severity)
        return AlarmEvent(self.alarm, self.node, self.channel, severity, state, value, limit, t, reason)


LevelsFunction = Callable[[SiteLimits, float], "Levels | None"]


@dataclass(frozen=True)
class AlarmDefinition:
    name: str
    channels: tuple[str, ...]
    levels: LevelsFunction  # (node's limits, time) -> levels, or None when the alarm does not apply then
    source: str = ""  # the rule, quoted in reasons
    unit: str = ""
    nodes: tuple[str, ...] = ()  # empty: every node
    absolute: bool = False  # judge |value| (tilt either way)
    description: str = ""
    # Turns a watched reading into the reading judged (None: nothing to judge yet), e.g. TiltJudge.
    judge: Callable[[Reading], Reading | None] | None = None
    # The levels depend on the node's limits alone, not on the time: AlarmSet asks for them once per node
    # and limits, not per reading (issue 13). False: asked for every reading (day / night limits).
    timeless: bool = False

    def watches(self, reading: Reading) -> bool:
        return reading.channel in self.channels and (not self.nodes or reading.node in self.nodes)


@dataclass(frozen=True)
class ActiveAlarm:
    alarm: str
    node: str
    channel: str
    severity: Severity
    since: float


def judged_value(reading: Reading, limits: SiteLimits) -> float | None:
    """The value an alarm judges, or None when the reading cannot move an alarm.

    N and T readings with a finite value count at that value: an over-range
    value (T) is at least the range limit, so it exceeds every limit below the
    range. A T reading saturated to an infinity counts as the end of the
    channel's range (limits.quality.ranges) it lies beyond.
    """
    value = reading.value
    if value is not None and reading.quality is Quality.OVER_RANGE and math.isinf(value):
        bounds = limits.quality.ranges.get(reading.channel)
        if bounds is not None:
            return bounds[1] if value > 0 else bounds[0]
    return value if is_valid(reading) else None


@dataclass
class AlarmSet:
    """Routes readings to the machines of every definition that watches them."""

    definitions: Sequence[AlarmDefinition]
    limits: LimitsResolver
    _machines: dict[tuple[str, str, str], AlarmMachine] = field(default_factory=dict, init=False)
    # channel -> the definitions that watch it, in definition order. Most readings are watched by
    # none (the dust and noise alarms judge window means): asking every definition about every
    # reading was most of the alarm stage's time (issue 13).
    _by_channel: dict[str, tuple[AlarmDefinition, ...]] = field(default_factory=dict, init=False, compare=False)
    # (definition, node) -> (the node's limits, its levels) of timeless definitions. Limits are immutable: a
    # changed limit (a command, a reload) is a new SiteLimits, and levels are asked for again.
    _levels: dict[tuple[str, str], tuple[SiteLimits, Levels | None]] = field(
        default_factory=dict, init=False, compare=False
    )

    def __post_init__(self) -> None:
        names = [d.name for d in self.definitions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise LimitsError(f"alarm names repeat: {', '.join(duplicates)}")

    def watching(self, channel: str) -> tuple[AlarmDefinition, ...]:
        """The definitions that watch readings of `channel` (of some node or every node), in order."""
        found = self._by_channel.get(channel)
        if found is None:
            found = self._by_channel[channel] = tuple(d for d in self.definitions if channel in d.channels)
        return found

    def feed(self, reading: Reading) -> list[AlarmEvent]:
        watching = self._by_channel.get(reading.channel)
        if watching is None:
            watching = self.watching(reading.channel)
        if not watching:
            return []
        events: list[AlarmEvent] = []
        for definition in watching:
            if definition.nodes and reading.node not in definition.nodes:
                continue
            judged = reading if definition.judge is None else definition.judge(reading)
            if judged is None:
                continue
            key = (definition.name, judged.node, judged.channel)
            machine = self._machines.get(key)
            if machine is None:
                machine = AlarmMachine(
                    definition.name, judged.node, judged.channel, definition.unit, definition.source
                )
                self._machines[key] = machine
            site = self.limits.for_node(judged.node)
            value = judged.value
            if value is None or judged.quality not in USABLE or not math.isfinite(value):
                value = judged_value(judged, site)  # a valid reading's value is its own: no call for it
            if value is None:
                machine.invalid(judged.timestamp)
                continue
            value = abs(value) if definition.absolute else value
            if definition.timeless:
                planned = self._levels.get((definition.name, judged.node))
                if planned is None or planned[0] is not site:
                    planned = self._levels[(definition.name, judged.node)] = (
                        site, definition.levels(site, judged.timestamp)
                    )
                levels = planned[1]
            else:
                levels = definition.levels(site, judged.timestamp)
            events += machine.update(value, judged.timestamp, levels)
        return events

    def revise(self, reading: Reading) -> None:
        """A revision of a window the machines judged (docs/revisions.md): it may give back a hold timer that the
        window's invalid first emission restarted (AlarmMachine.revised). It raises and clears nothing."""
        for definition in self.watching(reading.channel):
            if definition.nodes and reading.node not in definition.nodes:
                continue
            judged = reading if definition.judge is None else definition.judge(reading)
            if judged is None:
                continue
            machine = self._machines.get((definition.name, judged.node, judged.channel))
            if machine is None:
                continue
            site = self.limits.for_node(judged.node)
            value = judged_value(judged, site)
            if value is not None:
                value = abs(value) if definition.absolute else value
                machine.revised(value, judged.timestamp, definition.levels(site, judged.timestamp))

    def resume(self, events: Iterable[AlarmEvent]) -> int:
        """At start: take up the alarms the last run left raised; events oldest first. Returns how many.

        Only the last event of each (alarm, node, channel) counts; alarms no definition has any more
        (the configuration changed) are left out.
        """
        last: dict[tuple[str, str, str], AlarmEvent] = {}
        for event in events:
            last[(event.alarm, event.node, event.channel)] = event
        by_name = {d.name: d for d in self.definitions}
        resumed = 0
        for key, event in last.items():
            definition = by_name.get(event.alarm)
            if event.state is not EventState.RAISED or definition is None:
                continue
            machine = AlarmMachine(event.alarm, event.node, event.channel, definition.unit, definition.source)
            machine.resume(event)
            self._machines[key] = machine
            resumed += 1
        return resumed

    def active(self) -> list[ActiveAlarm]:
        return [
            ActiveAlarm(m.alarm, m.node, m.channel, m.state, m.since)
            for m in self._machines.values()
            if m.state is not None and m.since is not None
        ]


# ---------------------------------------------------------------------------
# The site's alarms (domain.md section 4); limits come from limits.py.
# ---------------------------------------------------------------------------


def _definition(
    name: str,
    channels: Sequence[str],
    nodes: Sequence[str],
    levels: LevelsFunction,
    source: str,
    unit: str,
    description: str,
    absolute: bool = False,
    judge: Callable[[Reading], Reading | None] | None = None,
    timeless: bool = False,
) -> list[AlarmDefinition]:
    return [
        AlarmDefinition(
            name=name,
            channels=str_tuple(channels, f"{name}.channels"),
            levels=levels,
            source=source,
            unit=unit,
            nodes=str_tuple(nodes, f"{name}.nodes"),
            absolute=absolute,
            description=description,
            judge=judge,
            timeless=timeless,
        )
    ]


def _wind_levels(pick: Callable[[SiteLimits], float]) -> LevelsFunction:
    def levels(limits: SiteLimits, t: float) -> Levels:
        return Levels(pick(limits), margin=limits.wind.margin, hold_s=limits.wind.hold_s)

    return levels


@dataclass(frozen=True)
class _WindAlarm:
    """One of the wind alarms: they differ only in limit, default input and source."""

    name: str
    channel: str  # the default input
    limit: Callable[[SiteLimits], float]
    source: str
    description: str
    note: str = ""


WIND_ALARMS = (
    _WindAlarm(
        "crane_wind", "wind_gust_3s", lambda s: s.wind.crane_gust, "GB 55034-2022 3.4.7; JGJ 33-2012 4.1.14",
        "stop crane installation, dismantling and jacking",
        "Meant for the anemometer at the crane's top: set `nodes`.",
    ),
    _WindAlarm(
        "lifting_wind", "wind_gust_3s", lambda s: s.wind.lifting_gust, "JGJ 33-2012 4.1.15; JGJ 196-2010 4.0.9",
        "stop open-air lifting",
    ),
    _WindAlarm(
        "work_at_height_wind", "wind_2min_speed_mean", lambda s: s.wind.work_at_height,
        "JGJ 80-2016 3.0.8, Beaufort 6", "no work at height or climbing",
        "Beaufort 6 is defined on a mean wind: the default input is the 2-min mean (a gust channel is stricter).",
    ),
    _WindAlarm(
        "placing_boom_wind", "wind_gust_3s", lambda s: s.wind.placing_boom, "JGJ 33-2012 8.10.8",
        "concrete placing boom stops",
    ),
)


def _register_wind_alarm(spec: _WindAlarm) -> None:
    def factory(
        limits: LimitsResolver,
        name: str = spec.name,
        channels: Sequence[str] = (spec.channel,),
        nodes: Sequence[str] = (),
    ) -> list[AlarmDefinition]:
        return _definition(name, channels, nodes, _wind_levels(spec.limit), spec.source, "m/s", spec.description,
                           timeless=True)

    factory.__name__ = spec.name
    factory.__doc__ = f"{spec.description[0].upper()}{spec.description[1:]}. {spec.note}".strip()
    ALARMS.register(spec.name)(factory)


for _spec in WIND_ALARMS:
    _register_wind_alarm(_spec)


def _noise_channel(limits: LimitsResolver, statistic: str) -> tuple[str, ...]:
    return (f"noise_{period_label(limits.site.noise.evaluation_period_s)}_{statistic}",)


@ALARMS.register("noise")
def noise(
    limits: LimitsResolver,
    name: str = "noise",
    channels: Sequence[str] | None = None,
    nodes: Sequence[str] = (),
) -> list[AlarmDefinition]:
    """Boundary LAeq over the evaluation period (default noise_20min_leq) above the day or night limit.

    Day or night is decided by the reading's timestamp, the start of its
    window; clock-aligned 20-min windows never straddle 06:00 or 22:00.
    """

    def levels(s: SiteLimits, t: float) -> Levels:
        limit = s.noise.night_limit if is_night(t, s) else s.noise.day_limit
        return Levels(limit, margin=s.noise.margin, hold_s=s.noise.hold_s, inclusive=False)

    return _definition(
        name,
        channels or _noise_channel(limits, "leq"),
        nodes,
        levels,
        "GB 12523-2011",
        "dB(A)",
        "boundary noise above the day (06:00-22:00) or night limit",
    )


@ALARMS.register("noise_night_lmax")
def noise_night_lmax(
    limits: LimitsResolver,
    name: str = "noise_night_lmax",
    channels: Sequence[str] | None = None,
    nodes: Sequence[str] = (),
) -> list[AlarmDefinition]:
    """Night Lmax above the night limit + 15 dB(A); does not apply by day (active ones clear at 06:00)."""

    def levels(s: SiteLimits, t: float) -> Levels | None:
        if not is_night(t, s):
            return None
        return Levels(s.noise.night_lmax_limit, margin=s.noise.margin, hold_s=s.noise.hold_s, inclusive=False)

    return _definition(
        name,
        channels or _noise_channel(limits, "lmax"),
        nodes,
        levels,
        "GB 12523-2011",
        "dB(A)",
        "night maximum level above the night limit + 15 dB(A)",
    )


COMBINED_TILT_CHANNEL = "slope_combined"


class TiltJudge:
    """What the formwork tilt alarm judges: deviations from the tilt baseline, combined or per axis.

    combined (the default): sqrt(dx^2 + dy^2) of one sample's two slopes, as
    the reading ``slope_combined`` (never below either axis, so a tilt along a
    diagonal is seen: 3 and 3 per-mille are 4.24). It is judged once both
    slopes of a sample (same sequence and time) are in; if either is not
    usable it is too (flag of the unusable one), and T if either is T.
    Per axis: each slope's deviation on its own channel. ``baseline`` is the
    tilt aggregator's own object once the pipeline binds it (default: zero).
    """

    def __init__(self, channels: tuple[str, ...], combined: bool, baseline: TiltBaseline | None = None) -> None:
        if combined and len(channels) != 2:
            raise LimitsError(f"formwork_tilt: rule \"combined\" needs two channels (x, y), got {list(channels)}")
        self.channels = channels
        self.combined = combined
        self.baseline = baseline or TiltBaseline()
        self._pending: dict[str, tuple[tuple[int, float], Reading]] = {}  # node -> the sample's first slope

    def _deviation(self, reading: Reading) -> Reading:
        r = reading  # the constructor, not dataclasses.replace: this runs for every slope reading
        value = self.baseline.deviation(r)
        return Reading(r.node, r.kind, r.channel, value, r.unit, r.quality, r.timestamp, r.sequence)

    def __call__(self, reading: Reading) -> Reading | None:
        deviation = self._deviation(reading)
        if not self.combined:
            return deviation
        sample = (reading.sequence, reading.timestamp)
        pending = self._pending.get(reading.node)
        if pending is None or pending[0] != sample or pending[1].channel == reading.channel:
            self._pending[reading.node] = (sample, deviation)
            return None
        del self._pending[reading.node]
        return _combine(pending[1], deviation)


def _combine(a: Reading, b: Reading) -> Reading:
    for r in (a, b):
        if not is_valid(r):
            quality = r.quality if r.quality not in USABLE else Quality.DEVICE_FAULT
            return Reading(a.node, a.kind, COMBINED_TILT_CHANNEL, None, a.unit, quality, a.timestamp, a.sequence)
    assert a.value is not None and b.value is not None
    over = Quality.OVER_RANGE in (a.quality, b.quality)
    return Reading(a.node, a.kind, COMBINED_TILT_CHANNEL, math.hypot(a.value, b.value), a.unit,
                   Quality.OVER_RANGE if over else Quality.NORMAL, a.timestamp, a.sequence)


@ALARMS.register("formwork_tilt")
def formwork_tilt(
    limits: LimitsResolver,
    name: str = "formwork_tilt",
    channels: Sequence[str] = ("slope_x", "slope_y"),
    nodes: Sequence[str] = (),
    rule: str = "combined",
) -> list[AlarmDefinition]:
    """High formwork tilt on every sample (collapse does not wait for a window), from the tilt baseline.

    rule "combined": the combined slope sqrt(x^2 + y^2) of each sample; "axis": each axis either way.
    """
    if rule not in ("combined", "axis"):
        raise LimitsError(f"formwork_tilt.rule: expected 'combined' or 'axis', got {rule!r}")

    def levels(s: SiteLimits, t: float) -> Levels:
        tilt = s.tilt
        return Levels(tilt.alarm_permille, tilt.prewarning_permille, tilt.margin, tilt.hold_s)

    watched = str_tuple(channels, f"{name}.channels")
    return _definition(
        name,
        watched,
        nodes,
        levels,
        "DBJ/T 15-197-2020 table 8.0.4 (unconfirmed)",
        "permille",
        "high formwork tilt",
        absolute=True,
        judge=TiltJudge(watched, rule == "combined"),
        timeless=True,
    )


@ALARMS.register("dust")
def dust(
    limits: LimitsResolver,
    name: str = "dust",
    channels: Sequence[str] = ("pm10_1h_mean",),
    nodes: Sequence[str] = (),
) -> list[AlarmDefinition]:
    def levels(s: SiteLimits, t: float) -> Levels:
        return Levels(s.dust.pm10_1h_limit, margin=s.dust.margin, hold_s=s.dust.hold_s, inclusive=False)

    return _definition(
        name,
        channels,
        nodes,
        levels,
        "site dust setting (unconfirmed default)",
        "ug/m3",
        "PM10 1-h mean above the dust setting",
        timeless=True,
    )


def default_definitions(limits: LimitsResolver) -> list[AlarmDefinition]:
    """Every registered alarm with its defaults."""
    out: list[AlarmDefinition] = []
    for name in ALARMS.names():
        out += ALARMS.get(name)(limits)
    return out
