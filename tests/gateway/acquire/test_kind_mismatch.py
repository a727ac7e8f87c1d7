"""A node configured as the wrong kind is named as a kind mismatch, whichever way the read fails.

A noise node configured as dust refuses the longer dust read (exception 2, "illegal data
address"); a dust node configured as noise answers the shorter read with its own node_kind.
Both are the same configuration fault: said once, naming both kinds, and no reading of the
configured kind is made up from it (no D "device fault": the device is fine).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from gateway.acquire.poller import BusConfig, BusPoller, NodeConfig, PollRecord
from gateway.model import Reading
from simulator.site import BusSpec, NodeSpec, Site

BAUD = 19200


@pytest.mark.parametrize(
    ("actual", "configured"),
    [
        ("noise", "dust"),  # the read is longer than the node's bank: exception 2
        ("dust", "tilt"),  # exception 2 as well
        ("dust", "noise"),  # the read is shorter: the node's own node_kind in the reply
        ("noise", "wind"),  # the same length: node_kind again
    ],
)
async def test_a_wrong_kind_is_named_once_and_stores_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, actual: str, configured: str
) -> None:
    delivered: list[Reading] = []
    site = Site((BusSpec("bus0", (NodeSpec(actual, 3), NodeSpec("wind", 4)), baud=BAUD),), tmp_path / "buses", seed=5)
    bus = BusConfig("bus0", str(tmp_path / "buses" / "bus0"),
                    (NodeConfig("node-3", configured, 3, 0.2), NodeConfig("wind-4", "wind", 4, 0.2)),
                    baud=BAUD, timeout=0.3)
    with site, caplog.at_level(logging.INFO, logger="gateway.acquire"):
        trace: list[PollRecord] = []
        poller = BusPoller(bus, delivered.extend, trace=trace.append)
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        deadline = time.monotonic() + 30
        health = poller.health["node-3"]
        while health.polls < 6 or poller.health["wind-4"].new_samples < 2:
            assert time.monotonic() < deadline and not task.done(), f"{health.polls} polls"
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 10)
    assert health.kind_mismatch == actual
    lines = [r.getMessage() for r in caplog.records if "node-3" in r.getMessage()]
    named = [line for line in lines if "kind mismatch: configured" in line]
    assert len(named) == 1, lines  # said once, not at every poll
    assert (f"configured as a {configured} node, but its node_kind register says {actual}" in named[0]), named
    assert not any("illegal data address" in line or "decode error" in line for line in lines), lines
    assert [r for r in delivered if r.node == "node-3"] == []
    assert health.outage == f"kind mismatch: the node is a {actual} node"
    assert [r for r in delivered if r.node == "wind-4"], "the other node on the bus was not polled"
    # Asked of the node_kind register once at most (a shorter read shows it in the reply itself), and traced.
    checks = [r for r in trace if r.outcome == "kind check"]
    refused = (actual, configured) in {("noise", "dust"), ("dust", "tilt")}  # exception 2, not a reply
    assert len(checks) == (1 if refused else 0), checks
