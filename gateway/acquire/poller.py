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
new sample): a failed poll gives value None with flag B (no reply, bad
frame) or D (the node reported a fault), never a repeat of an old value.
Errors are values: a CRC failure or a timeout is counted in the node's
health and the loop goes on; so does a port that fails (reopened with
backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from firmware import regmap
from gateway.acquire.decode import KIND_BY_NAME, DecodeError, decode_inputs, missing_readings, to_readings
from gateway.acquire.health import (
    MIN_SLACK,
    AdaptiveTimeout,
    NodeHealth,
    Poll,
    Slot,
    backoff_delay,
    choose,
)
from gateway.acquire.link import Exchange, Link, NoReply, RtuLink, TcpLink
from gateway.acquire.timestamps import Clock, Stamper
from gateway.model import Quality, Reading
from gateway.protocols import modbus_rtu_master as rtu

__all__ = ["BusConfig", "BusPoller", "NodeConfig", "NodeHealth", "PollRecord"]

log = logging.getLogger(__name__)

# Exceptions that say nothing about the sensor: busy (6, passing), and a TCP
# gateway's "path unavailable" (10) and "target failed to respond" (11), which
# are a dead line behind it. These give flag B; any other exception means the
# node cannot deliver the sample (flag D).
_COMMUNICATION_EXCEPTIONS = (6, 10, 11)
_REOPEN_MAX = 30.0  # seconds between attempts to reopen a failed port, at most


@dataclass(frozen=True)
class NodeConfig:
    name: str
    kind: str
    unit_id: int
    interval: float = 1.0  # seconds between polls
    timeout: float | None = None  # upper bound of the adaptive reply timeout; None: the bus's


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


Deliver = Callable[[list[Reading]], None]
Trace = Callable[[PollRecord], None]


class _Node:
    """Per-node schedule state kept by the poller."""

    def __init__(self, config: NodeConfig, request: rtu.Request, timeout: AdaptiveTimeout, due: float) -> None:
        self.config = config
        self.request = request
        self.timeout = timeout
        self.due = due


class BusPoller:
    def __init__(
        self,
        bus: BusConfig,
        deliver: Deliver,
        clock: Clock | None = None,
        link: Link | None = None,
        trace: Trace | None = None,
    ) -> None:
        self.bus = bus
        self.deliver = deliver
        self.clock = clock or Clock()
        self.stamper = Stamper(self.clock)
        self.trace = trace
        self.link: Link = link or _make_link(bus)
        self.health: dict[str, NodeHealth] = {}
        self._nodes: list[_Node] = []
        for node in bus.nodes:
            if node.kind not in KIND_BY_NAME:
                raise ValueError(f"bus {bus.name}: node {node.name}: unknown kind {node.kind!r}")
            count = regmap.input_count(KIND_BY_NAME[node.kind])
            request = rtu.read_registers(node.unit_id, rtu.READ_INPUT_REGISTERS, 0, count)
            ceiling = node.timeout if node.timeout is not None else bus.timeout
            reply_wire = self.link.request_time(request.reply_length)
            timeout = AdaptiveTimeout(floor=reply_wire + MIN_SLACK, ceiling=ceiling)
            self._nodes.append(_Node(node, request, timeout, 0.0))
            self.health[node.name] = NodeHealth(timeout=timeout.current)
        self._adhoc: asyncio.Queue[tuple[rtu.Request, float, asyncio.Future[Exchange]]] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._reopen_at = 0.0
        self._reopen_delay = 0.5

    # -- the owner's loop ----------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Poll until stop is set. Never raises for bus trouble: it is counted in health."""
        loop = asyncio.get_running_loop()
        watcher = loop.create_task(self._watch(stop))
        now = time.monotonic()
        for n in self._nodes:
            n.due = now
        await self._ensure_open()
        try:
            while not stop.is_set():
                if not self._adhoc.empty():
                    await self._serve_adhoc()
                    continue
                decision = choose(self._slots(), time.monotonic(), starve_after=self.bus.max_backoff)
                if isinstance(decision, Poll):
                    await self._poll(self._by_name(decision.name), decision.timeout)
                    continue
                wait = decision.until - time.monotonic()
                if wait > 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), min(wait, 60.0))
        finally:
            watcher.cancel()
            self.link.close()
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
        exchange = await self.link.transact(request, timeout)
        if not future.done():
            future.set_result(exchange)

    def _slots(self) -> list[Slot]:
        gap = self.link.gap()
        return [
            Slot(
                n.config.name,
                n.due,
                self.health[n.config.name].reliable,
                n.timeout.current,
                n.timeout.floor,
                self.link.request_time(len(n.request.frame)) + gap,
            )
            for n in self._nodes
        ]

    def _by_name(self, name: str) -> _Node:
        for n in self._nodes:
            if n.config.name == name:
                return n
        raise KeyError(name)

    async def _ensure_open(self) -> bool:
        if self.link.is_open:
            return True
        now = time.monotonic()
        if now < self._reopen_at:
            return False
        try:
            await self.link.open()
        except OSError as error:
            log.warning("bus %s: %s (retrying in %.1f s)", self.bus.name, error, self._reopen_delay)
            self._reopen_at = now + self._reopen_delay
            self._reopen_delay = min(self._reopen_delay * 2, _REOPEN_MAX)
            return False
        self._reopen_delay = 0.5
        return True

    # -- one poll ---------------------------------------------------------------------------
    async def _poll(self, node: _Node, timeout: float) -> None:
        config = node.config
        health = self.health[config.name]
        health.polls += 1
        due = node.due
        if await self._ensure_open():
            exchange = await self.link.transact(node.request, timeout)
        else:
            now = time.monotonic()
            exchange = Exchange(NoReply("io", f"{self.bus.address} is not open"), now, now, now)
        outcome_name, readings, taken = self._account(node, health, exchange, timeout)
        now = time.monotonic()
        if health.consecutive_failures:
            delay = backoff_delay(config.interval, health.consecutive_failures, self.bus.max_backoff)
            node.due = max(due + config.interval, now) if health.consecutive_failures == 1 else now + delay
        else:
            # From the due time, not from now: the interval does not drift.
            node.due = max(due + config.interval, now)
        health.timeout = node.timeout.current
        ready = self.stamper.stamp(taken, readings)
        if ready:
            self.deliver(ready)
        if self.trace is not None:
            self.trace(
                PollRecord(
                    config.name, due, exchange.sent, exchange.completed, outcome_name, timeout,
                    len(node.request.frame), node.request.reply_length,
                )
            )

    def _account(
        self, node: _Node, health: NodeHealth, exchange: Exchange, timeout: float
    ) -> tuple[str, list[Reading], float]:
        """Count what happened; return the outcome's name, the readings and their monotonic time."""
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
            except DecodeError as error:
                health.decode_errors += 1
                return self._failed(
                    health, "decode error", str(error), config, heard, Quality.DEVICE_FAULT, answered=True
                )
            health.succeeded()
            diag = sample.diagnostics
            health.node_crc_errors = diag["crc_errors"]
            health.node_sensor_errors = diag["sensor_errors"]
            if health.observe_diagnostics(sample.sequence, diag["uptime"], diag["boot_count"]):
                log.warning("bus %s node %s: restarted (sequence, uptime or boot count went back)",
                            self.bus.name, config.name)
            if sample.sequence == 0 or sample.sequence == health.last_sequence:
                health.last_sequence = sample.sequence
                health.stale_polls += 1
                return "no new sample", [], heard
            health.last_sequence = sample.sequence
            health.new_samples += 1
            taken = heard - diag["sample_age"] / 1000
            return "sample", to_readings(config.name, config.kind, sample, 0.0), taken
        if isinstance(outcome, rtu.ExceptionReply):
            # The node is there and answering; it just cannot deliver.
            health.answered_at(exchange.completed, exchange.response_time)
            health.exceptions += 1
            quality = (
                Quality.COMMUNICATION_FAILURE if outcome.code in _COMMUNICATION_EXCEPTIONS else Quality.DEVICE_FAULT
            )
            name = f"exception {outcome.code}"
            return self._failed(
                health, name, f"exception reply: {outcome.name}", config, heard, quality, answered=True
            )
        if isinstance(outcome, NoReply):
            if outcome.reason == "timeout":
                health.timeouts += 1
                node.timeout.expired()
                name = "timeout"
            else:
                health.io_errors += 1
                name = "io"
            return self._failed(health, name, outcome.detail, config, heard, Quality.COMMUNICATION_FAILURE)
        if isinstance(outcome, rtu.FrameError):
            if outcome.problem == "crc":
                health.crc_errors += 1
            else:
                health.framing_errors += 1
            return self._failed(health, outcome.problem, outcome.detail, config, heard,
                                Quality.COMMUNICATION_FAILURE)
        # Bits or WriteAck to a register read: a node that answers something else.
        health.framing_errors += 1
        return self._failed(health, "function", f"unexpected reply {outcome!r}", config, heard,
                            Quality.COMMUNICATION_FAILURE)

    def _failed(
        self,
        health: NodeHealth,
        name: str,
        detail: str,
        config: NodeConfig,
        heard: float,
        quality: Quality,
        answered: bool = False,
    ) -> tuple[str, list[Reading], float]:
        # Log the first of a run of the same problem, and the node going offline; not every poll.
        if detail != health.last_error or health.consecutive_failures + 1 == 3:
            log.warning("bus %s node %s: %s: %s", self.bus.name, config.name, name, detail)
        health.failed(detail, answered)
        return name, missing_readings(config.name, config.kind, 0.0, quality), heard


def _make_link(bus: BusConfig) -> Link:
    if bus.transport == "tcp":
        return TcpLink(bus.host, bus.tcp_port, ceiling=bus.timeout)
    if bus.transport != "rtu":
        raise ValueError(f"bus {bus.name}: unknown transport {bus.transport!r}")
    return RtuLink(bus.port, bus.baud, bus.parity, bus.stopbits, local_echo=bus.local_echo)
