"""A stop-aware sleep for the gateway's periodic tasks."""

from __future__ import annotations

import asyncio
import contextlib


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile (at once when it is set already or seconds <= 0)."""
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):  # a timer, not a task as wait_for makes (3.11)
            await stop.wait()
