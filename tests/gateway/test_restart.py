"""A gateway restart loses nothing: the new run resumes from the queue and backfills from the node's ring."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.deliver.sqlite_store import SqliteStore
from gateway.model import Gap
from gateway.ops.service import Gateway
from simulator.site import BusSpec, NodeSpec, Site
from tests.gateway.test_pipeline import site_config


async def run_for(gateway: Gateway, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, 30)


async def test_samples_taken_while_the_gateway_was_down_are_backfilled_once_each(tmp_path: Path) -> None:
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=5)
    config = site_config(tmp_path, tmp_path / "buses" / "bus0")
    with site:
        first = Gateway(config)
        assert first.resume_points == {"dust-1": None}  # a new queue: nothing to resume
        await run_for(first, 2.5)
        await asyncio.sleep(2.5)  # the node keeps sampling (1 s interval); nobody polls it
        second = Gateway(config)
        resumed = second.resume_points["dust-1"]
        assert resumed is not None and resumed >= 2
        await run_for(second, 2.5)
        truth = site.node("bus0", 1).sensor.truth
    store = SqliteStore(config.store_path)
    try:
        pm10 = [r for r in store.readings(node="dust-1", channel="pm10") if r.sequence > 0]
    finally:
        store.close()
    sequences = [r.sequence for r in pm10]
    # Every sample from the first to the last exactly once, in order, across the restart.
    assert sequences == list(range(sequences[0], sequences[-1] + 1)), sequences
    assert sequences[-1] >= resumed + 4  # the downtime's samples and the second run's are there
    for r in pm10:
        assert r.value is not None and abs(r.value - truth[r.sequence]["pm10"]) <= 0.5


async def test_samples_lost_for_good_reach_the_store_as_a_gap(tmp_path: Path) -> None:
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=5)
    config = site_config(tmp_path, tmp_path / "buses" / "bus0")
    with site:
        gateway = Gateway(config)
        poller = gateway.pollers[0]
        assert poller.on_gap is not None  # the service wires the backfill's gaps to the queue
        poller.on_gap([Gap("dust-1", "dust", 1e9, 1e9 + 700, 12, 650, "overwritten")])
        await run_for(gateway, 1.0)
    store = SqliteStore(config.store_path)
    try:
        assert store.query("SELECT node, first_seq, last_seq, reason FROM gaps") == [
            ("dust-1", 12, 650, "overwritten")
        ]
    finally:
        store.close()
