"""What a restart reads back from the durable queue to rebuild its aggregation windows.

The queue holds every reading the aggregators saw, in the order they saw
them (the pipeline's output is appended as it comes), and every aggregate
emitted. At start the gateway replays the readings since the oldest window
still open or revisable (gateway/pipeline.py ``Pipeline.restore``) and hands
over the aggregates already emitted, so that nothing is emitted twice.

Reading uses its own connection: the queue's is shared with the writer
thread, and WAL lets a reader run beside it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from gateway.deliver.records import RecordError, from_json
from gateway.model import Reading
from gateway.process.aggregate import Aggregate, KnownKey
from gateway.process.alarms import AlarmEvent

log = logging.getLogger(__name__)

# Readings replayed before the first window that must be whole: running means
# (the 3-s gust) look back across a window's start.
REPLAY_LEAD_S = 60.0


class QueueReplay:
    """Reads the readings and aggregates of a queue file from a time on; counts what does not decode."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.readings = 0
        self.undecodable = 0
        self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)

    def emitted(self, since: float) -> dict[KnownKey, Aggregate]:
        """The highest revision of every aggregate whose window starts at or after `since`."""
        known: dict[KnownKey, Aggregate] = {}
        for qid, body in self._db.execute(
            "SELECT id, body FROM records WHERE kind = 'aggregate' AND ts >= ? ORDER BY id", (since,)
        ):
            record = self._decode(qid, "aggregate", body)
            if not isinstance(record, Aggregate):
                continue
            key = (record.node, record.channel, record.start)
            held = known.get(key)
            if held is None or record.revision >= held.revision:
                known[key] = record
        return known

    def readings_since(self, since: float) -> Iterator[Reading]:
        """The readings taken at or after `since`, in the order they were queued (streamed, not loaded)."""
        cursor = self._db.execute(
            "SELECT id, body FROM records WHERE kind = 'reading' AND ts >= ? ORDER BY id", (since - REPLAY_LEAD_S,)
        )
        for qid, body in cursor:
            record = self._decode(qid, "reading", body)
            if isinstance(record, Reading):
                self.readings += 1
                yield record

    def alarm_events(self) -> Iterator[AlarmEvent]:
        """Every alarm event the queue holds, in the order they were queued (a restart resumes the raised ones)."""
        for qid, body in self._db.execute("SELECT id, body FROM records WHERE kind = 'alarm' ORDER BY id"):
            record = self._decode(qid, "alarm", body)
            if isinstance(record, AlarmEvent):
                yield record

    def _decode(self, qid: int, kind: str, body: str) -> object:
        try:
            return from_json(kind, body)
        except RecordError as error:
            self.undecodable += 1
            log.error("queue %s: record %d not replayed: %s", self.path, qid, error)
            return None

    def close(self) -> None:
        self._db.close()
