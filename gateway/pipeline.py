"""The gateway's pipeline, Telegraf-like: sources -> processors -> aggregators -> alarms -> queue -> sinks.

This module is the pure middle: records in, records out, no I/O, no clock
(the caller passes ``now``). The sources (the bus owners, gateway/acquire)
and the edges (the durable queue and its sinks, gateway/deliver; the coil
writes) belong to the service (gateway/ops/service.py).

Stages, in order; each takes the batch of records and returns a batch, and
passes on every record it does not handle. (Outages of nodes are not made
here: the bus owner knows when a node stopped and started answering, and
reports them itself; see gateway/acquire/outages.py.)

1. ``ProcessStage``: the configured processors (gateway.process registry,
   by name: range, hampel, stuck, humidity, units ...) on every reading.
2. ``AggregateStage``: the configured aggregators (pm, noise, wind, tilt);
   each reading is followed by the aggregates of the windows it closed.
   ``tick(now)`` closes windows a silent node leaves open, ``late_s``
   seconds after their end (a reading polled just after a boundary still
   counts). A reading for a window already closed (backfilled) revises it:
   the window is emitted again with a higher ``revision`` after the batch
   (docs/revisions.md); the alarm and spray stages act on first emissions (a revision may only give
   back an alarm's hold that the window's invalid first emission restarted).
3. ``AlarmStage``: the configured alarm definitions watch readings and
   aggregates; each is followed by the alarm events it caused.
4. ``SprayStage``: the spray linkage watches its channel (the PM10 15-min
   mean) and adds ``SprayCommand`` records. The service writes them to the
   dust node's coil and queues the outcome (an ``Actuation``).

``Pipeline.tick(now)`` asks every stage for what time alone produces
(closed windows, the spray's minimum on-time running out) and runs those
records through the stages after it, so an aggregate made by a tick still
reaches the alarms and the spray.

Quality
-------
Every reading arrives with its own flag: the acquire stage decodes the
node's status word into one flag per channel (gateway/acquire/decode.py
``channel_qualities``), for live polls and history records alike. Nothing
else carries status from the bus to the pipeline. Humid PM readings are
flagged by the ``humidity`` processor from the RH channel (see
docs/data-quality.md).
"""

from __future__ import annotations

import logging
import math
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from firmware import regmap
from gateway.deliver.records import Record
from gateway.model import Reading
from gateway.process import create_aggregator, create_alarms, create_processor
from gateway.process.aggregate import Aggregate, KnownKey, SampleIntervals, WindowedAggregator, period_label
from gateway.process.alarms import AlarmDefinition, AlarmEvent, AlarmSet, TiltJudge
from gateway.process.limits import LimitsResolver
from gateway.process.noise import NoiseAggregator
from gateway.process.processors import DefaultChecks
from gateway.process.registry import AGGREGATORS, ALARMS, PROCESSORS, Aggregator, Processor
from gateway.process.spray import SprayLinkage, SprayMode
from gateway.process.tilt import TiltAggregator
from gateway.profiles.kinds import kind_profiles

log = logging.getLogger(__name__)


class StageError(ValueError):
    """A stage in the configuration cannot be built; `where` says which one (e.g. "processor[2]")."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


@dataclass(frozen=True)
class StageSpec:
    """One configured stage: its registered type and its parameters (a TOML table without `type`)."""

    type: str
    params: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


DEFAULT_PROCESSORS = (StageSpec("range"), StageSpec("hampel"), StageSpec("stuck"), StageSpec("humidity"))


def default_aggregators() -> tuple[StageSpec, ...]:
    """The aggregators the kinds' profiles name (gateway/profiles/kinds), in node_kind order, each once.

    A kind that declares mean windows rather than naming aggregators gets its
    own, registered under its name (gateway/process/kind_stages.py).
    """
    names: list[str] = []
    for profile in sorted(kind_profiles().values(), key=lambda p: p.code):
        wanted = [*profile.aggregators, *([profile.name] if profile.mean_channels else [])]
        names += [name for name in wanted if name not in names]
    return tuple(StageSpec(name) for name in names)


# The shipped kinds' aggregators (a configuration built before a kind was installed keeps these).
DEFAULT_AGGREGATORS = default_aggregators()
DEFAULT_LATE_S = 5.0
DROP_LOG_INTERVAL_S = 60.0  # readings too old to revise a window: one log line per this long at most
SAMPLE_PLANS_KEPT = 1024  # lists of a sample's channels (a site has a few per kind); past it they start again
DEFAULT_SPRAY_CHANNEL = "pm10_15min_mean"


def default_alarms() -> tuple[StageSpec, ...]:
    """Every registered alarm, with its defaults."""
    return tuple(StageSpec(name) for name in ALARMS.names())


@dataclass(frozen=True)
class SprayPlan:
    """The spray linkage: which mean drives it, and which dust node drives which node's coil."""

    channel: str = DEFAULT_SPRAY_CHANNEL
    coils: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # dust node -> coil node
    coil: str = "spray_relay"


# ---------------------------------------------------------------------------------------
# Stages.
# ---------------------------------------------------------------------------------------


class Stage:
    """Records in, records out. `tick` and `close` return what time alone produces."""

    def __call__(self, records: list[Record], now: float) -> list[Record]:
        raise NotImplementedError

    def tick(self, now: float) -> list[Record]:
        return []

    def close(self, now: float) -> list[Record]:
        return []


def _poll_step(processor: Processor) -> Callable[[list[Reading]], list[Reading]]:
    """The processor as a function of a whole poll: its `process_poll`, or `process` on each reading."""
    whole = getattr(processor, "process_poll", None)
    if callable(whole):
        return whole  # type: ignore[no-any-return]
    process = processor.process

    def each(readings: list[Reading]) -> list[Reading]:
        return [out for reading in readings for out in process(reading)]

    return each


class ProcessStage(Stage):
    """The processors, each on a whole run of readings (a poll) at a time (issue 13).

    Every processor sees the same readings in the same order as it would one reading
    at a time (processors share no state), so the outcome is the same; the node's
    limits are looked up once per poll and processor, and there is no list per reading.
    The default chain (range, hampel, stuck, humidity, default options) goes over a run
    once instead (processors.DefaultChecks, `fused`), with the same outcome and state.
    """

    def __init__(self, processors: Sequence[Processor]) -> None:
        self.processors = tuple(processors)
        self._steps = tuple(_poll_step(p) for p in self.processors)
        # The default four (range, hampel, stuck, humidity with their defaults): one pass over a poll instead
        # of four, on the same processors' state (issue 13). Any other chain: the processors in turn.
        self.fused = DefaultChecks.of(self.processors)
        self._process: Callable[[list[Reading]], list[Reading]] = (
            self._in_turn if self.fused is None else self.fused.process_poll
        )

    def __call__(self, records: list[Record], now: float) -> list[Record]:
        if records and _ONLY_READINGS.issuperset(map(type, records)):
            # Readings only (a poll: nearly every batch) are one run. Telling it by a map over the types costs
            # two thirds of the loop below, which copies every reading into `run` (valgrind, a 7-reading poll:
            # 2,800 against 4,100 instructions; issue 13, fifth pass).
            return self._process(records)  # type: ignore[arg-type,return-value]
        out: list[Record] = []
        run: list[Reading] = []  # readings since the last other record
        for r in records:
            if type(r) is Reading:
                run.append(r)
            else:
                if run:
                    out.extend(self._process(run))
                    run = []
                out.append(r)
        if run:
            out.extend(self._process(run))
        return out

    def _in_turn(self, readings: list[Reading]) -> list[Reading]:
        for step in self._steps:
            readings = step(readings)
        return readings

    def warm(self, readings: Iterable[Reading]) -> Iterator[Reading]:
        """The readings, unchanged, after each went past the processors that rebuild memory from it."""
        warmers = [w for w in (getattr(p, "warm", None) for p in self.processors) if callable(w)]
        for reading in readings:
            for warm in warmers:
                warm(reading)
            yield reading


class AggregateStage(Stage):
    """The aggregators; late readings revise their closed windows (docs/revisions.md).

    The revisions a batch causes follow the batch, one per window however
    many late readings it held. Readings too old to revise their window are
    counted per node and logged at most once per DROP_LOG_INTERVAL_S.
    """

    def __init__(
        self, aggregators: Sequence[Aggregator], late_s: float = DEFAULT_LATE_S, revision_horizon_s: float = 0.0
    ) -> None:
        self.aggregators = tuple(aggregators)
        self.late_s = late_s
        self.windowed = tuple(a for a in self.aggregators if isinstance(a, WindowedAggregator))
        # Every aggregator of the stage sees every sample (fed or observed): one measurement of the
        # nodes' sample intervals does for all of them, and a poll is observed once, not once each.
        self._intervals = SampleIntervals()
        for aggregator in self.windowed:
            aggregator.revision_horizon_s = revision_horizon_s
            aggregator.share_intervals(self._intervals)
        self._window_sets = tuple(a.window_set for a in self.windowed)
        self._dropped_logged: dict[str, int] = {}
        self._dropped_log_at = -math.inf
        self._irregular_seen = 0  # the aggregators' `irregular` sum when the counts were last compared
        self._routes: dict[str, tuple[tuple[Aggregator, ...], tuple[WindowedAggregator[Any], ...]]] = {}
        # Whether a poll can go to each aggregator as one sample (feed_sample): every aggregator says by
        # channel alone which readings it takes.
        self._sample_routes: dict[str, tuple[int, ...]] = {}
        self._sample_plans: dict[tuple[str, ...], _SamplePlan] = {}  # channels of a sample -> _sample_plan
        self._by_sample = all(
            isinstance(a, WindowedAggregator) and a.accepted_channels() is not None for a in self.aggregators
        )

    def __call__(self, records: list[Record], now: float) -> list[Record]:
        fed: Sequence[WindowedAggregator[Any]]
        if self._by_sample and _one_sample(records):
            (out, fed), readings = self._feed_sample(records), True  # type: ignore[arg-type]
        else:
            out, readings = self._feed_each(records)
            fed = self.windowed if readings else ()
        # Only a fed aggregator can hold revisions to emit (late readings make them; `advance` and the
        # replay emit their own).
        for windowed in fed:
            out.extend(windowed.flush())
        if readings:
            self._log_dropped(now)
        return out

    def _feed_sample(self, readings: list[Reading]) -> tuple[list[Record], Sequence[WindowedAggregator[Any]]]:
        """The readings of one node sample (a poll): each aggregator gets its readings at once (issue 13).

        What comes out is what `_feed_each` makes: a sample closes windows with its first reading an
        aggregator takes (they share one time), so the aggregates follow that reading.
        Returns (the records, the aggregators fed).
        """
        channels = tuple([r.channel for r in readings])
        plan = self._sample_plans.get(channels)
        if plan is None:
            plan = self._sample_plan(channels)
        groups, fed = plan
        after: dict[int, list[Record]] = {}  # reading index -> the aggregates its aggregators made
        # In the order of their first readings, as reading by reading: the sample is measured when its first
        # reading is fed (the wind's gust of a first reading sees it unmeasured).
        for aggregator, positions in groups:
            made = aggregator.feed_sample([readings[i] for i in positions])
            if made:
                after.setdefault(positions[0], []).extend(made)
        if not groups:  # a fed aggregator measured the sample already (the stage's aggregators share one measure)
            first = readings[0]
            self._intervals.observe(first.node, first.sequence, first.timestamp)
        if not after:
            return list(readings), fed
        out: list[Record] = []
        for i, r in enumerate(readings):
            out.append(r)
            closed = after.get(i)
            if closed:
                out.extend(closed)
        return out, fed

    def _sample_plan(self, channels: tuple[str, ...]) -> _SamplePlan:
        """For a sample of these channels, in this order: (each aggregator that takes some, with the positions
        of its readings), in the order of their first readings; and those aggregators in the stage's order
        (the order they are flushed in). A site's nodes send the same channels poll after poll: made once
        per channel list, not per poll (issue 13, fourth pass)."""
        taken: dict[int, list[int]] = {}  # aggregator index -> positions of its readings (filled in order)
        for i, channel in enumerate(channels):
            route = self._sample_routes.get(channel)
            if route is None:
                route = self._sample_route(channel)
            for a in route:
                taken.setdefault(a, []).append(i)
        if len(self._sample_plans) >= SAMPLE_PLANS_KEPT:
            self._sample_plans.clear()
        plan = self._sample_plans[channels] = (
            tuple((self.windowed[a], tuple(positions)) for a, positions in taken.items()),
            tuple(self.windowed[a] for a in sorted(taken)),
        )
        return plan

    def _sample_route(self, channel: str) -> tuple[int, ...]:
        """The indexes (in self.windowed) of the aggregators that take readings of `channel`."""
        route = self._sample_routes[channel] = tuple(
            i for i, a in enumerate(self.windowed) if channel in (a.accepted_channels() or ())
        )
        return route

    def _feed_each(self, records: list[Record]) -> tuple[list[Record], bool]:
        """Reading by reading: any mix of nodes, samples and other records. (out, whether any was a reading)"""
        out: list[Record] = []
        fed = False
        # The sample the previous reading belonged to. Every windowed aggregator has seen it (fed or
        # observed), and `observe` ignores the same node's same sample again: the other readings of
        # one poll need no `observe` at all (four calls per reading were a tenth of the stage).
        node, sequence, timestamp = "", 0, math.nan
        for r in records:
            out.append(r)
            if type(r) is Reading:
                fed = True
                feeders, observers = self._routes.get(r.channel) or self._route(r.channel)
                for aggregator in feeders:
                    made = aggregator.feed(r)
                    if made:
                        out.extend(made)
                if r.sequence != sequence or r.timestamp != timestamp or r.node != node:
                    for windowed in observers:
                        windowed.observe(r)
                    node, sequence, timestamp = r.node, r.sequence, r.timestamp
        return out, fed

    def tick(self, now: float) -> list[Record]:
        out: list[Record] = []
        for aggregator in self.aggregators:
            out.extend(aggregator.advance(now - self.late_s))
        return out

    def _route(self, channel: str) -> tuple[tuple[Aggregator, ...], tuple[WindowedAggregator[Any], ...]]:
        """(aggregators to feed, aggregators that only observe) for readings of `channel`.

        Most readings belong to one aggregator of four; calling `feed` on the others only to have
        it refuse them was a third of the pipeline's time (issue 13). Their order, and what each
        aggregator sees, stay as they were: `observe` is what `feed` did with a refused reading.
        """
        feeders: list[Aggregator] = []
        observers: list[WindowedAggregator[Any]] = []
        for aggregator in self.aggregators:
            channels = aggregator.accepted_channels() if isinstance(aggregator, WindowedAggregator) else None
            if channels is None or channel in channels:
                feeders.append(aggregator)
            else:
                assert isinstance(aggregator, WindowedAggregator)
                observers.append(aggregator)
        route = self._routes[channel] = (tuple(feeders), tuple(observers))
        return route

    def counts(self) -> dict[str, dict[str, int]]:
        """Per node: readings that revised a closed window ("late"), readings too old for that ("dropped")."""
        late: Counter[str] = Counter()
        dropped: Counter[str] = Counter()
        for aggregator in self.windowed:
            late.update(aggregator.late_by_node())
            dropped.update(aggregator.dropped_by_node())
        return {"late": dict(sorted(late.items())), "dropped": dict(sorted(dropped.items()))}

    def replay_since(self, nodes: Iterable[str], now: float) -> float:
        """Where a replay must start to rebuild every window open or revisable at `now` (now: no windows)."""
        return min((a.replay_since(node, now) for a in self.windowed for node in nodes), default=now)

    def restore(
        self, readings: Iterable[Reading], known: Mapping[KnownKey, Aggregate], since: float, now: float
    ) -> list[Record]:
        """Rebuild the windows from the readings of the last run (see WindowedAggregator.restore)."""
        for aggregator in self.windowed:
            aggregator.start_replay(known, since)
        for reading in readings:
            for aggregator in self.windowed:
                aggregator.replay(reading)
        out: list[Record] = []
        for aggregator in self.windowed:
            out.extend(aggregator.finish_replay(now - self.late_s))  # what tick(now) would close
        return out

    def _log_dropped(self, now: float) -> None:
        """Say which nodes' readings revised windows (info) or were too old for that (warning), once a minute."""
        if now - self._dropped_log_at < DROP_LOG_INTERVAL_S:
            return
        # Gathering the per-node counts on every batch was 7 % of the pipeline's time; they only
        # need a look when some aggregator counted a late or dropped reading since the last one.
        irregular = sum(map(_IRREGULAR, self._window_sets))  # once per batch: no Python call per aggregator
        if irregular == self._irregular_seen:
            return
        self._irregular_seen = irregular
        counts = self.counts()
        news = {
            (what, node): n - self._dropped_logged.get(f"{what}:{node}", 0)
            for what in ("late", "dropped") for node, n in counts[what].items()
        }
        news = {key: n for key, n in news.items() if n > 0}
        if not news:
            return
        self._dropped_log_at = now
        self._dropped_logged = {f"{what}:{node}": n for what in ("late", "dropped") for node, n in counts[what].items()}
        for (what, node), n in sorted(news.items()):
            if what == "dropped":
                log.warning("%s: %d readings older than the revision horizon dropped from aggregation (%d in all)",
                            node, n, counts[what][node])
            else:
                log.info("%s: %d late readings revised closed windows (%d in all)", node, n, counts[what][node])


_IRREGULAR = operator.attrgetter("irregular")
# AggregateStage._sample_plan: ((aggregator, positions of its readings) in the order of their first readings,
# the aggregators in the stage's order).
_SamplePlan = tuple[
    tuple[tuple["WindowedAggregator[Any]", tuple[int, ...]], ...], tuple["WindowedAggregator[Any]", ...]
]


def _inserted(records: list[Record], made: list[tuple[int, Sequence[Record]]]) -> list[Record]:
    """The records with what each of some of them caused right after it ((index, caused), by index).

    Nothing caused (nearly every batch): the same list, not a copy. Stages never change a list they got.
    """
    if not made:
        return records
    out: list[Record] = []
    start = 0
    for i, caused in made:
        out += records[start : i + 1]
        out += caused
        start = i + 1
    out += records[start:]
    return out


def _one_sample(records: list[Record]) -> bool:
    """Whether the records are readings of one node sample (same node, sequence and time): a live poll."""
    if not records:
        return False
    first = records[0]
    if type(first) is not Reading:
        return False
    node, sequence, timestamp = first.node, first.sequence, first.timestamp
    for r in records:
        if type(r) is not Reading or r.timestamp != timestamp or r.sequence != sequence or r.node != node:
            return False
    return True


# ProcessStage: a batch of these types only is one run of readings.
_ONLY_READINGS = frozenset({Reading})


class AlarmStage(Stage):
    def __init__(self, alarms: AlarmSet) -> None:
        self.alarms = alarms
        self._watched: dict[str, bool] = {}  # channel -> whether any definition watches it

    def __call__(self, records: list[Record], now: float) -> list[Record]:
        made: list[tuple[int, Sequence[Record]]] = []  # (index of the record, the events it caused)
        watched = self._watched
        for i, r in enumerate(records):
            if type(r) is Reading:
                channel = r.channel
            elif type(r) is Aggregate:
                if r.revision:
                    # A revision corrects a window that already acted (docs/revisions.md): it raises and clears
                    # nothing, but may give back a hold timer its invalid first emission restarted.
                    if self.alarms.watching(r.channel):
                        self.alarms.revise(r.to_reading())
                    continue
                channel = r.channel
            else:
                continue
            watching = watched.get(channel)
            if watching is None:
                watching = watched[channel] = bool(self.alarms.watching(channel))
            if not watching:
                continue  # most readings and aggregates: no call, and no reading built from an aggregate
            events = self.alarms.feed(r if isinstance(r, Reading) else r.to_reading())
            if events:
                made.append((i, events))
        return _inserted(records, made)


class SprayStage(Stage):
    def __init__(self, linkage: SprayLinkage, channel: str) -> None:
        self.linkage = linkage
        self.channel = channel

    def __call__(self, records: list[Record], now: float) -> list[Record]:
        made: list[tuple[int, Sequence[Record]]] = []  # (index of the record, the commands it caused)
        channel = self.channel
        for i, r in enumerate(records):
            if type(r) is Reading:
                if r.channel != channel:
                    continue
                commands = self.linkage.feed(r, now)
            elif type(r) is Aggregate and r.channel == channel and r.revision == 0:
                commands = self.linkage.feed(r.to_reading(), now)
            else:
                continue
            if commands:
                made.append((i, commands))
        return _inserted(records, made)

    def tick(self, now: float) -> list[Record]:
        return list(self.linkage.tick(now))


# ---------------------------------------------------------------------------------------
# The pipeline.
# ---------------------------------------------------------------------------------------


class Pipeline:
    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)
        self.spray = next((s for s in self.stages if isinstance(s, SprayStage)), None)
        self.alarms = next((s.alarms for s in self.stages if isinstance(s, AlarmStage)), None)

    def feed(self, records: Iterable[Record], now: float) -> list[Record]:
        """Run records (the readings of a poll) through every stage."""
        batch = list(records)
        for stage in self.stages:
            batch = stage(batch, now)
        return batch

    def _after(self, index: int, records: list[Record], now: float) -> list[Record]:
        for stage in self.stages[index + 1 :]:
            records = stage(records, now)
        return records

    def tick(self, now: float) -> list[Record]:
        """What time alone produces: closed windows (and their alarms), spray timeouts."""
        out: list[Record] = []
        for i, stage in enumerate(self.stages):
            made = stage.tick(now)
            if made:
                out.extend(self._after(i, made, now))
        return out

    def close(self, now: float) -> list[Record]:
        """At shutdown: what the stages still hold that must not be lost (open outages).

        Open aggregation windows are not emitted: a partial window would pass
        for a whole one. The next start rebuilds them from the queue (`restore`).
        """
        out: list[Record] = []
        for i, stage in enumerate(self.stages):
            made = stage.close(now)
            if made:
                out.extend(self._after(i, made, now))
        return out

    @property
    def aggregation(self) -> AggregateStage | None:
        return next((s for s in self.stages if isinstance(s, AggregateStage)), None)

    def window_counts(self) -> dict[str, dict[str, int]]:
        """Per node: readings that revised a closed window ("late") and readings too old for that ("dropped")."""
        stage = self.aggregation
        return {"late": {}, "dropped": {}} if stage is None else stage.counts()

    def replay_since(self, nodes: Iterable[str], now: float) -> float:
        """The oldest sample time a restart must replay to rebuild the windows open or revisable at `now`."""
        stage = self.aggregation
        return now if stage is None else stage.replay_since(nodes, now)

    def restore(
        self, readings: Iterable[Reading], known: Mapping[KnownKey, Aggregate], since: float, now: float
    ) -> list[Record]:
        """At start: rebuild the windows from the last run's readings (oldest first, as they were fed).

        Only the aggregators see them: nothing is emitted again, no alarm is
        raised again. What comes out are the windows whose emission the last
        run lost (see WindowedAggregator.restore), run through the later stages.
        The processors see them too, to rebuild their memory (the spike filter's
        window, the stuck check's run: ProcessStage.warm), and judge nothing.
        """
        for stage in self.stages:
            if isinstance(stage, ProcessStage):
                readings = stage.warm(readings)
        for i, stage in enumerate(self.stages):
            if isinstance(stage, AggregateStage):
                return self._after(i, stage.restore(readings, known, since, now), now)
        for _ in readings:  # no aggregator: the processors' memory all the same
            pass
        return []

    def resume_alarms(self, events: Iterable[AlarmEvent]) -> int:
        """At start, before restore: the alarms the last run left raised stay raised (and can clear)."""
        return 0 if self.alarms is None else self.alarms.resume(events)

    def set_spray_mode(self, node: str, mode: SprayMode | str, now: float, who: str = "operator") -> list[Record]:
        """Manual override of a coil node's spray: "on", "off", or back to "auto". Returns the commands."""
        if self.spray is None:
            raise LookupError("the spray linkage is not enabled")
        return list(self.spray.linkage.set_mode(node, SprayMode(mode), now, who))

    def spray_state(self) -> dict[str, tuple[SprayMode, bool]]:
        """Coil node -> (mode, coil on) of every spray controller so far."""
        if self.spray is None:
            return {}
        return {node: (c.mode, c.on) for node, c in self.spray.linkage.controllers.items()}


T = TypeVar("T")


def _build(
    what: str,
    specs: Sequence[StageSpec],
    make: Callable[[str, LimitsResolver, Mapping[str, object]], T],
    limits: LimitsResolver,
) -> list[T]:
    built: list[T] = []
    for i, spec in enumerate(specs):
        try:
            built.append(make(spec.type, limits, dict(spec.params)))
        except (LookupError, ValueError, TypeError) as error:
            raise StageError(f"{what}[{i}] ({spec.type})", str(error)) from error
    return built


def build_pipeline(
    limits: LimitsResolver,
    processors: Sequence[StageSpec] = DEFAULT_PROCESSORS,
    aggregators: Sequence[StageSpec] | None = None,
    alarms: Sequence[StageSpec] | None = None,
    spray: SprayPlan | None = None,
    late_s: float = DEFAULT_LATE_S,
    revision_horizon_s: float = 0.0,
) -> Pipeline:
    """The pipeline a configuration describes. Raises StageError naming the stage that cannot be built.

    aggregators None: those the kinds' profiles select (default_aggregators: kinds installed since count).
    alarms None: every registered alarm with its defaults. spray None: no spray linkage.
    """
    procs = _build("processor", processors, create_processor, limits)
    aggs = _build("aggregator", default_aggregators() if aggregators is None else aggregators, create_aggregator,
                  limits)
    definitions: list[AlarmDefinition] = []
    for part in _build("alarm", default_alarms() if alarms is None else alarms, create_alarms, limits):
        definitions.extend(part)
    _share_tilt_baselines(aggs, definitions)
    try:
        alarm_set = AlarmSet(definitions, limits)
    except ValueError as error:
        raise StageError("alarm", str(error)) from error
    stages: list[Stage] = [
        ProcessStage(procs),
        AggregateStage(aggs, late_s, revision_horizon_s),
        AlarmStage(alarm_set),
    ]
    _check_window_couplings(aggs, spray, limits)
    if spray is not None:
        try:
            linkage = SprayLinkage(limits, spray.channel, spray.coils, spray.coil)
        except ValueError as error:
            raise StageError("spray", str(error)) from error
        stages.append(SprayStage(linkage, spray.channel))
    return Pipeline(stages)


RAW_CHANNELS = frozenset(row[0] for rows in regmap.MEASUREMENTS.values() for row in rows)


def _check_window_couplings(aggregators: Sequence[Aggregator], spray: SprayPlan | None, limits: LimitsResolver) -> None:
    """Refuse windows that leave the spray or the noise alarms without their input (they would never act)."""
    made: set[str] = set()
    for aggregator in aggregators:
        if isinstance(aggregator, WindowedAggregator):
            made |= aggregator.outputs()
    if spray is not None and spray.channel not in made and spray.channel not in RAW_CHANNELS:
        problem = f"no configured aggregator makes {spray.channel!r}: the spray would never run"
        raise StageError("spray.channel", problem)
    evaluation = period_label(limits.site.noise.evaluation_period_s)
    for i, aggregator in enumerate(aggregators):
        if isinstance(aggregator, NoiseAggregator) and evaluation not in aggregator.labels:
            raise StageError(
                f"aggregator[{i}] (noise)",
                f"windows {list(aggregator.labels)} lack {evaluation!r}, the evaluation period the noise alarms read "
                f"(limits.noise.evaluation_period_s = {limits.site.noise.evaluation_period_s})",
            )


def _share_tilt_baselines(aggregators: Sequence[Aggregator], definitions: Sequence[AlarmDefinition]) -> None:
    """The formwork tilt alarm judges deviations from the baseline the tilt aggregator reports them from."""
    tilts = [a for a in aggregators if isinstance(a, TiltAggregator)]
    for definition in definitions:
        judge = definition.judge
        if isinstance(judge, TiltJudge):
            owner = next((a for a in tilts if set(judge.channels) <= set(a.channels)), None)
            if owner is not None:
                judge.baseline = owner.baselines


def stage_names() -> dict[str, list[str]]:
    """Registered stage types, for messages and documentation."""
    return {"processor": PROCESSORS.names(), "aggregator": AGGREGATORS.names(), "alarm": ALARMS.names()}
