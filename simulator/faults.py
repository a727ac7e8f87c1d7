"""Fault plans for the simulator: which faults are active on which node, when.

Sans-IO and pure: a :class:`FaultPlan` is a list of :class:`Fault` windows
[start, end) in simulated seconds since the scenario start. The bus code asks
it, for a node and a time, which faults apply and acts on them; the sensor
glue does the same for faults that change values. The plan is filled from the
scenario timeline and can be changed while a run goes on (:meth:`FaultPlan.add`,
:meth:`FaultPlan.clear`), e.g. from a test or an operator console.

Fault kinds and who applies them:

=================  ======  ==================================================
kind               scope   meaning (parameters)
=================  ======  ==================================================
no_reply           node    the node stays silent
late_reply         node    the reply leaves `delay_ms` late
crc_corruption     either  the reply's CRC is broken (per reply, `probability`)
garbage            either  `length` random bytes on the line (per request,
                           `probability`); from one node or from the bus
stuck_value        node    `channel` (or every channel) keeps the value it had
                           when the fault began
spikes             node    `channel` (or one at random) is multiplied by
                           `magnitude` in a sample (per sample, `probability`)
sensor_missing     node    the sensor does not answer: status "absent"
over_range         node    `channel` (or every channel with a range below)
                           reads the sensor's range limit, status
                           "out_of_range": the PM sensor saturates
reboot             node    the node restarts at `start` (sample sequence back
                           to 1, uptime 0, boot count + 1) and is silent until
                           `end` (boot time)
bus_unplugged      bus     the whole bus is silent; plugged back in at `end`
=================  ======  ==================================================

"scope node" faults name a bus and a unit id; "bus" faults name only a bus
and apply to every node on it. The helpers at the end (:class:`SensorFaults`,
:func:`corrupt_crc`, :func:`garbage_bytes`, :func:`happens`) are the pure parts
of applying a fault; random choices take an explicit random.Random.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import NamedTuple


class FaultKind(StrEnum):
    NO_REPLY = "no_reply"
    LATE_REPLY = "late_reply"
    CRC_CORRUPTION = "crc_corruption"
    GARBAGE = "garbage"
    STUCK_VALUE = "stuck_value"
    SPIKES = "spikes"
    SENSOR_MISSING = "sensor_missing"
    REBOOT = "reboot"
    BUS_UNPLUGGED = "bus_unplugged"
    OVER_RANGE = "over_range"


BUS_ONLY = frozenset({FaultKind.BUS_UNPLUGGED})
NODE_ONLY = frozenset(
    {
        FaultKind.NO_REPLY,
        FaultKind.LATE_REPLY,
        FaultKind.STUCK_VALUE,
        FaultKind.SPIKES,
        FaultKind.SENSOR_MISSING,
        FaultKind.REBOOT,
        FaultKind.OVER_RANGE,
    }
)
SENSOR_KINDS = frozenset({FaultKind.STUCK_VALUE, FaultKind.SPIKES, FaultKind.SENSOR_MISSING, FaultKind.OVER_RANGE})
LINK_KINDS = frozenset(FaultKind) - SENSOR_KINDS

# Which optional parameters each kind takes (others must stay at their defaults).
PARAMETERS: dict[FaultKind, frozenset[str]] = {
    FaultKind.NO_REPLY: frozenset(),
    FaultKind.LATE_REPLY: frozenset({"delay_ms"}),
    FaultKind.CRC_CORRUPTION: frozenset({"probability"}),
    FaultKind.GARBAGE: frozenset({"probability", "length"}),
    FaultKind.STUCK_VALUE: frozenset({"channel"}),
    FaultKind.SPIKES: frozenset({"channel", "probability", "magnitude"}),
    FaultKind.SENSOR_MISSING: frozenset(),
    FaultKind.REBOOT: frozenset(),
    FaultKind.BUS_UNPLUGGED: frozenset(),
    FaultKind.OVER_RANGE: frozenset({"channel"}),
}

# What a saturated sensor reads (register name -> its range limit, register units). The dust node's
# PMS5003 counts up to 1000 ug/m3 (its "maximum range"; firmware/dust_sensor.py _PMS_MAX); the
# channels are the main sensor's, whose status group carries "out_of_range" (regmap STATUS_SPLIT).
RANGE_LIMITS: dict[str, float] = {"pm1": 1000.0, "pm25": 1000.0, "pm10": 1000.0}

DEFAULT_BOOT_TIME = 2.0  # s a rebooting node stays silent
DEFAULT_DELAY_MS = 500.0
DEFAULT_MAGNITUDE = 10.0
DEFAULT_GARBAGE_LENGTH = 8


class NodeId(NamedTuple):
    bus: str
    unit_id: int


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault on one node (unit_id set) or on a whole bus (unit_id None), active in [start, end)."""

    kind: FaultKind
    bus: str
    start: float
    end: float = math.inf
    unit_id: int | None = None
    delay_ms: float = DEFAULT_DELAY_MS
    probability: float = 1.0
    channel: str | None = None
    magnitude: float = DEFAULT_MAGNITUDE
    length: int = DEFAULT_GARBAGE_LENGTH

    def __post_init__(self) -> None:
        if not isinstance(self.kind, FaultKind):
            raise ValueError(f"kind: {self.kind!r} is not a fault kind")
        if not self.bus:
            raise ValueError("bus: must name a bus")
        if self.kind in BUS_ONLY and self.unit_id is not None:
            raise ValueError(f"unit_id: {self.kind} affects a whole bus; give no unit id")
        if self.kind in NODE_ONLY and self.unit_id is None:
            raise ValueError(f"unit_id: {self.kind} affects one node; give its unit id")
        if self.unit_id is not None and not 1 <= self.unit_id <= 247:
            raise ValueError(f"unit_id: {self.unit_id} is outside 1 .. 247")
        if not math.isfinite(self.start):
            raise ValueError(f"start: {self.start!r} is not a finite time")
        if not self.end >= self.start:
            raise ValueError(f"end: {self.end!r} is before start {self.start!r}")
        if not 0.0 <= self.delay_ms <= 60_000.0:
            raise ValueError(f"delay_ms: {self.delay_ms:g} is outside 0 .. 60000")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability: {self.probability:g} is outside 0 .. 1")
        if not math.isfinite(self.magnitude):
            raise ValueError(f"magnitude: {self.magnitude!r} is not finite")
        if not 1 <= self.length <= 256:
            raise ValueError(f"length: {self.length} is outside 1 .. 256 bytes")
        if self.kind == FaultKind.OVER_RANGE and self.channel is not None and self.channel not in RANGE_LIMITS:
            raise ValueError(f"channel: {self.channel!r} has no range to exceed (one of {', '.join(RANGE_LIMITS)})")

    @classmethod
    def reboot(cls, bus: str, unit_id: int, at: float, boot_time: float = DEFAULT_BOOT_TIME) -> Fault:
        return cls(FaultKind.REBOOT, bus, at, at + boot_time, unit_id)

    def active_at(self, t: float) -> bool:
        return self.start <= t < self.end

    def applies_to(self, node: NodeId) -> bool:
        return self.bus == node.bus and (self.unit_id is None or self.unit_id == node.unit_id)

    @property
    def label(self) -> str:
        """Short text for logs and ground truth: "late_reply(300 ms)", "stuck_value(pm10)"."""
        details = {
            FaultKind.LATE_REPLY: f"{self.delay_ms:g} ms",
            FaultKind.CRC_CORRUPTION: f"p={self.probability:g}",
            FaultKind.GARBAGE: f"{self.length} B, p={self.probability:g}",
            FaultKind.STUCK_VALUE: self.channel or "all",
            FaultKind.OVER_RANGE: self.channel or "all",
            FaultKind.SPIKES: f"{self.channel or 'any'} x{self.magnitude:g}, p={self.probability:g}",
        }.get(self.kind)
        return f"{self.kind}({details})" if details else str(self.kind)


class FaultPlan:
    """Every fault of a run; queried by (node, time), changed with add() and clear()."""

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self._faults: list[Fault] = []
        for fault in faults:
            self.add(fault)

    @property
    def faults(self) -> tuple[Fault, ...]:
        return tuple(self._faults)

    def __len__(self) -> int:
        return len(self._faults)

    def add(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def clear(
        self,
        t: float,
        *,
        bus: str | None = None,
        unit_id: int | None = None,
        kind: FaultKind | None = None,
        future: bool = False,
    ) -> list[Fault]:
        """End the matching faults active at t (their end becomes t); with future=True
        also drop matching faults that have not started yet. Returns the faults changed.

        bus, unit_id and kind narrow the match; unit_id matches node faults of that unit only.
        """
        changed: list[Fault] = []
        kept: list[Fault] = []
        for fault in self._faults:
            matches = (
                (bus is None or fault.bus == bus)
                and (unit_id is None or fault.unit_id == unit_id)
                and (kind is None or fault.kind == kind)
            )
            if matches and fault.active_at(t):
                changed.append(fault)
                kept.append(replace(fault, end=t))
            elif matches and future and fault.start > t:
                changed.append(fault)
            else:
                kept.append(fault)
        self._faults = kept
        return changed

    def active(self, node: NodeId, t: float) -> tuple[Fault, ...]:
        """Faults acting on this node at t: its own and its bus's, in the order added."""
        return tuple(f for f in self._faults if f.applies_to(node) and f.active_at(t))

    def active_on_bus(self, bus: str, t: float) -> tuple[Fault, ...]:
        """Bus-wide faults only (unit_id None) active at t."""
        return tuple(f for f in self._faults if f.bus == bus and f.unit_id is None and f.active_at(t))

    def first(self, node: NodeId, t: float, kind: FaultKind) -> Fault | None:
        for fault in self.active(node, t):
            if fault.kind == kind:
                return fault
        return None

    def started(self, node: NodeId, after: float, until: float, kind: FaultKind | None = None) -> tuple[Fault, ...]:
        """Faults on this node (or its bus) whose start lies in (after, until]: e.g. reboots to carry out."""
        return tuple(
            f
            for f in self._faults
            if f.applies_to(node) and after < f.start <= until and (kind is None or f.kind == kind)
        )

    def labels(self, node: NodeId, t: float) -> list[str]:
        """Sorted labels of the active faults, for ground-truth records."""
        return sorted(f.label for f in self.active(node, t))


# ---------------------------------------------------------------------------
# Applying faults: pure helpers
# ---------------------------------------------------------------------------


def happens(fault: Fault, rng: random.Random) -> bool:
    """Does a fault with a per-event probability strike this time?"""
    if fault.probability >= 1.0:
        return True
    return rng.random() < fault.probability


def corrupt_crc(frame: bytes, rng: random.Random) -> bytes:
    """The frame with one bit of its CRC flipped: every receiver must reject it.

    Only the CRC changes, so the address and function stay readable: the fault
    is a pure CRC error, not a frame that looks like another slave's.
    """
    if len(frame) < 4:
        raise ValueError("a Modbus RTU frame has at least 4 bytes")
    data = bytearray(frame)
    position = len(data) - 1 - rng.randrange(2)
    data[position] ^= 1 << rng.randrange(8)
    return bytes(data)


def garbage_bytes(rng: random.Random, length: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(length))


def spike(value: float, magnitude: float) -> float:
    """A spiked reading: the value times magnitude, or magnitude itself for a value near zero."""
    return value * magnitude if abs(value) >= 1.0 else magnitude


class SensorFaults:
    """Applies stuck values, spikes and a missing sensor to one node's samples.

    Keeps the remembered values of stuck channels between samples; a stuck
    channel is released (and forgotten) as soon as its fault is no longer active.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._stuck: dict[tuple[float, str], float] = {}
        self.over_range: frozenset[str] = frozenset()  # channels the last sample saturated (status out_of_range)

    def apply(self, values: Mapping[str, float], faults: Sequence[Fault]) -> dict[str, float] | None:
        """The sample as the faulty sensor delivers it; None: the sensor did not answer."""
        sensor_faults = [f for f in faults if f.kind in SENSOR_KINDS]
        self.over_range = frozenset()
        if any(f.kind == FaultKind.SENSOR_MISSING for f in sensor_faults):
            return None
        out = dict(values)
        live: set[tuple[float, str]] = set()
        saturated: set[str] = set()
        for fault in sensor_faults:
            if fault.kind == FaultKind.STUCK_VALUE:
                for channel in [fault.channel] if fault.channel else sorted(out):
                    if channel not in out:
                        continue
                    key = (fault.start, channel)
                    live.add(key)
                    out[channel] = self._stuck.setdefault(key, out[channel])
            elif fault.kind == FaultKind.SPIKES and happens(fault, self.rng):
                channel = fault.channel if fault.channel else self.rng.choice(sorted(out))
                if channel in out:
                    out[channel] = spike(out[channel], fault.magnitude)
            elif fault.kind == FaultKind.OVER_RANGE:
                for channel in [fault.channel] if fault.channel else sorted(RANGE_LIMITS):
                    if channel in out:
                        out[channel] = RANGE_LIMITS[channel]
                        saturated.add(channel)
        self.over_range = frozenset(saturated)
        for key in list(self._stuck):
            if key not in live:
                del self._stuck[key]
        return out
