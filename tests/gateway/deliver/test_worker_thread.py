"""The queue's long-lived worker thread (issue 13): what asyncio.to_thread did for the writer, the deliveries and the
store, in one thread per database: results and errors come back, calls keep their order, a cancelled await does not
break it, close lets the calls under way end."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from gateway.deliver.dispatch import Delivery
from gateway.deliver.queue import Batch, DurableQueue
from gateway.deliver.records import Record
from gateway.deliver.sqlite_store import SqliteSink
from gateway.deliver.worker_thread import WorkerThread
from gateway.deliver.writer import QueueWriter
from gateway.model import Quality, Reading


def readings(n: int, start: int = 0) -> list[Record]:
    return [Reading("dust-1", "dust", "pm10", float(start + i), "ug/m3", Quality.NORMAL, 1e9 + start + i, start + i)
            for i in range(n)]


async def test_results_and_errors_come_back_in_order_from_one_thread() -> None:
    worker = WorkerThread("test")
    seen: list[tuple[int, int]] = []

    def call(n: int) -> int:
        seen.append((n, threading.get_ident()))
        return n * n

    def fail() -> None:
        raise ValueError("bad row")

    try:
        results = await asyncio.gather(*(worker.run(call, n) for n in range(50)))
        assert results == [n * n for n in range(50)]
        assert [n for n, _ in seen] == list(range(50))  # submitted order
        threads = {ident for _, ident in seen}
        assert len(threads) == 1 and threads != {threading.get_ident()}  # one thread, not the loop's
        with pytest.raises(ValueError, match="bad row"):
            await worker.run(fail)
        assert await worker.run(call, 7) == 49  # an error does not end the thread
        assert {ident for _, ident in seen} == threads
    finally:
        worker.close()


async def test_a_cancelled_await_lets_the_call_finish_and_the_thread_go_on() -> None:
    worker = WorkerThread("test")
    release = threading.Event()
    finished: list[str] = []

    def slow() -> str:
        release.wait(30.0)
        finished.append("slow")
        return "slow"

    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    try:
        waiting = asyncio.ensure_future(worker.run(slow))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        release.set()
        assert await worker.run(lambda: "next") == "next"  # runs after slow, in order
        assert finished == ["slow"]
        assert not errors  # no "InvalidStateError" from settling a cancelled future
    finally:
        loop.set_exception_handler(None)
        worker.close()


async def test_close_waits_for_the_calls_under_way_and_a_closed_worker_refuses_new_calls() -> None:
    worker = WorkerThread("test")
    done: list[int] = []
    pending = [asyncio.ensure_future(worker.run(done.append, n)) for n in range(5)]
    await asyncio.sleep(0)  # submitted
    worker.close()
    assert done == [0, 1, 2, 3, 4]
    await asyncio.gather(*pending)
    # It used to start a new thread quietly, for a connection its owner had closed.
    with pytest.raises(RuntimeError, match="worker thread test is closed"):
        await worker.run(lambda: 1)
    worker.close()  # twice: nothing


async def test_a_call_submitted_while_close_waits_for_the_thread_is_refused_not_left_hanging() -> None:
    # The thread is busy; close() (from another thread) has queued the sentinel that ends it and waits. A call
    # submitted now used to be queued behind the sentinel, where nobody would ever run it: its await hung.
    worker = WorkerThread("race")
    release = threading.Event()
    busy = asyncio.ensure_future(worker.run(release.wait, 30))
    while worker.calls == 0 or worker._calls.qsize():  # the thread has taken the busy call
        await asyncio.sleep(0.001)
    closer = threading.Thread(target=worker.close)
    closer.start()
    while not worker._calls.qsize():  # the sentinel is queued
        await asyncio.sleep(0.001)
    late = asyncio.ensure_future(worker.run(lambda: 1))
    release.set()
    assert await asyncio.wait_for(busy, 30) is True
    with pytest.raises(RuntimeError, match="closed"):
        await asyncio.wait_for(late, 30)
    closer.join(30)


async def test_writer_deliveries_and_store_use_their_long_lived_threads(tmp_path: Path) -> None:
    """The gateway's path: commits and queue reads in the queue's thread, store writes in the store's."""
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store"])
    queue_thread = WorkerThread("queue")
    where: dict[str, set[int]] = {"append": set(), "read": set(), "store": set()}
    append, read = queue.append, queue.read

    def traced_append(*args: object) -> None:
        where["append"].add(threading.get_ident())
        append(*args)  # type: ignore[arg-type]

    def traced_read(*args: object) -> Batch:
        where["read"].add(threading.get_ident())
        return read(*args)  # type: ignore[arg-type]

    queue.append = traced_append  # type: ignore[method-assign]
    queue.read = traced_read  # type: ignore[method-assign]
    sink = SqliteSink("store", str(tmp_path / "store.sqlite3"))
    store = sink._store

    def traced_store(batch: Batch) -> tuple[int, int]:
        where["store"].add(threading.get_ident())
        return store(batch)

    sink._store = traced_store  # type: ignore[method-assign]
    writer = QueueWriter(queue, commit_interval=0.0, thread=queue_thread)
    delivery = Delivery(queue, sink, thread=queue_thread)
    try:
        for i in range(3):
            writer.add(readings(4, start=4 * i))
            await writer.flush()
            assert await delivery.pump() is True
        assert sink.store.count_by_node() == {"dust-1": 12}
        assert queue.pending("store") == 0
        assert len(where["append"]) == 1 and where["append"] == where["read"]  # the queue's one thread
        assert len(where["store"]) == 1 and where["store"] != where["append"]  # the store's own
        assert threading.get_ident() not in where["append"] | where["store"]
        assert queue_thread.calls == 3 + 3 * 2  # 3 commits; per round a read and a confirm-and-read
    finally:
        queue_thread.close()
        sink.close()
        queue.close()
