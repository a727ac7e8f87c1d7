"""A gateway restart loses nothing: the new run resumes from the queue and backfills from the node's ring."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.deliver.sqlite_store import SqliteStore
from gateway.model import Gap
from gateway.ops.service import Gateway
from simulator.site import BusSpec, NodeSpec, Site
from tests.gateway.test_pipeline import site_config
from tests.support.site_gateway import run_until, stored
from tests.support.waiting import wait_until_async


def stored_sequences(store_path: Path) -> list[int]:
    """The pm10 sample numbers of dust-1 in the store (read beside a running gateway)."""
    if not store_path.exists():
        return []
    db = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute(
            "SELECT sequence FROM readings WHERE node = 'dust-1' AND channel = 'pm10' AND sequence > 0"
            " ORDER BY sequence"
        ).fetchall()
    except sqlite3.OperationalError:  # the gateway has not created the table yet
        return []
    finally:
        db.close()
    return [int(sequence) for (sequence,) in rows]


def stored_gaps(store_path: Path) -> list[tuple[object, ...]]:
    if not store_path.exists():
        return []
    db = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT node FROM gaps").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


async def test_samples_taken_while_the_gateway_was_down_are_backfilled_once_each(tmp_path: Path) -> None:
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=5)
    config = site_config(tmp_path, tmp_path / "buses" / "bus0")
    with site:
        node = site.node("bus0", 1)
        first = Gateway(config)
        assert first.resume_points == {"dust-1": None}  # a new queue: nothing to resume
        await run_until(first, lambda: len(stored_sequences(config.store_path)) >= 2)
        # The node keeps sampling (1 s interval) while nobody polls it: three samples at least.
        down_from = node.node.seq
        await wait_until_async(lambda: node.node.seq >= down_from + 3, timeout=60)
        second = Gateway(config)
        resumed = second.resume_points["dust-1"]
        assert resumed is not None and resumed >= 2

        def backfilled() -> bool:  # the downtime's samples and the second run's own, without a hole
            sequences = stored_sequences(config.store_path)
            return sequences[-1] >= down_from + 4 and len(set(sequences)) == sequences[-1] - sequences[0] + 1

        await run_until(second, backfilled)
        truth = node.sensor.truth
    pm10 = stored(config.store_path, "dust-1", "pm10")
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
        await run_until(gateway, lambda: bool(stored_gaps(config.store_path)))
    store = SqliteStore(config.store_path)
    try:
        assert store.query("SELECT node, first_seq, last_seq, reason FROM gaps") == [
            ("dust-1", 12, 650, "overwritten")
        ]
    finally:
        store.close()
