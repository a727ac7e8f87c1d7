"""The gateway brings the node registers its configuration states onto the nodes (a simulated site)."""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from gateway.acquire.link import Exchange, NoReply
from gateway.acquire.poller import NodeConfig
from gateway.ops.config import GatewayConfig, parse_config
from gateway.ops.node_settings import NodeSettings
from gateway.ops.service import Gateway
from gateway.protocols import modbus_rtu_master as rtu
from simulator.site import BusSpec, NodeSpec, Site


def site_config(tmp_path: Path, port: Path) -> GatewayConfig:
    text = f"""
[store]
path = "{tmp_path / 'store.sqlite3'}"
[clock]
require_sync = "never"
[spray]
enabled = false
[[bus]]
name = "bus0"
port = "{port}"
[[bus.node]]
name = "dust-1"
kind = "dust"
unit_id = 1
interval = 0.5
rh_correction = true
[[bus.node]]
name = "dust-2"
kind = "dust"
unit_id = 2
interval = 0.5
[[bus.node]]
name = "wind-3"
kind = "wind"
unit_id = 3
interval = 0.5
"""
    return parse_config(tomllib.loads(text), "test.toml")


async def until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_the_nodes_correct_for_humidity_where_the_configuration_says(tmp_path: Path) -> None:
    site = Site(
        (BusSpec("bus0", (NodeSpec("dust", 1), NodeSpec("dust", 2), NodeSpec("wind", 3))),), tmp_path / "buses",
        seed=11,
    )
    config = site_config(tmp_path, tmp_path / "buses" / "bus0")
    with site:
        banks = {unit: site.node("bus0", unit).node.bank for unit in (1, 2)}
        banks[2].set_holding_raw("rh_correction", 1)  # set by hand once; the configuration says no
        assert banks[1].get_holding_raw("rh_correction") == 0
        gateway = Gateway(config)
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.run(stop))
        try:
            assert await until(lambda: not gateway.node_settings.pending and bool(gateway.node_settings.checks), 25), (
                gateway.status()["node_settings"]
            )
            assert banks[1].get_holding_raw("rh_correction") == 1
            assert banks[2].get_holding_raw("rh_correction") == 0
            status = gateway.status()["node_settings"]
            assert set(status) == {"dust-1", "dust-2"}  # the wind node has nothing to set
            assert [(c["found"], c["wanted"], c["written"]) for c in status["dust-2"]] == [(1, 0, True)]
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def test_a_node_that_does_not_answer_is_retried_and_stopping_does_not_wait_for_it() -> None:
    asked: list[rtu.Request] = []

    async def silent(request: rtu.Request) -> Exchange:
        asked.append(request)
        return Exchange(NoReply("timeout", "no reply"), 0.0, 0.0, 0.0)

    settings = NodeSettings([(silent, NodeConfig("dust-1", "dust", 1))], retry_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(settings.run(stop))
    assert await until(lambda: len(asked) >= 2, 10)  # asked again after retry_s
    assert settings.pending == ["dust-1"] and settings.checks["dust-1"][0].problem.startswith("read:")

    async def hanging(request: rtu.Request) -> Exchange:
        await asyncio.Event().wait()  # a bus owner that stopped serving
        raise AssertionError("unreachable")

    stop.set()
    await asyncio.wait_for(task, 10)
    stuck = NodeSettings([(hanging, NodeConfig("dust-1", "dust", 1))])
    stop2 = asyncio.Event()
    task2 = asyncio.create_task(stuck.run(stop2))
    await asyncio.sleep(0)
    stop2.set()
    await asyncio.wait_for(task2, 10)  # returns at once
