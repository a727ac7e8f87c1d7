"""The records the writer committed last, with their queue ids: a delivery that has caught up reads them here.

Why: a delivery that keeps up reads, each round, exactly what the writer committed since its last read. That
read was a trip to the queue's worker thread a second per lane (a futex hand-off, an event-loop wake-up, a
SELECT and a decode of every body: issue 13, sixth round), for records the writer had in memory a moment
before. The log hands them over instead, when it can prove they are exactly what the read would return:

* the delivery knows a point ``after`` up to which it had read everything of its lane (a read from its cursor,
  in the queue's thread, came back empty while the queue's last id was ``after``);
* the log holds, without a hole, every commit from id ``after + 1`` on, of the same queue file (a commit
  whose first id does not follow the one before — a backlog the disk refused, an append that did not go
  through the writer, a new file after corruption — or one that deleted records for the disk quota starts the
  log afresh, so nothing before it is ever served from here).

Anything else (a delivery that has not caught up, failed, or read a full batch; a log that does not reach back
far enough) reads from the queue as before. Records appended after the last commit the log knows of (by
another path) have higher ids than anything served from here, so the read that follows a confirm finds them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from gateway.deliver.queue import Queued
from gateway.deliver.records import Record, kind_of

LOG_RECORDS = 4096  # records kept: a delivery interval's commits of a large site, several times over


def queued(first_id: int, records: Sequence[Record]) -> tuple[Queued, ...]:
    """Records committed with ids first_id, first_id + 1, ... as the queue's read would hand them out."""
    return tuple(Queued(first_id + i, kind_of(record), record) for i, record in enumerate(records))


class CommitLog:
    def __init__(self, limit: int = LOG_RECORDS) -> None:
        self.limit = limit
        self._commits: deque[tuple[int, tuple[Queued, ...]]] = deque()  # (first id, items), oldest first
        self._queue_id = ""
        self._next = 0  # the id the next commit must start at to continue the log (0: empty)
        self._kept = 0  # records in _commits
        self.served = 0  # reads answered from here (for tests and figures)

    def note_items(self, queue_id: str, items: tuple[Queued, ...]) -> None:
        """The writer committed these records to queue file `queue_id`, with consecutive ids, in order. The items
        are made by `queued` in the writer's worker thread: a record's `Queued` costs about a microsecond, 130 a
        second at 32 nodes, better spent off the loop's thread."""
        if not items:
            return
        first_id = items[0].id
        if queue_id != self._queue_id or first_id != self._next:
            self.clear()
            self._queue_id = queue_id
        self._commits.append((first_id, items))
        self._kept += len(items)
        self._next = first_id + len(items)
        while self._kept > self.limit and len(self._commits) > 1:
            self._kept -= len(self._commits.popleft()[1])

    def clear(self) -> None:
        """Forget everything (the queue changed in a way the log cannot follow: the next commit starts it anew)."""
        self._commits.clear()
        self._kept = 0
        self._next = 0

    def after(
        self, queue_id: str, after: int, limit: int, kinds: frozenset[str] | None, skip: frozenset[str] | None
    ) -> tuple[Queued, ...] | None:
        """The lane's records with ids past `after`, if the log holds all of them and there are 1..limit of them.

        None: ask the queue (the log does not reach back to `after`, is of another file, holds nothing past
        it, or more than `limit`, which the queue's read would cut into batches and read ahead).
        """
        if not self._commits or queue_id != self._queue_id or not self._commits[0][0] <= after + 1 <= self._next:
            return None
        found: list[Queued] = []
        for first, items in self._commits:
            if first + len(items) <= after + 1:
                continue
            for item in items[max(0, after + 1 - first):]:
                if (kinds is None or item.kind in kinds) and (skip is None or item.kind not in skip):
                    found.append(item)
        if not found or len(found) > limit:
            return None
        self.served += 1
        return tuple(found)
