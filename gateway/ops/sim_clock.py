"""Following a simulator's clock from another process: `[clock] simulated`.

A gateway run against `sitewatch simulate --speed 200` must live in simulated time: its readings,
windows, alarms and spray timing follow the scenario, not the host's wall clock. In one process a
test hands the gateway the site's clock (tests/integration/support.py); a gateway started as its own
process (`sitewatch run`, killed and restarted) reads the mapping from a small JSON file the
simulator writes when its clock starts:

    {"start_time": 1763596680.0, "monotonic": 81234.5625, "speed": 200.0}

simulated epoch seconds = start_time + speed * (time.monotonic() - monotonic). CLOCK_MONOTONIC is one
clock for every process of a machine, so both sides compute the same simulated instant; the link's
exchange instants (time.monotonic()) map through the same line. The mapping is a straight line: a
simulator whose clock a test gate may hold back (simulator.site.SimClock.gate) cannot be shared.

A development and test aid: a gateway on a site leaves the key empty (the default).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.acquire.timestamps import Clock


class SimClockError(ValueError):
    """A clock file that cannot be followed (missing, unreadable, or not what the simulator writes)."""


@dataclass(frozen=True)
class SimulatedTime:
    """The straight line from time.monotonic() to simulated epoch seconds."""

    start_time: float
    monotonic: float
    speed: float

    def at(self, monotonic: float) -> float:
        """The simulated epoch time of a time.monotonic() instant."""
        return self.start_time + self.speed * (monotonic - self.monotonic)

    def now(self) -> float:
        return self.at(time.monotonic())

    def clock(self) -> Clock:
        """The gateway's clock: wall and monotonic both simulated time, always valid (the simulator knows the time)."""
        return Clock(wall=self.now, mono=self.now, valid=lambda: True)


def parse_clock(data: object, where: str) -> SimulatedTime:
    if not isinstance(data, dict):
        raise SimClockError(f"{where}: expected a JSON object with start_time, monotonic and speed")
    numbers: dict[str, float] = {}
    for key in ("start_time", "monotonic", "speed"):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise SimClockError(f"{where}: {key}: expected a finite number, got {value!r}")
        numbers[key] = float(value)
    if numbers["speed"] <= 0:
        raise SimClockError(f"{where}: speed: {numbers['speed']:g} must be positive")
    return SimulatedTime(numbers["start_time"], numbers["monotonic"], numbers["speed"])


def read_clock(path: Path) -> SimulatedTime:
    """The simulator's clock from its clock file (written by simulator.site.Site.write_clock)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise SimClockError(f"{path}: cannot read the simulator's clock file: {error.strerror or error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SimClockError(f"{path}: not JSON: {error}") from None
    return parse_clock(data, str(path))
