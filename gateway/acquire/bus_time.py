"""How busy a bus is: the seconds it spent in transactions, in total and as a fraction of a recent window. Sans-IO.

The poller reports each transaction as a (start, end) span on the monotonic clock: from the moment it asked the
link (which first waits for the line's silence) until the link returned (reply, timeout or error). A node that does
not answer holds the bus for its whole timeout, so timeouts count as busy time: that is the time nobody else can
use. Prometheus gets the total as a counter (``rate()`` of it is the utilisation over any range) and the fraction
over the last ``window_s`` as a gauge, for a glance without a query.
"""

from __future__ import annotations

from collections import deque

DEFAULT_WINDOW_S = 60.0


class BusTime:
    def __init__(self, created: float, window_s: float = DEFAULT_WINDOW_S) -> None:
        if window_s <= 0:
            raise ValueError(f"bus time window must be positive, got {window_s!r}")
        self.created = created
        self.window_s = window_s
        self.busy_s = 0.0  # since created: a counter
        self._spans: deque[tuple[float, float]] = deque()  # the spans that may overlap the window

    def add(self, start: float, end: float) -> None:
        """One transaction held the bus from start to end (end before start is a clock step: counted as 0)."""
        end = max(start, end)
        self.busy_s += end - start
        self._spans.append((start, end))
        horizon = end - self.window_s
        while self._spans and self._spans[0][1] <= horizon:
            self._spans.popleft()

    def fraction(self, now: float) -> float:
        """The share of the last window_s (or of the time since created, when shorter) the bus was busy, 0..1."""
        begin = max(now - self.window_s, self.created)
        length = now - begin
        if length <= 0:
            return 0.0
        busy = sum(max(0.0, min(end, now) - max(start, begin)) for start, end in self._spans)
        return min(1.0, busy / length)
