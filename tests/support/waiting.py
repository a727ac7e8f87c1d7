"""Waiting on a condition instead of sleeping a guessed time: what a test on a busy CPU needs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, interval: float = 0.01) -> float:
    """Poll `condition` until it holds; return the seconds it took. Fail after `timeout` seconds.

    The timeout is a generous ceiling for a loaded machine, not an expectation: a test states what
    must happen, and how fast only where speed is the point (benchmarks measure that).
    """
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s: {getattr(condition, '__name__', condition)}")
        time.sleep(interval)
    return time.monotonic() - started


async def wait_until_async(
    condition: Callable[[], bool],
    timeout: float = 30.0,
    interval: float = 0.02,
    detail: Callable[[], object] | None = None,
) -> float:
    """`wait_until` for a test whose subject runs on the same event loop: yields to it between checks.

    `detail`: what to show when the condition is not met (the subject's status, say).
    """
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            shown = f"; {detail()!r}" if detail is not None else ""
            raise AssertionError(
                f"condition not met within {timeout} s: {getattr(condition, '__name__', condition)}{shown}"
            )
        await asyncio.sleep(interval)
    return time.monotonic() - started
