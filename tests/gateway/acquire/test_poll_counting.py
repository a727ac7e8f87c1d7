"""A poll counts once it is done: health read while one is in flight (a health report, /status) must not
count it, or it passes for a success (success_rate 1.0 reported for a node that had gone offline)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.acquire.poller import BusPoller, PollRecord
from simulator.site import NodeSpec
from tests.gateway.acquire.test_bus_polling import config, remove_from_line, simulated
from tests.support.waiting import wait_until_async


async def test_a_poll_in_flight_is_not_counted_yet(tmp_path: Path) -> None:
    trace: list[PollRecord] = []
    with simulated(tmp_path, NodeSpec("dust", 1)) as (site, port):
        remove_from_line(site, 1)  # every poll waits for its whole timeout: long in flight
        poller = BusPoller(config(port, ("dust", 1, 0.2), timeout=0.3), lambda readings: None, trace=trace.append)
        health = poller.health["dust-1"]
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        seen: list[tuple[int, int]] = []  # (polls counted, polls finished) as a reader sees them meanwhile
        try:

            def enough() -> bool:
                finished = sum(1 for t in trace if not t.outcome.startswith("probe"))
                seen.append((health.polls, finished))
                return finished >= 3

            await wait_until_async(enough, timeout=60, interval=0.005)
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
    assert [s for s in seen if s[0] != s[1]] == [], seen
    assert health.failures == health.polls >= 3
