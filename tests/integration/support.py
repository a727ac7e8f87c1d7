"""Run a shipped scenario against the real gateway in accelerated simulated time; read what it queued.

The site (simulator.site.Site) runs the scenario's firmware nodes on pseudo-terminals, `speed` times
faster than real time, starting `skip` seconds in. The gateway (gateway.ops.service.Gateway) is the
one ``sitewatch run`` starts: its bus owners poll the pseudo-terminals in real time, its pipeline,
its durable queue. Its clock is the site's simulated clock (wall and monotonic time both), and the
instants its links stamp exchanges with are mapped to that clock (``link_time``), so timestamps,
aggregation windows, alarm events and spray decisions follow simulated time.

What a gateway can read is bounded by the line: about 13 polls a second on a 9600-baud bus, 28 at
19200. A scenario's hours cannot pass in seconds with the nodes' default 1-s samples, so each run
gives its nodes a longer sample interval (holding register ``sample_interval``, as an installer
sets it; it survives a reboot) and tells the gateway so (``limits.sampling.interval_s``, which sizes
the windows' expected sample counts). The gateway polls each node back to back (poll interval 0,
below the 0.1 s a configuration file allows: a test is in a hurry), so that it sees every sample.
A sample it misses waits to be fetched from the node's history until the line has free time,
and a line polled back to back has none for 10 real seconds (gateway/acquire/poller.py), so these
runs need a host that keeps up; a run that needs the history (a silent node, a reboot) polls at
an interval that leaves free time.

Simulated time waits for the gateway (``follow_gateway``): the site's clock may not pass a polled node's
next sample while the gateway has not yet read the present one from a node that answers. On an idle
host the gate never closes (a back-to-back poll reads a sample long before the next one is due); on a
busy one, where the bus threads and the gateway get the CPU late, simulated time slows down instead of
samples going by unread, so a loaded CI machine runs the same scenario, just slower. It never holds
time for a node that is failing (a dead node, a reboot: those are the backfill's to recover), nor for
longer than ``MAX_HOLD`` real seconds for one sample. ``processing.late_s`` is in simulated seconds: at these speeds
a reading can spend many simulated seconds on its way, so the windows of a node wait 30 simulated
minutes (a few real seconds) for it before the clock alone closes them.

Records are read back from the gateway's queue file (every record the pipeline produced, in the
order it was appended), not from the simulator's truth.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import math
import sqlite3
import time
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from gateway.acquire.poller import PollRecord
from gateway.acquire.timestamps import Clock
from gateway.deliver.records import Actuation, Outage, Record, from_json
from gateway.model import Reading
from gateway.ops.config import GatewayConfig, parse_config
from gateway.ops.service import Gateway
from gateway.process.aggregate import Aggregate, is_valid
from gateway.process.alarms import AlarmEvent
from simulator.bus import PtyBus, SimBus
from simulator.faults import Fault, FaultKind
from simulator.scenario import load_builtin
from simulator.site import Site, SiteNode

R = TypeVar("R")


@dataclass(frozen=True)
class Polled:
    """A scenario node the gateway polls, and the sample interval the run gives it (simulated seconds)."""

    bus: str
    unit_id: int
    sample_s: float = 60.0


@dataclass
class Run:
    """What a run left behind: the gateway's queued records, and what the test watched meanwhile."""

    site: Site
    gateway: Gateway
    records: list[Record]
    started: float  # scenario seconds when the gateway started
    ended: float  # scenario seconds when it was told to stop
    watched: list[tuple[float, object]] = field(default_factory=list)  # (scenario seconds, what watch returned)
    traces: dict[str, list[PollRecord]] = field(default_factory=dict)  # bus -> the gateway's polls on it
    buses: dict[str, SimBus] = field(default_factory=dict)  # the simulated buses, by name

    def hearing_delay(self, bus: str) -> float:
        """The longest the simulated nodes of an RS-485 bus took to see a request after the gateway
        sent it, in simulated seconds: nothing on an idle host; on a busy one the bus thread, which
        shares this process, sees requests late, and a node dates its sample age from when it heard.
        A timestamp check adds this to its tolerance. (The gateway's exchanges are stamped in the
        site's time already, link_time; the bus's sightings are mapped the same way.) Each request the bus saw is
        paired with the latest traced request sent before it (so an untraced write or a request
        that never reached the bus can only make the delay look shorter, the check stricter).
        """
        line = self.buses[bus]
        assert isinstance(line, PtyBus)
        seen = [self.site.clock.at(t) for t in line.requests_seen]
        return seen_late(seen, [t.sent for t in self.traces[bus]])

    def of(self, cls: type[R]) -> list[R]:
        return [r for r in self.records if isinstance(r, cls)]

    def readings(self, node: str, channel: str) -> list[Reading]:
        return [r for r in self.of(Reading) if r.node == node and r.channel == channel]

    def aggregates(self, node: str, channel: str) -> list[Aggregate]:
        return [a for a in self.of(Aggregate) if a.node == node and a.channel == channel]

    def alarms(self, alarm: str, node: str | None = None) -> list[AlarmEvent]:
        return [e for e in self.of(AlarmEvent) if e.alarm == alarm and (node is None or e.node == node)]

    def actuations(self, node: str) -> list[Actuation]:
        return [a for a in self.of(Actuation) if a.node == node]

    def outages(self, node: str) -> list[Outage]:
        return [o for o in self.of(Outage) if o.node == node]

    def scenario_seconds(self, epoch: float) -> float:
        return epoch - self.site.scenario.start_epoch


def seen_late(seen: Sequence[float], sent: Sequence[float]) -> float:
    """Longest delay from a request's sending to a bus seeing it (monotonic seconds; 0 if none)."""
    ordered = sorted(sent)
    delays = [s - ordered[i - 1] for s in seen if (i := bisect.bisect_right(ordered, s)) > 0]
    return max([0.0, *delays])


def gateway_toml(site: Site, polled: Sequence[Polled], queue: Path, extra: str, interval_s: float) -> str:
    """A gateway configuration for the polled nodes of a running site (buses as the scenario has them)."""
    lines = [
        "[store]",
        "enabled = false",
        "[queue]",
        f'path = "{queue}"',
        "check_on_open = false",
        "[clock]",
        'require_sync = "never"',
        "[processing]",
        "tick_s = 0.05",
        "late_s = 1800.0",
        "[limits.sampling]",
        f"interval_s = {interval_s}",
        extra,
    ]
    for bus in site.scenario.buses:
        units = [p.unit_id for p in polled if p.bus == bus.name]
        if not units:
            continue
        path = site.paths[bus.name]
        if path.startswith("tcp://"):  # a Wi-Fi bus: Modbus TCP
            host, port = path.removeprefix("tcp://").rsplit(":", 1)
            link = ['transport = "tcp"', f'host = "{host}"', f"port = {port}"]
        else:
            link = [f'port = "{path}"', f"baud = {bus.baud}"]
        lines += ["[[bus]]", f'name = "{bus.name}"', *link, f"timeout = {REPLY_TIMEOUT}"]
        for node in bus.nodes:
            if node.unit_id in units:
                lines += ["[[bus.node]]", f'name = "{node.name}"', f'kind = "{node.kind}"', f"unit_id = {node.unit_id}"]
    return "\n".join(lines) + "\n"


# The simulated nodes share this process (and its GIL) with the gateway: on a busy host a reply can
# start late. A generous ceiling costs nothing when replies are prompt and keeps a late one from
# colliding with the next request.
REPLY_TIMEOUT = 1.0
# Real seconds the clock waits for the gateway to read one sample of one node. A reply a starved bus thread held
# past REPLY_TIMEOUT costs a second or more per try; at 3 s, a host at load 8-10 gave up on sample after sample
# of the typhoon's 1200x decay, whose 2-min windows (two samples) then closed invalid and no wind alarm could clear.
MAX_HOLD = 10.0


# Faults that make the gateway's polls of a node fail by design: the backfill's to recover, not the clock's to wait for.
LINK_FAULTS = frozenset(
    {FaultKind.NO_REPLY, FaultKind.LATE_REPLY, FaultKind.CRC_CORRUPTION, FaultKind.GARBAGE, FaultKind.BUS_UNPLUGGED}
)


def follow_gateway(site: Site, gateway: Gateway) -> Callable[[], int | None]:
    """The site clock's gate: the tick it may not pass until the gateway has read what the nodes sampled.

    It never lets the clock pass a polled node's next sample before the node has taken it (a
    lossless bus thread kept off the CPU samples late). It holds for a node that answers, however
    the gateway's polls of it went: a poll that failed
    without a fault on the line failed because the host is busy (the simulated node shares this
    process with the gateway, so a starved bus thread answers late), which no real node would do.
    It holds without a time limit until the node has answered the gateway at all (a gateway that
    starts slowly on a busy host, or whose first polls time out there, would otherwise miss the first
    samples), and then for MAX_HOLD
    real seconds per sample at most. It lets go of a node that a fault keeps from answering
    (failing twice in a row with a link fault active) or that is down.
    """
    by_name = {n.name: n for n in site.nodes}
    watched = [
        (health, by_name[name])
        for poller in gateway.pollers
        for name, health in poller.health.items()
        if name in by_name
    ]
    holding_since: dict[int, float] = {}  # id(health) -> when it began to hold the clock for its current sample

    def faulty(node: SiteNode, tick: int) -> bool:
        return any(f.kind in LINK_FAULTS for f in site.faults.node(node.bus, node.spec.unit_id, tick))

    def gate() -> int | None:
        cap: int | None = None
        now = time.monotonic()
        for health, node in watched:
            key = id(health)
            sim = node.sim
            if not sim.booted or sim.down:
                holding_since.pop(key, None)
                continue
            unread = health.last_sequence < sim.node.seq
            tick = int(sim.node.next_sample_ms) - 1
            if not unread or (health.consecutive_failures >= 2 and faulty(node, tick)):
                holding_since.pop(key, None)
                # Up to its next sample, not past it before the node has taken it: a bus thread that a
                # busy host keeps off the CPU samples late (lossless), and the run must not end, nor
                # the gateway poll, ahead of what the node has sampled.
                cap = tick + 1 if cap is None else min(cap, tick + 1)
                continue
            if health.answered:  # not polls: a first poll a busy host's starved bus thread let time out holds on
                since = holding_since.setdefault(key, now)
                if now - since > MAX_HOLD:
                    continue  # the gateway will not read this one live: let the backfill have it
            cap = tick if cap is None else min(cap, tick)
        return cap

    return gate


def poll_every(config: GatewayConfig, interval: float, max_backoff: float = 0.3) -> GatewayConfig:
    """The configuration with every node polled every `interval` real seconds (0: back to back).

    max_backoff (real seconds, below the 1 s a configuration file allows): how long a failing node
    is left alone at most (at these speeds a real second is many simulated minutes).
    """
    buses = tuple(
        dataclasses.replace(
            bus, max_backoff=max_backoff, nodes=tuple(dataclasses.replace(n, interval=interval) for n in bus.nodes)
        )
        for bus in config.buses
    )
    return dataclasses.replace(config, buses=buses)


class QueueReader:
    """Reads the records the gateway appends to its queue file, in order, each once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_id = 0
        self.records: list[Record] = []

    def read(self) -> list[Record]:
        """Everything appended so far."""
        if not self.path.exists():
            return self.records
        db = sqlite3.connect(self.path)
        try:
            rows = db.execute("SELECT id, kind, body FROM records WHERE id > ? ORDER BY id", (self.last_id,)).fetchall()
        finally:
            db.close()
        if rows:
            self.last_id = int(rows[-1][0])
            self.records.extend(from_json(kind, body) for _, kind, body in rows)
        return self.records


async def run_scenario(
    tmp_path: Path,
    scenario: str,
    *,
    skip: float,
    until: float,
    speed: float,
    polled: Sequence[Polled],
    extra: str = "",
    stop_when: Callable[[Run], bool] | None = None,
    done: Callable[[Run], bool] | None = None,
    watch: Callable[[Site], object] | None = None,
    truth: Path | None = None,
    poll_interval: float = 0.0,
    real_limit: float = 300.0,
    faults: Sequence[Fault] = (),
) -> Run:
    """Run `scenario` from `skip` to `until` (scenario seconds) at `speed` with the gateway polling `polled`.

    extra: more gateway configuration (TOML), e.g. limit overrides. stop_when: checked on the
    records queued so far, stops the run early. done: checked the same way once `until` is reached,
    runs on (scenario time too) until it holds: what a test needs delivered, however busy the host
    (real_limit is the ceiling). watch: called every 20 ms of real time, its
    results are kept with their scenario time (e.g. the state of a node's coil). poll_interval:
    real seconds between polls of a node (0: back to back). faults: added to the scenario's own fault
    plan before the gateway starts (times in scenario seconds).
    """
    intervals = {p.sample_s for p in polled}
    assert len(intervals) == 1 or "interval_s" in extra, "nodes of different sample intervals: set limits per node"
    # Lossless: a bus thread that falls behind takes every sample late, never gives up a backlog. Held:
    # simulated time waits from the start until the gateway is built and follows it (follow_gateway). Burst:
    # a reply is never cut in two by a bus thread kept off the CPU (simulator/bus.py).
    site = Site(
        load_builtin(scenario), tmp_path / "buses", speed=speed, skip=skip, truth=truth, lossless=True, held=True,
        burst=True,
    )
    queue = tmp_path / "queue.sqlite3"
    for fault in faults:
        site.faults.add(fault)
    with site:
        # Nodes nobody polls sample as slowly as the slowest polled one: less work for the host.
        slowest = max(p.sample_s for p in polled)
        for n in site.nodes:
            sample_s = next((p.sample_s for p in polled if (p.bus, p.unit_id) == (n.bus, n.spec.unit_id)), slowest)
            n.node.bank.set_holding_raw("sample_interval", round(sample_s * 1000))
            if n.node.seq:
                # Booted already (the clock is held at its start): as if booted with this interval,
                # the next sample one interval after the boot's, not the default 1 s after it.
                n.node.next_sample_ms = n.node.sample_ms + round(sample_s * 1000)
        text = gateway_toml(site, polled, queue, extra, min(intervals))
        config = poll_every(parse_config(tomllib.loads(text), "integration.toml"), poll_interval)
        clock = Clock(wall=site.clock.seconds, mono=site.clock.seconds, valid=lambda: True)
        # Site.start() made the clock the gateway must follow: look it up now, not before.
        gateway = Gateway(config, clock=clock, link_time=site.clock.at)
        site.clock.gate = follow_gateway(site, gateway)
        stop = asyncio.Event()
        started = site.scenario_time()
        run = Run(site, gateway, [], started, started, buses={b.name: b for b in site.running})
        for poller in gateway.pollers:
            poller.trace = run.traces.setdefault(poller.bus.name, []).append
        reader = QueueReader(queue)
        task = asyncio.create_task(gateway.run(stop))
        deadline = time.monotonic() + real_limit
        next_check = 0.0
        try:
            while (now := site.scenario_time()) < until or done is not None:
                assert time.monotonic() < deadline, f"the run took longer than {real_limit} s of real time"
                assert not task.done(), task
                if watch is not None:
                    run.watched.append((now, watch(site)))
                check = stop_when if now < until else done
                if check is not None and time.monotonic() >= next_check:
                    # New records only, and not too often: the host's time belongs to the site and the gateway.
                    next_check = time.monotonic() + 0.1
                    run.records = reader.read()
                    if check(run):
                        break
                await asyncio.sleep(0.02)
        finally:
            run.ended = site.scenario_time()
            stop.set()
            await asyncio.wait_for(task, 30)
            site.clock.gate = None
    run.records = reader.read()
    return run


def local_clock(site: Site, epoch: float) -> str:
    """HH:MM:SS of an epoch time in the scenario's local time."""
    return site.scenario.local_time(epoch - site.scenario.start_epoch).strftime("%H:%M:%S")


def leq(levels: Iterable[float]) -> float:
    values = list(levels)
    return 10.0 * math.log10(math.fsum(10.0 ** (v / 10.0) for v in values) / len(values))


def circular_mean(degrees: Sequence[float]) -> float:
    east = math.fsum(math.sin(math.radians(d)) for d in degrees)
    north = math.fsum(math.cos(math.radians(d)) for d in degrees)
    return math.degrees(math.atan2(east, north)) % 360.0


# ---------------------------------------------------------------------------
# An independent replay of a one-level alarm with hysteresis (domain.md section 4).
# ---------------------------------------------------------------------------

Event = tuple[str, float, float]  # ("raised" or "cleared", time, value)


def hysteresis_events(
    values: Iterable[tuple[float, float | None]],
    limit: float | Callable[[float], float],
    margin: float,
    hold_s: float,
    inclusive: bool = True,
) -> list[Event]:
    """The events an alarm must give for these (time, value) in the order they came (None: not usable).

    Raise at the first value at the limit (or above it, with inclusive False); once raised, clear
    at the first value that ends a run of values below limit - margin lasting hold_s. A value
    inside the band, or one that cannot be used, starts the run again. The limit may depend on
    the value's time (the noise limit by day and by night). The rule as gateway/process/alarms.py
    states it, written again here without its code.
    """
    out: list[Event] = []
    raised = False
    below_since: float | None = None
    for t, v in values:
        if v is None:
            below_since = None
            continue
        level = limit(t) if callable(limit) else limit
        if not raised:
            if v >= level if inclusive else v > level:
                raised = True
                below_since = None
                out.append(("raised", t, v))
            continue
        if v >= level - margin:
            below_since = None
            continue
        if below_since is None:
            below_since = t
        if t - below_since >= hold_s:
            raised = False
            below_since = None
            out.append(("cleared", t, v))
    return out


def usable(reading: Reading) -> float | None:
    """A reading's value as an alarm may use it: flag N or T (over range) and a finite value, else None."""
    return reading.value if is_valid(reading) else None


def events_of(events: Iterable[AlarmEvent]) -> list[Event]:
    return [(e.state.value, e.time, e.value) for e in events]
