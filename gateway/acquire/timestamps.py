"""Acquisition timestamps on a machine that may not know the time yet.

A Raspberry Pi has no real-time clock: it boots at 1970, or at the time
fake-hwclock saved at the last shutdown, and learns the real time from NTP
later, if at all. A reading stamped before that is wrong by hours or decades
and, once stored or sent to a platform, cannot be told apart from a good one.

So every reading is first timed on the monotonic clock (which is right from
boot), and converted to wall time only while the wall clock is known to be
valid. Readings taken before that are held (bounded) and stamped when the
clock becomes valid, using the monotonic-to-wall offset of that moment:
the monotonic interval since acquisition is exact, so the stamp is as good
as the synchronised clock.

Whether the clock is valid is injectable. The default (``ClockValidity``):
the wall time is later than a build-time floor (2026-01-01: no reading of
this software can be older), and, where a time-synchronisation daemon runs
(chrony, timesyncd, ntpd: gateway/acquire/kernel_clock.py), the kernel says
the clock is synchronised (adjtimex: no TIME_ERROR, STA_UNSYNC clear).
A stale fake-hwclock time passes the floor but not the second test.

Held readings are lost if the gateway stops before the clock is valid,
unless someone keeps them: ``journal`` is told of every held batch (with a
serial number that only grows) and ``on_gone`` of the serial up to which
held batches are gone (stamped and returned, or dropped past ``max_held``);
``preload`` puts batches kept from an earlier run back. The service keeps
them in the durable queue (gateway/deliver/queue.py, table ``held``).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from gateway.acquire.kernel_clock import KernelClockError, KernelSyncProbe, sync_daemon_present
from gateway.model import Reading

log = logging.getLogger(__name__)

# 2026-01-01T00:00:00Z: this code did not exist before, so neither can a reading it took.
BUILD_TIME_FLOOR = 1767225600.0
ASK_EVERY_S = 1.0  # while not synchronised, the kernel (or timedated) is asked at most this often
DEFAULT_MAX_HELD = 200_000  # readings; about an hour of 32 six-channel nodes at 1 Hz
# The wall clock's offset from the monotonic one is read between two monotonic reads; reads further apart
# than this (the thread was preempted in between: 40 ms seen on the 2-core development VM under load) are
# tried again, up to OFFSET_TRIES times in all, and the tightest kept.
OFFSET_SPAN_S = 0.001
OFFSET_TRIES = 3
DROP_LINE_EVERY_S = 600.0  # a full hold drops at every poll: its error line is repeated this often, not each time


class ClockValidity:
    """Default "is the wall clock valid" test (see the module docstring).

    require_sync: True: the kernel must say synchronised; False: the floor alone;
    None (default, "auto"): require it only where a time-synchronisation daemon runs.
    synced, daemon_present: the kernel's verdict and the daemon test (injectable for tests).
    """

    def __init__(
        self,
        floor: float = BUILD_TIME_FLOOR,
        require_sync: bool | None = None,
        wall: Callable[[], float] = time.time,
        synced: Callable[[], bool] | None = None,
        daemon_present: Callable[[], bool] = sync_daemon_present,
        mono: Callable[[], float] = time.monotonic,
        ask_every_s: float = ASK_EVERY_S,
    ) -> None:
        self.floor = floor
        self.require_sync = daemon_present() if require_sync is None else require_sync
        self.wall = wall
        self.synced = KernelSyncProbe() if synced is None else synced
        self.mono = mono
        self.ask_every_s = ask_every_s
        self._next_ask = -math.inf
        self._synced = False
        self._error_said = False

    def __call__(self) -> bool:
        if self.wall() < self.floor:
            return False
        if not self.require_sync:
            return True
        # Once synchronised, the kernel keeps the time: a later NTP outage does not make it invalid again.
        if not self._synced and self.mono() >= self._next_ask:
            # Asked on every stamp otherwise; the timedated fallback starts a process per question.
            self._next_ask = self.mono() + self.ask_every_s
            try:
                self._synced = self.synced()
            except KernelClockError as error:
                if not self._error_said:
                    self._error_said = True
                    log.error("cannot ask the kernel whether the clock is synchronised (%s): set [clock] "
                              "require_sync = \"never\" on a machine that forbids adjtimex", error)
        return self._synced


@dataclass
class Clock:
    """The three things the acquisition path asks about time; inject fakes in tests."""

    wall: Callable[[], float] = time.time
    mono: Callable[[], float] = time.monotonic
    valid: Callable[[], bool] = field(default_factory=ClockValidity)

    def offset(self) -> float:
        """wall - mono now, as one instant: the wall clock read between two monotonic reads, against their
        midpoint. `wall() - mono()` is off by however long the thread was kept from the second read (a busy
        host's preemption; at a simulated clock's speed, that many times more), and every reading's
        timestamp with it."""
        best_span = math.inf
        best = 0.0
        for _ in range(OFFSET_TRIES):
            before = self.mono()
            wall = self.wall()
            after = self.mono()
            span = after - before
            if span < best_span:
                best_span, best = span, wall - (before + after) / 2.0
            if span <= OFFSET_SPAN_S:
                break
        return best


class HoldJournal(Protocol):
    """Who keeps held readings beyond this process (see the module docstring)."""

    def held(self, serial: int, taken_mono: float, readings: list[Reading]) -> None: ...

    def gone(self, upto: int) -> None: ...


@dataclass
class Stamper:
    """Turns monotonic acquisition times into wall-clock timestamps, holding readings until it can."""

    clock: Clock
    max_held: int = DEFAULT_MAX_HELD
    bus: str = ""  # named in the log lines
    journal: HoldJournal | None = None
    held: deque[tuple[int, float, list[Reading]]] = field(default_factory=deque, init=False)
    held_count: int = field(default=0, init=False)
    dropped: int = field(default=0, init=False)  # held readings discarded because the hold was full
    was_valid: bool = field(default=False, init=False)
    serial: int = field(default=0, init=False)  # of the newest held batch
    _next_drop_line: float = field(default=-math.inf, init=False)  # monotonic time the next drop may be logged

    def preload(self, serial: int, taken_mono: float, readings: list[Reading]) -> None:
        """A batch held by an earlier run (oldest first): held again, not journalled again."""
        self.held.append((serial, taken_mono, readings))
        self.held_count += len(readings)
        self.serial = max(self.serial, serial)

    def wall_time(self, taken_mono: float) -> float | None:
        """Wall time of a monotonic instant, or None while the wall clock is not valid."""
        if not self.clock.valid():
            return None
        return taken_mono + self.clock.offset()

    def stamp(self, taken_mono: float, readings: list[Reading]) -> list[Reading]:
        """Readings taken at taken_mono (their timestamps are replaced), plus any released from the hold.

        Returns what may be delivered now, oldest first; an empty list while
        the clock is not valid (the readings are held).
        """
        if not self.clock.valid():
            if readings:
                self._hold(taken_mono, readings)
            return []
        offset = self.clock.offset()
        out: list[Reading] = []
        if not self.was_valid:
            self.was_valid = True
            if self.held:
                log.info("bus %s: wall clock is valid: stamping %d held readings", self.bus, self.held_count)
        released = 0
        while self.held:
            released, mono, batch = self.held.popleft()
            out.extend(_stamped(r, mono + offset) for r in batch)
        self.held_count = 0
        if released and self.journal is not None:
            self.journal.gone(released)
        out.extend(_stamped(r, taken_mono + offset) for r in readings)
        return out

    def _hold(self, taken_mono: float, readings: list[Reading]) -> None:
        if self.was_valid or not self.held:
            self.was_valid = False
            # Said once per episode, so an operator knows why no reading arrives yet.
            log.warning("bus %s: wall clock is not valid (the kernel says not synchronised yet): holding readings "
                        "until it is (sitewatch status shows the clock)", self.bus)
        self.serial += 1
        self.held.append((self.serial, taken_mono, readings))
        self.held_count += len(readings)
        if self.journal is not None:
            self.journal.held(self.serial, taken_mono, readings)
        dropped_upto = 0
        while self.held_count > self.max_held and self.held:
            dropped_upto, _, oldest = self.held.popleft()
            self.held_count -= len(oldest)
            self.dropped += len(oldest)
        if dropped_upto and self.clock.mono() >= self._next_drop_line:
            # Once full, every poll drops its oldest batch: say so every DROP_LINE_EVERY_S, not at every poll.
            self._next_drop_line = self.clock.mono() + DROP_LINE_EVERY_S
            log.error("bus %s: holding more than %d readings for a valid clock: dropped the oldest (%d in all); "
                      "raise [clock] max_held or get NTP working", self.bus, self.max_held, self.dropped)
        if dropped_upto and self.journal is not None:
            self.journal.gone(dropped_upto)


def _stamped(r: Reading, timestamp: float) -> Reading:
    # What dataclasses.replace(r, timestamp=...) makes, at a fifth of its cost: every reading
    # of every poll passes here (issue 13).
    return Reading(r.node, r.kind, r.channel, r.value, r.unit, r.quality, timestamp, r.sequence)
