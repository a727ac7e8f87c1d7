"""When a node's values stop arriving live, and when they come back. Pure: no I/O, no clock.

The poller tells an ``OutageWatch`` about every poll of its node: answered
with a new sample, answered without one, or failed. The watch opens at most
one outage at a time and closes it when the node delivers again:

* **silent** (no reply, a bad frame, an exception reply: the node cannot
  deliver): the outage starts at the node's last good answer (the poll before
  the failure: the last moment it is known to have answered; before its
  first answer, at the first failed try) and ends at its first answer again.
  So a node silent for 32 s is an outage of about 32 s, whatever the retry
  schedule did in between.
* **stale** (the node answers, but its sample sequence does not advance for
  STALE_SAMPLES of its sample periods): starts at the last answer that
  brought a new sample, ends at the first one that does again. A node that
  answers does not prove it samples. The period is learned from the
  sequence's own progress (time between answers over samples gained), so a
  node sampling every 30 s polled every 0.5 s is not stale between samples;
  until it is known, UNKNOWN_PERIOD (the longest sample_interval the
  register map allows) stands in. Never less than STALE_SAMPLES polls.

A node that answers again after a silence closes the silent outage; its
staleness still counts from its last new sample (so a damaged reply does
not restart the count), once it has had a sample period to show a new one.
Failed polls of a stale node do not end its stale outage (only a new
sample does). Times are whatever the caller uses (the poller's
monotonic clock); the owner converts them to wall time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from firmware import regmap

STALE_REASON = "stale: sample sequence not advancing"
STALE_SAMPLES = 5  # sample periods without a new sample before an answering node counts as stale
# Seconds: the longest sample_interval a node may have, for a node whose period is not known yet.
UNKNOWN_PERIOD = regmap.find(regmap.COMMON_HOLDING, "sample_interval")[6] / 1000


@dataclass(frozen=True, slots=True)
class NodeOutage:
    """A stretch of time a node's values did not arrive live (see the module docstring)."""

    node: str
    kind: str
    start: float
    end: float
    reason: str  # "B: timeout", "D: exception 4", STALE_REASON ...
    missed: int  # polls in it that brought no sample
    closed: bool = True  # False: still open when the gateway stopped; end is the stop time


@dataclass
class _Open:
    start: float
    reason: str
    stale: bool
    missed: int = 0


class OutageWatch:
    def __init__(self, node: str, kind: str, poll_interval: float) -> None:
        if not poll_interval >= 0:  # 0: polled back to back
            raise ValueError(f"node {node}: poll interval must not be negative, not {poll_interval}")
        self.node = node
        self.kind = kind
        self.poll_interval = poll_interval
        self.period: float | None = None  # seconds per sample, as observed
        self.last_answer: float | None = None
        self.last_advance: float | None = None
        self._measured = False  # last_advance is the moment of a new sample (not of a first answer)
        self._back = -math.inf  # when the last silent outage ended
        self.open: _Open | None = None

    @property
    def stale_after(self) -> float:
        period = UNKNOWN_PERIOD if self.period is None else self.period
        return STALE_SAMPLES * max(period, self.poll_interval)

    @property
    def stale(self) -> bool:
        return self.open is not None and self.open.stale

    @property
    def silent(self) -> bool:
        return self.open is not None and not self.open.stale

    def failed(self, now: float, reason: str) -> None:
        """A poll that brought no answer the sample could come from; reason: e.g. "B: timeout"."""
        if self.open is None:
            self.open = _Open(now if self.last_answer is None else self.last_answer, reason, stale=False)
        # A stale node that fails a poll (a damaged reply, or gone altogether) is still one stretch
        # without values, which ends with its first new sample: it stays stale.
        self.open.missed += 1

    def answered(self, now: float, samples: int) -> list[NodeOutage]:
        """A valid reply that brought `samples` new samples (0: none). Returns the outages it closed."""
        closed: list[NodeOutage] = []
        self.last_answer = now
        if self.open is not None and not self.open.stale:
            # Answering again: the silence is over. Staleness still counts from the last new sample
            # (a damaged reply to a frozen node must not restart its count), but the node gets a
            # sample period to show a new one first (one that just restarted has none yet).
            closed.append(self._close(now))
            self._back, self._measured = now, False
            if samples > 0 or self.last_advance is None:
                self.last_advance = now
            return closed
        if self.last_advance is None:
            self.last_advance = now  # the first answer: staleness counts from here
            return closed
        if samples > 0:
            if self._measured and self.open is None:  # a frozen stretch says nothing of the period
                # Up at once, down slowly: a period guessed too short would call a healthy node stale.
                observed = (now - self.last_advance) / samples
                self.period = observed if self.period is None or observed > self.period else (
                    self.period + (observed - self.period) / 4
                )
            self._measured = True  # from here to the next new sample is a whole number of periods
            self.last_advance = now
            if self.open is not None:
                closed.append(self._close(now))
            return closed
        grace = max(self.period or 0.0, self.poll_interval)
        if self.open is None and now - self.last_advance >= self.stale_after and now - self._back >= grace:
            self.open = _Open(self.last_advance, STALE_REASON, stale=True)
        if self.open is not None:
            self.open.missed += 1
        return closed

    def close(self, now: float) -> list[NodeOutage]:
        """The gateway stops: the open outage, if any, ended now and marked not closed."""
        if self.open is None:
            return []
        outage = self._close(max(now, self.open.start), closed=False)
        return [outage]

    def _close(self, end: float, closed: bool = True) -> NodeOutage:
        assert self.open is not None
        o, self.open = self.open, None
        return NodeOutage(self.node, self.kind, o.start, end, o.reason, o.missed, closed)
