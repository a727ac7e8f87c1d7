"""Group commit: what the pipeline produces reaches the durable queue in one transaction per interval.

Every commit of the queue costs an fsync of its WAL (synchronous=FULL), and
an SD card wears with every one. Polls of a 32-node site arrive dozens of
times a second; committing each on its own costs dozens of fsyncs a second.
The writer collects records and commits them in one transaction once the
oldest of them has waited ``commit_interval`` seconds: at most one commit
per interval, and a burst of polls shorter than the interval (a bus polling
its nodes one after the other every second) shares one commit rather than
paying one for its first poll and one for the rest (issue 13).

The promise: a power cut (or ``kill -9``) loses at most the last
``commit_interval`` of readings, and those the nodes hand over again from
their history rings at the next start, because the acquisition resumes
after the newest reading the queue holds. What is not in a ring does not
wait: alarm events (``URGENT``) are committed at once.

Readings held for a valid clock travel the same way (``hold``), and the
release of held readings (``release``) is committed in the same transaction
as the stamped readings it released.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from gateway.deliver.commit_log import CommitLog, queued
from gateway.deliver.queue import DurableQueue, Held, Queued
from gateway.deliver.records import Record
from gateway.deliver.worker_thread import WorkerThread, in_thread
from gateway.process.alarms import AlarmEvent

URGENT: tuple[type, ...] = (AlarmEvent,)  # committed without waiting for the interval


class QueueWriter:
    def __init__(
        self,
        queue: DurableQueue,
        commit_interval: float,
        on_written: Callable[[], None] = lambda: None,
        mono: Callable[[], float] = time.monotonic,
        boot: str = "",
        thread: WorkerThread | None = None,
        log: CommitLog | None = None,
    ) -> None:
        """on_written: called after each commit (wakes the sinks). mono: the clock the interval is kept on.
        thread: where the commits run (the queue's one long-lived thread); None: the loop's default executor.
        log: where each commit's records are noted with their ids, for the deliveries (commit_log.py)."""
        self.queue = queue
        self.lock = queue.lock  # one thread at a time on the queue's connection, with every delivery
        self.commit_interval = commit_interval
        self.on_written = on_written
        self.mono = mono
        self.boot = boot
        self.thread = thread
        self.log = log
        self._records: list[Record] = []
        self._held: list[Held] = []
        self._released: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()
        self._waiting_since = 0.0  # when the oldest of what waits for the next commit arrived

    @property
    def pending(self) -> int:
        """Records waiting for the next commit."""
        return len(self._records)

    @property
    def waiting(self) -> tuple[Record, ...]:
        """The records waiting for the next commit, oldest first."""
        return tuple(self._records)

    def _arriving(self) -> None:
        """Something is about to wait for the next commit: its wait starts now if nothing waits already."""
        if not (self._records or self._held or self._released):
            self._waiting_since = self.mono()

    def add(self, records: Iterable[Record]) -> None:
        self._arriving()
        for record in records:
            self._records.append(record)
            if isinstance(record, URGENT):
                self._urgent.set()
        if self._records and not self._wake.is_set():
            self._wake.set()

    def hold(self, held: Iterable[Held]) -> None:
        self._arriving()
        self._held.extend(held)
        self._wake.set()

    def release(self, holder: str, upto: int) -> None:
        """The held readings of `holder` up to serial `upto` are gone (stamped into records, or dropped)."""
        self._arriving()
        self._released[holder] = max(upto, self._released.get(holder, 0))
        self._wake.set()

    async def flush(self) -> None:
        """Commit what is waiting now."""
        self._wake.clear()
        self._urgent.clear()
        if not (self._records or self._held or self._released):
            return
        records, self._records = self._records, []
        held, self._held = self._held, []
        released, self._released = self._released, {}
        async with self.lock:
            # In a worker thread: an fsync on an SD card must not stall the bus owners' event loop.
            if self.log is None:
                await in_thread(self.thread, self.queue.append, records, held, released, self.boot)
            else:
                queue_id, items, deleted = await in_thread(self.thread, self._append, records, held, released)
                if deleted:  # the quota deleted records: the queue no longer holds all that the log would serve
                    self.log.clear()
                else:
                    self.log.note_items(queue_id, items)
        self.on_written()

    def _append(
        self, records: list[Record], held: list[Held], released: dict[str, int]
    ) -> tuple[str, tuple[Queued, ...], bool]:
        """In the queue's thread: append, and say where the records went (the file, and the records with their
        ids, as the log keeps them: none if the disk refused them) and whether the disk quota deleted records."""
        stats = self.queue.stats
        before = stats.quota_deleted + stats.quota_dropped + stats.quota_dropped_health
        appended = self.queue.append(records, held, released, self.boot)
        deleted = stats.quota_deleted + stats.quota_dropped + stats.quota_dropped_health != before
        items: tuple[Queued, ...] = ()
        if records and appended >= len(records) and not deleted:
            # One transaction's rows get consecutive ids, the backlog a refusing disk kept first; the log
            # checks that this commit follows the one before (a backlog between them breaks it).
            items = queued(self.queue.last_id() - len(records) + 1, records)
        return self.queue.queue_id, items, deleted

    async def run(self, stop: asyncio.Event) -> None:
        # One task watches `stop` for the whole run and sets both events: each wait below is then a plain
        # await, not tasks created and cancelled per commit (CPU paid every interval, issue 13).
        watcher = asyncio.ensure_future(stop.wait())
        watcher.add_done_callback(self._stopping)
        try:
            while not stop.is_set():
                await self._wake.wait()
                delay = self.commit_interval - (self.mono() - self._waiting_since)
                if delay > 0 and not self._urgent.is_set():
                    # What arrives meanwhile goes into the same transaction; an alarm (or stop) cuts it short.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._urgent.wait()
                await self.flush()
            # Records added while the last commit was in the thread saw stop set before the loop looked
            # again: commit them here rather than leave them to whoever calls flush after the run.
            await self.flush()
        finally:
            watcher.cancel()

    def _stopping(self, watcher: asyncio.Future[Any]) -> None:
        if not watcher.cancelled():
            self._wake.set()
            self._urgent.set()
