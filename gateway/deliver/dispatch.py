"""Moving records from the durable queue to one sink: read past its cursor, send, confirm, repeat.

One ``Delivery`` per sink, each in its own task: a sink that is down backs
off (exponentially, from ``min_backoff`` to ``max_backoff`` seconds) and
retries, while the others carry on. Nothing is lost while it is down: its
cursor stays where it was, and the queue's retention never prunes past it.

A server that says how long to wait (``SinkError.retry_after``, from an HTTP
429/503 Retry-After) is waited for that long (at least ``min_backoff``, at
most RETRY_AFTER_LIMIT) instead of the exponential backoff. A sink that
raises ``SinkFatalError`` (a bad token, a missing database: retrying will
never help) is stopped: one error in the log naming the sink and the
server's message, ``stats.fatal`` holds it, and the other sinks carry on.

Queue calls run in a worker thread under one lock shared with the writer
(the queue's SQLite connection is used by one thread at a time, and its
fsyncs never stall the event loop the bus owners time their replies on).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from gateway.deliver.commit_log import CommitLog
from gateway.deliver.queue import Batch, DurableQueue
from gateway.deliver.sinks import Lane, Sink, SinkFatalError
from gateway.deliver.worker_thread import WorkerThread, in_thread
from gateway.pause import pause as stop_aware_pause

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_AFTER_LIMIT = 3600.0  # s: the longest a server's Retry-After is honoured (a broken header must not park a sink)


@dataclass
class DeliveryStats:
    delivered: int = 0  # records confirmed
    batches: int = 0
    failures: int = 0  # sends that raised or delivered nothing
    last_error: str = ""
    last_delivery: float | None = None  # wall time of the last confirmed batch
    down_since: float | None = None  # wall time of the first failure of the present run
    fatal: str = ""  # why the sink was stopped for good (SinkFatalError), empty while it may still deliver


class Delivery:
    def __init__(
        self,
        queue: DurableQueue,
        sink: Sink,
        *,
        batch: int = 500,
        interval: float = 1.0,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
        wall: Callable[[], float] = time.time,
        pause: Callable[[asyncio.Event, float], Awaitable[None]] | None = None,
        lane: Lane | None = None,
        thread: WorkerThread | None = None,
        commits: CommitLog | None = None,
    ) -> None:
        """thread: where the queue calls run (the queue's one long-lived thread, shared with the writer);
        None: the loop's default executor. commits: the writer's log of its last commits (commit_log.py),
        where a lane that has caught up reads what followed instead of asking the queue."""
        self.queue = queue
        self.thread = thread
        self.sink = sink
        self.lane = lane or Lane(sink.name)  # the cursor, and the kinds it reads
        self.batch = batch
        self.interval = interval
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.lock = queue.lock  # the queue's own, shared with its writer and other deliveries
        self.wall = wall
        self.stats = DeliveryStats()
        self.backoff = 0.0  # 0 while the sink works
        self.wake = asyncio.Event()  # set by whoever appends to the queue
        self.pause = pause or stop_aware_pause  # waits out a backoff (until stop); injected by tests
        self.commits = commits
        # (queue file, last id) when a read from the cursor last came back empty: the lane had everything up to
        # that id. None once a batch was taken since, or when unknown: the next read goes to the queue.
        self._caught_up: tuple[str, int] | None = None

    @property
    def name(self) -> str:
        return self.lane.cursor

    async def _queue(self, call: Callable[..., T], *args: object) -> T:
        async with self.lock:
            return await in_thread(self.thread, call, *args)

    async def pump(self, deadline: float | None = None, stop: asyncio.Event | None = None) -> bool:
        """Deliver until the sink has caught up (True), or it failed, the deadline passed or stop was set (False).

        While a full batch is being sent, the next one is read (and decoded) ahead from the queue: a
        backlog drains at the pace of the slower of the two, not of their sum. A read-ahead is used only
        when the whole batch before it was delivered, and is always awaited (never cancelled: its worker
        thread holds the queue's connection until it returns).
        """
        ahead: asyncio.Future[Batch] | None = None
        following: Batch | None = None  # read from the cursor in the same worker-thread trip as the last confirm
        try:
            while True:
                if self.stats.fatal:
                    return False
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                if stop is not None and stop.is_set():  # a long backlog must not hold up the shutdown
                    return False
                lane = self.lane
                if following is not None:
                    batch, following = following, None
                    if not batch.items:  # read after the confirm: caught up
                        return True
                else:
                    batch = await ahead if ahead is not None else Batch("", ())
                    ahead = None
                    if not batch.items:  # no read-ahead, or it held nothing decodable: read from the cursor
                        served = self._from_commits()
                        batch = served if served is not None else await self._queue(self._read, lane)
                    if not batch.items:
                        return True
                if len(batch) >= self.batch:  # a full batch: more may follow
                    ahead = asyncio.ensure_future(
                        self._queue(self.queue.peek, batch.last_id, self.batch, lane.kinds, lane.skip)
                    )
                try:
                    accepted = await self.sink.send(batch)
                except SinkFatalError as error:
                    self._stopped(str(error))
                    return False
                except Exception as error:  # a sink's failure is a value here: log, count, back off
                    self._failed(f"{type(error).__name__}: {error}", getattr(error, "retry_after", None))
                    return False
                if accepted <= 0:
                    self._failed("delivered nothing")
                    return False
                accepted = min(accepted, len(batch))
                upto = batch.items[accepted - 1].id
                if ahead is None and accepted == len(batch):
                    # The usual round of a sink that keeps up: a short batch, all delivered. The read that
                    # says whether more came meanwhile goes in the confirm's trip to the worker thread
                    # (each trip costs futex and event-loop wake-ups: a fixed cost paid every interval).
                    following = await self._queue(self._confirm_and_read, lane, upto)
                else:
                    await self._queue(self.queue.confirm, lane.cursor, upto)
                self._succeeded(accepted)
                if accepted < len(batch) and ahead is not None:
                    await ahead  # read past records that were not delivered: the rest again, from the cursor
                    ahead = None
        finally:
            if ahead is not None:
                await ahead

    def _confirm_and_read(self, lane: Lane, upto: int) -> Batch:
        """In the worker thread: move the lane's cursor to `upto`, then read what follows it."""
        self.queue.confirm(lane.cursor, upto)
        return self._read(lane)

    def _read(self, lane: Lane) -> Batch:
        """In the worker thread: what follows the lane's cursor; when nothing does, where the lane now stands."""
        batch = self.queue.read(lane.cursor, self.batch, lane.kinds, lane.skip)
        if self.commits is not None:
            # Set here, in the thread, where no commit runs between the read and last_id: every commit noted in
            # the log after this one starts past it. On the loop's side it is only read after this trip returns.
            self._caught_up = None if batch.items else (self.queue.queue_id, self.queue.last_id())
        return batch

    def _from_commits(self) -> Batch | None:
        """What followed the point the lane caught up to, from the writer's log (None: read from the queue)."""
        caught_up, self._caught_up = self._caught_up, None  # taken once: the confirm's read sets it again
        if caught_up is None or self.commits is None:
            return None
        queue_id, after = caught_up
        lane = self.lane
        items = self.commits.after(queue_id, after, self.batch, lane.kinds, lane.skip)
        return None if items is None else Batch(queue_id, items)

    def _stopped(self, error: str) -> None:
        self.stats.failures += 1
        self.stats.last_error = error
        self.stats.fatal = error
        if self.stats.down_since is None:
            self.stats.down_since = self.wall()
        log.error("sink %s: stopped, retrying cannot help: %s (its records wait in the queue; fix the sink's"
                  " configuration and restart the gateway)", self.name, error)

    def _failed(self, error: str, retry_after: float | None = None) -> None:
        self.stats.failures += 1
        if self.stats.down_since is None or error != self.stats.last_error:
            log.warning("sink %s: cannot deliver: %s (records wait in the queue)", self.name, error)
        if self.stats.down_since is None:
            self.stats.down_since = self.wall()
        self.stats.last_error = error
        self.backoff = min(max(self.backoff * 2, self.min_backoff), self.max_backoff)
        if retry_after is not None:  # the server knows better than our guess
            self.backoff = min(max(retry_after, self.min_backoff), RETRY_AFTER_LIMIT)

    def _succeeded(self, count: int) -> None:
        if self.stats.down_since is not None:
            log.info("sink %s: delivering again after %.0f s", self.name, self.wall() - self.stats.down_since)
            self.stats.down_since = None
        self.stats.delivered += count
        self.stats.batches += 1
        self.stats.last_delivery = self.wall()
        self.backoff = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver whenever woken (``wake``: new records), at most every `interval` s; back off while failing."""
        # One task watches `stop` for the whole run and sets `wake`: waiting for a wake is then a plain await,
        # not two tasks created and cancelled every round (CPU paid every interval, issue 13).
        watcher = asyncio.ensure_future(stop.wait())
        watcher.add_done_callback(lambda done: None if done.cancelled() else self.wake.set())
        try:
            while not stop.is_set():
                self.wake.clear()  # before reading: a wake during the pump is not lost
                started = time.monotonic()
                if not await self.pump(stop=stop):
                    if self.stats.fatal:
                        return
                    await self.pause(stop, self.backoff)
                    continue
                await self.wake.wait()  # new records, or stop
                # Let an interval pass since the last send: what arrives meanwhile goes in one batch (one commit).
                await stop_aware_pause(stop, self.interval - (time.monotonic() - started))
        finally:
            watcher.cancel()

    async def flush(self, timeout: float) -> bool:
        """At shutdown: deliver what is pending within timeout seconds; True if the sink caught up."""
        return await self.pump(time.monotonic() + timeout)
