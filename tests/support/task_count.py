"""Counting the tasks an event loop creates (its task factory): what a loop costs per commit, round or poll."""

from __future__ import annotations

import asyncio
from typing import Any


class TaskCount:
    """Counts the tasks the running loop creates between `start` and `stop`."""

    def __init__(self) -> None:
        self.created = 0

    def start(self) -> None:
        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            self.created += 1
            return asyncio.Task(coro, loop=loop, **kwargs)

        asyncio.get_running_loop().set_task_factory(factory)

    def stop(self) -> None:
        asyncio.get_running_loop().set_task_factory(None)
