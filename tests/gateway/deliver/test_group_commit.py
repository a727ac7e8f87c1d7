"""Group commit (gateway/deliver/writer.py) against a real queue file: few commits, alarms at once, nothing left."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from gateway.deliver.queue import DurableQueue, Held
from gateway.deliver.writer import QueueWriter
from gateway.model import Reading
from tests.gateway.deliver.test_queue import alarm, readings


async def until(condition: Callable[[], bool], deadline_s: float = 20.0) -> None:
    """Wait for a condition with a generous deadline (the suite runs on busy cores)."""
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, "condition not met before the deadline"
        await asyncio.sleep(0.01)


async def test_polls_arriving_faster_than_the_interval_share_one_commit(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["a"])
    writer = QueueWriter(queue, commit_interval=0.3)
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    started = time.monotonic()
    for i in range(100):  # 100 polls of 6 readings, 10 ms apart: a busy site
        writer.add(readings(6, start=6 * i))
        await asyncio.sleep(0.01)
    await until(lambda: queue.stats.appended == 600)
    elapsed = time.monotonic() - started
    stop.set()
    await task
    # At most one commit per interval, however slow the host (the last one at most an interval after the end).
    assert 1 <= queue.stats.commits <= elapsed / 0.3 + 1, (queue.stats.commits, elapsed)
    assert queue.stats.commits < 100
    assert [item.record.value for item in queue.read("a", 1000).items] == [float(i) for i in range(600)]
    queue.close()


async def test_a_burst_of_polls_after_a_quiet_spell_shares_one_commit(tmp_path: Path) -> None:
    """A bus polls its nodes one after the other once a second: the burst's first poll does not get a commit of its
    own (the writer once committed it at once, the last commit being long past, and the rest an interval later)."""
    queue = DurableQueue(tmp_path / "q.sqlite3", ["a"])
    writer = QueueWriter(queue, commit_interval=2.0)
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    for second in range(2):  # two bursts: after the start, and after the first burst's commit
        for poll in range(8):
            writer.add(readings(3, start=24 * second + 3 * poll))
            await asyncio.sleep(0)  # the writer task runs between polls, as between a bus's transactions
        await until(lambda: queue.stats.appended == 24 * (second + 1))  # noqa: B023 (awaited at once)
        assert queue.stats.commits == second + 1
    stop.set()
    await task
    assert queue.stats.commits == 2
    assert [item.record.value for item in queue.read("a", 100).items] == [float(i) for i in range(48)]
    queue.close()


async def test_a_record_waits_the_interval_for_its_commit_not_less(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["a"])
    committed: list[float] = []
    writer = QueueWriter(queue, commit_interval=0.3, on_written=lambda: committed.append(time.monotonic()))
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    for i in range(2):  # the first record of the run, and one after a quiet spell
        added = time.monotonic()
        writer.add(readings(1, start=i))
        await until(lambda: queue.stats.commits == i + 1)  # noqa: B023 (awaited at once)
        assert committed[-1] - added >= 0.29  # a timer may not fire early: only a slow host makes it later
        await asyncio.sleep(0.5)
    stop.set()
    await task
    assert queue.count() == 2
    queue.close()


async def test_an_alarm_event_is_committed_without_waiting_for_the_interval(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["a"])
    woken: list[float] = []
    writer = QueueWriter(queue, commit_interval=3600.0, on_written=lambda: woken.append(1))
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    writer.add(readings(3))
    await asyncio.sleep(0.2)
    assert queue.stats.commits == 0  # readings wait for the interval (an hour here)
    writer.add([alarm(0)])
    await until(lambda: queue.stats.commits == 1)  # ... an alarm does not, and takes the waiting readings along
    writer.add(readings(3, start=3))
    await asyncio.sleep(0.2)
    assert queue.stats.commits == 1
    writer.add([alarm(1)])
    await until(lambda: queue.stats.commits == 2)
    assert queue.count() == 8 and len(woken) == 2
    stop.set()
    await task
    queue.close()


async def test_flush_at_shutdown_commits_what_waits_for_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    queue = DurableQueue(path, ["a"])
    writer = QueueWriter(queue, commit_interval=3600.0)
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    writer.add(readings(1))
    writer.add([alarm(0)])
    await until(lambda: queue.stats.commits == 1)
    writer.add(readings(5, start=1))
    await asyncio.sleep(0)
    assert writer.pending == 5
    stop.set()
    await task
    await writer.flush()
    queue.close()
    again = DurableQueue(path, ["a"])
    assert again.count() == 7
    again.close()


async def test_held_readings_and_their_release_travel_in_the_commits(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["a"])
    writer = QueueWriter(queue, commit_interval=0.0, boot="boot-1")
    batch = [r for r in readings(4) if isinstance(r, Reading)]
    writer.hold(Held("bus0", 1, 10.0, r) for r in batch[:2])
    writer.hold(Held("bus0", 2, 11.0, r) for r in batch[2:])
    await writer.flush()
    assert queue.stats.held == 4 and queue.count() == 0
    writer.release("bus0", 1)
    writer.add(batch[:2])  # batch 1, stamped
    await writer.flush()
    assert queue.count() == 2
    assert [(h.serial, h.mono) for h in queue.held_readings("boot-1")] == [(2, 11.0), (2, 11.0)]
    queue.close()
