"""Simulated sensors: the firmware's sensor interface on top of a source of true values.

A firmware sensor is any object with ``read(bank, now_ms) -> status bits``
that stores its measurements in the node's register bank (firmware/node.py).
Here the measurements come from a ``TruthSource`` (the physics models) and
every value handed to the node is remembered as ground truth, keyed by the
node's sample sequence number, so tests can compare what the gateway stored
with what the sensor really produced.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

from firmware import regmap

# The register map is untyped MicroPython code; pin the two constants used here.
STATUS_OK: int = regmap.STATUS_OK
STATUS_ABSENT: int = regmap.STATUS_ABSENT


class TruthSource(Protocol):
    def values(self, t: float) -> dict[str, float]:
        """True physical values at simulated time t (seconds), keyed by register name."""
        ...


class SimulatedSensor:
    """Feeds a node's registers from a truth source and keeps recent ground truth."""

    def __init__(self, kind: int, source: TruthSource, clock_s: Any, keep: int = 10_000) -> None:
        self.kind = kind
        self.source = source
        self.clock_s = clock_s  # callable: simulated time in seconds
        self.names = [row[0] for row in regmap.MEASUREMENTS[kind]]
        self.keep = keep
        self.last: dict[str, float] = {}
        self.truth: OrderedDict[int, dict[str, float]] = OrderedDict()
        self.present = True  # False: the sensor does not answer (a fault)

    def read(self, bank: Any, now_ms: int) -> int:
        if not self.present:
            self.last = {}
            return STATUS_ABSENT
        values = self.source.values(self.clock_s())
        for name in self.names:
            bank.set_input(name, values[name])
        self.last = {name: values[name] for name in self.names}
        return STATUS_OK

    def remember(self, sequence: int) -> None:
        """Record the last values as the truth of sample `sequence`."""
        self.truth[sequence] = self.last
        while len(self.truth) > self.keep:
            self.truth.popitem(last=False)
