"""The gateway service with [[bus.device]] in its configuration: vendor devices beside a node, to the store."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

from gateway.deliver.sqlite_store import SqliteStore
from gateway.model import Quality
from gateway.ops.config import parse_config
from gateway.ops.service import Gateway
from simulator.site import BusSpec, NodeSpec, Site
from simulator.vendor_device import VendorDevice

BAUD = 19200


async def test_service_polls_devices_from_its_configuration(tmp_path: Path) -> None:
    specs = (NodeSpec("wind", 2), NodeSpec("wind", 10, profile="lambrecht-14524-wind-speed"),
             NodeSpec("wind", 11, profile="lambrecht-14523-wind-direction"))
    with Site((BusSpec("bus0", specs, baud=BAUD),), tmp_path / "buses", seed=9, burst=True) as site:
        text = f"""
[store]
path = "{tmp_path / 'store.sqlite3'}"
[clock]
require_sync = "never"
[[bus]]
port = "{site.paths['bus0']}"
baud = {BAUD}
[[bus.node]]
kind = "wind"
unit_id = 2
[[bus.device]]
profile = "lambrecht-14524-wind-speed"
unit_id = 10
name = "crane-anemometer"
[[bus.device]]
profile = "lambrecht-14523-wind-direction"
unit_id = 11
name = "crane-vane"
"""
        gateway = Gateway(parse_config(tomllib.loads(text), "gateway.toml"))
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.run(stop))
        poller = gateway.pollers[0]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60.0
        try:
            # Five good polls of each device: the gust (3 samples of 1 s) is formed by then.
            while not all(poller.health[n].new_samples >= 5 for n in ("crane-anemometer", "crane-vane")):
                assert loop.time() < deadline and not task.done()
                await asyncio.sleep(0.05)
            status = gateway.status()
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        speed_device = site.node("bus0", 10).sim.node
        assert isinstance(speed_device, VendorDevice)
    store = SqliteStore(tmp_path / "store.sqlite3")
    speeds = [r for r in store.readings(node="crane-anemometer", channel="wind_speed")
              if r.quality is Quality.NORMAL]
    assert len(speeds) >= 5
    for r in speeds:
        assert r.value is not None and r.kind == "wind" and r.unit == "m/s"
        assert any(abs(r.value - values["wind_speed"]) <= 0.05 + 1e-9 for t, values in speed_device.samples
                   if r.timestamp - 3.0 <= t <= r.timestamp + 0.1), r
    assert store.readings(node="crane-anemometer", channel="wind_gust_3s")  # formed by the gateway
    assert store.readings(node="crane-vane", channel="wind_dir")
    assert store.readings(node="wind-2", channel="wind_gust_3s")  # the node's own, through its own path
    json.dumps(status, default=str)  # the status document takes vendor devices too
    assert {"crane-anemometer", "crane-vane", "wind-2"} <= set(json.dumps(status, default=str).split('"'))
