"""Simulated sensors: the firmware's sensor interface on top of a source of true values.

A firmware sensor is any object with ``read(bank, now_ms) -> status bits``
that stores its measurements in the node's register bank (firmware/node.py).
Here the measurements come from a ``TruthSource`` (the physics models, seen
through :class:`simulator.physics.EpochSource`), pass through the sensor
faults that are active (stuck value, spikes, a missing sensor), and land in
the registers. Every true value is remembered as ground truth, keyed by the
node's sample sequence number, so tests can compare what the gateway stored
with what the sensor really measured.

Closed loop: before each read the node's coils (the dust node's
"spray_relay") are handed to the source as its actuators, so a Modbus master
that switches the spray on changes what the physics produces next.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any, Protocol

from firmware import regmap
from simulator.faults import Fault, SensorFaults

# The register map is untyped MicroPython code; pin the two constants used here.
STATUS_OK: int = regmap.STATUS_OK
STATUS_ABSENT: int = regmap.STATUS_ABSENT
# A saturated main sensor: its group says out_of_range, the second sensor's group (the T/RH/P chip) stays clear.
STATUS_OVER_RANGE: int = regmap.STATUS_OK | regmap.STATUS_SPLIT | regmap.STATUS_RANGE


class TruthSource(Protocol):
    def values(self, t: float) -> dict[str, float]:
        """True physical values at simulated time t (seconds since the epoch), keyed by register name."""
        ...


def no_faults(now_ms: int) -> Sequence[Fault]:
    return ()


class SimulatedSensor:
    """Feeds a node's registers from a truth source and keeps recent ground truth.

    clock_s: the simulated time in epoch seconds, used when epoch_of_ms is not given.
    epoch_of_ms: the epoch time of a node tick (ms); with it a sample is taken at the
        moment the node scheduled it, not when the host got round to it, so the values
        do not depend on how busy the host was.
    faults: the faults acting on this node at a node tick (only sensor faults are applied here).
    sensor_faults: applies them (keeps stuck values between samples).
    lock: serialises physics steps when several bus threads share one site's weather.
    """

    def __init__(
        self,
        kind: int,
        source: TruthSource,
        clock_s: Callable[[], float],
        keep: int = 10_000,
        *,
        epoch_of_ms: Callable[[int], float] | None = None,
        faults: Callable[[int], Sequence[Fault]] = no_faults,
        sensor_faults: SensorFaults | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        self.kind = kind
        self.source = source
        self.clock_s = clock_s
        self.epoch_of_ms = epoch_of_ms
        self.faults = faults
        # Spikes draw from a random stream: the site passes a seeded one per node.
        self.sensor_faults = sensor_faults if sensor_faults is not None else SensorFaults(random.Random(kind))
        self.lock = lock
        self.names = [str(row[0]) for row in regmap.MEASUREMENTS[kind]]
        self.coil_rows: tuple[tuple[Any, ...], ...] = tuple(regmap.coils(kind))
        self.keep = keep
        self.last: dict[str, float] = {}  # true values of the newest sample ({} when nothing was measured)
        self.delivered: dict[str, float] = {}  # what went into the registers (after sensor faults)
        self.last_time = 0.0  # epoch seconds of the newest sample
        self.truth: OrderedDict[int, dict[str, float]] = OrderedDict()
        self.present = True  # False: the sensor does not answer (set directly, or a sensor_missing fault)

    def actuators(self, bank: Any) -> dict[str, bool]:
        return {str(row[0]): bool(bank.coils[row[1]]) for row in self.coil_rows}

    def read(self, bank: Any, now_ms: int) -> int:
        t = self.epoch_of_ms(now_ms) if self.epoch_of_ms is not None else self.clock_s()
        self.last_time = t
        active = self.faults(now_ms)
        if not self.present:
            self.last, self.delivered = {}, {}
            return STATUS_ABSENT
        source_actuators = getattr(self.source, "actuators", None)
        if isinstance(source_actuators, dict) and self.coil_rows:
            source_actuators.update(self.actuators(bank))
        with self.lock if self.lock is not None else nullcontext():
            values = self.source.values(t)
        true = {name: values[name] for name in self.names}
        delivered: dict[str, float] | None = true
        if active:
            delivered = self.sensor_faults.apply(true, active)
        if delivered is None:  # sensor_missing: nothing measured, nothing true to record
            self.last, self.delivered = {}, {}
            return STATUS_ABSENT
        for name in self.names:
            bank.set_input(name, delivered[name])
        self.last, self.delivered = true, delivered
        if active and self.sensor_faults.over_range:
            return STATUS_OVER_RANGE
        return STATUS_OK

    def remember(self, sequence: int) -> None:
        """Record the true values of the newest sample as the truth of sample `sequence`."""
        self.truth[sequence] = self.last
        self.truth.move_to_end(sequence)
        while len(self.truth) > self.keep:
            self.truth.popitem(last=False)
