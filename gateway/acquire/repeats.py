"""One log line per episode of the same failure, not one per retry (sans-IO: the caller passes the time).

A serial adapter that is unplugged fails every reopen attempt, for hours. Logging
each attempt floods the journal and hides everything else; logging only the first
hides that it is still failing. So: the first failure is said at once; the same
failure again is counted, and said again (with the count) at most every
``every_s``; a different failure is said at once; the end of the episode is said
with the number of attempts it took.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_EVERY_S = 300.0  # a still-failing port is said again at most this often


@dataclass
class Repeats:
    every_s: float = DEFAULT_EVERY_S
    failures: int = 0  # in this episode
    since: float | None = None  # the episode's first failure
    last_text: str = ""
    suppressed: int = 0  # failures not said since the last line
    _next_line: float = 0.0

    def failed(self, text: str, now: float) -> int | None:
        """A failure: None to stay quiet, else the number of identical failures not said before this one."""
        self.failures += 1
        if self.since is None:
            self.since = now
        if text != self.last_text or now >= self._next_line:
            said = self.suppressed
            self.last_text, self.suppressed, self._next_line = text, 0, now + self.every_s
            return said
        self.suppressed += 1
        return None

    def succeeded(self, now: float) -> tuple[int, float] | None:
        """The episode is over: (failures it had, its length in s), or None if there was none."""
        if self.since is None:
            return None
        episode = (self.failures, now - self.since)
        self.failures, self.since, self.last_text, self.suppressed, self._next_line = 0, None, "", 0, 0.0
        return episode
