"""Readings held while the clock is not valid survive a gateway restart and are stamped with the right times."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from pathlib import Path

import pytest

from gateway.acquire.timestamps import Clock
from gateway.deliver.queue import DurableQueue
from gateway.ops.service import Gateway
from simulator.site import BusSpec, NodeSpec, Site
from tests.gateway.test_pipeline import site_config
from tests.support.site_gateway import run_until, stored
from tests.support.waiting import wait_until_async


class Validity:
    """The wall clock's validity, switched by the test (NTP has not answered yet / has)."""

    def __init__(self) -> None:
        self.valid = False

    def __call__(self) -> bool:
        return self.valid


async def test_held_readings_survive_a_stop_and_are_stamped_when_the_clock_becomes_valid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = Site((BusSpec("bus0", (NodeSpec("dust", 1),)),), tmp_path / "buses", seed=5)
    config = site_config(tmp_path, tmp_path / "buses" / "bus0")
    validity = Validity()
    clock = Clock(wall=time.time, mono=time.monotonic, valid=validity)
    with site:
        first_started = time.time()
        first = Gateway(config, clock=clock)
        with caplog.at_level(logging.WARNING, logger="gateway"):
            # Stopped as SIGTERM stops it once it holds three samples: the clock never became valid.
            await run_until(first, lambda: sum(len(p.stamper.held) for p in first.pollers) >= 3)
        kept = [r.getMessage() for r in caplog.records if "readings held for a valid clock are kept" in r.getMessage()]
        assert kept and kept[0].startswith("bus bus0: "), "the stop did not say where the held readings are"
        first_stopped = time.time()
        queue = DurableQueue(config.queue_path, ["sqlite"])
        held = queue.held_readings()
        queue.close()
        held_pm10 = sorted(h.reading.sequence for h in held if h.reading.channel == "pm10")
        assert f"bus bus0: {len(held)} readings held" in kept[0], (kept, len(held))
        assert len(held_pm10) >= 2, "the first run held nothing"

        second = Gateway(config, clock=clock)
        assert second.resume_points["dust-1"] == held_pm10[-1]  # resumes after what it holds, no second fetch
        stop = asyncio.Event()
        task = asyncio.create_task(second.run(stop))
        await wait_until_async(lambda: second.pollers[0].stamper.held_count > 0)  # this run holds some too
        validity.valid = True  # NTP answers
        deadline = time.monotonic() + 30
        while second.stored < len(held) + 6:
            assert time.monotonic() < deadline, f"only {second.stored} readings stored"
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 30)
    pm10 = stored(config.store_path, "dust-1", "pm10")
    sequences = [r.sequence for r in pm10]
    # Every sample from the first held one on, exactly once, in order, across the restart.
    assert sequences[: len(held_pm10)] == held_pm10
    assert sequences == list(range(sequences[0], sequences[-1] + 1)), sequences
    # Stamped at the time the node took them: the first run's within its run, a sample interval (1 s) apart.
    by_seq = {r.sequence: r.timestamp for r in pm10}
    for seq in held_pm10:
        assert first_started - 1.0 <= by_seq[seq] <= first_stopped
    for a, b in itertools.pairwise(pm10):
        assert abs((b.timestamp - a.timestamp) - 1.0 * (b.sequence - a.sequence)) < 0.5, (a, b)
    queue = DurableQueue(config.queue_path, ["sqlite"])
    assert queue.held_readings() == [] and queue.stats.held == 0  # released in the append that carried them
    queue.close()
