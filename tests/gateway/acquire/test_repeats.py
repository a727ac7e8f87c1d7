"""A port that stays unplugged is said once per episode (and now and then with a count), not at every retry."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from gateway.acquire.poller import BusConfig, BusPoller, NodeConfig
from gateway.acquire.repeats import Repeats
from gateway.model import Reading
from simulator.site import BusSpec, NodeSpec, Site


def test_the_first_failure_is_said_repeats_are_counted_and_said_now_and_then() -> None:
    r = Repeats(every_s=300.0)
    assert r.failed("no such file", 0.0) == 0
    assert [r.failed("no such file", t) for t in (1.0, 3.0, 7.0, 299.0)] == [None] * 4
    assert r.failed("no such file", 300.0) == 4  # still failing: said again, with what was not said
    assert r.failed("no such file", 330.0) is None
    assert r.failed("permission denied", 331.0) == 1  # a different failure is said at once
    assert r.succeeded(400.0) == (8, 400.0)
    assert r.succeeded(401.0) is None  # no episode
    assert r.failed("no such file", 500.0) == 0  # a new episode starts afresh


@pytest.mark.parametrize("every_s", [0.0, 10.0])
def test_every_failure_is_counted_whatever_is_said(every_s: float) -> None:
    r = Repeats(every_s=every_s)
    said = [r.failed("x", float(t)) for t in range(50)]
    assert sum(1 + n for n in said if n is not None) + r.suppressed == 50
    assert r.succeeded(50.0) == (50, 50.0)


async def test_an_unplugged_port_is_one_line_not_one_per_retry_and_its_return_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    link = tmp_path / "buses" / "bus0"
    # A short max_backoff: nodes that failed while the port was away are tried again soon after it is back.
    bus = BusConfig("bus0", str(link), tuple(NodeConfig(f"dust-{i}", "dust", i, 0.2) for i in (1, 2, 3)),
                    timeout=0.3, max_backoff=0.4)
    delivered: list[Reading] = []
    site = Site((BusSpec("bus0", tuple(NodeSpec("dust", i) for i in (1, 2, 3))),), tmp_path / "buses", seed=5)
    poller = BusPoller(bus, delivered.extend)
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO, logger="gateway.acquire"):
        task = asyncio.create_task(poller.run(stop))
        deadline = time.monotonic() + 30
        while poller.open_failures.failures < 3:  # attempts 0.5 s, then 1 s apart (then 2, 4 ...): three failed
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.05)
        with site:  # the adapter is plugged in (the next reopen is up to 2 s away: the port's own backoff)
            deadline = time.monotonic() + 60
            while not all(h.new_samples >= 1 for h in poller.health.values()):
                assert time.monotonic() < deadline and not task.done(), {n: h.polls for n, h in poller.health.items()}
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(task, 10)
    lines = [r.getMessage() for r in caplog.records]
    cannot = [line for line in lines if "cannot open" in line]
    assert len(cannot) == 1, lines
    assert cannot[0].startswith("bus bus0: cannot open serial port") and "retrying" in cannot[0]
    assert not any("is not open" in line for line in lines), lines  # the bus's line says it for every node
    opened = [line for line in lines if "port open again" in line]
    assert len(opened) == 1 and opened[0].startswith("bus bus0: port open again after ") and " failed " in opened[0]
    assert delivered
