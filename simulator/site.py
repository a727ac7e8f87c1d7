"""A simulated site: a scenario's buses of firmware nodes, fed by its physics, with its faults.

Built from a :class:`simulator.scenario.Scenario` (simulator/scenarios/*.toml):
every scenario node becomes a real firmware :class:`firmware.node.Node` whose
sensor (:class:`simulator.sensors.SimulatedSensor`) reads that node's physics
model through :class:`simulator.physics.EpochSource`. The dust node's coils are
fed back as the model's actuators before each sample, so a master that writes
the spray_relay coil makes PM10 fall (closed loop). RS-485 buses are
pseudo-terminals (:class:`simulator.bus.PtyBus`, a stable link per bus in
link_dir); buses with ``transport = "tcp"`` are Modbus TCP ports
(:class:`simulator.tcp.TcpBus`).

Time: the site keeps a simulated clock that starts at the scenario's start
(plus `skip` seconds, to jump into the middle of a long scenario: the models
are first stepped coarsely through up to WARM_UP of the scenario before that
point, so slow states such as formwork creep or soil moisture have their
history rather than starting at equilibrium) and runs
`speed` times faster than the monotonic clock. The firmware nodes see it in
milliseconds since the site started, so a node's 1000 ms sample interval
takes 1/speed real seconds. The physics and the sensor faults are a function
of the seed and the sample times, and the nodes sample on their own
schedule, so the ground truth of a run does not depend on the host's timing
(as long as the host keeps up, see simulator/bus.py, and as long as no master
switches the spray, whose effect starts when the write arrives). What a
master reads does: the bus runs in real time.

Faults: the scenario's fault plan (and any added at run time through
:attr:`Site.faults`, e.g. by simulator/control.py) apply on the buses and in
the sensors. Ground truth: with `truth` set, every sample is written to a
JSON Lines file (simulator/truth.py): its epoch time, the true values, the
active faults and the node's sample sequence number.

A site can also be built from :class:`BusSpec` lists (tests, benchmarks): the
nodes then get the default conditions (an ordinary spring day) of an ad hoc
scenario that starts now.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from firmware.node import Node
from firmware.rs485 import BAUD_RATES
from simulator.bus import PtyBus, SimBus, SimNode
from simulator.faults import Fault, FaultKind, FaultPlan, NodeId, SensorFaults
from simulator.physics import Conditions, EpochSource, NodeModel, make_params, stream
from simulator.scenario import (
    KIND_CODES,
    SHANGHAI,
    Scenario,
    ScenarioBus,
    ScenarioNode,
    load_builtin,
    load_scenario,
)
from simulator.sensors import SimulatedSensor, TruthSource
from simulator.tcp import TcpBus
from simulator.truth import TruthWriter
from simulator.uart import LineSettings
from simulator.vendor_device import VendorDevice, find_profile, vendor_sim_node

WARM_UP = 6 * 3600.0  # s of history the models get before a skipped-to start
WARM_UP_STEP = 10.0  # s between warm-up steps


@dataclass(frozen=True)
class NodeSpec:
    kind: str
    unit_id: int
    turnaround_ms: float = 2.0
    profile: str = ""  # a vendor device laid out by this profile (simulator/vendor_device.py); "": a sitewatch node
    baud: int | None = None  # the node's own line settings (None: the bus's)
    parity: str | None = None


@dataclass(frozen=True)
class BusSpec:
    name: str
    nodes: tuple[NodeSpec, ...]
    baud: int = 9600
    transport: str = "rtu"  # "rtu" (pty) or "tcp"
    port: int = 0  # tcp: port on 127.0.0.1, 0 for any free one
    parity: str = "N"  # the nodes' parity unless a node has its own


def bus_specs(scenario: Scenario) -> tuple[BusSpec, ...]:
    """The buses and nodes of a scenario, without their physics."""
    return tuple(
        BusSpec(
            bus.name,
            tuple(
                NodeSpec(node.kind, node.unit_id, node.turnaround_ms, node.profile, node.baud, node.parity)
                for node in bus.nodes
            ),
            bus.baud,
            bus.transport,
            bus.port,
            bus.parity,
        )
        for bus in scenario.buses
    )


def adhoc_scenario(buses: Sequence[BusSpec], seed: int = 1, start_time: float | None = None) -> Scenario:
    """A scenario of these buses under the default conditions, starting at start_time (default now), endless."""
    start = datetime.fromtimestamp(time.time() if start_time is None else start_time, SHANGHAI)
    return Scenario(
        name="adhoc",
        description="buses given in code, default conditions",
        seed=seed,
        duration=math.inf,
        start=start,
        conditions=Conditions(),
        buses=tuple(
            ScenarioBus(
                bus.name,
                bus.baud,
                tuple(
                    ScenarioNode(
                        n.kind, n.unit_id, f"{n.kind}-{n.unit_id}", make_params(n.kind, {}), n.turnaround_ms,
                        n.profile, n.baud, n.parity,
                    )
                    for n in bus.nodes
                ),
                bus.transport,
                bus.port,
                bus.parity,
            )
            for bus in buses
        ),
        source="<code>",
    )


def find_scenario(name_or_path: str) -> Scenario:
    """A shipped scenario by name ("typhoon"), or a scenario file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.is_file():
        return load_scenario(path)
    return load_builtin(name_or_path)


def physics_source(kind: int, unit_id: int, seed: int) -> TruthSource:
    """One node's physics under the default conditions, on its own (for nodes built by hand).

    Its time starts at the first value asked for, so any epoch clock will do.
    """
    kind_name = next(name for name, code in KIND_CODES.items() if code == kind)
    scenario = adhoc_scenario((BusSpec("solo", (NodeSpec(kind_name, unit_id),)),), seed)
    return _FirstCallEpoch(scenario.physics().model("solo", unit_id))


class _FirstCallEpoch:
    def __init__(self, model: NodeModel) -> None:
        self._model = model
        self._source: EpochSource | None = None
        self.actuators: dict[str, bool] = {}

    def values(self, t: float) -> dict[str, float]:
        if self._source is None:
            self._source = EpochSource(self._model, t)
        self._source.actuators = self.actuators
        return self._source.values(t)



class SimClock:
    """Simulated time: start_time + speed * (monotonic time since creation), unless held back.

    A gate (``gate``: a function returning the tick, in ms, the clock may not pass, or None) holds
    simulated time back while something that follows it has not caught up: a test harness uses it
    so that a gateway on a busy CPU sees the same samples as on an idle one (tests/integration).
    Held time is not made up afterwards: the clock goes on from where it was held, at its speed, so
    it never jumps and never runs backwards. ``at`` maps past instants through the same history.
    """

    def __init__(self, start_time: float | None = None, speed: float = 1.0) -> None:
        self.start_time = time.time() if start_time is None else start_time
        self.speed = speed
        self._origin = time.monotonic()
        self.gate: Callable[[], int | None] | None = None
        self.held = 0.0  # real seconds the gate held the clock back, in total
        self._lock = threading.Lock()
        # Piecewise-linear history, newest last: (monotonic instant, simulated ms, ms per real second).
        self._segments: list[tuple[float, float, float]] = [(self._origin, 0.0, speed * 1000)]

    def _ms_at(self, monotonic: float) -> float:
        segments = self._segments
        for real, sim, rate in reversed(segments):
            if monotonic >= real:
                return sim + (monotonic - real) * rate
        real, sim, rate = segments[0]
        return sim + (monotonic - real) * rate

    def _now_ms(self) -> float:
        now = time.monotonic()
        gate = self.gate  # once: the owner may take the gate away meanwhile (a run that ends)
        if gate is None:
            return self._ms_at(now)
        with self._lock:
            cap = gate()
            real, sim, rate = self._segments[-1]
            if rate == 0.0:  # held: go on once the gate lets the clock pass
                if cap is None or cap > sim:
                    self.held += now - real
                    self._segments.append((now, sim, self.speed * 1000))
                    del self._segments[:-256]
                return self._ms_at(now)
            free = sim + (now - real) * rate
            if cap is not None and free > cap:
                stop = max(sim, float(cap))
                crossed = real + (stop - sim) / rate  # when the clock reached the gate
                self._segments.append((crossed, stop, 0.0))
                del self._segments[:-256]
                return stop
            return free

    def seconds(self) -> float:
        return self.start_time + self._now_ms() / 1000

    def at(self, monotonic: float) -> float:
        """The simulated epoch time of a time.monotonic() instant (e.g. when a master's request ended)."""
        return self.start_time + self._ms_at(monotonic) / 1000

    def ms(self) -> int:
        return int(self._now_ms())

    def line(self) -> dict[str, float]:
        """The clock as a straight line for another process (gateway/ops/sim_clock.py): simulated epoch
        seconds = start_time + speed * (time.monotonic() - monotonic). Only an ungated clock is one."""
        if self.gate is not None or len(self._segments) != 1:
            raise RuntimeError("a gated clock is not a straight line: another process cannot follow it")
        real, sim, rate = self._segments[0]
        return {"start_time": self.start_time + sim / 1000, "monotonic": real, "speed": rate / 1000}

    def ms_at(self, monotonic: float) -> int:
        """The tick of a time.monotonic() instant (e.g. when a request ended on a simulated line)."""
        with self._lock:
            return int(self._ms_at(monotonic))


def _closed() -> int:
    """A gate that holds simulated time where it is (the clock never passes tick 0)."""
    return 0


class SiteFaults:
    """The run's fault plan, shared by the bus threads, the sensors and the control API.

    Times in the plan are simulated seconds since the scenario start; the nodes
    count ms since the site started, `skip` seconds into the scenario.
    """

    def __init__(self, plan: FaultPlan, skip: float, seed: int) -> None:
        self.plan = plan
        self.skip = skip
        self.seed = seed
        self.lock = threading.Lock()

    def time(self, now_ms: int) -> float:
        return self.skip + now_ms / 1000

    def node(self, bus: str, unit_id: int, now_ms: int) -> tuple[Fault, ...]:
        with self.lock:
            return self.plan.active(NodeId(bus, unit_id), self.time(now_ms))

    def labels(self, bus: str, unit_id: int, now_ms: int) -> list[str]:
        with self.lock:
            return self.plan.labels(NodeId(bus, unit_id), self.time(now_ms))

    def bus_wide(self, bus: str, now_ms: int) -> tuple[Fault, ...]:
        t = self.time(now_ms)
        with self.lock:
            return tuple(f for f in self.plan.faults if f.bus == bus and f.unit_id is None and f.active_at(t))

    def ms(self, t: float) -> float:
        """The node tick of scenario time t (may be infinite)."""
        return (t - self.skip) * 1000

    def reboots(self, bus: str, unit_id: int, now_ms: int) -> tuple[tuple[float, float], ...]:
        """(start, end) in node ticks of the node's reboot faults begun by now_ms."""
        t = self.time(now_ms)
        node = NodeId(bus, unit_id)
        with self.lock:
            return tuple(
                (self.ms(f.start), self.ms(f.end))
                for f in self.plan.faults
                if f.kind == FaultKind.REBOOT and f.applies_to(node) and f.start <= t
            )

    def add(self, fault: Fault) -> Fault:
        with self.lock:
            return self.plan.add(fault)

    def clear(
        self, t: float, *, bus: str | None = None, unit_id: int | None = None, kind: FaultKind | None = None
    ) -> list[Fault]:
        """End the matching faults active at t and drop those not started yet."""
        with self.lock:
            return self.plan.clear(t, bus=bus, unit_id=unit_id, kind=kind, future=True)

    def all(self) -> tuple[Fault, ...]:
        with self.lock:
            return self.plan.faults

    def view(self, bus: str) -> BusFaultView:
        return BusFaultView(self, bus)


class BusFaultView:
    """One bus's view of the site's faults (simulator.bus.BusFaults)."""

    def __init__(self, faults: SiteFaults, bus: str) -> None:
        self.faults = faults
        self.bus = bus
        self.rng = stream(faults.seed, f"link-faults/{bus}")

    def node_faults(self, unit_id: int, now_ms: int) -> tuple[Fault, ...]:
        return self.faults.node(self.bus, unit_id, now_ms)

    def bus_faults(self, now_ms: int) -> tuple[Fault, ...]:
        return self.faults.bus_wide(self.bus, now_ms)

    def reboots(self, unit_id: int, now_ms: int) -> tuple[tuple[float, float], ...]:
        return self.faults.reboots(self.bus, unit_id, now_ms)


@dataclass
class SiteNode:
    bus: str
    spec: NodeSpec
    sim: SimNode
    sensor: SimulatedSensor
    name: str = ""

    @property
    def node(self) -> Node:
        """The firmware node now on the line (a reboot replaces it)."""
        return self.sim.node


class Site:
    """A scenario's buses and nodes, running; start() and stop(), or use it as a context manager.

    buses: a Scenario, or BusSpecs for an ad hoc site under default conditions.
    seed: overrides the scenario's seed (default: the scenario's; 1 for BusSpecs).
    speed: simulated seconds per real second.
    start_time: epoch start of an ad hoc site (default now); a scenario has its own.
    skip: start this many simulated seconds into the scenario.
    truth: a JSON Lines file to write the ground truth of every sample to.
    faults: the fault plan (default: the scenario's).
    lossless: when the host falls behind, take every sample late rather than give up a backlog
        (what tests that count samples need; see simulator/bus.py).
    burst: RS-485 replies are handed over whole when their last byte is due, not paced byte by byte
        (simulator/bus.py): for tests whose master must not see a starved bus thread's pauses.
    held: start with simulated time held (the clock's gate closed at tick 0) until the caller sets
        a gate of its own: a follower that needs the site's paths before it can start (a gateway
        on a busy host takes seconds to) misses nothing meanwhile.
    """

    def __init__(
        self,
        buses: Sequence[BusSpec] | Scenario,
        link_dir: Path,
        seed: int | None = None,
        speed: float = 1.0,
        start_time: float | None = None,
        *,
        skip: float = 0.0,
        truth: Path | str | None = None,
        faults: FaultPlan | None = None,
        lossless: bool = False,
        held: bool = False,
        burst: bool = False,
    ) -> None:
        if speed <= 0 or not math.isfinite(speed):
            raise ValueError(f"speed: {speed!r} must be a positive number")
        if skip < 0 or not math.isfinite(skip):
            raise ValueError(f"skip: {skip!r} must be a number of seconds >= 0")
        # An ad hoc site without a start time follows the wall clock (its simulated epoch is
        # real time at speed 1), so timestamps a gateway derives from its own clock line up.
        self._wall_clock = False
        if isinstance(buses, Scenario):
            scenario = buses if seed is None else replace(buses, seed=seed)
        else:
            scenario = adhoc_scenario(buses, 1 if seed is None else seed, start_time)
            self._wall_clock = start_time is None
        self.scenario = scenario
        self.buses = bus_specs(scenario)
        self.link_dir = Path(link_dir)
        self.seed = scenario.seed
        self.speed = speed
        self.skip = skip
        self.truth_path = Path(truth) if truth is not None else None
        self.clock = SimClock(scenario.start_epoch + skip, speed)
        self.lossless = lossless
        self.held = held
        self.burst = burst
        self.faults = SiteFaults(faults if faults is not None else scenario.fault_plan(), skip, scenario.seed)
        self.nodes: list[SiteNode] = []
        self.running: list[SimBus] = []
        self.paths: dict[str, str] = {}
        self._truth: TruthWriter | None = None
        self._truth_lock = threading.Lock()
        self._physics_lock = threading.Lock()

    # -- time ------------------------------------------------------------------------
    def scenario_time(self) -> float:
        """Simulated seconds since the scenario start."""
        return self.skip + self.clock.ms() / 1000

    def epoch_of_ms(self, now_ms: int) -> float:
        """The simulated epoch time of a node tick."""
        return self.clock.start_time + now_ms / 1000

    def sampled_until(self, bus: str | None = None, unit_id: int | None = None) -> float:
        """Scenario seconds up to which every running node (or the one named) has taken its samples
        (a lossless site that fell behind is later than scenario_time())."""
        due = [
            sim.node.next_sample_ms
            for running in self.running
            for sim in running.nodes
            if sim.booted and not sim.down and bus in (None, running.name) and unit_id in (None, sim.ident)
        ]
        return self.skip + (min(due) if due else self.clock.ms()) / 1000

    @property
    def finished(self) -> bool:
        return self.scenario_time() >= self.scenario.duration

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> dict[str, str]:
        """Start every bus; returns bus name -> what a master opens (a pty path or tcp://host:port)."""
        if self.running:
            raise RuntimeError("the site is already running")
        # The clock starts now: the nodes boot at tick 0, the scenario time is `skip`.
        self.clock = SimClock(None if self._wall_clock else self.scenario.start_epoch + self.skip, self.speed)
        if self.held:
            self.clock.gate = _closed
        if self.truth_path is not None:
            self._truth = TruthWriter(self.truth_path)
        physics = self.scenario.physics()
        try:
            for bus in self.scenario.buses:
                sims = [self._make_node(bus, node, physics.model(bus.name, node.unit_id)) for node in bus.nodes]
                for sim in sims:
                    self._warm_up(sim)
                view = self.faults.view(bus.name)
                running: PtyBus | TcpBus
                if bus.transport == "tcp":
                    running = TcpBus(bus.name, sims, bus.port, self.clock.ms, faults=view, speed=self.speed)
                else:
                    link = self.link_dir / bus.name
                    running = PtyBus(
                        bus.name, sims, bus.baud, link, self.clock.ms, faults=view, speed=self.speed,
                        clock_at=self.clock.ms_at, parity=bus.parity,
                    )
                running.lossless = self.lossless
                if isinstance(running, PtyBus):
                    running.burst = self.burst
                self.paths[bus.name] = running.start()
                self.running.append(running)
        except BaseException:
            self.stop()
            raise
        return dict(self.paths)

    def stop(self) -> None:
        for bus in self.running:
            bus.stop()
        self.running.clear()
        with self._truth_lock:
            if self._truth is not None:
                self._truth.close()
                self._truth = None

    def write_clock(self, path: Path | str) -> None:
        """Write the running clock for a gateway process to follow (its `[clock] simulated` key).

        Written whole or not at all (a temporary file renamed), so a reader never sees half of it.
        """
        target = Path(path)
        partial = target.with_name(target.name + ".partial")
        partial.write_text(json.dumps(self.clock.line()) + "\n")
        partial.replace(target)

    def __enter__(self) -> Site:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- looking things up -----------------------------------------------------------
    def node(self, bus: str, unit_id: int) -> SiteNode:
        for n in self.nodes:
            if n.bus == bus and n.spec.unit_id == unit_id:
                return n
        raise KeyError(f"no node {unit_id} on bus {bus}")

    def bus(self, name: str) -> SimBus:
        for running in self.running:
            if running.name == name:
                return running
        raise KeyError(f"no running bus {name!r}")

    def describe(self) -> list[str]:
        """One line per bus: "name: path (details)"."""
        lines = []
        for spec in self.buses:
            units = ", ".join(
                f"{n.kind} {n.unit_id}"
                + (f" ({n.profile})" if n.profile else "")
                + (f" at {n.baud or spec.baud} 8{n.parity or spec.parity}1" if n.baud or n.parity else "")
                for n in spec.nodes
            )
            link = "Modbus TCP" if spec.transport == "tcp" else f"{spec.baud} baud 8{spec.parity}1"
            lines.append(f"{spec.name}: {self.paths.get(spec.name, '(not started)')} ({link}; {units})")
        return lines

    # -- building --------------------------------------------------------------------
    def _make_node(self, bus: ScenarioBus, spec: ScenarioNode, model: NodeModel) -> SimNode:
        if spec.profile:
            return self._make_device(bus, spec, model)
        kind = spec.kind_code
        source = EpochSource(model, self.scenario.start_epoch)
        sensor = SimulatedSensor(
            kind,
            source,
            self.clock.seconds,
            epoch_of_ms=self.epoch_of_ms,
            faults=_node_faults(self.faults, bus.name, spec.unit_id),
            sensor_faults=SensorFaults(stream(self.seed, f"sensor-faults/{bus.name}/{spec.unit_id}")),
            lock=self._physics_lock,
        )
        node = Node(kind, sensor, 0, unit_id=spec.unit_id)  # boots at tick 0: see SimNode.boot
        sim = SimNode(node, spec.turnaround_ms / 1000, unit_id=spec.unit_id)
        if bus.transport == "rtu":
            sim.line = node_line(bus, spec)
            configure_serial(node, sim.line)
        site_node = SiteNode(
            bus.name, NodeSpec(spec.kind, spec.unit_id, spec.turnaround_ms, baud=spec.baud, parity=spec.parity), sim,
            sensor, spec.name,
        )
        sim.on_sample = self._recorder(site_node)
        self.nodes.append(site_node)
        return sim

    def _make_device(self, bus: ScenarioBus, spec: ScenarioNode, model: NodeModel) -> SimNode:
        """A vendor device (simulator/vendor_device.py) with its kind's physics; truth as for a node."""
        profile = find_profile(spec.profile)
        device = VendorDevice(
            profile, spec.unit_id, _Locked(EpochSource(model, self.scenario.start_epoch), self._physics_lock),
            self.epoch_of_ms, faults=_node_faults(self.faults, bus.name, spec.unit_id),
            sensor_faults=SensorFaults(stream(self.seed, f"sensor-faults/{bus.name}/{spec.unit_id}")),
        )
        sim = vendor_sim_node(device, spec.turnaround_ms / 1000)
        if bus.transport == "rtu":
            sim.line = node_line(bus, spec)
        name, unit = bus.name, spec.unit_id
        site_node = SiteNode(name, NodeSpec(spec.kind, unit, spec.turnaround_ms, spec.profile, spec.baud, spec.parity),
                             sim,
                             SimulatedSensor(spec.kind_code, device.sensor.source, self.clock.seconds), spec.name)

        def on_sample(sim: SimNode, now_ms: int) -> None:
            if self._truth is None:
                return
            labels = self.faults.labels(name, unit, now_ms)
            with self._truth_lock:
                if self._truth is not None:
                    self._truth.record(self.epoch_of_ms(now_ms), name, unit, spec.kind, device.last, labels,
                                       device.seq)

        sim.on_sample = on_sample
        self.nodes.append(site_node)
        return sim

    def _warm_up(self, sim: SimNode) -> None:
        warm_up(sim.node.sensor.source, self.scenario.start_epoch, self.skip)

    def _recorder(self, site_node: SiteNode) -> Callable[[SimNode, int], None]:
        sensor = site_node.sensor
        bus, unit, kind = site_node.bus, site_node.spec.unit_id, site_node.spec.kind

        def on_sample(sim: SimNode, now_ms: int) -> None:
            sequence = int(sim.node.seq)
            sensor.remember(sequence)
            if self._truth is None:
                return
            labels = self.faults.labels(bus, unit, now_ms)
            with self._truth_lock:
                if self._truth is not None:
                    self._truth.record(self.epoch_of_ms(now_ms), bus, unit, kind, sensor.last, labels, sequence)

        return on_sample


def node_line(bus: ScenarioBus, node: ScenarioNode) -> LineSettings:
    """A node's UART settings: its own, else its bus's."""
    return LineSettings(node.baud or bus.baud, node.parity or bus.parity)


def configure_serial(node: Node, line: LineSettings) -> None:
    """Set the node's baud_code and parity holding registers to its line, as flashed (when they can say it)."""
    if line.baud in BAUD_RATES:
        node.bank.set_holding_raw("baud_code", BAUD_RATES.index(line.baud))
    node.bank.set_holding_raw("parity", "NEO".index(line.parity))


class _Locked:
    """A truth source stepped under the site's physics lock (bus threads share one site's weather)."""

    def __init__(self, source: EpochSource, lock: threading.Lock) -> None:
        self.source = source
        self.lock = lock

    def values(self, t: float) -> dict[str, float]:
        with self.lock:
            return self.source.values(t)


def warm_up(source: TruthSource, start_epoch: float, skip: float) -> None:
    """Step a source through up to WARM_UP of the scenario before `skip` (nothing to do without a skip)."""
    t = max(0.0, skip - WARM_UP)
    while t < skip:
        source.values(start_epoch + t)
        t += WARM_UP_STEP


def _node_faults(faults: SiteFaults, bus: str, unit_id: int) -> Callable[[int], tuple[Fault, ...]]:
    def active(now_ms: int) -> tuple[Fault, ...]:
        return faults.node(bus, unit_id, now_ms)

    return active


DEMO_SCENARIO = "demo"
DEMO_SITE = bus_specs(load_builtin(DEMO_SCENARIO))
