"""One long-lived thread that runs blocking calls (SQLite commits, fsyncs) for the event loop, one at a time.

Why not ``asyncio.to_thread``: each call through the loop's default executor copies the context, wraps a
``concurrent.futures.Future`` in an asyncio one (two futures and their callbacks), goes through the
executor's idle-thread bookkeeping, and, when two calls overlap, wakes a second pool thread that then
contends with the first for the GIL. The writer's commits and the deliveries' queue calls made about five
such trips a second, a fixed cost paid whatever the node count (issue 13: about 125 us of CPU per trip,
against about 55 us through this thread; ``tests/gateway/deliver/test_worker_thread.py``).

Calls run in the order they were submitted, in this one thread: a SQLite connection used only through one
``WorkerThread`` is used by one thread at a time. A call whose awaiting coroutine is cancelled still runs
to its end (as with ``to_thread``: it may hold a connection); its result is then dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_STOP = None  # the sentinel that ends the thread


class WorkerThread:
    def __init__(self, name: str) -> None:
        self.name = name
        self._calls: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Starting the thread, submitting a call and closing (calls may come from more than one loop): a call
        # is never queued behind the sentinel that ends the thread, where nobody would ever run it.
        self._lock = threading.Lock()
        self._closed = False
        self.calls = 0  # calls made (for tests and figures)

    async def run(self, call: Callable[..., T], *args: object) -> T:
        """Run call(*args) in this thread; the result (or the exception it raised) comes back here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._closed:
                # Not a new thread behind the owner's back: the connection it would use is closed too.
                raise RuntimeError(f"worker thread {self.name} is closed: no call runs after close()")
            if self._thread is None or not self._thread.is_alive():
                # A daemon: a gateway that never closes it (a test, a crash) must not keep the process alive.
                self._thread = threading.Thread(target=self._work, name=f"sitewatch-{self.name}", daemon=True)
                self._thread.start()
            self.calls += 1
            self._calls.put((loop, future, call, args))
        return await future

    def _work(self) -> None:
        while True:
            item = self._calls.get()
            if item is _STOP:
                return
            loop, future, call, args = item
            try:
                result = call(*args)
            except BaseException as error:  # handed to the awaiting coroutine, as to_thread does
                _hand_back(loop, future, None, error)
            else:
                _hand_back(loop, future, result, None)

    def close(self, timeout: float = 30.0) -> None:
        """Let the calls submitted so far finish, then end the thread. A call submitted after this raises."""
        with self._lock:
            self._closed = True
            thread = self._thread
            if thread is None or not thread.is_alive():
                return
            self._calls.put(_STOP)
        if thread is not threading.current_thread():
            thread.join(timeout)


def _hand_back(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any,
               error: BaseException | None) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits the result any more
        loop.call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # its coroutine was cancelled while the call ran
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


async def in_thread(thread: WorkerThread | None, call: Callable[..., T], *args: object) -> T:
    """call(*args) in `thread`, or in the loop's default executor when there is none (a caller's own use)."""
    if thread is None:
        return await asyncio.to_thread(call, *args)
    return await thread.run(call, *args)
