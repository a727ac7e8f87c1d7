"""The dispatcher and a sink's two kinds of failure: "wait this long" (Retry-After) and "this will never succeed"."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from gateway.deliver.dispatch import RETRY_AFTER_LIMIT, Delivery
from gateway.deliver.queue import Batch, DurableQueue
from gateway.deliver.sinks import SinkError, SinkFatalError
from gateway.model import Quality, Reading

DEADLINE = 30.0  # s: generous, for two busy cores


def readings(n: int) -> list[Reading]:
    return [Reading("dust-1", "dust", "pm10", float(i), "ug/m3", Quality.NORMAL, 1e9 + i, i) for i in range(n)]


class ScriptedSink:
    """A sink whose sends fail as scripted (an exception, or None for "take the batch")."""

    def __init__(self, name: str, script: list[Exception | None]) -> None:
        self.name = name
        self.script = script
        self.sends = 0
        self.got = 0

    async def send(self, batch: Batch) -> int:
        self.sends += 1
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.got += len(batch)
        return len(batch)

    def close(self) -> None:
        pass


class Pauses:
    """An injected backoff wait: records how long the dispatcher asked to wait, and returns at once."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, stop: asyncio.Event, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(0)


async def run_until(delivery: Delivery, stop: asyncio.Event, done: object) -> asyncio.Task[None]:
    task = asyncio.create_task(delivery.run(stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not done() and not task.done():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)
    return task


async def test_a_retry_after_is_waited_for_exactly_even_beyond_max_backoff(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["influx"])
    queue.append(readings(5))
    sink = ScriptedSink("influx", [SinkError("429", retry_after=120.0), SinkError("503", retry_after=7.0),
                                   SinkError("down"), None])
    pauses = Pauses()
    delivery = Delivery(queue, sink, min_backoff=1.0, max_backoff=60.0, pause=pauses, interval=0.0)
    stop = asyncio.Event()
    task = await run_until(delivery, stop, lambda: sink.got == 5)
    stop.set()
    delivery.wake.set()
    await asyncio.wait_for(task, DEADLINE)
    # The server's 120 s beats max_backoff (60 s); then 7 s; then our own backoff doubles from there.
    # (Once delivered, the loop may already have begun its next round, pausing its interval, 0 s here, before the
    # test stopped it: a busy host decides whether the test sees that pause.)
    assert pauses.asked[:3] == [120.0, 7.0, 14.0] and all(p == 0.0 for p in pauses.asked[3:]), pauses.asked
    assert queue.pending("influx") == 0 and delivery.stats.fatal == ""
    queue.close()


async def test_a_retry_after_is_bounded_by_min_backoff_and_the_limit(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["influx"])
    queue.append(readings(1))
    delivery = Delivery(queue, ScriptedSink("influx", [SinkError("x", retry_after=0.0)]), min_backoff=0.5)
    assert await delivery.pump() is False and delivery.backoff == 0.5
    delivery.sink = ScriptedSink("influx", [SinkError("x", retry_after=1e9)])
    assert await delivery.pump() is False and delivery.backoff == RETRY_AFTER_LIMIT
    queue.close()


async def test_a_fatal_error_stops_that_sink_once_with_a_clear_error_and_the_others_carry_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["influx", "store"])
    queue.append(readings(20))
    message = "sink influx: server refused the write with 401: unauthorized access (check the credentials file)"
    broken = ScriptedSink("influx", [SinkFatalError(message)] * 5)
    working = ScriptedSink("store", [])
    pauses = Pauses()
    # One lock for everything that uses the queue's connection, as in the gateway: the test's own append ran
    # beside the store delivery's confirm-and-read in a worker thread, on the same connection (stress run s5d).
    lock = queue.lock
    to_influx = Delivery(queue, broken, pause=pauses, interval=0.0)
    to_store = Delivery(queue, working, pause=pauses, interval=0.0)
    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="gateway.deliver.dispatch"):
        influx_task = asyncio.create_task(to_influx.run(stop))
        store_task = await run_until(to_store, stop, lambda: working.got == 20)
        # The fatal sink's run ends by itself: no retry loop, no backoff.
        await asyncio.wait_for(influx_task, DEADLINE)
        async with lock:
            queue.append(readings(3))
        to_store.wake.set()
        to_influx.wake.set()
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while working.got < 23:
            assert not store_task.done(), store_task  # its exception, at once, rather than a deadline
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        stop.set()
        to_store.wake.set()
        await asyncio.wait_for(store_task, DEADLINE)
    # No backoff (the fatal sink's run ended at once); a 0-s pause is the working sink's interval between rounds,
    # which a busy host may let it begin before it sees the next records.
    assert broken.sends == 1 and all(p == 0.0 for p in pauses.asked), pauses.asked
    assert to_influx.stats.fatal == message and to_influx.stats.failures == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "sink influx: stopped" in errors[0].getMessage() and message in errors[0].getMessage()
    # Nothing lost: the stopped sink's records wait for it; the other one has everything.
    assert queue.pending("influx") == 23 and queue.pending("store") == 0
    # And a flush at shutdown does not try it again.
    assert await to_influx.flush(1.0) is False and broken.sends == 1
    queue.close()


class PeekingQueue(DurableQueue):
    """The real queue, noting each read-ahead (peek) the delivery makes."""

    peeked: list[int]

    def peek(
        self, after: int, limit: int = 500, kinds: frozenset[str] | None = None, skip: frozenset[str] | None = None
    ) -> Batch:
        self.peeked.append(after)
        return super().peek(after, limit, kinds, skip)


class OrderSink:
    """Records what it got, in order; fails where scripted; waits in its first send until a read-ahead happened."""

    def __init__(self, queue: PeekingQueue, fail_on: set[int]) -> None:
        self.name = "influx"
        self.queue = queue
        self.fail_on = fail_on
        self.sends = 0
        self.got: list[int] = []

    async def send(self, batch: Batch) -> int:
        self.sends += 1
        if self.sends == 1:  # the next batch is read while this one is out
            deadline = asyncio.get_running_loop().time() + DEADLINE
            while not self.queue.peeked:
                assert asyncio.get_running_loop().time() < deadline, "no read-ahead during the send"
                await asyncio.sleep(0.01)
        if self.sends in self.fail_on:
            raise SinkError("server down")
        self.got.extend(item.id for item in batch.items)
        return len(batch)

    def close(self) -> None:
        pass


async def test_the_next_batch_is_read_while_one_is_sent_and_a_failure_loses_nothing(tmp_path: Path) -> None:
    queue = PeekingQueue(tmp_path / "q.sqlite3", ["influx"])
    queue.peeked = []
    queue.append(readings(35))
    sink = OrderSink(queue, fail_on={2})
    delivery = Delivery(queue, sink, batch=10)
    assert await delivery.pump() is False  # the second batch fails: its read-ahead (ids 21-30) is dropped
    assert sink.got == list(range(1, 11)) and queue.pending("influx") == 25
    assert queue.peeked[:2] == [10, 20]
    assert await delivery.pump() is True
    assert sink.got == list(range(1, 36))  # each record once, in order
    assert queue.pending("influx") == 0
    queue.close()
