"""The writer's log of its last commits (commit_log.py): a delivery that has caught up takes what followed from it
instead of a read trip to the queue's thread, and never skips or repeats a record for that: across appends that did
not go through the writer, a disk that refused a commit, a sink that failed, a restart and the disk quota."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.deliver.commit_log import CommitLog, queued
from gateway.deliver.dispatch import Delivery
from gateway.deliver.queue import Batch, DurableQueue
from gateway.deliver.records import Record, kind_of
from gateway.deliver.sinks import Lane
from gateway.deliver.writer import QueueWriter
from gateway.model import Quality, Reading
from gateway.process.alarms import AlarmEvent, EventState, Severity
from tests.gateway.deliver.counted import CountedDelivery


def readings(n: int, start: int = 0) -> list[Record]:
    return [Reading("dust-1", "dust", "pm10", float(start + i), "ug/m3", Quality.NORMAL, 1e9 + start + i, start + i)
            for i in range(n)]


def alarm(value: float) -> AlarmEvent:
    return AlarmEvent("dust", "dust-1", "pm10", Severity.ALARM, EventState.RAISED, value, 150.0, 1e9, "r")


def note(log: CommitLog, queue_id: str, first_id: int, records: list[Record]) -> None:
    """As the writer notes a commit of `records` with ids first_id, first_id + 1, ..."""
    log.note_items(queue_id, queued(first_id, records))


def logged(tmp_path: Path) -> tuple[DurableQueue, CommitLog, QueueWriter]:
    """A queue with one sink, and a writer that notes its commits in a log."""
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store"])
    log = CommitLog()
    return queue, log, QueueWriter(queue, commit_interval=0.0, log=log)


def values(batch: Batch) -> list[float | None]:
    return [item.record.value for item in batch.items if isinstance(item.record, Reading | AlarmEvent)]



class Sink:
    """Remembers what it got, in order; fails (before taking anything) when `fail` says so."""

    def __init__(self, name: str = "store", fail: Callable[[], bool] = lambda: False) -> None:
        self.name = name
        self.fail = fail
        self.got: list[float | None] = []
        self.ids: list[int] = []

    async def send(self, batch: Batch) -> int:
        if self.fail():
            raise OSError("store down")
        self.got += values(batch)
        self.ids += [item.id for item in batch.items]
        return len(batch)

    def close(self) -> None:
        pass


def test_the_log_serves_only_what_follows_without_a_hole() -> None:
    log = CommitLog()
    note(log, "q1", 1, readings(3))
    note(log, "q1", 4, readings(2, start=3))
    served = log.after("q1", 2, 500, None, None)
    assert served is not None and [item.id for item in served] == [3, 4, 5]
    assert log.after("q1", 5, 500, None, None) is None  # nothing past it: the queue is asked
    assert log.after("q2", 2, 500, None, None) is None  # another file
    assert log.after("q1", 2, 2, None, None) is None  # more than a batch: the queue reads and reads ahead
    note(log, "q1", 9, readings(2, start=8))  # ids 6-8 went in by another way: the log starts again at 9
    assert log.after("q1", 2, 500, None, None) is None
    assert log.after("q1", 5, 500, None, None) is None
    served = log.after("q1", 8, 500, None, None)
    assert served is not None and [item.id for item in served] == [9, 10]
    note(log, "q2", 11, readings(1))  # a new file (the old one moved aside): nothing of the old one is served
    assert log.after("q1", 8, 500, None, None) is None


def test_the_log_filters_by_the_lanes_kinds_and_is_bounded() -> None:
    log = CommitLog(limit=10)
    records: list[Record] = readings(4)
    records.insert(2, alarm(1.0))
    note(log, "q", 1, records)
    kinds = frozenset({kind_of(alarm(0.0))})
    only = log.after("q", 0, 500, kinds, None)
    assert only is not None and [item.id for item in only] == [3]
    rest = log.after("q", 0, 500, None, kinds)
    assert rest is not None and [item.id for item in rest] == [1, 2, 4, 5]
    for start in range(6, 30, 4):
        note(log, "q", start, readings(4))
    assert log.after("q", 0, 500, None, None) is None  # the oldest commits are gone
    assert log.after("q", 21, 500, None, None) is not None


async def test_a_delivery_that_has_caught_up_takes_the_writers_commits_without_a_read(tmp_path: Path) -> None:
    queue, log, writer = logged(tmp_path)
    sink = Sink()
    delivery = CountedDelivery(queue, sink, commits=log)
    writer.add(readings(5))
    await writer.flush()
    assert await delivery.pump() is True
    assert delivery.trips == 2  # the first round reads: nothing is known of where the lane stands
    for i in range(1, 6):
        writer.add(readings(5, start=5 * i))
        await writer.flush()
        assert await delivery.pump() is True
    # every round after the first: the confirm and the read that finds nothing more, one trip (was two)
    assert delivery.trips == 2 + 5 and log.served == 5
    assert sink.got == [float(i) for i in range(30)]
    assert sink.ids == list(range(1, 31))
    assert queue.pending("store") == 0


async def test_records_from_another_way_and_a_refused_commit_are_neither_skipped_nor_repeated(tmp_path: Path) -> None:
    queue, log, writer = logged(tmp_path)
    sink = Sink()
    delivery = Delivery(queue, sink, commits=log)
    expected: list[float] = []
    n = 0

    async def through_writer(count: int) -> None:
        nonlocal n
        writer.add(readings(count, start=n))
        expected.extend(float(n + i) for i in range(count))
        n += count
        await writer.flush()

    await through_writer(3)
    assert await delivery.pump()
    await through_writer(3)
    queue.append(readings(2, start=n))  # not through the writer (as a test or a tool might)
    expected.extend([float(n), float(n + 1)])
    n += 2
    await through_writer(3)  # the log breaks here: the lane's point is before the other two
    assert await delivery.pump()
    assert sink.got == expected
    await through_writer(2)
    queue.append(readings(2, start=n))  # after the writer's last commit: found by the confirm's read
    expected.extend([float(n), float(n + 1)])
    n += 2
    assert await delivery.pump()
    assert sink.got == expected

    # The disk refuses a commit: its records wait in the queue's memory and go first in the next one.
    real = queue._insert
    refusing = True

    def insert(*args: Any) -> None:
        if refusing:
            raise sqlite3.OperationalError("disk I/O error")
        real(*args)

    queue._insert = insert  # type: ignore[method-assign]
    await through_writer(3)
    assert await delivery.pump()  # nothing reached the file yet
    refusing = False
    await through_writer(3)
    assert await delivery.pump()
    assert sink.got == expected
    assert sink.ids == sorted(set(sink.ids))
    assert queue.pending("store") == 0


async def test_a_failing_store_and_a_restart_lose_and_repeat_nothing(tmp_path: Path) -> None:
    rng = random.Random(13)
    path = tmp_path / "q.sqlite3"
    expected: list[float] = []
    got: list[float | None] = []
    n = 0
    served = 0
    for _run in range(3):  # each run a new queue object, log, writer and delivery on the same file: a restart
        queue = DurableQueue(path, ["store", "alarms"])
        log = CommitLog()
        writer = QueueWriter(queue, commit_interval=0.0, log=log)
        sink = Sink(fail=lambda: rng.random() < 0.2)
        delivery = Delivery(queue, sink, batch=7, commits=log, min_backoff=0.0)
        alarm_sink = Sink("alarms")
        alarms = Delivery(queue, alarm_sink, commits=log,
                          lane=Lane("alarms", kinds=frozenset({kind_of(alarm(0.0))})))
        for _ in range(40):
            count = rng.randint(0, 9)
            records = readings(count, start=n)
            if rng.random() < 0.2:
                records.append(alarm(float(n + count)))
                count += 1
            expected.extend(float(n + i) for i in range(count))
            n += count
            writer.add(records)
            await writer.flush()
            if rng.random() < 0.7:
                await delivery.pump()
                await alarms.pump()
        # What a failure left behind, before the "restart" (bounded: a delivery that never catches up fails here
        # instead of hanging the suite).
        for _ in range(1000):
            if await delivery.pump():
                break
        else:
            pytest.fail(f"the store delivery did not catch up: {queue.pending('store')} records pending")
        assert await alarms.pump()
        got += sink.got
        served += log.served
        assert queue.pending("store") == 0 and queue.pending("alarms") == 0
        queue.close()
    assert got == expected  # every record once, in order, across failures and restarts
    assert served > 20  # and the log did serve most rounds


async def test_a_commit_that_made_the_quota_delete_records_empties_the_log(tmp_path: Path) -> None:
    queue, log, writer = logged(tmp_path)
    writer.add(readings(3))
    await writer.flush()
    assert log.after(queue.queue_id, 0, 500, None, None) is not None
    real = queue.append

    def append_over_quota(*args: Any) -> int:
        queue.stats.quota_dropped += 1  # as enforce_quota counts what it deleted
        return real(*args)

    queue.append = append_over_quota  # type: ignore[method-assign]
    writer.add(readings(3, start=3))
    await writer.flush()
    assert log.after(queue.queue_id, 0, 500, None, None) is None
    assert log.after(queue.queue_id, 3, 500, None, None) is None
