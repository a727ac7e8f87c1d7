"""The bus owner: one asyncio task per serial port (or Modbus TCP endpoint) polls its nodes.

A bus is one shared medium, so the requests on it are strictly sequential;
buses run concurrently, each in its own task. Anything else that needs the
bus (a coil write for the spray relay, a configuration write) goes through
its owner: ``BusPoller.execute``.

Each poll is one request: input registers 0 .. input_count(kind), which the
register map lays out so that one read returns the diagnostics and the whole
sample. It is decoded through the register map and timestamped at
acquisition minus the node's reported sample age, on the monotonic clock;
the Stamper (timestamps.py) turns that into wall time once the wall clock is
valid. Which node goes next, how long it may take to answer and how a
failing node backs off is decided by the pure rules in health.py; the
Modbus RTU transactions are link.RtuLink (see its docstring for why this is
not pymodbus' serial client, with the measurements), Modbus TCP is pymodbus.

Every poll ends in readings with a quality flag or in none (the node had no
new sample, or the poll failed). A poll of a node with a history ring that
got no valid answer gives no reading: the backfill fetches the sample it missed once the node
answers, and a value-less reading now would contradict it; of a node
without one (``NodeConfig.history`` False, or a node that refused its
window) it gives value None with flag B (no reply, bad frame). A node that
answers it cannot deliver (an exception reply, content that does not
decode) gives value None with flag D. Never a repeat of an old value. Either way the
node's ``OutageWatch`` (outages.py) reports when its values did not arrive
live: silent (from its last answer to its first answer again) or stale
(answering, but its sample sequence frozen), through ``on_outage``; and a
suspect node is probed cheaply in idle bus time (health.choose), so one
that comes back is polled at once. Errors are values: a CRC failure or a
timeout is counted in the node's health and the loop goes on; so does a
port that fails (reopened with backoff).

Vendor devices (``NodeConfig.profile``, gateway/profiles): polled in the
same schedule, each poll the profile's merged requests one after the other
in the device's slot (the scheduler counts their time), decoded through the
profile with a flag per value. They have no history ring and no sample
sequence: a failed poll gives value-less B/D readings, their readings are
numbered by poll slot (so a missed poll leaves a gap in the numbers, as a
node's lost sample does), and a device whose profile
says ``gust = "gateway"`` gets a ``wind_gust_3s`` channel formed from its
speed samples (gust.py). Nothing is ever written to them.

Backfill (backfill.py). The poller remembers, per node, the last sample it
delivered (across gateway restarts through ``resume_from``: the sequence
number of the newest sample the store holds). A poll that finds a newer sample than the next
one (an outage of the bus or the node, a restart of the gateway, a failed
poll) fetches the missed ones from the node's history window: one FC 16
write of "history_seq", then FC 4 reads of the window (a window shows as
many records as one read can carry; reads within it need no new write).
Each record is decoded through the register map and timed at its own age,
so it arrives with its original time; samples are delivered in sequence
order, so the polled sample waits until the older ones are in. The history
reads use bus time nobody else wants: when no node is due, a read is sized
to end before the next one is (at most ``BusConfig.backfill_records``
records, by default a whole window; sized on the node's usual turnaround,
with its reply timeout cut to end there too), and only a backfill that
found no such time for _BACKFILL_STARVE_AFTER seconds (a bus loaded to the
brim) makes one read anyway. A node that is not answering its polls is
not asked for its history. Samples the ring no longer holds, or that a
restarted node took with it, are reported as ``Gap`` records through
``on_gap`` (not through ``deliver``: the pipeline's consumers take
readings, and its queue has a gap record of its own; the owner of the
poller converts).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from firmware import regmap
from gateway.acquire.backfill import UNAVAILABLE, Backfill, BackfillStats, Lost, Sampled
from gateway.acquire.bus_time import BusTime
from gateway.acquire.decode import (
    KIND_BY_NAME,
    DecodeError,
    KindMismatch,
    decode_history,
    decode_inputs,
    kind_name,
    missing_readings,
    to_readings,
)
from gateway.acquire.health import (
    MIN_SLACK,
    PROBE_INTERVAL,
    PROBE_SLACK,
    AdaptiveTimeout,
    NodeHealth,
    Poll,
    Probe,
    Slot,
    backoff_delay,
    choose,
)
from gateway.acquire.link import Exchange, Link, NoReply, Outcome, RtuLink, TcpLink
from gateway.acquire.outages import NodeOutage, OutageWatch
from gateway.acquire.repeats import Repeats
from gateway.acquire.timestamps import Clock, Stamper
from gateway.model import Gap, Quality, Reading
from gateway.profiles.gust import GUST_CHANNEL, RunningGust
from gateway.profiles.vendor import DecodeError as ProfileDecodeError
from gateway.profiles.vendor import ReadRequest, VendorProfile
from gateway.protocols import modbus_rtu_master as rtu

__all__ = ["BackfillStats", "BusConfig", "BusPoller", "NodeConfig", "NodeHealth", "PollRecord"]

log = logging.getLogger(__name__)

# Exceptions that say nothing about the sensor: busy (6, passing), and a TCP
# gateway's "path unavailable" (10) and "target failed to respond" (11), which
# are a dead line behind it. These give flag B; any other exception means the
# node cannot deliver the sample (flag D).
_COMMUNICATION_EXCEPTIONS = (6, 10, 11)
_REOPEN_MAX = 30.0  # seconds between attempts to reopen a failed port, at most

_HISTORY_SEQ = regmap.find(regmap.COMMON_HOLDING, "history_seq")[1]
# Exceptions to a history request that mean the node has no history window (older firmware).
_NO_HISTORY_EXCEPTIONS = (1, 2, 3)
_BACKFILL_MAX_FAILURES = 5  # history transactions in a row that bring nothing: give the backfill up
_BACKFILL_MARGIN = 0.005  # s kept free before the next node is due (event loop wake-up jitter)
# A backfill that found no free bus time for this long makes one read anyway (a bus loaded to the brim).
_BACKFILL_STARVE_AFTER = 10.0
_MAX_HELD_GAPS = 10_000  # gaps held while the wall clock is not valid
_SAMPLE_SEQ = regmap.find(regmap.DIAGNOSTICS, "sample_seq")  # what a probe reads: two registers
_NODE_KIND = regmap.find(regmap.DIAGNOSTICS, "node_kind")
_ILLEGAL_DATA_ADDRESS = 2  # a read past the node's register bank: what a shorter kind answers a longer kind's read


@dataclass(frozen=True)
class NodeConfig:
    name: str
    kind: str
    unit_id: int
    interval: float = 1.0  # seconds between polls
    timeout: float | None = None  # upper bound of the adaptive reply timeout; None: the bus's
    rh_correction: bool = False  # dust: the node corrects its PM values for humidity (holding register rh_correction)
    # The node keeps a history ring (sitewatch firmware). Without one, a failed poll gives value-less
    # B/D readings, as nothing could fill that sample in later; with one, the backfill does.
    history: bool = True
    # A vendor device read through its profile (gateway/profiles) rather than a sitewatch node: merged
    # reads as the profile says, no history ring, no sample sequence of its own. None: a sitewatch node.
    profile: VendorProfile | None = None


@dataclass(frozen=True)
class BusConfig:
    name: str
    port: str  # serial device for RTU; unused for TCP
    nodes: tuple[NodeConfig, ...]
    baud: int = 9600
    parity: str = "N"
    stopbits: int = 1
    timeout: float = 0.5  # upper bound of every node's adaptive reply timeout, seconds
    transport: str = "rtu"  # "rtu" (serial line) or "tcp"
    host: str = ""  # Modbus TCP host
    tcp_port: int = 502
    max_backoff: float = 60.0  # longest pause between tries of a failing node, seconds
    local_echo: bool = False  # the RS-485 adapter hands back what it sends
    backfill_records: int = 0  # most history records fetched in one scheduling slot; 0: a whole window

    @property
    def address(self) -> str:
        return f"{self.host}:{self.tcp_port}" if self.transport == "tcp" else self.port


@dataclass(frozen=True, slots=True)
class PollRecord:
    """One finished poll, for traces, benchmarks and tests (monotonic times)."""

    node: str
    due: float  # when the schedule wanted it
    sent: float
    completed: float
    outcome: str  # "sample", "no new sample", "timeout", "crc", "exception 4", ...
    timeout: float  # the reply timeout it was given
    request_bytes: int
    reply_bytes: int  # of a normal reply
    # When the scheduler chose it: its timeout was sized from then. A busy host may send it later,
    # which is the host's delay, not the schedule's (tests judge the schedule on this).
    decided: float = math.nan


Deliver = Callable[[list[Reading]], None]
OnGap = Callable[[list[Gap]], None]
OnOutage = Callable[[list[NodeOutage]], None]
ResumeFrom = Callable[[str], int | None]
Trace = Callable[[PollRecord], None]


class _Node:
    """Per-node schedule and backfill state kept by the poller."""

    def __init__(self, config: NodeConfig, request: rtu.Request, timeout: AdaptiveTimeout, due: float) -> None:
        self.config = config
        self.request = request
        self.timeout = timeout
        self.due = due
        self.code = KIND_BY_NAME[config.kind]
        self.backfill: Backfill[list[Reading]] = Backfill()
        self.window: int | None = None  # the history_seq the node holds, as far as the poller knows
        self.history = config.history  # False once the node refused its history window
        self.rebooted = False  # seen restarting; the backfill is told with the next sample
        self.backfill_since = 0.0  # when its backlog last moved (for the starvation rule)
        self.backfill_after = 0.0  # no history transaction before this (after a failure)
        self.backfill_failures = 0  # history transactions in a row that brought nothing
        # One backfill episode's story in the log: the counters when it began, and gaps of unknown size in it.
        self.episode: tuple[int, int] | None = None  # (stats.fetched, stats.lost) at its start
        self.episode_unknown = 0  # Lost records of an unknown count (a restart) during it
        self.watch = OutageWatch(config.name, config.kind, config.interval)
        # Its newest delivered sample: (monotonic time, wall timestamp given). A gap after it starts at
        # that timestamp, whatever the wall clock did since (a step by NTP during an outage).
        self.stamped: tuple[float, float] | None = None
        self.probe = rtu.read_registers(config.unit_id, rtu.READ_INPUT_REGISTERS, _SAMPLE_SEQ[1], 2)
        self.kind_check = rtu.read_registers(config.unit_id, rtu.READ_INPUT_REGISTERS, _NODE_KIND[1], 1)
        self.probe_due = math.inf  # the next probe, while the node is suspect
        # The scheduler's view of this node (health.Slot), kept until its poll, probe or schedule changes
        # it; None: to be rebuilt. Rebuilding every node's at every decision cost 0.4 ms per poll (issue 13).
        self.slot: Slot | None = None
        # A vendor device: its profile's merged reads, one transaction each per poll; the first is the
        # poll's request (and its probe), the others follow it in the same slot.
        self.reads: list[tuple[ReadRequest, rtu.Request]] = []
        # A vendor device's sample number: the poll slots (intervals) since its first good poll, so a missed
        # poll leaves a gap in the numbers as a node's lost sample does (the aggregators measure the sample
        # interval from numbers and times: counting good polls only would stretch it over every gap).
        self.sequence = 0
        self.sequence_due = 0.0  # the due time of the poll that got self.sequence
        self.gust: RunningGust | None = None  # a device whose 3 s gust the gateway forms (profile gust "gateway")
        if config.profile is not None:
            self.reads = [(r, rtu.read_registers(config.unit_id, r.function, r.address, r.count))
                          for r in config.profile.reads()]
            self.request = self.probe = self.reads[0][1]
            self.history = False
            if config.profile.gust == "gateway":
                self.gust = RunningGust(config.interval)


class BusPoller:
    def __init__(
        self,
        bus: BusConfig,
        deliver: Deliver,
        clock: Clock | None = None,
        link: Link | None = None,
        trace: Trace | None = None,
        resume_from: ResumeFrom | None = None,
        on_gap: OnGap | None = None,
        on_outage: OnOutage | None = None,
        batch_s: float = 0.0,
    ) -> None:
        """deliver: takes the readings of each poll (stamped, oldest first).

        batch_s: readings of polls in quick succession are handed to deliver together, in one call, at most this
        long after the first of them was ready (judged before each poll from its time on the bus as the
        scheduler sizes it: a poll that overruns it, a slow or silent node, adds at most its reply timeout), and
        at once when the bus has nothing to do before its next poll, before any gap or outage (they keep their
        order), and when run() ends. 0: each poll's at once. A bus polls its nodes one after the other: one pass
        of the pipeline over a burst of polls costs less CPU than one per poll (issue 13), each of which started
        on caches the serial line's wait had left cold.

        resume_from: node name -> the sequence number of the last sample
        delivered before (the newest sample the store holds: the newest, not
        the highest number, which after a node restart belongs to its old
        boot), or None; asked once, when run() first starts. on_gap: takes
        the Gap records of lost samples (None: they are only logged).
        on_outage: takes the outages of nodes (outages.py), in wall time, as
        they close (and, when run() ends, those still open, marked so).
        """
        self.bus = bus
        self.deliver = deliver
        self.batch_s = batch_s
        self._batch: list[Reading] = []  # ready readings not yet handed to deliver (batch_s)
        self._batch_since = 0.0  # when the first of them was ready
        self.resume_from = resume_from
        self.on_gap = on_gap
        self.on_outage = on_outage
        self.clock = clock or Clock()
        self.stamper = Stamper(self.clock, bus=bus.name)
        self.trace = trace
        self.link: Link = link or _make_link(bus)
        self.health: dict[str, NodeHealth] = {}
        self._nodes: list[_Node] = []
        for node in bus.nodes:
            if node.kind not in KIND_BY_NAME:
                raise ValueError(f"bus {bus.name}: node {node.name}: unknown kind {node.kind!r}")
            if node.profile is not None:
                first = node.profile.reads()[0]
                request = rtu.read_registers(node.unit_id, first.function, first.address, first.count)
            else:
                count = regmap.input_count(KIND_BY_NAME[node.kind])
                request = rtu.read_registers(node.unit_id, rtu.READ_INPUT_REGISTERS, 0, count)
            ceiling = node.timeout if node.timeout is not None else bus.timeout
            reply_wire = self.link.request_time(request.reply_length)
            timeout = AdaptiveTimeout(floor=reply_wire + MIN_SLACK, ceiling=ceiling)
            self._nodes.append(_Node(node, request, timeout, 0.0))
            self.health[node.name] = NodeHealth(timeout=timeout.current)
        self._names = {n.config.name: n for n in self._nodes}
        if len(self._names) != len(self._nodes):  # the configuration checks this; a caller building one may not
            raise ValueError(f"bus {bus.name}: a node name is used twice")
        self._adhoc: asyncio.Queue[tuple[rtu.Request, float, asyncio.Future[Exchange]]] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._reopen_at = 0.0
        self._reopen_delay = 0.5
        self.open_failures = Repeats()  # the port's reopen attempts, for the log
        self._not_open = f"{bus.address} is not open"
        self._resumed = False
        self._held_gaps: list[tuple[_Node, Lost]] = []
        self._held_outages: list[NodeOutage] = []
        self.bus_time = BusTime(time.monotonic())  # bus utilisation, for /metrics

    def set_interval(self, seconds: float, node: str | None = None) -> list[str]:
        """A new poll interval for one node (or every node of the bus); the names of the nodes changed."""
        changed = []
        for n in self._nodes:
            if node is None or n.config.name == node:
                n.config = dataclasses.replace(n.config, interval=seconds)
                n.slot = None
                if n.gust is not None:
                    n.gust = RunningGust(seconds)  # the 3 s span holds another number of samples
                changed.append(n.config.name)
        return changed

    @property
    def backfill(self) -> dict[str, BackfillStats]:
        """Per node: what the backfill fetched, lost and cost."""
        return {n.config.name: n.backfill.stats for n in self._nodes}

    # -- the owner's loop ----------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Poll until stop is set. Never raises for bus trouble: it is counted in health."""
        loop = asyncio.get_running_loop()
        watcher = loop.create_task(self._watch(stop))
        now = time.monotonic()
        for n in self._nodes:
            n.due = now
            n.slot = None
        self._resume()
        await self._ensure_open()
        try:
            while not stop.is_set():
                if not self._adhoc.empty():
                    self._hand_over()  # a write for the spray waits for the bus anyway: not the batch too
                    await self._serve_adhoc()
                    continue
                now = time.monotonic()
                decision = choose(self._slots(), now, starve_after=self.bus.max_backoff)
                if self._batch and isinstance(decision, Probe | Poll) and self._outgrows_batch(decision.name, now):
                    self._hand_over()
                if isinstance(decision, Probe):
                    await self._probe(self._by_name(decision.name), decision.timeout, now)
                    continue
                if isinstance(decision, Poll):
                    starving = self._backfill_candidate(now, starving=True)
                    if starving is not None:  # a bus without free time: one read goes before the poll
                        self._hand_over()
                        await self._backfill(starving, None)
                        continue
                    await self._poll(self._by_name(decision.name), decision.timeout, now)
                    continue
                # Bus time nobody wants until decision.until: history reads that fit in it.
                self._hand_over()
                candidate = self._backfill_candidate(now)
                budget = decision.until - now - _BACKFILL_MARGIN
                if candidate is not None and await self._backfill(candidate, budget):
                    continue
                starving = self._backfill_candidate(now, starving=True)
                if starving is not None:
                    await self._backfill(starving, None)
                    continue
                wait = min(decision.until, self._backfill_retry(now)) - time.monotonic()
                if wait > 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(min(wait, 60.0)):  # a timer; wait_for made a task per poll
                            await self._wake.wait()
        finally:
            self._hand_over()
            watcher.cancel()
            self.link.close()
            ended = self.clock.mono()
            for n in self._nodes:
                self._outages(n.watch.close(ended))
            while not self._adhoc.empty():
                _, _, future = self._adhoc.get_nowait()
                if not future.done():
                    now = time.monotonic()
                    future.set_result(Exchange(NoReply("io", "bus owner stopped"), now, now, now))

    async def execute(self, request: rtu.Request, timeout: float | None = None) -> Exchange:
        """Run one request on this bus between polls (the bus has one owner); returns what came of it."""
        future: asyncio.Future[Exchange] = asyncio.get_running_loop().create_future()
        self._adhoc.put_nowait((request, timeout if timeout is not None else self.bus.timeout, future))
        self._wake.set()
        return await future

    async def _watch(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _serve_adhoc(self) -> None:
        request, timeout, future = self._adhoc.get_nowait()
        await self._ensure_open()
        exchange = await self._transact(request, timeout)
        if not future.done():
            future.set_result(exchange)

    async def _transact(self, request: rtu.Request, timeout: float) -> Exchange:
        """link.transact, with the bus time it took counted (bus_time.py)."""
        start = time.monotonic()
        try:
            return await self.link.transact(request, timeout)
        finally:
            self.bus_time.add(start, time.monotonic())

    def _slots(self) -> list[Slot]:
        """Every node as the scheduler sees it: each node's Slot is kept and rebuilt only after something
        it depends on changed (its poll, probe or schedule: see _slot_of), not at every decision."""
        return [n.slot if n.slot is not None else self._slot_of(n) for n in self._nodes]

    def _slot_of(self, n: _Node) -> Slot:
        """A node's Slot from its state now, kept in n.slot. What it reads (due, probe_due, the node's health
        and adaptive timeout) changes only in _poll, _poll_device, _probe, run's start and set_interval,
        each of which sets n.slot to None."""
        gap = self.link.gap()
        n.slot = Slot(
            n.config.name,
            n.due,
            self.health[n.config.name].reliable,
            n.timeout.current,
            n.timeout.floor,
            self.link.request_time(len(n.request.frame)) + gap + self._further_reads(n),
            n.probe_due,
            self._probe_timeout(n),
            self.link.request_time(len(n.probe.frame)) + gap,
        )
        return n.slot

    def _further_reads(self, node: _Node) -> float:
        """Bus time the further requests of a vendor device's poll take when it answers (0: one request)."""
        return sum((self._expected(node, request) for _, request in node.reads[1:]), 0.0)

    def _by_name(self, name: str) -> _Node:
        return self._names[name]

    async def _ensure_open(self) -> bool:
        if self.link.is_open:
            return True
        now = time.monotonic()
        if now < self._reopen_at:
            return False
        try:
            await self.link.open()
        except OSError as error:
            # Said once per episode and then every few minutes with a count: an unplugged adapter
            # fails every retry for hours (gateway/acquire/repeats.py).
            unsaid = self.open_failures.failed(str(error), now)
            if unsaid is not None:
                again = f"; {unsaid} more attempts failed alike" if unsaid else ""
                log.warning("bus %s: %s (retrying in %.1f s, at most every %.0f s%s)", self.bus.name, error,
                            self._reopen_delay, _REOPEN_MAX, again)
            self._reopen_at = now + self._reopen_delay
            self._reopen_delay = min(self._reopen_delay * 2, _REOPEN_MAX)
            return False
        episode = self.open_failures.succeeded(now)
        if episode is not None:
            log.info("bus %s: port open again after %d failed attempts in %.0f s", self.bus.name, *episode)
        self._reopen_delay = 0.5
        return True

    # -- one poll ---------------------------------------------------------------------------
    async def _poll(self, node: _Node, timeout: float, decided: float = math.nan) -> None:
        try:
            if node.reads:
                await self._poll_device(node, timeout)
            else:
                await self._poll_node(node, timeout, decided)
        finally:
            node.slot = None  # its health, timeout and due time changed: the scheduler's view is rebuilt

    async def _poll_node(self, node: _Node, timeout: float, decided: float) -> None:
        config = node.config
        health = self.health[config.name]
        due = node.due
        if await self._ensure_open():
            exchange = await self._transact(node.request, timeout)
        else:
            now = time.monotonic()
            exchange = Exchange(NoReply("io", self._not_open), now, now, now)
        # Counted once done, with its outcome: a poll still in flight is neither a success nor a failure
        # (a health report made meanwhile counted it as a success: success_rate 1.0 for an offline node).
        health.polls += 1
        previous = health.last_sequence
        mismatch = await self._kind_of_refusal(node, health, exchange, timeout)
        if mismatch is not None:
            health.answered_at(exchange.completed, exchange.response_time)
            health.exceptions += 1
            outcome_name, readings, taken, fresh = self._mismatched(node, health, exchange, mismatch)
        else:
            outcome_name, readings, taken, fresh = self._account(node, health, exchange, timeout)
        now = self._reschedule(node, health, due)
        self._watch_poll(node, health, exchange, outcome_name, readings, fresh, previous)
        if fresh is not None:
            self._new_sample(node, fresh[0], fresh[1], taken, readings, now)
        else:
            if node.history:
                # The node's history ring holds the samples this poll missed: the backfill fetches
                # them once it answers, and the outage record says they did not arrive live. A
                # value-less reading now would say "no value" for a sample that gets one later.
                # (D readings stay: the node answered that it cannot deliver.)
                readings = [r for r in readings if r.quality is not Quality.COMMUNICATION_FAILURE]
            self._emit(node, [Sampled(0, taken, readings)])
        if self.trace is not None:
            self.trace(
                PollRecord(
                    config.name, due, exchange.sent, exchange.completed, outcome_name, timeout,
                    len(node.request.frame), node.request.reply_length, decided,
                )
            )

    def _reschedule(self, node: _Node, health: NodeHealth, due: float) -> float:
        """The node's next due time after a poll (backed off while it fails); returns the time it was decided."""
        interval = node.config.interval
        now = time.monotonic()
        if health.consecutive_failures:
            delay = backoff_delay(interval, health.consecutive_failures, self.bus.max_backoff)
            node.due = max(due + interval, now) if health.consecutive_failures == 1 else now + delay
            node.probe_due = now + PROBE_INTERVAL
        else:
            # From the due time, not from now: the interval does not drift.
            node.due = max(due + interval, now)
        health.timeout = node.timeout.current
        return now

    async def _poll_device(self, node: _Node, timeout: float) -> None:
        """One poll of a vendor device: its profile's merged reads in turn, decoded through the profile.

        No history ring: a failed poll gives value-less readings (flag B for no
        or a garbled answer, D for an exception or content that does not
        decode), and the outage watch records the gap. Never an old value.
        """
        config = node.config
        health = self.health[config.name]
        due = node.due
        exchanges: list[Exchange] = []
        if await self._ensure_open():
            for i, (_, request) in enumerate(node.reads):
                wait = timeout if i == 0 else self._reply_timeout(node, request.reply_length)
                exchange = await self._transact(request, wait)
                exchanges.append(exchange)
                if not isinstance(exchange.outcome, rtu.Registers):
                    break  # the rest of the poll would fail the same way: leave the bus to others
        else:
            now = time.monotonic()
            exchanges.append(Exchange(NoReply("io", self._not_open), now, now, now))
        health.polls += 1  # once done (see _poll)
        previous = node.sequence
        outcome_name, readings, taken, fresh = self._account_device(node, health, exchanges, due)
        self._reschedule(node, health, due)
        self._watch_poll(node, health, exchanges[0], outcome_name, readings, fresh, previous)
        self._emit(node, [Sampled(node.sequence, taken, readings)])
        if self.trace is not None:
            last = exchanges[-1]
            self.trace(
                PollRecord(
                    config.name, due, exchanges[0].sent, last.completed, outcome_name, timeout,
                    sum(len(r.frame) for _, r in node.reads[:len(exchanges)]),
                    sum(r.reply_length for _, r in node.reads[:len(exchanges)]),
                )
            )

    def _account_device(
        self, node: _Node, health: NodeHealth, exchanges: list[Exchange], due: float
    ) -> tuple[str, list[Reading], float, tuple[int, int] | None]:
        """_account for a vendor device: count, decode through the profile, or make the B/D readings."""
        config = node.config
        profile = config.profile
        assert profile is not None
        # The device answers from the value it holds when the (first) request has reached it.
        heard = exchanges[0].request_end + self.link.gap()
        last = exchanges[-1]
        outcome = last.outcome
        if len(exchanges) == len(node.reads) and isinstance(outcome, rtu.Registers):
            # One poll answered (health counts polls, however many requests a profile needs).
            health.answered_at(last.completed, exchanges[0].response_time)
            node.timeout.observe(exchanges[0].response_time)
            replies = {}
            for (read, _), exchange in zip(node.reads, exchanges, strict=True):
                assert isinstance(exchange.outcome, rtu.Registers)
                replies[read] = exchange.outcome.values
            try:
                decoded = profile.decode_quality(replies)
            except ProfileDecodeError as error:
                health.decode_errors += 1
                return self._device_failed(health, "decode error", str(error), node, heard, Quality.DEVICE_FAULT,
                                           answered=True)
            health.succeeded()
            slots = 1 if not node.sequence else max(1, round((due - node.sequence_due) / config.interval))
            node.sequence += slots
            node.sequence_due = due
            health.last_sequence = node.sequence
            health.new_samples += 1
            readings = [
                Reading(config.name, config.kind, name, value, profile.unit(name), quality, 0.0, node.sequence)
                for name, (value, quality) in decoded.items()
            ]
            if node.gust is not None:
                speed, quality = decoded["wind_speed"]
                gust = node.gust.add(heard, speed if quality is Quality.NORMAL else None)
                if gust is not None:
                    readings.append(Reading(config.name, config.kind, GUST_CHANNEL, gust, profile.unit("wind_speed"),
                                            Quality.NORMAL, 0.0, node.sequence))
            return "sample", readings, heard, (node.sequence, 0)
        if isinstance(outcome, rtu.Registers):  # cannot be: the loop stops at the first failure
            raise AssertionError("vendor poll ended early on a good reply")
        # A poll whose first requests were answered but not its last delivers nothing: a failed poll.
        name, detail, quality, answered = self._count_failure(health, node, last)
        return self._device_failed(health, name, detail, node, heard, quality, answered=answered)

    def _device_failed(
        self, health: NodeHealth, name: str, detail: str, node: _Node, heard: float, quality: Quality,
        answered: bool = False,
    ) -> tuple[str, list[Reading], float, None]:
        config = node.config
        profile = config.profile
        assert profile is not None
        if detail != health.last_error or health.consecutive_failures + 1 == 3:
            log.warning("bus %s device %s: %s: %s", self.bus.name, config.name, name, detail)
        health.failed(detail, answered)
        readings = [Reading(config.name, config.kind, q, None, profile.unit(q), quality, 0.0, 0)
                    for q in profile.quantities]
        return name, readings, heard, None
    async def _kind_of_refusal(
        self, node: _Node, health: NodeHealth, exchange: Exchange, timeout: float
    ) -> KindMismatch | None:
        """A poll refused with "illegal data address": is the node of another kind (a shorter register bank)?

        Asked of its node_kind register, once per episode: while the mismatch stands, the same
        refusal is taken as the same fault without asking again.
        """
        outcome = exchange.outcome
        if not isinstance(outcome, rtu.ExceptionReply) or outcome.code != _ILLEGAL_DATA_ADDRESS:
            return None
        if health.kind_mismatch:
            return KindMismatch(node.config.kind, health.kind_mismatch)
        # The node just answered: its full reply timeout, so that a busy host does not turn this into a miss.
        check_timeout = max(timeout, node.timeout.ceiling)
        check = await self.link.transact(node.kind_check, check_timeout)
        if self.trace is not None:  # bus time like any other transaction
            self.trace(PollRecord(node.config.name, check.sent, check.sent, check.completed, "kind check",
                                  check_timeout, len(node.kind_check.frame), node.kind_check.reply_length))
        if isinstance(check.outcome, rtu.Registers) and len(check.outcome.values) == 1:
            code = check.outcome.values[0]
            if code != node.code:
                return KindMismatch(node.config.kind, kind_name(code))
        return None

    def _mismatched(
        self, node: _Node, health: NodeHealth, exchange: Exchange, error: KindMismatch
    ) -> tuple[str, list[Reading], float, None]:
        """A node of another kind than configured: said once; no reading (its registers are not this kind's)."""
        if health.kind_mismatch != error.reported:
            log.error("bus %s node %s: %s", self.bus.name, node.config.name, error)
        health.kind_mismatch = error.reported
        health.failed(str(error), answered=True)
        return "kind mismatch", [], exchange.request_end + self.link.gap(), None

    def _watch_poll(
        self,
        node: _Node,
        health: NodeHealth,
        exchange: Exchange,
        outcome_name: str,
        readings: list[Reading],
        fresh: tuple[int, int] | None,
        previous: int,
    ) -> None:
        """Tell the node's OutageWatch what this poll showed; outages it closes go to on_outage."""
        heard = exchange.request_end + self.link.gap()
        if fresh is not None:
            sequence = fresh[0]
            gained = sequence - previous if 0 < previous < sequence else 1
            self._outages(node.watch.answered(heard, gained))
        elif outcome_name == "no new sample":
            self._outages(node.watch.answered(heard, 0))
        elif outcome_name == "kind mismatch":  # a configuration fault, not a flag of the data
            node.watch.failed(heard, f"kind mismatch: the node is a {health.kind_mismatch} node")
        else:
            flag = readings[0].quality.value if readings else Quality.COMMUNICATION_FAILURE.value
            node.watch.failed(heard, f"{flag}: {outcome_name}")
        self._show_outage(node, health)

    def _show_outage(self, node: _Node, health: NodeHealth) -> None:
        was_stale = health.stale
        health.stale = node.watch.stale
        health.outage = "" if node.watch.open is None else node.watch.open.reason
        if health.stale and not was_stale:
            log.warning("bus %s node %s: answers, but no new sample for %.0f s", self.bus.name, node.config.name,
                        node.watch.stale_after)

    def _probe_timeout(self, node: _Node) -> float:
        """Short, but not shorter than twice the node's usual response (a TCP gateway in front of it, say)."""
        wire = self.link.request_time(node.probe.reply_length)
        usual = 0.0 if node.timeout.srtt is None else 2 * node.timeout.srtt
        return min(max(wire + PROBE_SLACK, usual), max(node.timeout.ceiling, wire + MIN_SLACK))

    async def _probe(self, node: _Node, timeout: float, decided: float = math.nan) -> None:
        """A cheap read of a suspect node: if it answers, it is polled at once (see health.choose)."""
        try:
            await self._probe_node(node, timeout, decided)
        finally:
            node.slot = None  # its probe_due, due time or health changed: the scheduler's view is rebuilt

    async def _probe_node(self, node: _Node, timeout: float, decided: float) -> None:
        health = self.health[node.config.name]
        health.probes += 1
        if await self._ensure_open():
            exchange = await self._transact(node.probe, timeout)
        else:
            now = time.monotonic()
            exchange = Exchange(NoReply("io", self._not_open), now, now, now)
        outcome = exchange.outcome
        now = time.monotonic()
        if isinstance(outcome, NoReply):
            node.probe_due = now + PROBE_INTERVAL
        else:
            # Something answered at its address (even an exception or a damaged frame): poll it now,
            # as a node that deserves its full timeout; the poll tells the rest.
            health.probes_answered += 1
            health.consecutive_failures = 0
            node.due = now
            node.probe_due = math.inf
            log.info("bus %s node %s: answers again (probe)", self.bus.name, node.config.name)
            if isinstance(outcome, rtu.Registers):
                self._outages(node.watch.answered(exchange.request_end + self.link.gap(), 0))
                self._show_outage(node, health)
        if self.trace is not None:
            name = "probe" if not isinstance(outcome, NoReply) else f"probe: {_outcome_name(outcome)}"
            self.trace(
                PollRecord(node.config.name, exchange.sent, exchange.sent, exchange.completed, name, timeout,
                           len(node.probe.frame), node.probe.reply_length, decided)
            )

    def _outages(self, outages: list[NodeOutage]) -> None:
        for o in outages:
            log.info("bus %s node %s: outage %s, %.1f s (%s)", self.bus.name, o.node,
                     "over" if o.closed else "still open", o.end - o.start, o.reason)
        self._held_outages.extend(outages)
        del self._held_outages[:-_MAX_HELD_GAPS]
        self._release_outages()

    def _release_outages(self) -> None:
        """Outages with wall-clock times, once the clock is valid (as gaps and readings)."""
        if not self._held_outages or not self.clock.valid():
            return
        offset = self.clock.offset()
        outages = [replace(o, start=o.start + self._offset_before(o.node, o.start, offset), end=o.end + offset)
                   for o in self._held_outages]
        self._held_outages.clear()
        if self.on_outage is not None:
            self._hand_over()  # the readings before it go first, as they came
            self.on_outage(outages)

    def _offset_before(self, name: str, start: float, offset: float) -> float:
        """The wall clock's offset for a moment before now: that of the node's last stamped sample, if taken by
        then. An outage starts at the node's last answer, dated with the offset its samples had then; the
        offset now would put its start off the readings before it by any step of the clock since (NTP on a
        Pi without an RTC), as for gaps (_release_gaps)."""
        node = self._names.get(name)
        if node is None or node.stamped is None or node.stamped[0] > start:
            return offset
        return node.stamped[1] - node.stamped[0]

    def _account(
        self, node: _Node, health: NodeHealth, exchange: Exchange, timeout: float
    ) -> tuple[str, list[Reading], float, tuple[int, int] | None]:
        """Count what happened; return the outcome's name, the readings, their monotonic time and,
        for a new sample, its sequence number and the node's history_oldest."""
        config = node.config
        outcome = exchange.outcome
        # The node answers from the sample it has when the request has reached it
        # (end of the request on the wire, plus t3.5 to see that the frame ended).
        heard = exchange.request_end + self.link.gap()
        if isinstance(outcome, rtu.Registers):
            health.answered_at(exchange.completed, exchange.response_time)
            node.timeout.observe(exchange.response_time)
            try:
                sample = decode_inputs(config.kind, outcome.values)
            except KindMismatch as error:
                return self._mismatched(node, health, exchange, error)
            except DecodeError as error:
                health.decode_errors += 1
                return self._failed(
                    health, "decode error", str(error), config, heard, Quality.DEVICE_FAULT, answered=True
                )
            health.succeeded()
            if health.kind_mismatch:
                log.info("bus %s node %s: now answers as a %s node, as configured", self.bus.name, config.name,
                         config.kind)
                health.kind_mismatch = ""
            diag = sample.diagnostics
            health.node_crc_errors = diag["crc_errors"]
            health.node_sensor_errors = diag["sensor_errors"]
            if health.observe_diagnostics(sample.sequence, diag["uptime"], diag["boot_count"]):
                log.warning("bus %s node %s: restarted (sequence, uptime or boot count went back)",
                            self.bus.name, config.name)
                node.rebooted = True
                node.window = None  # history_seq is not kept across a restart
            if sample.sequence == 0 or sample.sequence == health.last_sequence:
                health.last_sequence = sample.sequence
                health.stale_polls += 1
                return "no new sample", [], heard, None
            health.last_sequence = sample.sequence
            health.new_samples += 1
            taken = heard - diag["sample_age"] / 1000
            readings = to_readings(config.name, config.kind, sample, 0.0)
            return "sample", readings, taken, (sample.sequence, diag["history_oldest"])
        name, detail, quality, answered = self._count_failure(health, node, exchange)
        return self._failed(health, name, detail, config, heard, quality, answered=answered)

    @staticmethod
    def _count_failure(health: NodeHealth, node: _Node, exchange: Exchange) -> tuple[str, str, Quality, bool]:
        """A transaction that delivered no registers, counted in the node's health: the outcome's name, what
        went wrong, the quality of the readings it leaves, and whether the node answered at all."""
        outcome = exchange.outcome
        if isinstance(outcome, rtu.ExceptionReply):
            # The node is there and answering; it just cannot deliver.
            health.answered_at(exchange.completed, exchange.response_time)
            health.exceptions += 1
            quality = (
                Quality.COMMUNICATION_FAILURE if outcome.code in _COMMUNICATION_EXCEPTIONS else Quality.DEVICE_FAULT
            )
            return f"exception {outcome.code}", f"exception reply: {outcome.name}", quality, True
        if isinstance(outcome, NoReply):
            if outcome.reason == "timeout":
                health.timeouts += 1
                node.timeout.expired()
                return "timeout", outcome.detail, Quality.COMMUNICATION_FAILURE, False
            health.io_errors += 1
            return "io", outcome.detail, Quality.COMMUNICATION_FAILURE, False
        if isinstance(outcome, rtu.FrameError):
            if outcome.problem == "crc":
                health.crc_errors += 1
            else:
                health.framing_errors += 1
            return outcome.problem, outcome.detail, Quality.COMMUNICATION_FAILURE, False
        # Bits or WriteAck to a register read: a node that answers something else.
        health.framing_errors += 1
        return "function", f"unexpected reply {outcome!r}", Quality.COMMUNICATION_FAILURE, False

    def _failed(
        self,
        health: NodeHealth,
        name: str,
        detail: str,
        config: NodeConfig,
        heard: float,
        quality: Quality,
        answered: bool = False,
    ) -> tuple[str, list[Reading], float, None]:
        # Log the first of a run of the same problem, and the node going offline; not every poll.
        # A port that is not open is the bus's problem, said by the bus (_ensure_open), not by every node.
        bus_said = name == "io" and detail == self._not_open
        if not bus_said and (detail != health.last_error or health.consecutive_failures + 1 == 3):
            log.warning("bus %s node %s: %s: %s", self.bus.name, config.name, name, detail)
        health.failed(detail, answered)
        return name, missing_readings(config.name, config.kind, 0.0, quality), heard, None

    # -- backfill -----------------------------------------------------------------------------
    def _resume(self) -> None:
        """Once per poller: where each node's deliveries stopped last time (see resume_from)."""
        if self._resumed or self.resume_from is None:
            self._resumed = True
            return
        self._resumed = True
        for n in self._nodes:
            try:
                last = self.resume_from(n.config.name)
            except Exception:  # a store that cannot answer costs the backfill, not the polling
                log.exception("bus %s node %s: cannot tell where to resume", self.bus.name, n.config.name)
                last = None
            n.backfill = Backfill(last)
            if last is not None:
                log.info("bus %s node %s: resuming after sample %d", self.bus.name, n.config.name, last)

    def _new_sample(
        self, node: _Node, sequence: int, oldest: int, taken: float, readings: list[Reading], now: float
    ) -> None:
        cursor = node.backfill
        was_busy = cursor.busy
        rebooted, node.rebooted = node.rebooted, False
        missed_before = cursor.stats.missed
        items = cursor.sample(sequence, oldest, taken, readings, rebooted)
        if was_busy and node.episode is not None and cursor.stats.missed > missed_before:
            # A poll skipped a sample while the backfill ran (a late poll on a busy host): the story says so, so
            # that what the start and this line announced is what the end accounts for.
            log.info("bus %s node %s: %d more samples missed during the backfill, fetching them too",
                     self.bus.name, node.config.name, cursor.stats.missed - missed_before)
        if cursor.busy and not node.history:
            items.extend(cursor.abandon(UNAVAILABLE))
        if cursor.busy and not was_busy:
            node.backfill_since = now
            if node.episode is None:
                node.episode = (cursor.stats.fetched, cursor.stats.lost)
                log.info("bus %s node %s: %d samples missed, fetching them from its history",
                         self.bus.name, node.config.name, cursor.waiting)
        self._emit(node, items)
        self._episode_over(node, "backfill done")  # a poll can end it too (a restart ends what was fetchable)

    def _emit(self, node: _Node, items: list[Sampled[list[Reading]] | Lost]) -> None:
        """Deliver in order: readings stamped at their sample's time, lost samples as gaps."""
        self._release_gaps()
        self._release_outages()
        ready: list[Reading] = []
        for item in items:
            if isinstance(item, Lost):
                if ready:
                    self._ready(ready)
                    ready = []
                self._lost(node, item)
            else:
                stamped = self.stamper.stamp(item.taken, item.payload)
                if stamped and item.payload:
                    node.stamped = (item.taken, stamped[-1].timestamp)
                ready.extend(stamped)
        if not items:
            ready = self.stamper.stamp(time.monotonic(), [])  # what the stamper held, once the clock is valid
        if ready:
            self._ready(ready)

    def _outgrows_batch(self, name: str, now: float) -> bool:
        """Whether the batch would be older than batch_s by the end of the node's poll, as the scheduler sizes it
        when the node answers (its Slot: the request and t3.5, and the shortest timeout its reply fits in)."""
        n = self._by_name(name)
        slot = n.slot if n.slot is not None else self._slot_of(n)
        return now + slot.overhead + slot.floor - self._batch_since >= self.batch_s

    def _ready(self, readings: list[Reading]) -> None:
        """Stamped readings: to deliver now, or into the batch (batch_s)."""
        if self.batch_s <= 0:
            self.deliver(readings)
            return
        now = time.monotonic()
        if not self._batch:
            self._batch_since = now
        self._batch += readings
        if now - self._batch_since >= self.batch_s:
            self._hand_over()

    def _hand_over(self) -> None:
        """Deliver the batch (see batch_s)."""
        if self._batch:
            batch, self._batch = self._batch, []
            self.deliver(batch)

    def _lost(self, node: _Node, lost: Lost) -> None:
        config = node.config
        if lost.count is None:
            node.episode_unknown += node.episode is not None
            log.warning("bus %s node %s: the samples from %d on that it took before it restarted are lost (%s; "
                        "how many is unknown)", self.bus.name, config.name, lost.first, lost.reason)
        else:
            log.warning("bus %s node %s: samples %d..%d (%d) are lost (%s)", self.bus.name, config.name,
                        lost.first, lost.first + lost.count - 1, lost.count, lost.reason)
        self._held_gaps.append((node, lost))
        if len(self._held_gaps) > _MAX_HELD_GAPS:
            del self._held_gaps[0]
        self._release_gaps()

    def _release_gaps(self) -> None:
        """Gaps with wall-clock times, once the clock is valid (as the Stamper does for readings)."""
        if not self._held_gaps or not self.clock.valid():
            return
        offset = self.clock.offset()
        gaps = []
        for n, lost in self._held_gaps:
            start = lost.start + offset
            if n.stamped is not None and n.stamped[0] == lost.start:
                start = min(n.stamped[1], lost.end + offset)  # the sample before, as its reading was dated
            c = n.config
            gaps.append(Gap(c.name, c.kind, start, lost.end + offset, lost.first, lost.last, lost.reason))
        self._held_gaps.clear()
        if self.on_gap is not None:
            self._hand_over()  # the readings before it go first, as they came
            self.on_gap(gaps)

    def _backfill_candidate(self, now: float, starving: bool = False) -> _Node | None:
        """The node whose backlog waited longest, among those that answer; with starving, only one that
        found no free bus time for _BACKFILL_STARVE_AFTER seconds."""
        best: _Node | None = None
        for n in self._nodes:
            if not n.backfill.busy:
                continue
            health = self.health[n.config.name]
            if not health.answered or not health.online:
                # Offline: no use asking for its history; and the time it is away does
                # not count as waiting for bus time.
                n.backfill_since = now
                continue
            if health.consecutive_failures:
                # One failed poll just now (a CRC error, say): not this moment, but the
                # wait keeps counting, or a node with intermittent errors would never
                # get its history read on a busy bus.
                continue
            if now < n.backfill_after:
                continue
            if starving and now - n.backfill_since < _BACKFILL_STARVE_AFTER:
                continue
            if best is None or n.backfill_since < best.backfill_since:
                best = n
        return best

    def _backfill_retry(self, now: float) -> float:
        """When a backfill that is pausing after a failure may try again (inf: none is)."""
        return min((n.backfill_after for n in self._nodes if n.backfill.busy and n.backfill_after > now),
                   default=math.inf)

    def _reply_timeout(self, node: _Node, reply_length: int) -> float:
        """The node's adaptive timeout, for a reply of another length than its poll's."""
        wire = self.link.request_time
        extra = wire(reply_length) - wire(node.request.reply_length)
        return max(node.timeout.current + extra, wire(reply_length) + MIN_SLACK)

    def _expected(self, node: _Node, request: rtu.Request) -> float:
        """Bus time a transaction of a node that answers takes: request, turnaround, reply, silence."""
        wire = self.link.request_time
        srtt = node.timeout.srtt
        turnaround = MIN_SLACK if srtt is None else max(0.0, srtt - wire(node.request.reply_length))
        return wire(len(request.frame)) + turnaround + wire(request.reply_length) + self.link.gap()

    async def _backfill(self, node: _Node, budget: float | None) -> bool:
        """Fetch the next history records of node, in budget seconds of bus time (None: no limit).

        Returns False when nothing was sent (nothing fits the budget).
        """
        cursor = node.backfill
        config = node.config
        per_window = regmap.history_records(node.code)
        size = regmap.history_record_words(node.code)
        want = cursor.fetch(self.bus.backfill_records or per_window)
        if want is None:
            return False
        start = want.start
        window = node.window
        write: rtu.Request | None = None
        if window is not None and window <= start < window + per_window:
            offset = start - window
        else:
            offset = 0
            write = rtu.write_registers(config.unit_id, _HISTORY_SEQ, [start >> 16, start & 0xFFFF])
        count = min(len(want), per_window - offset)

        def read(n: int) -> rtu.Request:
            return rtu.read_registers(
                config.unit_id, rtu.READ_INPUT_REGISTERS, regmap.HISTORY_BASE + offset * size, n * size
            )

        # Sized on the time a node that answers takes; the timeouts end at the deadline, so a
        # node that does not answer costs the next poll nothing either.
        deadline = math.inf if budget is None else time.monotonic() + budget

        def fitting(count: int, spent: float) -> int:
            left = deadline - time.monotonic() - spent
            while count and self._expected(node, read(count)) > left:
                count -= 1
            return count

        count = fitting(count, self._expected(node, write) if write is not None else 0.0)
        if not count:
            return False
        if write is not None:
            outcome = (await self._history_transact(node, write, "history_seq", deadline)).outcome
            if isinstance(outcome, rtu.WriteAck):
                node.window = start
            else:
                self._history_failed(node, outcome)
                return True
            count = fitting(count, 0.0)  # the write may have taken longer than expected
            if not count:
                return True
        exchange = await self._history_transact(node, read(count), f"history {count}", deadline)
        outcome = exchange.outcome
        if not isinstance(outcome, rtu.Registers):
            self._history_failed(node, outcome)
            return True
        try:
            records = decode_history(config.kind, outcome.values)
        except DecodeError as error:
            self._history_failed(node, rtu.FrameError("content", str(error)))
            return True
        # Each record's age is counted when the node handles the request, as for a poll.
        heard = exchange.request_end + self.link.gap()
        items = [
            None if r is None else Sampled(
                r.sequence, heard - r.age_ms / 1000, to_readings(config.name, config.kind, r.sample, 0.0)
            )
            for r in records
        ]
        emitted = cursor.records(start, items)
        if emitted is None:
            # Not the window we asked for (the node restarted?): write history_seq again.
            node.window = None
            self._history_failed(node, rtu.FrameError("content", "history records out of place"))
            return True
        node.backfill_failures = 0
        node.backfill_since = time.monotonic()
        self._emit(node, emitted)
        self._episode_over(node, "backfill done")
        return True

    def _episode_over(self, node: _Node, how: str) -> None:
        """Once nothing is left to fetch: one line with this episode's own counts (not the run's)."""
        if node.backfill.busy or node.episode is None:
            return
        stats = node.backfill.stats
        fetched, lost = stats.fetched - node.episode[0], stats.lost - node.episode[1]
        unknown = ", and an unknown number taken before a restart" if node.episode_unknown else ""
        log.info("bus %s node %s: %s: %d missed samples fetched, %d lost%s", self.bus.name, node.config.name,
                 how, fetched, lost, unknown)
        node.episode, node.episode_unknown = None, 0

    async def _history_transact(self, node: _Node, request: rtu.Request, what: str, deadline: float) -> Exchange:
        node.backfill.stats.requests += 1
        decided = time.monotonic()  # the trace's "due" of a history transaction: when it was sized to fit
        timeout = self._reply_timeout(node, request.reply_length)
        if deadline < math.inf:
            wire = self.link.request_time
            ends = time.monotonic() + wire(len(request.frame)) + self.link.gap()
            timeout = max(min(timeout, deadline - ends), wire(request.reply_length) + MIN_SLACK / 2)
        exchange = await self._transact(request, timeout)
        if self.trace is not None:
            outcome = exchange.outcome
            ok = isinstance(outcome, rtu.Registers | rtu.WriteAck)
            name = what if ok else f"{what}: {_outcome_name(outcome)}"
            self.trace(
                PollRecord(
                    node.config.name, decided, exchange.sent, exchange.completed, name, timeout,
                    len(request.frame), request.reply_length,
                )
            )
        return exchange

    def _history_failed(self, node: _Node, outcome: Outcome) -> None:
        config = node.config
        cursor = node.backfill
        cursor.stats.failures += 1
        if isinstance(outcome, rtu.ExceptionReply) and outcome.code in _NO_HISTORY_EXCEPTIONS:
            log.warning("bus %s node %s: no history window (%s): missed samples cannot be fetched",
                        self.bus.name, config.name, outcome.name)
            node.history = False
            self._emit(node, cursor.abandon(UNAVAILABLE))
            self._episode_over(node, "backfill impossible")
            return
        node.backfill_failures += 1
        node.backfill_after = time.monotonic() + config.interval
        if node.backfill_failures >= _BACKFILL_MAX_FAILURES:
            log.warning("bus %s node %s: history reads keep failing (%s): giving up this backfill",
                        self.bus.name, config.name, _outcome_name(outcome))
            node.backfill_failures = 0
            self._emit(node, cursor.abandon(UNAVAILABLE))
            self._episode_over(node, "backfill given up")


def _make_link(bus: BusConfig) -> Link:
    if bus.transport == "tcp":
        return TcpLink(bus.host, bus.tcp_port, ceiling=bus.timeout)
    if bus.transport != "rtu":
        raise ValueError(f"bus {bus.name}: unknown transport {bus.transport!r}")
    return RtuLink(bus.port, bus.baud, bus.parity, bus.stopbits, local_echo=bus.local_echo)


def _outcome_name(outcome: Outcome) -> str:
    if isinstance(outcome, NoReply):
        return outcome.reason if outcome.reason == "timeout" else f"io: {outcome.detail}"
    if isinstance(outcome, rtu.ExceptionReply):
        return f"exception {outcome.code}"
    if isinstance(outcome, rtu.FrameError):
        return outcome.problem
    return type(outcome).__name__
