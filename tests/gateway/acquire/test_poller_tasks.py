"""What the bus owner's loop costs per poll in tasks (issue 13: CPU per poll), on a simulated bus."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.acquire.poller import BusPoller
from gateway.model import Reading
from simulator.site import NodeSpec
from tests.gateway.acquire.test_bus_polling import config, simulated
from tests.support.task_count import TaskCount
from tests.support.waiting import wait_until_async


async def test_waiting_between_polls_creates_no_task(tmp_path: Path) -> None:
    delivered: list[Reading] = []
    with simulated(tmp_path, NodeSpec("dust", 1)) as (_, port):
        poller = BusPoller(config(port, ("dust", 1, 0.1)), delivered.extend)
        tasks = TaskCount()
        stop = asyncio.Event()
        tasks.start()
        try:
            running = asyncio.create_task(poller.run(stop))
            await wait_until_async(lambda: poller.health["dust-1"].polls >= 15, timeout=30.0)
            stop.set()
            await asyncio.wait_for(running, 5)
        finally:
            tasks.stop()
    # The run and its watcher of stop; the wait between two polls was a task of its own (wait_for).
    assert tasks.created <= 2, tasks.created
