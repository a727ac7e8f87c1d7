"""The running gateway with an `influxdb` sink: a simulated dust node's readings and means reach influxd 1.6.7."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.deliver.sqlite_store import SqliteStore
from gateway.ops.service import Gateway
from simulator.site import BusSpec, NodeSpec, Site
from tests.gateway.test_pipeline import site_config
from tests.support.influx import InfluxServer

DEADLINE = 60.0  # s: generous, for two busy cores


async def test_readings_and_aggregates_reach_influxdb_from_the_running_gateway(
    tmp_path: Path, influxd: InfluxServer
) -> None:
    db = influxd.database()
    sink = f"""
[[sink]]
type = "influxdb"
name = "bureau"
url = "{influxd.url}"
api = "v1"
database = "{db}"
site = "zs-site-1"
gateway = "gw-test"
"""
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=5)
    config = site_config(tmp_path, tmp_path / "buses" / "bus0", sink)
    with site:
        gateway = Gateway(config)
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.run(stop))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        try:
            while not influxd.rows("SELECT value FROM aggregate WHERE channel = 'pm10_5s_mean' LIMIT 1", db):
                assert not task.done(), task
                assert loop.time() < deadline, "no aggregate reached influxd in time"
                await asyncio.sleep(0.2)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        truth = site.node("bus0", 1).sensor.truth
    rows = influxd.rows("SELECT value, seq, quality FROM reading WHERE channel = 'pm10' AND seq > 0 GROUP BY *", db)
    assert rows and all(r["site"] == "zs-site-1" and r["gateway"] == "gw-test" and r["node"] == "dust-1"
                        for r in rows)
    for r in rows:
        if r["quality"] == "N":
            assert abs(r["value"] - truth[r["seq"]]["pm10"]) <= 0.5
    # Every pm10 reading reached the sink (the shutdown flush included), as it reached the local store.
    store = SqliteStore(config.store_path)
    try:
        stored = [r for r in store.readings(node="dust-1", channel="pm10") if r.sequence > 0]
    finally:
        store.close()
    assert sorted(r["seq"] for r in rows) == sorted(r.sequence for r in stored)
    assert gateway.deliveries[-1].stats.fatal == ""
