"""The gateway brings the node registers its configuration states onto the nodes (a simulated site)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from gateway.acquire.link import Exchange, NoReply
from gateway.acquire.poller import NodeConfig
from gateway.ops.config import GatewayConfig
from gateway.ops.node_settings import NodeSettings
from gateway.ops.service import Gateway
from gateway.protocols import modbus_rtu_master as rtu
from simulator.site import BusSpec, NodeSpec, Site
from tests.support.site_gateway import gateway_config, running
from tests.support.waiting import wait_until_async


def site_config(tmp_path: Path, port: Path) -> GatewayConfig:
    nodes = [("dust-1", "dust", 1, 0.5, "rh_correction = true"), ("dust-2", "dust", 2, 0.5, ""),
             ("wind-3", "wind", 3, 0.5, "")]
    return gateway_config(tmp_path, port, nodes, "[spray]\nenabled = false")


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
        async with running(Gateway(config)) as gateway:
            settings = gateway.node_settings
            await wait_until_async(lambda: not settings.pending and bool(settings.checks), 60,
                                   detail=lambda: gateway.status()["node_settings"])
            assert banks[1].get_holding_raw("rh_correction") == 1
            assert banks[2].get_holding_raw("rh_correction") == 0
            status = gateway.status()["node_settings"]
            assert set(status) == {"dust-1", "dust-2"}  # the wind node has nothing to set
            assert [(c["found"], c["wanted"], c["written"]) for c in status["dust-2"]] == [(1, 0, True)]


async def test_a_node_that_does_not_answer_is_retried_and_stopping_does_not_wait_for_it() -> None:
    asked: list[rtu.Request] = []

    async def silent(request: rtu.Request) -> Exchange:
        asked.append(request)
        return Exchange(NoReply("timeout", "no reply"), 0.0, 0.0, 0.0)

    settings = NodeSettings([(silent, NodeConfig("dust-1", "dust", 1))], retry_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(settings.run(stop))
    await wait_until_async(lambda: len(asked) >= 2, 30)  # asked again after retry_s
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


async def test_an_unanswered_setting_is_logged_once_then_when_it_changes_or_is_confirmed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Audit: an offline dust node's "cannot confirm rh_correction" warning came back every 30 s for as long as
    it stayed offline (2880 lines a day), while the poller says "offline" once."""
    answers: list[Exchange] = [Exchange(NoReply("io", "port not open"), 0.0, 0.0, 0.0)] * 5
    answers += [Exchange(NoReply("timeout", "no reply"), 0.0, 0.0, 0.0)] * 3
    answers += [Exchange(rtu.Registers((0,)), 0.0, 0.0, 0.0)]

    async def node(request: rtu.Request) -> Exchange:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    settings = NodeSettings([(node, NodeConfig("dust-1", "dust", 1))], retry_s=0.01)
    with caplog.at_level(logging.INFO, logger="gateway.ops.node_settings"):
        await asyncio.wait_for(settings.run(asyncio.Event()), 30)  # returns once confirmed
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "port not open" in lines[0] and "no reply" in lines[1] and "NoReply(" not in lines[0], lines
    assert "rh_correction = 0 confirmed" in lines[2], lines
