"""Is each loop of the gateway making progress? Pure: counters and times in, stuck loops out.

The systemd watchdog must be fed only while the gateway does its work, not
merely while its event loop turns: a poll loop stuck in a transaction that
never ends, or a delivery stuck in a send, keeps the loop alive but the site
unwatched. Each loop shows a counter that moves when it does something (polls
and history reads of a bus; batches delivered or failed by a sink). A loop
is stuck when its counter has not moved for longer than its allowance: the
longest it may legitimately wait (a node's poll interval or backoff, a sink's
backoff) plus a grace. A loop with nothing to do (a sink with no backlog) is
idle, never stuck.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Loop:
    allowance: float
    counter: int
    since: float  # when the counter last moved (or the loop last was idle)


class ProgressWatch:
    def __init__(self) -> None:
        self._loops: dict[str, _Loop] = {}

    def observe(self, name: str, counter: int, now: float, allowance: float, busy: bool = True) -> None:
        """The loop's counter at `now`; busy=False: it has nothing to do, so standing still is fine."""
        loop = self._loops.get(name)
        if loop is None or counter != loop.counter or not busy:
            self._loops[name] = _Loop(allowance, counter, now)
        else:
            loop.allowance = allowance

    def stuck(self, now: float) -> dict[str, float]:
        """Loops that have shown no progress beyond their allowance: name -> seconds since their last progress."""
        return {name: now - loop.since for name, loop in self._loops.items() if now - loop.since > loop.allowance}

    def forget(self, name: str) -> None:
        self._loops.pop(name, None)
