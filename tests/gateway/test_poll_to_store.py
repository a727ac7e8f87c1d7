"""End to end on real bytes: simulated firmware nodes on a pty, pymodbus polling, SQLite store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.acquire.poller import BusConfig, BusPoller, NodeConfig
from gateway.deliver.sqlite_store import SqliteStore
from gateway.model import Quality
from simulator.site import BusSpec, NodeSpec, Site
from tests.support.waiting import wait_until_async


async def test_readings_of_dust_and_wind_nodes_reach_the_store(tmp_path: Path) -> None:
    # Replies handed over whole (burst): a bus thread a busy host starves must not split one in two.
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1), NodeSpec("wind", 2))),), tmp_path / "buses", seed=7,
                burst=True)
    store = SqliteStore(tmp_path / "store.sqlite3")
    with site:
        port = str(tmp_path / "buses" / "bus0")
        bus = BusConfig(
            "bus0", port, (NodeConfig("dust-1", "dust", 1, 0.5), NodeConfig("wind-1", "wind", 2, 0.5))
        )
        poller = BusPoller(bus, store.write)
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))

        def enough_stored() -> bool:  # 6 dust channels and 3 wind channels, at least two samples each
            counts = store.count_by_node()
            return counts.get("dust-1", 0) >= 6 * 2 and counts.get("wind-1", 0) >= 3 * 2

        await wait_until_async(enough_stored, timeout=60)
        stop.set()
        await asyncio.wait_for(task, 5)
    counts = store.count_by_node()
    assert counts.get("dust-1", 0) >= 6 * 2, counts  # 6 channels, at least two samples
    assert counts.get("wind-1", 0) >= 3 * 2, counts
    # Every stored value is what the simulated sensor produced for that sample,
    # to the register's resolution.
    dust = site.node("bus0", 1).sensor
    for reading in store.readings(node="dust-1"):
        assert reading.quality is Quality.NORMAL
        truth = dust.truth[reading.sequence][reading.channel]
        assert reading.value is not None
        scale = {"temperature": 10, "humidity": 10, "pressure": 100}.get(reading.channel, 1)
        assert abs(reading.value - truth) <= 0.5 / scale + 1e-9, (reading, truth)
    wind = site.node("bus0", 2).sensor
    for reading in store.readings(node="wind-1", channel="wind_dir"):
        assert reading.value is not None
        assert abs(reading.value - wind.truth[reading.sequence]["wind_dir"]) <= 0.05 + 1e-9
    assert poller.health["dust-1"].failures == 0
