"""The queue's SQLite connection is one thread's at a time: every read outside the writer and the deliveries
goes through ``Gateway.with_queue`` (the lock, then a worker thread), the stop's backlog counts and the close too.

Review finding: ``Gateway._shutdown`` counted a down sink's backlog on the event loop's thread without the
lock, while a status page request (served until after the gateway stops) could be reading the same connection
in a worker thread; and the queue was closed under such a read, which then failed with "Cannot operate on a
closed database". The guard below fails a test the moment the gateway touches its queue without holding the lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.deliver.queue import DurableQueue
from gateway.model import Quality, Reading
from gateway.ops import live_state
from gateway.ops.config import parse_config
from gateway.ops.service import Gateway
from tests.ops.service_process import gateway_toml


class LockGuard:
    """The gateway's queue, refusing (and remembering) any call made while nobody holds the gateway's lock."""

    def __init__(self, queue: DurableQueue, lock: asyncio.Lock) -> None:
        self._queue = queue
        self._lock = lock
        self.unlocked: list[str] = []
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._queue, name)
        if not callable(value):
            return value

        def guarded(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if not self._lock.locked():
                self.unlocked.append(name)
            return value(*args, **kwargs)

        return guarded


def reading(t: float, seq: int) -> Reading:
    return Reading("dust-1", "dust", "pm10", 50.0, "ug/m3", Quality.NORMAL, t, seq)


def _gateway(tmp_path: Path) -> tuple[Gateway, LockGuard]:
    text = gateway_toml(tmp_path, str(tmp_path / "no-bus"))
    gateway = Gateway(parse_config(tomllib.loads(text), "test.toml"))
    guard = LockGuard(gateway.queue, gateway.queue.lock)
    gateway.queue = guard  # type: ignore[assignment]  # the deliveries and the writer keep the real one
    return gateway, guard


def _close(gateway: Gateway, guard: LockGuard) -> None:
    guard._queue.close()
    for sink in gateway.sinks:
        sink.close()


def _sink_down(gateway: Gateway) -> None:
    gateway.deliveries[0].stats.down_since = 0.0  # its last attempt failed: the stop does not retry it


def _no_time_to_flush(gateway: Gateway) -> None:
    no_time = dataclasses.replace(gateway.config.queue, flush_timeout_s=0.0)  # no time to deliver: they stay
    gateway.config = dataclasses.replace(gateway.config, queue=no_time)


@pytest.mark.parametrize(("situation", "said"), [
    (_sink_down, "sink sqlite is down (): 2 records wait in the queue"),
    (_no_time_to_flush, "sink sqlite: 2 records not delivered at shutdown"),
])
async def test_the_stop_counts_a_sinks_backlog_under_the_queue_lock(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, situation: Callable[[Gateway], None], said: str) -> None:
    gateway, guard = _gateway(tmp_path)
    try:
        guard._queue.append([reading(gateway.clock.wall() - 10, 1), reading(gateway.clock.wall() - 9, 2)])
        situation(gateway)
        with caplog.at_level(logging.WARNING, logger="gateway.ops.service"):
            await gateway._shutdown()
        assert "pending" in guard.calls
        assert guard.unlocked == []
        assert any(r.getMessage().startswith(said) for r in caplog.records), caplog.text
    finally:
        _close(gateway, guard)


async def test_the_queue_is_closed_under_its_lock_and_a_later_status_read_says_unknown(tmp_path: Path) -> None:
    gateway, guard = _gateway(tmp_path)
    try:
        stop = asyncio.Event()
        stop.set()
        await asyncio.wait_for(gateway.run(stop), 60)
        assert "close" in guard.calls
        assert guard.unlocked == []
        # A status page request after the stop (the page is served until the gateway has stopped).
        state = await asyncio.wait_for(live_state.collect(gateway, 0.0), 60)
        assert not state["queue_answered"]
        assert state["sinks"][0]["backlog"] is None
    finally:
        for sink in gateway.sinks:
            sink.close()


async def test_a_health_report_adds_held_drops_to_the_queues_count_under_its_lock(tmp_path: Path) -> None:
    """The writer's thread adds the quota's drops to dropped_total and saves it: an addition from the event loop
    without the lock could be lost between the two."""
    gateway, guard = _gateway(tmp_path)
    try:
        assert gateway.health is not None
        gateway.pollers[0].stamper.dropped = 3  # held readings given up: the hold for a valid clock overflowed
        report = await gateway.health.measure()
        assert "note_dropped" in guard.calls
        assert guard.unlocked == []
        assert report.gateway.dropped_total == 3
    finally:
        _close(gateway, guard)
