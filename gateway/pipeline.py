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
2. ``NodeStatusStage``: the node status bits the acquire stage does not map
   (see below).
3. ``AggregateStage``: the configured aggregators (pm, noise, wind, tilt);
   each reading is followed by the aggregates of the windows it closed.
   ``tick(now)`` closes windows a silent node leaves open, ``late_s``
   seconds after their end (a reading polled just after a boundary still
   counts).
4. ``AlarmStage``: the configured alarm definitions watch readings and
   aggregates; each is followed by the alarm events it caused.
5. ``SprayStage``: the spray linkage watches its channel (the PM10 15-min
   mean) and adds ``SprayCommand`` records. The service writes them to the
   dust node's coil and queues the outcome (an ``Actuation``).

``Pipeline.tick(now)`` asks every stage for what time alone produces
(closed windows, the spray's minimum on-time running out) and runs those
records through the stages after it, so an aggregate made by a tick still
reaches the alarms and the spray.

Node status bits
----------------
The acquire stage turns a sample's status into its flag: not OK (absent,
checksum, warm-up, stuck: the firmware clears OK for those) is D with no
value, out of range is T. Two bits carry more than that, and the service
hands them to ``NodeStatusStage.note`` for each polled sample:

* STATUS_STUCK: the node's own stuck-value check. Firmware that follows the
  status rules clears OK with it, so the readings are already D; should a
  node set it next to OK, its readings are flagged D here (the ``stuck``
  processor's flag) and keep their value, like any flagged reading.
* STATUS_HUMID: the optical PM values were taken above the node's humidity
  threshold. The process stage's convention for that (the ``humidity``
  processor) is a reading of its own, ``pm_humid``, 1.0 for humid and 0.0
  for not, one per sample. So each valid dust sample gets exactly one
  ``pm_humid`` reading: if the humidity processor already made one, the
  node's bit can only raise it to 1.0 (either threshold saying "humid" is
  enough to distrust the PM value); otherwise one is added from the bit.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TypeVar

from firmware import regmap
from gateway.deliver.records import Record
from gateway.model import Quality, Reading
from gateway.process import create_aggregator, create_alarms, create_processor
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmDefinition, AlarmSet
from gateway.process.limits import LimitsResolver
from gateway.process.registry import AGGREGATORS, ALARMS, PROCESSORS, Aggregator, Processor
from gateway.process.spray import SprayLinkage, SprayMode

HUMID_FLAG_CHANNEL = "pm_humid"  # the humidity processor's default flag channel
STATUS_MEMORY = 16_384  # samples whose status is remembered until their readings arrive


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
DEFAULT_AGGREGATORS = (StageSpec("pm"), StageSpec("noise"), StageSpec("wind"), StageSpec("tilt"))
DEFAULT_LATE_S = 5.0
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


class ProcessStage(Stage):
    def __init__(self, processors: Sequence[Processor]) -> None:
        self.processors = tuple(processors)

    def __call__(self, records: list[Record], now: float) -> list[Record]:
        out: list[Record] = []
        for r in records:
            if type(r) is not Reading:
                out.append(r)
                continue
            batch = [r]
            for processor in self.processors:
                if len(batch) == 1:
                    batch = processor.process(batch[0])
                else:
                    batch = [o for item in batch for o in processor.process(item)]
            out.extend(batch)
        return out


class NodeStatusStage(Stage):
    """Maps STATUS_STUCK and STATUS_HUMID of each polled sample (see the module docstring)."""

    def __init__(self, flag_channel: str = HUMID_FLAG_CHANNEL, humid_kinds: Iterable[str] = ("dust",)) -> None:
        self.flag_channel = flag_channel
        self.humid_kinds = frozenset(humid_kinds)
        self._status: OrderedDict[tuple[str, int], int] = OrderedDict()

    def note(self, node: str, sequence: int, status: int) -> None:
        """The sensor_status word of a node's sample, as polled (before its readings arrive)."""
        if sequence == 0:
            return
        self._status[(node, sequence)] = status
        while len(self._status) > STATUS_MEMORY:
            self._status.popitem(last=False)

    def __call__(self, records: list[Record], now: float) -> list[Record]:
        if not self._status:
            return records
        # The readings of each noted sample, wherever they are in the batch.
        samples: dict[tuple[str, int], list[int]] = {}
        for i, r in enumerate(records):
            if type(r) is Reading and r.sequence and (r.node, r.sequence) in self._status:
                samples.setdefault((r.node, r.sequence), []).append(i)
        if not samples:
            return records
        out = list(records)
        added: dict[int, Reading] = {}  # index of a sample's last reading -> the flag reading to put after it
        for key, indexes in samples.items():
            status = self._status.pop(key)
            if status & regmap.STATUS_STUCK:
                for i in indexes:
                    r = out[i]
                    assert type(r) is Reading
                    if r.quality is Quality.NORMAL:
                        out[i] = r.with_quality(Quality.DEVICE_FAULT)
            flag = self._humid(out, indexes, status)
            if flag is not None:
                added[indexes[-1]] = flag
        if added:
            merged: list[Record] = []
            for i, r in enumerate(out):
                merged.append(r)
                if i in added:
                    merged.append(added[i])
            out = merged
        return out

    def _humid(self, out: list[Record], indexes: list[int], status: int) -> Reading | None:
        """Merge STATUS_HUMID into the sample's flag reading; returns a new flag reading if it has none."""
        first = out[indexes[0]]
        assert type(first) is Reading
        if first.kind not in self.humid_kinds or not status & regmap.STATUS_OK:
            return None
        humid = bool(status & regmap.STATUS_HUMID)
        for i in indexes:
            r = out[i]
            assert type(r) is Reading
            if r.channel == self.flag_channel:
                if humid and r.value != 1.0:
                    out[i] = replace(r, value=1.0, quality=Quality.NORMAL)
                return None
        return replace(first, channel=self.flag_channel, value=1.0 if humid else 0.0, unit="", quality=Quality.NORMAL)


class AggregateStage(Stage):
    def __init__(self, aggregators: Sequence[Aggregator], late_s: float = DEFAULT_LATE_S) -> None:
        self.aggregators = tuple(aggregators)
        self.late_s = late_s

    def __call__(self, records: list[Record], now: float) -> list[Record]:
        out: list[Record] = []
        for r in records:
            out.append(r)
            if type(r) is Reading:
                for aggregator in self.aggregators:
                    made = aggregator.feed(r)
                    if made:
                        out.extend(made)
        return out

    def tick(self, now: float) -> list[Record]:
        out: list[Record] = []
        for aggregator in self.aggregators:
            out.extend(aggregator.advance(now - self.late_s))
        return out


class AlarmStage(Stage):
    def __init__(self, alarms: AlarmSet) -> None:
        self.alarms = alarms

    def __call__(self, records: list[Record], now: float) -> list[Record]:
        out: list[Record] = []
        for r in records:
            out.append(r)
            if type(r) is Reading:
                events = self.alarms.feed(r)
            elif type(r) is Aggregate:
                events = self.alarms.feed(r.to_reading())
            else:
                continue
            if events:
                out.extend(events)
        return out


class SprayStage(Stage):
    def __init__(self, linkage: SprayLinkage, channel: str) -> None:
        self.linkage = linkage
        self.channel = channel

    def __call__(self, records: list[Record], now: float) -> list[Record]:
        out: list[Record] = []
        for r in records:
            out.append(r)
            if type(r) is Aggregate and r.channel == self.channel:
                out.extend(self.linkage.feed(r.to_reading(), now))
            elif type(r) is Reading and r.channel == self.channel:
                out.extend(self.linkage.feed(r, now))
        return out

    def tick(self, now: float) -> list[Record]:
        return list(self.linkage.tick(now))


# ---------------------------------------------------------------------------------------
# The pipeline.
# ---------------------------------------------------------------------------------------


class Pipeline:
    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)
        self.status = next((s for s in self.stages if isinstance(s, NodeStatusStage)), None)
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
        for a whole one.
        """
        out: list[Record] = []
        for i, stage in enumerate(self.stages):
            made = stage.close(now)
            if made:
                out.extend(self._after(i, made, now))
        return out

    def note_status(self, node: str, sequence: int, status: int) -> None:
        if self.status is not None:
            self.status.note(node, sequence, status)

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
    aggregators: Sequence[StageSpec] = DEFAULT_AGGREGATORS,
    alarms: Sequence[StageSpec] | None = None,
    spray: SprayPlan | None = None,
    late_s: float = DEFAULT_LATE_S,
) -> Pipeline:
    """The pipeline a configuration describes. Raises StageError naming the stage that cannot be built.

    alarms None: every registered alarm with its defaults. spray None: no spray linkage.
    """
    procs = _build("processor", processors, create_processor, limits)
    aggs = _build("aggregator", aggregators, create_aggregator, limits)
    definitions: list[AlarmDefinition] = []
    for part in _build("alarm", default_alarms() if alarms is None else alarms, create_alarms, limits):
        definitions.extend(part)
    try:
        alarm_set = AlarmSet(definitions, limits)
    except ValueError as error:
        raise StageError("alarm", str(error)) from error
    flag_channel = HUMID_FLAG_CHANNEL
    for spec in processors:
        if spec.type == "humidity" and isinstance(spec.params.get("flag_channel"), str):
            flag_channel = str(spec.params["flag_channel"])
    stages: list[Stage] = [
        ProcessStage(procs),
        NodeStatusStage(flag_channel),
        AggregateStage(aggs, late_s),
        AlarmStage(alarm_set),
    ]
    if spray is not None:
        try:
            linkage = SprayLinkage(limits, spray.channel, spray.coils, spray.coil)
        except ValueError as error:
            raise StageError("spray", str(error)) from error
        stages.append(SprayStage(linkage, spray.channel))
    return Pipeline(stages)


def stage_names() -> dict[str, list[str]]:
    """Registered stage types, for messages and documentation."""
    return {"processor": PROCESSORS.names(), "aggregator": AGGREGATORS.names(), "alarm": ALARMS.names()}
