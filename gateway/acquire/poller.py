"""The bus owner: one asyncio task per serial port polls its nodes with pymodbus.

A bus is one shared medium, so requests on it are strictly sequential; buses
run concurrently. Each node is read with a single request covering its
diagnostics and measurements (regmap.input_count), decoded through the
register map, and timestamped at acquisition minus the node's reported
sample age.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ModbusException

from firmware import regmap
from gateway.acquire.decode import KIND_BY_NAME, DecodeError, decode_inputs, missing_readings, to_readings
from gateway.model import Reading

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeConfig:
    name: str
    kind: str
    unit_id: int
    interval: float = 1.0  # seconds between polls


@dataclass(frozen=True)
class BusConfig:
    name: str
    port: str
    nodes: tuple[NodeConfig, ...]
    baud: int = 9600
    parity: str = "N"
    stopbits: int = 1
    timeout: float = 0.5  # seconds to wait for a reply


@dataclass
class NodeHealth:
    polls: int = 0
    answered: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    new_samples: int = 0
    reboots: int = 0
    last_sequence: int = -1
    last_latency: float = 0.0
    last_error: str = ""

    @property
    def online(self) -> bool:
        return self.answered > 0 and self.consecutive_failures < 3


Deliver = Callable[[list[Reading]], None]


@dataclass
class BusPoller:
    bus: BusConfig
    deliver: Deliver
    wall_clock: Callable[[], float] = time.time
    health: dict[str, NodeHealth] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for node in self.bus.nodes:
            if node.kind not in KIND_BY_NAME:
                raise ValueError(f"bus {self.bus.name}: node {node.name}: unknown kind {node.kind!r}")
            self.health[node.name] = NodeHealth()
        self.client = AsyncModbusSerialClient(
            self.bus.port,
            baudrate=self.bus.baud,
            bytesize=8,
            parity=self.bus.parity,
            stopbits=self.bus.stopbits,
            timeout=self.bus.timeout,
            retries=0,
        )

    async def run(self, stop: asyncio.Event) -> None:
        if not await self.client.connect():
            raise ConnectionError(f"bus {self.bus.name}: cannot open serial port {self.bus.port}")
        loop = asyncio.get_running_loop()
        due = {node.name: loop.time() for node in self.bus.nodes}
        try:
            while not stop.is_set():
                node = min(self.bus.nodes, key=lambda n: due[n.name])
                wait = due[node.name] - loop.time()
                if wait > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), wait)
                        break
                    except TimeoutError:
                        pass
                # Schedule from the due time, not from now, so the interval does not drift.
                due[node.name] = max(due[node.name] + node.interval, loop.time())
                readings = await self.poll(node)
                if readings:
                    self.deliver(readings)
        finally:
            self.client.close()

    async def poll(self, node: NodeConfig) -> list[Reading]:
        health = self.health[node.name]
        health.polls += 1
        count = regmap.input_count(KIND_BY_NAME[node.kind])
        started = time.monotonic()
        try:
            response = await self.client.read_input_registers(0, count=count, device_id=node.unit_id)
            if response.isError():
                raise ModbusException(f"exception response {response}")
            sample = decode_inputs(node.kind, response.registers)
        except (ModbusException, DecodeError, OSError) as error:
            health.failures += 1
            health.consecutive_failures += 1
            health.last_error = str(error)
            log.warning("bus %s node %s: %s", self.bus.name, node.name, error)
            return missing_readings(node.name, node.kind, self.wall_clock())
        received = self.wall_clock()
        health.answered += 1
        health.consecutive_failures = 0
        health.last_latency = time.monotonic() - started
        if sample.sequence == 0 or sample.sequence == health.last_sequence:
            return []  # no sample yet, or none new since the last poll
        if 0 <= sample.sequence < health.last_sequence:
            health.reboots += 1
            log.warning("bus %s node %s: sequence went back, the node restarted", self.bus.name, node.name)
        health.last_sequence = sample.sequence
        health.new_samples += 1
        taken = received - sample.diagnostics["sample_age"] / 1000
        return to_readings(node.name, node.kind, sample, taken)
