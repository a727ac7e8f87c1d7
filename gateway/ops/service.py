"""The running gateway: bus owners -> pipeline -> durable queue -> sinks, and the spray coils.

Tasks, all on one event loop:

* one ``BusPoller`` per bus (gateway/acquire): its readings go through the
  pipeline (gateway/pipeline.py) in the poller's own task, a burst of polls
  together (at most ``processing.batch_ms`` after the first of them);
* the writer (gateway/deliver/writer.py): appends what the pipeline produced
  to the durable queue at most ``queue.commit_interval_ms`` after it came
  (group commit; alarm events at once), in a worker thread (an fsync on an SD card
  must not stall the bus owners, which time replies on this loop), and wakes
  the sinks; readings held for a valid clock are kept in the queue too;
* one delivery per sink (gateway/deliver/dispatch.py);
* the ticker: every ``processing.tick_s``, the time-driven work (windows a
  silent node leaves open, the spray's minimum on-time, coil write retries);
* the pruner: the queue's retention;
* the health reports (gateway/ops/health_task.py): every ``[health] interval_s``
  the gateway's, its sinks' and its nodes' health, queued like any record.

Starting: before the first reading is processed (at the first moment the
clock is valid), the aggregation windows open or still revisable are rebuilt
from the readings in the durable queue (``Pipeline.restore``,
gateway/deliver/replay.py), so a restart, even ``kill -9``, loses no window
and emits none twice (docs/revisions.md). The pruner keeps at least what
that replay needs (the longest window plus the revision horizon).

Spray commands are written to the coil of their node through the bus owner
of that node's bus (``BusPoller.execute``: one owner per bus), and each one
is queued as an ``Actuation`` with its reason and the write's result. A
failed write is retried every ``spray.retry_s`` until it succeeds or a newer
command replaces it; a retry is queued when its result differs from the
previous attempt's (so a node that stays offline is one record, not one per
retry). ``Gateway.set_spray_mode`` is the manual override.

The spray cannot stop silently. The node's relay holds "on" as a lease of
its max_on_s (firmware/relay.py): every ``spray.refresh_s`` (well within it)
the actuator reads the coil back (FC 01), rewrites the state it wants
(renewing the lease) and reads it back again; every write is read back too.
A coil that does not read as wanted (the node restarted, its relay ran out
its lease, someone else wrote it) is queued as an ``Actuation`` with the
result "readback mismatch: ..." and shows in ``Gateway.status()["coil_faults"]``
until a write and its readback agree again.

Stopping (``stop`` set, e.g. by SIGTERM): the pollers finish their
transaction and stop, outages still open are closed, whatever the pipeline
produced is written to the queue, and every sink gets ``queue.flush_timeout_s``
to deliver what is pending; a sink that is down keeps its cursor for the
next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from firmware import regmap
from gateway.acquire.decode import KIND_BY_NAME
from gateway.acquire.link import Exchange, Link, LinkStats, NoReply
from gateway.acquire.outages import NodeOutage
from gateway.acquire.poller import BusPoller, NodeConfig, _make_link
from gateway.acquire.timestamps import Clock, ClockValidity
from gateway.deliver.commit_log import CommitLog
from gateway.deliver.dispatch import Delivery
from gateway.deliver.notify import build_notifiers
from gateway.deliver.queue import DurableQueue, Held
from gateway.deliver.records import GATEWAY_NODE, Actuation, Outage, Record
from gateway.deliver.replay import REPLAY_LEAD_S, QueueReplay
from gateway.deliver.sinks import SINKS, Sink, lanes_of, load_builtin_sinks
from gateway.deliver.sqlite_store import SqliteSink, SqliteStore
from gateway.deliver.worker_thread import WorkerThread
from gateway.deliver.writer import QueueWriter
from gateway.model import Gap, Reading
from gateway.ops.config import GatewayConfig
from gateway.ops.health_task import HealthTask
from gateway.ops.logs import alarm_line
from gateway.ops.node_settings import NodeSettings
from gateway.ops.sim_clock import read_clock
from gateway.pause import pause
from gateway.process.alarms import AlarmEvent, Severity
from gateway.process.siren import Siren, SirenRule
from gateway.process.spray import SprayCommand, SprayMode
from gateway.protocols import modbus_rtu_master as rtu

log = logging.getLogger(__name__)

T = TypeVar("T")

# The gateway counts as having been down when nothing was queued for this long before it started.
DOWN_AFTER_S = 60.0


class RetimedLink:
    """A link that maps the instants it stamps exchanges with onto the gateway clock.

    link_time maps the time.monotonic() instants the link stamps an exchange
    with to the gateway clock's ``mono`` time, for a clock that does not run at
    the rate of time.monotonic (the simulator's accelerated time). The poller
    times a sample at the moment the node handled the request (the request's
    end plus the line's silence) minus the sample's age, which the node counts
    in its own clock; both must be in one time for the timestamps (and the
    backfill's order checks) to be right. That moment is mapped exactly; the
    durations around it (the reply time that drives the adaptive timeouts)
    stay real seconds, as the bus runs in real time.

    (It used to note each polled sample's status word for the pipeline too;
    the status now travels in the decoded sample, per channel.)
    """

    def __init__(self, link: Link, link_time: Callable[[float], float]) -> None:
        self._link = link
        self._time = link_time
        self.name: str = link.name
        self.stats: LinkStats = link.stats

    @property
    def is_open(self) -> bool:
        return self._link.is_open

    async def open(self) -> None:
        await self._link.open()

    def close(self) -> None:
        self._link.close()

    def gap(self) -> float:
        return self._link.gap()

    def request_time(self, n_bytes: int) -> float:
        return self._link.request_time(n_bytes)

    async def transact(self, request: rtu.Request, timeout: float) -> Exchange:
        return self._retime(await self._link.transact(request, timeout))

    def _retime(self, exchange: Exchange) -> Exchange:
        gap = self._link.gap()
        end = self._time(exchange.request_end + gap) - gap
        return Exchange(
            exchange.outcome, end - (exchange.request_end - exchange.sent), end, end + exchange.response_time
        )


def write_result(exchange: Exchange, on: bool) -> str:
    """"ok", or what went wrong with a coil write."""
    outcome = exchange.outcome
    if isinstance(outcome, rtu.WriteAck):
        return "ok" if outcome.value == (0xFF00 if on else 0) else f"acknowledged the wrong value {outcome.value:#06x}"
    if isinstance(outcome, rtu.ExceptionReply):
        return f"exception {outcome.code} ({outcome.name})"
    if isinstance(outcome, NoReply):
        return f"{outcome.reason}: {outcome.detail}"
    if isinstance(outcome, rtu.FrameError):
        return f"{outcome.problem}: {outcome.detail}"
    return f"unexpected reply {outcome!r}"


@dataclass
class _Coil:
    poller: BusPoller
    unit: int
    address: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    command: SprayCommand | None = None  # the newest command: the state the coil should have
    confirmed: bool = True
    attempt: int = 0
    last_result: str = ""
    retry_at: float = 0.0
    refresh_at: float = 0.0  # the next readback and rewrite of a confirmed command
    fault: str = ""  # why the coil is not known to be as wanted ("" when it is)


class CoilActuator:
    """Writes spray commands to coils through the bus owners, queues each outcome, retries failures."""

    def __init__(
        self,
        owners: Mapping[str, tuple[BusPoller, NodeConfig]],
        accept: Callable[[list[Record]], None],
        wall: Callable[[], float],
        retry_s: float = 10.0,
        refresh_s: float = 300.0,
    ) -> None:
        self._owners = dict(owners)
        self._accept = accept
        self._wall = wall
        self.retry_s = retry_s
        self.refresh_s = refresh_s
        self._coils: dict[tuple[str, str], _Coil] = {}
        self._tasks: set[asyncio.Task[Actuation]] = set()
        self.running = True

    def coil_of(self, node: str, coil: str = "spray_relay") -> _Coil | str:
        """The coil a command for `node` would write, or why there is none."""
        return self._coil(node, coil)

    def _coil(self, node: str, coil: str) -> _Coil | str:
        key = (node, coil)
        found = self._coils.get(key)
        if found is not None:
            return found
        owner = self._owners.get(node)
        if owner is None:
            return f"no bus owns node {node!r}"
        poller, config = owner
        if config.profile is not None:
            return f"node {node!r} is a vendor device ({config.profile.name}): the gateway writes none of its coils"
        rows = regmap.coils(KIND_BY_NAME[config.kind])
        address = next((row[1] for row in rows if row[0] == coil), None)
        if address is None:
            return f"node {node!r} ({config.kind}) has no coil {coil!r}"
        found = self._coils[key] = _Coil(poller, config.unit_id, address)
        return found

    def submit(self, command: SprayCommand) -> asyncio.Task[Actuation]:
        task = asyncio.get_running_loop().create_task(self.apply(command))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def apply(self, command: SprayCommand) -> Actuation:
        """Write a command to its coil now; queue and return the outcome."""
        coil = self._coil(command.node, command.coil)
        if isinstance(coil, str):
            return self._record(Actuation.of(command, coil, 1, self._wall()))
        async with coil.lock:
            coil.command, coil.attempt = command, 1
            result = await self._write(coil, command.on)
            self._written(coil, result)
            coil.last_result = result
            return self._record(Actuation.of(command, result, 1, self._wall()))

    async def _write(self, coil: _Coil, on: bool) -> str:
        """Write the coil and read it back: "ok", or what went wrong."""
        if not self.running:
            return "not written: the gateway is stopping"
        exchange = await self._transact(coil, rtu.write_coil(coil.unit, coil.address, on))
        if exchange is None:
            return "not written: the bus owner did not serve the request"
        result = write_result(exchange, on)
        if result != "ok":
            return result
        return await self._check(coil, on)

    async def _check(self, coil: _Coil, on: bool) -> str:
        """Read the coil back (FC 01): "ok" when it is as wanted."""
        exchange = await self._transact(coil, rtu.read_bits(coil.unit, rtu.READ_COILS, coil.address, 1))
        if exchange is None:
            return "not read back: the bus owner did not serve the request"
        outcome = exchange.outcome
        if isinstance(outcome, rtu.Bits) and outcome.values:
            if outcome.values[0] == on:
                return "ok"
            found, wanted = ("on" if outcome.values[0] else "off"), ("on" if on else "off")
            return f"readback mismatch: the coil reads {found}, wanted {wanted}"
        return "readback failed: " + write_result(exchange, on)

    async def _transact(self, coil: _Coil, request: rtu.Request) -> Exchange | None:
        # The owner answers within its timeout once the request is served; the
        # bound only guards against an owner that stopped meanwhile.
        try:
            return await asyncio.wait_for(coil.poller.execute(request), coil.poller.bus.timeout + 30.0)
        except TimeoutError:
            return None

    def _written(self, coil: _Coil, result: str) -> None:
        now = self._wall()
        coil.confirmed = result == "ok"
        coil.fault = "" if coil.confirmed else result
        coil.retry_at = now + self.retry_s
        coil.refresh_at = now + self.refresh_s

    def faults(self) -> dict[str, str]:
        """"node.coil" -> why the coil is not known to be as the gateway wants it (a health fault)."""
        return {f"{node}.{name}": coil.fault for (node, name), coil in sorted(self._coils.items()) if coil.fault}

    def _record(self, actuation: Actuation) -> Actuation:
        level = logging.INFO if actuation.ok else logging.WARNING
        log.log(level, "spray %s %s.%s (%s, attempt %d): %s [%s]", "on" if actuation.on else "off", actuation.node,
                actuation.coil, actuation.mode, actuation.attempt, actuation.result, actuation.reason)
        self._accept([actuation])
        return actuation

    def retry_due(self, now: float) -> None:
        """Start a retry of every coil whose last write failed and whose retry time has come."""
        for coil in self._coils.values():
            if coil.command is None or coil.confirmed or coil.lock.locked() or now < coil.retry_at:
                continue
            task = asyncio.get_running_loop().create_task(self._retry(coil, coil.command))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _retry(self, coil: _Coil, command: SprayCommand) -> Actuation:
        async with coil.lock:
            if coil.command is not command or coil.confirmed:
                return Actuation.of(command, "superseded", coil.attempt, self._wall())
            coil.attempt += 1
            result = await self._write(coil, command.on)
            self._written(coil, result)
            actuation = Actuation.of(command, result, coil.attempt, self._wall())
            if result != coil.last_result:
                self._record(actuation)
            coil.last_result = result
            return actuation

    def refresh_due(self, now: float) -> None:
        """Read back and rewrite every confirmed coil whose refresh time has come (see the module docstring)."""
        for coil in self._coils.values():
            if coil.command is None or not coil.confirmed or coil.lock.locked() or now < coil.refresh_at:
                continue
            task = asyncio.get_running_loop().create_task(self._refresh(coil, coil.command))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _refresh(self, coil: _Coil, command: SprayCommand) -> Actuation:
        async with coil.lock:
            if coil.command is not command or not coil.confirmed or not self.running:
                return Actuation.of(command, "superseded", coil.attempt, self._wall())
            found = await self._check(coil, command.on)
            if found != "ok":
                # What the node did on its own (restarted, ran out its lease) or a failed read: said once.
                coil.fault = found
                self._record(Actuation.of(command, found, coil.attempt, self._wall()))
            result = await self._write(coil, command.on)  # renews the relay's lease
            self._written(coil, result)
            actuation = Actuation.of(command, result, coil.attempt, self._wall())
            if result != "ok" or found != "ok":
                self._record(actuation)  # the failure, or that the coil is as wanted again
            coil.last_result = result
            return actuation

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for writes in flight (at shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        on_readings: Callable[[list[Reading]], None] | None = None,
        clock: Clock | None = None,
        link_time: Callable[[float], float] | None = None,
    ) -> None:
        """clock: wall, monotonic and validity (default: the machine's). link_time: see RetimedLink; with a
        simulated clock (wall and mono both the simulated time), the simulator's mapping of
        time.monotonic() to it, so that samples, windows and events follow simulated time."""
        self.config = config
        self.on_readings = on_readings
        load_builtin_sinks()
        require = {"auto": None, "always": True, "never": False}[config.clock.require_sync]
        if clock is None and config.clock.simulated:  # a gateway process against a simulated site
            simulated = read_clock(Path(config.clock.simulated))
            clock, link_time = simulated.clock(), link_time or simulated.at
        self.clock = clock or Clock(valid=ClockValidity(require_sync=require))
        self.pipeline = config.build_pipeline()
        specs = config.all_sinks()
        self.sinks: list[Sink] = [SINKS.create(spec.type, spec.name, spec.params) for spec in specs]
        self.sinks += build_notifiers(config.notify, config.site.name)  # alarm notifications ([notify])
        self.queue = DurableQueue(
            config.queue_path,
            [lane.cursor for sink in self.sinks for lane in lanes_of(sink)],
            memory_limit=config.queue.memory_limit,
            check_on_open=config.queue.check_on_open,
            wall=self.clock.wall,
            max_bytes=config.queue.max_bytes,
        )
        self._last_queued = self.queue.last_added()
        self._queue_closed = False  # set under the lock when run() closes it (see with_queue)
        # The writer's commits and the deliveries' queue calls run in one long-lived thread (worker_thread.py:
        # cheaper per trip than asyncio.to_thread, a fixed cost paid several times a second, issue 13).
        self.queue_thread = WorkerThread("queue")
        q = config.queue
        # The writer's last commits with their ids: a delivery that has caught up takes what followed from here,
        # not in a trip to the queue's thread (one trip a second less per lane, issue 13, sixth round).
        self.commits = CommitLog()
        self.deliveries = [
            Delivery(self.queue, sink, batch=q.batch, interval=q.deliver_interval_s, max_backoff=q.max_backoff_s,
                     wall=self.clock.wall, lane=lane, thread=self.queue_thread,
                     commits=self.commits)
            for sink in self.sinks
            for lane in lanes_of(sink)
        ]
        self.writer = QueueWriter(self.queue, config.queue.commit_interval_ms / 1000.0, self._wake_sinks,
                                  thread=self.queue_thread, log=self.commits)
        self.pollers: list[BusPoller] = []
        owners: dict[str, tuple[BusPoller, NodeConfig]] = {}
        # Where each node's data stopped before this start: the pollers backfill
        # from there out of the nodes' history rings, so a restart loses nothing.
        self.resume_points = {
            node.name: self.queue.latest_sequence(node.name) for bus in config.buses for node in bus.nodes
        }
        for bus in config.buses:
            raw_link = _make_link(bus)
            link: Link = raw_link if link_time is None else RetimedLink(raw_link, link_time)
            poller = BusPoller(
                bus, self._deliver, self.clock, link=link, resume_from=self.resume_points.get, on_gap=self._gap,
                on_outage=self._outage, batch_s=config.processing.batch_ms / 1000.0,
            )
            poller.stamper.max_held = config.clock.max_held
            poller.stamper.journal = _DurableHold(bus.name, self.writer)
            self.pollers.append(poller)
            owners.update({node.name: (poller, node) for node in bus.nodes})
        self._preload_held()
        self.actuator = CoilActuator(owners, self._accept, self.clock.wall, config.spray.retry_s,
                                     config.spray.refresh_s)
        self.siren = _siren(config)  # the siren / beacon relay ([siren]), None when not configured
        # Node registers the configuration states (rh_correction): checked on the nodes, written where they differ.
        self.node_settings = NodeSettings([(p.execute, node) for p in self.pollers for node in p.bus.nodes])
        self._started = False
        self.counts: dict[str, int] = {}
        self.stage_errors = 0
        self._last_stage_error = ""
        for sink in self.sinks:  # sinks that need the service (the MQTT sink's commands, site, clock)
            attach = getattr(sink, "attach", None)
            if attach is not None:
                attach(self)
        self._restored = False
        self.restored: dict[str, Any] = {}  # what the start's window rebuild replayed (see _restore)
        # Health reports (None: [health] enabled = false); the latest is in status()["health"].
        self.health: HealthTask | None = (
            HealthTask(self, config.health.interval_s, self._accept) if config.health.enabled else None
        )

    # -- records -------------------------------------------------------------------------
    def _deliver(self, readings: list[Reading]) -> None:
        """A poller's readings (already stamped): through the pipeline, to the queue."""
        if not self._restored:
            self._restore(self.clock.wall())
        try:
            records = self.pipeline.feed(readings, self.clock.wall())
        except Exception as error:  # a stage's bug must not stop the bus owner: keep the data, say so
            self._stage_failed("processing readings", error)
            records = list(readings)
        self._accept(records)
        if self.on_readings is not None:
            self.on_readings([r for r in records if type(r) is Reading])

    def _gap(self, gaps: list[Gap]) -> None:
        """Samples the backfill could not fetch (ring overwritten, node rebooted): queued, never just logged."""
        for gap in gaps:
            log.warning("%s: samples %s..%s lost for good (%s)", gap.node, gap.first_sequence,
                        "?" if gap.last_sequence is None else gap.last_sequence, gap.reason)
        self._accept(list(gaps))

    def _outage(self, outages: list[NodeOutage]) -> None:
        """A node's values did not arrive live for a while (the poller's OutageWatch): queued as Outage records."""
        self._accept([Outage(o.node, o.kind, o.start, o.end, o.reason, o.missed, o.closed) for o in outages])

    def _stage_failed(self, what: str, error: Exception) -> None:
        self.stage_errors += 1
        text = f"{type(error).__name__}: {error}"
        if text != self._last_stage_error:  # once per distinct error, not once per poll
            log.error("pipeline failed in %s (%s); the raw readings are queued unprocessed", what, text,
                      exc_info=error)
            self._last_stage_error = text

    def _accept(self, records: list[Record]) -> None:
        counts = self.counts
        queued: list[Record] = []
        for r in records:
            name = type(r).__name__
            counts[name] = counts.get(name, 0) + 1
            if type(r) is SprayCommand:
                self.actuator.submit(r)  # its Actuation is what gets queued
                continue
            if type(r) is AlarmEvent:
                log.warning("%s", alarm_line(r.alarm, r.severity, r.state, r.node, r.channel, r.reason))
            elif type(r) is Outage:
                log.info("outage: %s %s for %.0f s (%s)", r.node, "closed" if r.closed else "open",
                         r.end - r.start, r.reason)
            queued.append(r)
        if queued:
            self.writer.add(queued)  # once per batch, in order (was once per record)

    def _wake_sinks(self) -> None:
        for delivery in self.deliveries:
            delivery.wake.set()

    def _preload_held(self) -> None:
        """Readings an earlier run held for a valid clock go back to their bus's stamper."""
        stampers = {poller.bus.name: poller.stamper for poller in self.pollers}
        batches: dict[tuple[str, int], tuple[float, list[Reading]]] = {}
        for held in self.queue.held_readings():
            batches.setdefault((held.holder, held.serial), (held.mono, []))[1].append(held.reading)
        for (holder, serial), (mono, readings) in batches.items():
            stamper = stampers.get(holder)
            if stamper is None:
                log.error("queue: %d readings held for a valid clock by bus %r, which is no longer configured, "
                          "are dropped", len(readings), holder)
                self.queue.stats.held_other_boot += len(readings)
                self.queue.note_dropped(len(readings))  # in the drops since install (health reports)
                self.writer.release(holder, serial)
                continue
            stamper.preload(serial, mono, readings)
        if batches:
            log.info("queue: %d readings held for a valid clock in an earlier run are held again",
                     sum(len(readings) for _, readings in batches.values()))

    # -- time-driven work ----------------------------------------------------------------
    async def _ticker(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.clock.valid():
                now = self.clock.wall()
                if not self._started:
                    self._start(now)
                try:
                    self._accept(self.pipeline.tick(now))
                except Exception as error:  # same as in _deliver: log, count, go on
                    self._stage_failed("the pipeline's tick", error)
                self._sound_siren(now)
                self.actuator.retry_due(now)
                self.actuator.refresh_due(now)
            await pause(stop, self.config.processing.tick_s)

    def _sound_siren(self, now: float) -> None:
        """Switch the siren's coil when the alarms that sound it start or stop (siren.py); written like a spray."""
        if self.siren is None:
            return
        alarms = self.pipeline.alarms.active() if self.pipeline.alarms is not None else []
        command = self.siren.update(alarms, now)
        if command is not None:
            log.warning("siren %s (%s.%s): %s", "ON" if command.on else "off", command.node, command.coil,
                        command.reason)
            self._accept([command])

    def _start(self, now: float) -> None:
        """First moment with a valid clock: the gateway's own outage, and the configured manual spray modes."""
        self._started = True
        self._restore(now)
        last = self._last_queued
        if last is not None and now - last > DOWN_AFTER_S:
            self._accept([Outage(GATEWAY_NODE, "", last, now, "gateway not running", 0)])
        for node, mode in self.config.spray.mode.items():
            if mode != SprayMode.AUTO and self.pipeline.spray is not None:
                self._accept(self.pipeline.set_spray_mode(node, mode, now, who="configuration"))

    def _node_names(self) -> list[str]:
        return [node.name for bus in self.config.buses for node in bus.nodes]

    def _restore(self, now: float) -> None:
        """Once, before the first reading: rebuild the windows from the queue (a restart loses no window)."""
        if self._restored:
            return
        self._restored = True
        began = time.monotonic()
        since = self.pipeline.replay_since(self._node_names(), now)
        replay = QueueReplay(self.queue.path)
        try:
            try:
                known = replay.emitted(since)
                # Alarms first: a window the last run had not emitted is judged against them.
                alarms = self.pipeline.resume_alarms(replay.alarm_events())
                made = self.pipeline.restore(replay.readings_since(since), known, since, now)
            finally:
                replay.close()
        except Exception as error:  # a broken replay must not keep the gateway from running
            self._stage_failed("rebuilding the windows from the queue", error)
            return
        self.restored = {
            "since": since, "readings": replay.readings, "known_aggregates": len(known),
            "emitted": len(made), "undecodable": replay.undecodable, "seconds": time.monotonic() - began,
            "alarms": alarms,
        }
        if replay.readings:
            log.info("windows rebuilt from %d queued readings since %.0f in %.1f s; %d aggregates the last run "
                     "had not emitted", replay.readings, since, self.restored["seconds"], len(made))
        if alarms:
            log.info("%d alarm(s) the last run left raised stay raised", alarms)
        self._accept(made)

    def replay_keep_s(self, now: float) -> float:
        """How far back the queue must keep readings for the start's window rebuild."""
        return now - self.pipeline.replay_since(self._node_names(), now) + REPLAY_LEAD_S

    async def _pruner(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Never prune what rebuilding the windows at the next start needs.
            max_age = max(self.config.queue.retention_days * 86400.0, self.replay_keep_s(self.clock.wall()))
            async with self.queue.lock:
                pruned = await asyncio.to_thread(self.queue.prune, max_age)
            if pruned:
                log.info("queue: pruned %d delivered records older than %g days", pruned,
                         self.config.queue.retention_days)
            await pause(stop, self.config.queue.prune_interval_s)

    # -- the manual override -------------------------------------------------------------
    async def set_spray_mode(self, node: str, mode: SprayMode | str, who: str = "operator") -> list[Actuation]:
        """Spray of a coil node: "on" / "off" (manual, held) or "auto"; returns the queued outcomes.

        Raises LookupError for a node without a spray coil (or with the spray linkage disabled).
        """
        coil = self.actuator.coil_of(node)
        if isinstance(coil, str):
            raise LookupError(coil)
        commands = self.pipeline.set_spray_mode(node, mode, self.clock.wall(), who)
        out = []
        for command in commands:
            assert isinstance(command, SprayCommand)
            out.append(await self.actuator.apply(command))
        return out

    # -- downlink commands (gateway/ops/commands.py: CommandTarget) ------------------------
    async def command_spray(self, node: str, mode: str, who: str) -> dict[str, Any]:
        actuations = await self.set_spray_mode(node, mode, who)
        return {"node": node, "mode": mode, "writes": [a.result for a in actuations]}

    def command_threshold(self, setting: str, value: float, node: str | None) -> dict[str, Any]:
        """Change one [limits] setting of the running alarms (site-wide, or one node's); not saved to the config."""
        alarms = self.pipeline.alarms
        if alarms is None:
            raise LookupError("no alarms are configured")
        if node is not None and node not in self.config.nodes():
            raise LookupError(f"no node {node!r} is configured")
        before = alarms.limits.for_node(node) if node is not None else alarms.limits.site
        alarms.limits = alarms.limits.changed(setting, value, node)
        old = before
        for part in setting.split("."):
            old = getattr(old, part)
        log.warning("limits: %s%s changed from %s to %g by a command", setting, f" of {node}" if node else "", old,
                    value)
        return {"setting": setting, "node": node, "old": old, "new": value}

    def command_poll_interval(self, seconds: float, node: str | None, bus: str | None) -> dict[str, Any]:
        changed: list[str] = []
        for poller in self.pollers:
            if bus is not None and poller.bus.name != bus:
                continue
            changed += poller.set_interval(seconds, node)
        if not changed:
            raise LookupError(f"no node {node!r} is configured" if node else f"no bus {bus!r} is configured")
        log.warning("poll interval of %s set to %g s by a command", ", ".join(changed), seconds)
        return {"seconds": seconds, "nodes": changed}

    def command_time_sync(self, sent: float) -> dict[str, Any]:
        """The gateway's clock against the command's: the gateway never sets the system clock (NTP does)."""
        now = self.clock.wall()
        return {"gateway_time": now, "command_time": sent, "offset_s": now - sent, "clock_valid": self.clock.valid()}

    # -- running -------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        # Sinks with a connection of their own (MQTT) keep it until the shutdown's flush is over.
        sinks_stop = asyncio.Event()
        sink_tasks = [asyncio.create_task(sink.run(sinks_stop)) for sink in self.sinks if hasattr(sink, "run")]
        if self.clock.valid():
            self._restore(self.clock.wall())  # before any poller runs
        try:
            async with asyncio.TaskGroup() as group:
                for poller in self.pollers:
                    group.create_task(poller.run(stop))
                group.create_task(self.writer.run(stop))
                group.create_task(self._ticker(stop))
                group.create_task(self._pruner(stop))
                group.create_task(self.node_settings.run(stop))
                if self.health is not None:
                    group.create_task(self.health.run(stop))
                for delivery in self.deliveries:
                    group.create_task(delivery.run(stop))
            await self._shutdown()
        finally:
            sinks_stop.set()
            if sink_tasks:
                await asyncio.wait(sink_tasks, timeout=10.0)
            for sink in self.sinks:
                with contextlib.suppress(Exception):
                    sink.close()
            async with self.queue.lock:  # no call is in the queue's thread while the lock is held
                self._queue_closed = True  # with_queue makes no call after this
                self.queue_thread.close()
                self.queue.close()

    async def _shutdown(self) -> None:
        await self.actuator.drain()
        self.actuator.running = False
        if self.clock.valid():
            self._accept(self.pipeline.close(self.clock.wall()))
        await self.writer.flush()
        for poller in self.pollers:  # durable (queue table "held"), but an operator must hear where they are
            if poller.stamper.held_count:
                log.warning("bus %s: %d readings held for a valid clock are kept in the queue %s: they are stamped "
                            "and delivered after the next start, once the clock is valid",
                            poller.bus.name, poller.stamper.held_count, self.queue.path)
        deadline = time.monotonic() + self.config.queue.flush_timeout_s
        for delivery in self.deliveries:
            if delivery.stats.down_since is not None:
                # Its last attempt failed: another one now would wait out the same timeout (a hung endpoint
                # held the stop for two of them, past systemd's TimeoutStopSec). Durable: the next start sends.
                log.warning("sink %s is down (%s): %d records wait in the queue", delivery.name,
                            delivery.stats.last_error, await self.with_queue(_pending(delivery.name)))
                continue
            if not await delivery.flush(max(0.0, deadline - time.monotonic())):
                log.warning("sink %s: %d records not delivered at shutdown; they wait in the queue",
                            delivery.name, await self.with_queue(_pending(delivery.name)))

    # -- for the demo and a status page --------------------------------------------------
    @property
    def stored(self) -> int:
        """Readings the local store has written."""
        return sum(s.readings_stored for s in self.sinks if isinstance(s, SqliteSink))

    def store_counts(self) -> dict[str, int]:
        reader = SqliteStore(self.config.store_path)
        try:
            return reader.count_by_node()
        finally:
            reader.close()

    def faults(self) -> list[str]:
        """Health faults an operator must act on (also in status())."""
        faults = []
        if self.queue.stats.quota_dropped:
            faults.append(f"queue over its disk quota ({self.config.queue.max_bytes} bytes): "
                          f"{self.queue.stats.quota_dropped} readings/aggregates dropped before a sink had them")
        if self.queue.stats.over_quota:
            faults.append(f"queue {self.queue.stats.over_quota} bytes over its disk quota with only alarm events, "
                          "outages, gaps and actuations left: raise queue.max_bytes")
        if self.queue.stats.held_other_boot:
            faults.append(f"{self.queue.stats.held_other_boot} readings held for a valid clock were dropped "
                          "(taken before a reboot, or by a bus no longer configured)")
        return faults

    async def sink_backlog(self) -> dict[str, int]:
        """Per delivery lane: records in the queue after its cursor (a database query: call it seldom)."""
        names = [d.name for d in self.deliveries]
        backlog = await self.with_queue(lambda queue: {name: queue.pending(name) for name in names})
        return backlog if backlog is not None else {}

    async def with_queue(self, call: Callable[[DurableQueue], T], wait_s: float | None = None) -> T | None:
        """call(queue) in a worker thread, holding the queue's lock: its SQLite connection is one thread's at a
        time (the writer's commits, the deliveries' reads and confirms, the health reports, the status page and
        the watchdog share it). Every read outside the writer and the deliveries goes through here.

        None when the lock was not free within wait_s (a busy or stuck writer must not stall a status request;
        None: wait as long as it takes), or when the queue is already closed (a status request in the last
        moments of a stop).
        """
        if wait_s is None:
            await self.queue.lock.acquire()
        else:
            try:
                await asyncio.wait_for(self.queue.lock.acquire(), wait_s)
            except TimeoutError:
                return None
        try:
            if self._queue_closed:
                return None
            # Not bounded by a timeout: cancelling the await would free the lock while the thread still runs.
            return await self.queue_thread.run(call, self.queue)  # the writer's and the deliveries' thread
        finally:
            self.queue.lock.release()

    def status(self) -> dict[str, Any]:
        return {
            "queue": {
                "path": str(self.queue.path),
                "backlog_in_memory": self.queue.backlog,
                "stats": self.queue.stats,
                "waiting_for_commit": self.writer.pending,
            },
            "faults": self.faults(),
            "sinks": {d.name: d.stats for d in self.deliveries},
            "spray": self.pipeline.spray_state(),
            "alarms": self.pipeline.alarms.active() if self.pipeline.alarms is not None else [],
            "records": dict(self.counts),
            "stage_errors": self.stage_errors,
            # Per node: readings that revised a closed window, readings too old for that (docs/revisions.md).
            "windows": {**self.pipeline.window_counts(), "restored": dict(self.restored)},
            "node_settings": {node: [dataclasses.asdict(c) for c in checks]
                              for node, checks in self.node_settings.checks.items()},
            "coil_faults": self.actuator.faults(),
            "health": self.health.latest if self.health is not None else None,
            "nodes": {
                name: {"online": h.online, "healthy": h.healthy, "stale": h.stale, "outage": h.outage}
                for poller in self.pollers
                for name, h in poller.health.items()
            },
        }


class _DurableHold:
    """A bus's held readings, kept in the durable queue through the writer (see timestamps.HoldJournal)."""

    def __init__(self, holder: str, writer: QueueWriter) -> None:
        self.holder = holder
        self.writer = writer

    def held(self, serial: int, taken_mono: float, readings: list[Reading]) -> None:
        self.writer.hold(Held(self.holder, serial, taken_mono, r) for r in readings)

    def gone(self, upto: int) -> None:
        self.writer.release(self.holder, upto)


def _pending(sink: str) -> Callable[[DurableQueue], int]:
    return lambda queue: queue.pending(sink)


def _siren(config: GatewayConfig) -> Siren | None:
    s = config.siren
    if not s.node:
        return None
    alarms = MappingProxyType({name: Severity(level) for name, level in s.alarms.items()})
    return Siren(SirenRule(s.node, s.coil, alarms, Severity(s.min_severity)))
