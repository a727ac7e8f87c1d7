"""The running gateway rebuilds its windows at start, reports late / dropped counts, keeps what the rebuild needs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gateway.deliver.sqlite_store import SqliteStore
from gateway.ops.service import Gateway
from simulator.site import BusSpec, NodeSpec, Site
from tests.gateway.test_pipeline import site_config
from tests.gateway.test_restart import stored_sequences
from tests.support.site_gateway import run_until


async def test_a_second_start_replays_the_queue_and_pruning_keeps_what_that_needs(tmp_path: Path) -> None:
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=5)
    # Retention 0: every delivered record could go at once, but the rebuild's readings must stay.
    config = site_config(tmp_path, tmp_path / "buses" / "bus0")
    config = replace(config, queue=replace(config.queue, retention_days=0.0, prune_interval_s=1.0))
    with site:
        first = Gateway(config)
        assert first.status()["windows"]["restored"] == {}  # not started yet
        stage = first.pipeline.aggregation
        assert stage is not None and first.replay_keep_s(1e9) >= stage.windowed[0].horizon_s("dust-1")
        # Three samples stored, and the 1-s prune loop due a few times meanwhile.
        await run_until(first, lambda: len(stored_sequences(config.store_path)) >= 3, at_least=3.0)
        assert first.status()["windows"]["restored"]["readings"] == 0  # a new queue: nothing to rebuild
        store = SqliteStore(config.store_path)
        try:
            first_run = len(store.readings())
        finally:
            store.close()
        second = Gateway(config)
        await run_until(second, lambda: bool(second.status()["windows"]["restored"]))  # the rebuild is done
    status = second.status()["windows"]
    assert set(status) == {"late", "dropped", "restored"}
    restored = status["restored"]
    # The first run's readings were delivered to the store and pruning was due, yet the queue kept
    # every one of them for the rebuild.
    assert first_run >= 3 * 2 and restored["readings"] == first_run
    assert restored["undecodable"] == 0
