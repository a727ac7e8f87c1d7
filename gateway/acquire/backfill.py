"""Backfill: fetch the samples a node took while nobody read them; record those that are gone. Sans-IO.

Every node keeps a ring of its recent samples (firmware/history.py, at
least ten minutes) and shows it through the history window
(regmap.HISTORY_BASE): the gateway writes the first sequence number it wants
to the holding register "history_seq" and reads the window, one record per
sample with its sequence number and its age. So when a poll finds sample
``seq`` and the last sample the gateway delivered was ``last``, samples
last+1 .. seq-1 were missed (a bus or node outage, a gateway restart, a
poll that failed) and those still in the ring (from ``history_oldest`` on)
can be fetched, with their original times. The older ones were overwritten:
they are lost, and recorded as such.

``plan`` is that decision. ``Backfill`` is one node's bookkeeping around it:
a queue, in sequence order, of what comes next: ranges still to fetch,
samples already polled that must wait until the older ones are in (nothing
is delivered out of order), and losses. The poller (poller.py) feeds it
what the bus brought and does what it asks: ``fetch`` says which records to
read next, ``records`` takes what a window read returned. Every method
returns what may now be delivered, in order: ``Sampled`` items (a sample
and its payload, the decoded readings) and ``Lost`` items (a run of
samples that cannot be had, with the times around it). Times are whatever
clock the caller uses (the poller: monotonic seconds).

Losses:

* overwritten: samples older than the ring's oldest (an outage longer than
  the ring, or a backfill that could not keep up with it);
* reboot: the node restarted (its sequence went back, or the poller saw its
  uptime or boot count do so). The samples it had not handed over are gone
  with its memory: the ranges still to fetch, and whatever it took after
  the last sample the gateway saw, a number nobody knows (``last`` is None).
  The second is only recorded when the time from that last sample to the
  first one after the restart is longer than 1.5 sample intervals (else no
  sample can have been missed);
* unavailable: the node refused the history window (the caller gives up
  on it: ``abandon``).

A loss is emitted just before the first sample after it, which gives its
end; its start is the time of the sample before it. When that sample is
not known (the gateway resumed after a restart from a stored sequence
number), the start is estimated from the sample interval, or equals the end
when no estimate exists.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

P = TypeVar("P")

OVERWRITTEN = "overwritten"
REBOOT = "reboot"
UNAVAILABLE = "unavailable"

LATE_FACTOR = 1.5  # a stretch longer than this many sample intervals held at least one sample
TIME_SLACK = 0.05  # s: how far a record's time may stray from the order its sequence implies


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do about missed samples: lost (gone from the ring) and fetch (still in it)."""

    lost: range
    fetch: range


def plan(last: int, seq: int, oldest: int) -> Plan:
    """Samples last+1 .. seq-1 were missed; which of them can still be fetched.

    oldest: the node's history_oldest, the oldest sample in its ring (0: the
    ring is empty). Sample seq itself is the one just polled.
    """
    first = last + 1
    if seq <= first:
        return Plan(range(first, first), range(first, first))
    if oldest <= 0 or oldest >= seq:
        return Plan(range(first, seq), range(seq, seq))
    keep = max(first, oldest)
    return Plan(range(first, keep), range(keep, seq))


@dataclass(frozen=True, slots=True)
class Sampled(Generic[P]):
    """One sample: its sequence number, when the node took it, and what the caller made of it."""

    sequence: int
    taken: float
    payload: P


@dataclass(frozen=True, slots=True)
class Lost:
    """Samples first .. last (inclusive; last None: how many is unknown) that will never be delivered."""

    first: int
    last: int | None
    reason: str
    start: float  # time of the sample before them (or an estimate: see the module docstring)
    end: float  # time of the sample after them

    @property
    def count(self) -> int | None:
        return None if self.last is None else self.last - self.first + 1


@dataclass
class _Loss:
    """A loss waiting in the queue, or waiting for the next sample to know its end."""

    first: int
    last: int | None
    reason: str
    start: float | None = None
    only_if_late: bool = False


@dataclass
class BackfillStats:
    fetched: int = 0  # samples delivered from the history window
    missed: int = 0  # samples polls found skipped (still in the ring or already overwritten), reboots aside
    lost: int = 0  # samples recorded as lost (those of a known count)
    gaps: int = 0  # Lost records emitted
    requests: int = 0  # history transactions (the poller counts them)
    failures: int = 0  # history transactions that brought nothing usable
    inconsistent: int = 0  # window reads whose records did not fit what was asked


Emitted = Sampled[P] | Lost
_Item = range | Sampled[P] | _Loss


class Backfill(Generic[P]):
    """One node's backfill bookkeeping (see the module docstring).

    last: the last sequence number already delivered (resumed from a store),
    or None to start with whatever the first poll brings.
    """

    def __init__(self, last: int | None = None) -> None:
        self.last = last
        self.last_taken: float | None = None
        self.interval: float | None = None  # seconds per sequence step, from the samples seen
        self.stats = BackfillStats()
        self._queue: deque[_Item[P]] = deque()
        self._losses: list[_Loss] = []  # at the head: waiting for the next sample (their end)
        self._same_boot = False  # last_taken and last belong to one numbering (for the interval)

    # -- questions ---------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while samples wait to be fetched (and newer ones wait for them)."""
        return bool(self._queue)

    @property
    def waiting(self) -> int:
        """Samples still to fetch."""
        return sum(len(item) for item in self._queue if isinstance(item, range))

    def fetch(self, limit: int) -> range | None:
        """The records to read next, at most limit of them, or None when nothing is to be fetched."""
        if not self._queue or limit < 1:
            return None
        head = self._queue[0]
        assert isinstance(head, range)  # _drain leaves a range at the head, or nothing
        return range(head.start, min(head.stop, head.start + limit))

    def tail(self) -> int | None:
        """The newest sequence number accounted for (delivered, waiting or lost)."""
        for item in reversed(self._queue):
            if isinstance(item, range):
                return item.stop - 1
            if isinstance(item, Sampled):
                return item.sequence
            if item.last is not None:
                return item.last
        return self.last

    # -- what the bus brought ----------------------------------------------------------
    def sample(self, seq: int, oldest: int, taken: float, payload: P, rebooted: bool = False) -> list[Emitted[P]]:
        """A poll brought sample seq (the node's history_oldest was oldest); what may be delivered now.

        rebooted: the caller saw the node restart (uptime or boot count went
        back); a sequence that went back says so by itself.
        """
        if not self._queue and not rebooted and self.last is not None and seq == self.last + 1:
            # The next sample, nothing waiting or missed: nearly every poll. What the general path below does
            # then (nothing to trim, an empty plan, the sample queued and drained at once), without its steps.
            return self._emit(Sampled(seq, taken, payload))
        tail = self.tail()
        if tail is not None and (rebooted or seq < tail):
            return self._reboot(seq, oldest, taken, payload)
        new = Sampled(seq, taken, payload)
        if tail is None:
            return self._emit(new)
        self._trim(oldest)
        if seq == tail:
            return self._drain()  # nothing new (a resumed gateway finds the sample it stored last)
        missed = plan(tail, seq, oldest)
        self.stats.missed += len(missed.lost) + len(missed.fetch)
        if missed.lost:
            self._queue.append(_Loss(missed.lost.start, missed.lost.stop - 1, OVERWRITTEN))
        if missed.fetch:
            self._queue.append(missed.fetch)
        self._queue.append(new)
        return self._drain()

    def records(self, start: int, items: Sequence[Sampled[P] | None]) -> list[Emitted[P]] | None:
        """What a window read returned: items[r] is sample start + r, or None for an empty record.

        Returns what may be delivered now, or None when the records do not
        fit what was asked (wrong sequence numbers, or times out of order:
        the node is not showing the window the caller thinks, e.g. after a
        restart). Nothing is taken from such a read; the caller should write
        history_seq again.
        """
        if not self._queue or not isinstance(self._queue[0], range) or self._queue[0].start != start:
            self.stats.inconsistent += 1
            return None
        head = self._queue[0]
        wanted = items[: len(head)]
        if not self._plausible(start, wanted):
            self.stats.inconsistent += 1
            return None
        out: list[Emitted[P]] = []
        for r, item in enumerate(wanted):
            seq = start + r
            if item is None:
                self._lose_now(_Loss(seq, seq, OVERWRITTEN))
            else:
                out.extend(self._emit(item))
                self.stats.fetched += 1
        rest = range(start + len(wanted), head.stop)
        if rest:
            self._queue[0] = rest
        else:
            self._queue.popleft()
        out.extend(self._drain())
        return out

    def abandon(self, reason: str = UNAVAILABLE) -> list[Emitted[P]]:
        """Give up fetching: every range still to fetch is lost; the samples waiting are delivered."""
        self._queue = deque(_Loss(i.start, i.stop - 1, reason) if isinstance(i, range) else i for i in self._queue)
        return self._drain()

    # -- inside ------------------------------------------------------------------------
    def _reboot(self, seq: int, oldest: int, taken: float, payload: P) -> list[Emitted[P]]:
        # What the old boot still owed us is gone with its memory; what was polled is good.
        out = self.abandon(REBOOT)
        assert not self._queue
        if self.last is not None:
            # It may have taken samples after the last one we saw: how many, nobody knows.
            self._lose_now(_Loss(self.last + 1, None, REBOOT, only_if_late=True))
        self.last = 0  # the new boot numbers from 1
        self._same_boot = False
        out.extend(self.sample(seq, oldest, taken, payload))
        return out

    def _trim(self, oldest: int) -> None:
        """Ranges still to fetch that the ring no longer holds are lost."""
        if oldest <= 0:
            return
        trimmed: deque[_Item[P]] = deque()
        for item in self._queue:
            if isinstance(item, range) and item.start < oldest:
                gone = range(item.start, min(item.stop, oldest))
                trimmed.append(_Loss(gone.start, gone.stop - 1, OVERWRITTEN))
                if item.stop > oldest:
                    trimmed.append(range(oldest, item.stop))
            else:
                trimmed.append(item)
        self._queue = trimmed

    def _drain(self) -> list[Emitted[P]]:
        """Deliver from the head of the queue until a range must be fetched first."""
        out: list[Emitted[P]] = []
        queue = self._queue
        while queue and not isinstance(queue[0], range):
            item = queue.popleft()
            if isinstance(item, Sampled):
                out.extend(self._emit(item))
            elif isinstance(item, _Loss):
                self._lose_now(item)
        return out

    def _lose_now(self, loss: _Loss) -> None:
        # Everything before it has been delivered: its start is the last sample's time.
        loss.start = self.last_taken
        if loss.last is not None:
            self.stats.lost += loss.last - loss.first + 1
        previous = self._losses[-1] if self._losses else None
        if (
            previous is not None
            and previous.reason == loss.reason
            and previous.last is not None
            and loss.last is not None
            and previous.last + 1 == loss.first
        ):
            previous.last = loss.last
            return
        self._losses.append(loss)

    def _emit(self, item: Sampled[P]) -> list[Emitted[P]]:
        out: list[Emitted[P]] = []
        for loss in self._losses:
            lost = self._finish(loss, item)
            if lost is not None:
                out.append(lost)
                self.stats.gaps += 1
        self._losses.clear()
        if self._same_boot and self.last is not None and self.last_taken is not None and item.sequence > self.last:
            step = (item.taken - self.last_taken) / (item.sequence - self.last)
            if step > 0:
                self.interval = step
        out.append(item)
        self.last = item.sequence
        self.last_taken = item.taken
        self._same_boot = True
        return out

    def _finish(self, loss: _Loss, after: Sampled[P]) -> Lost | None:
        end = after.taken
        interval = self._interval_hint(after)
        start = loss.start
        if start is None:
            if interval is not None and loss.last is not None and after.sequence > loss.last:
                start = end - (after.sequence - loss.first + 1) * interval
            else:
                start = end
        elif loss.only_if_late and interval is not None and end - start <= LATE_FACTOR * interval:
            return None  # the node restarted between two samples: nothing missing
        return Lost(loss.first, loss.last, loss.reason, min(start, end), end)

    def _interval_hint(self, after: Sampled[P]) -> float | None:
        if self.interval is not None:
            return self.interval
        # A gateway that just resumed has seen one sample at most: the one waiting behind.
        for item in self._queue:
            if isinstance(item, Sampled) and item.sequence > after.sequence and item.taken > after.taken:
                return (item.taken - after.taken) / (item.sequence - after.sequence)
        return None

    def _plausible(self, start: int, items: Sequence[Sampled[P] | None]) -> bool:
        """The records are the samples asked for, and their times fit between their neighbours'."""
        low = self.last_taken
        high = next((i.taken for i in self._queue if isinstance(i, Sampled)), None)
        for r, item in enumerate(items):
            if item is None:
                continue
            if item.sequence != start + r:
                return False
            if low is not None and item.taken < low - TIME_SLACK:
                return False
            if high is not None and item.taken > high + TIME_SLACK:
                return False
            low = item.taken
        return True
