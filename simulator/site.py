"""A simulated site: buses of firmware nodes on pseudo-terminals, driven by truth sources.

Time: the site keeps a simulated clock that runs `speed` times faster than
the monotonic clock, starting at `start_time` (seconds since the epoch).
The firmware nodes see the simulated clock in milliseconds, so a node's
1000 ms sample interval takes 1/speed real seconds.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from firmware import regmap
from firmware.node import Node
from simulator.bus import PtyBus, SimNode
from simulator.sensors import SimulatedSensor, TruthSource

KIND_BY_NAME = {name: kind for kind, name in regmap.KIND_NAMES.items()}


@dataclass(frozen=True)
class NodeSpec:
    kind: str
    unit_id: int
    turnaround_ms: float = 2.0


@dataclass(frozen=True)
class BusSpec:
    name: str
    nodes: tuple[NodeSpec, ...]
    baud: int = 9600


class SimClock:
    """Simulated time: start_time + speed * (monotonic time since creation)."""

    def __init__(self, start_time: float | None = None, speed: float = 1.0) -> None:
        self.start_time = time.time() if start_time is None else start_time
        self.speed = speed
        self._origin = time.monotonic()

    def seconds(self) -> float:
        return self.start_time + (time.monotonic() - self._origin) * self.speed

    def ms(self) -> int:
        return int((time.monotonic() - self._origin) * self.speed * 1000)


class SmoothSource:
    """A simple seeded source: each value wanders smoothly around a typical level.

    Good enough for wire and pipeline tests where the physics does not matter;
    the scenario physics (simulator/physics.py) replaces it for realistic runs.
    """

    TYPICAL: ClassVar[dict[str, tuple[float, float]]] = {  # name: (level, amplitude)
        "pm25": (35.0, 15.0),
        "pm10": (80.0, 40.0),
        "pm1": (20.0, 8.0),
        "temperature": (24.0, 4.0),
        "humidity": (70.0, 15.0),
        "pressure": (100.8, 0.4),
        "laeq_1s": (62.0, 8.0),
        "lamax_1s": (68.0, 8.0),
        "lamin_1s": (55.0, 6.0),
        "pitch": (0.0, 150.0),
        "roll": (0.0, 150.0),
        "slope_x": (0.0, 2.6),
        "slope_y": (0.0, 2.6),
        "wind_speed": (4.0, 2.5),
        "wind_dir": (180.0, 170.0),
        "wind_gust_3s": (6.0, 3.0),
    }

    def __init__(self, kind: int, seed: int) -> None:
        rng = random.Random(seed)
        self.names = [row[0] for row in regmap.MEASUREMENTS[kind]]
        self.phase = {name: rng.uniform(0, 2 * math.pi) for name in self.names}
        self.period = {name: rng.uniform(60, 600) for name in self.names}

    def values(self, t: float) -> dict[str, float]:
        out = {}
        for name in self.names:
            level, amplitude = self.TYPICAL[name]
            out[name] = level + amplitude * math.sin(2 * math.pi * t / self.period[name] + self.phase[name])
        return out


SourceFactory = Callable[[int, int, int], TruthSource]  # (kind, unit_id, seed) -> source


def smooth_sources(kind: int, unit_id: int, seed: int) -> TruthSource:
    return SmoothSource(kind, seed * 1000 + unit_id)


@dataclass
class SiteNode:
    bus: str
    spec: NodeSpec
    node: Node
    sensor: SimulatedSensor


@dataclass
class Site:
    buses: tuple[BusSpec, ...]
    link_dir: Path
    seed: int = 1
    speed: float = 1.0
    start_time: float | None = None
    source_factory: SourceFactory = smooth_sources
    clock: SimClock = field(init=False)
    nodes: list[SiteNode] = field(init=False, default_factory=list)
    running: list[PtyBus] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.clock = SimClock(self.start_time, self.speed)

    def start(self) -> dict[str, str]:
        """Start every bus; returns bus name -> the path a master opens."""
        paths = {}
        for bus_spec in self.buses:
            sims = []
            for spec in bus_spec.nodes:
                kind = KIND_BY_NAME[spec.kind]
                source = self.source_factory(kind, spec.unit_id, self.seed)
                sensor = SimulatedSensor(kind, source, self.clock.seconds)
                node = Node(kind, sensor, self.clock.ms(), unit_id=spec.unit_id)
                self.nodes.append(SiteNode(bus_spec.name, spec, node, sensor))
                sims.append(SimNode(node, spec.turnaround_ms / 1000, on_sample=_remember_truth(sensor)))
            bus = PtyBus(bus_spec.name, sims, bus_spec.baud, self.link_dir / bus_spec.name, self.clock.ms)
            paths[bus_spec.name] = bus.start()
            self.running.append(bus)
        return paths

    def stop(self) -> None:
        for bus in self.running:
            bus.stop()
        self.running.clear()

    def node(self, bus: str, unit_id: int) -> SiteNode:
        for n in self.nodes:
            if n.bus == bus and n.spec.unit_id == unit_id:
                return n
        raise KeyError(f"no node {unit_id} on bus {bus}")

    def __enter__(self) -> Site:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _remember_truth(sensor: SimulatedSensor) -> Callable[[SimNode, int], None]:
    def on_sample(sim: SimNode, now_ms: int) -> None:
        sensor.remember(sim.node.seq)

    return on_sample


DEMO_SITE = (
    BusSpec(
        "bus0",
        (NodeSpec("dust", 1), NodeSpec("wind", 2), NodeSpec("noise", 3), NodeSpec("tilt", 4)),
        baud=9600,
    ),
)
