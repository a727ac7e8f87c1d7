"""The running gateway: a poller per bus feeding the store, stopped by an event."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.acquire.poller import BusPoller
from gateway.deliver.sqlite_store import SqliteStore
from gateway.model import Reading
from gateway.ops.config import GatewayConfig


class Gateway:
    def __init__(self, config: GatewayConfig, on_readings: Callable[[list[Reading]], None] | None = None) -> None:
        self.config = config
        self.store = SqliteStore(config.store_path)
        self.on_readings = on_readings
        self.pollers = [BusPoller(bus, self._deliver) for bus in config.buses]
        self.stored = 0

    def _deliver(self, readings: list[Reading]) -> None:
        self.stored += self.store.write(readings)
        if self.on_readings is not None:
            self.on_readings(readings)

    def store_counts(self) -> dict[str, int]:
        reader = SqliteStore(self.config.store_path)
        try:
            return reader.count_by_node()
        finally:
            reader.close()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for poller in self.pollers:
                    group.create_task(poller.run(stop))
        finally:
            self.store.close()
