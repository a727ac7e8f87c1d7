"""Alarm acknowledgements from the status page: checked, then recorded durably. Acknowledging never clears.

An acknowledgement names one raised alarm (alarm, node, channel and ``since``, the instant it was raised, so
an acknowledgement of yesterday's dust alarm does not cover today's) and who acknowledged it. It is kept in a
small SQLite file beside the queue (WAL, synchronous=FULL: once the page was told "acknowledged", a power cut
does not undo it) and logged. The first acknowledgement of an alarm stands; a second one is answered with it.

``parse_ack`` is sans-IO: the request body in, an ``AckRequest`` or an ``AckError`` naming what is wrong out.
"""

from __future__ import annotations

import math
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = ("CREATE TABLE IF NOT EXISTS acks (alarm TEXT NOT NULL, node TEXT NOT NULL, channel TEXT NOT NULL, "
          "since REAL NOT NULL, by TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (alarm, node, channel, since))")
MAX_NAME = 40
_NAME = re.compile(r"^[^\x00-\x1f\x7f<>]{1,40}$")  # a person's name in any script; no control characters or markup


class AckError(ValueError):
    """A refused acknowledgement: the HTTP status to answer with and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class AckRequest:
    alarm: str
    node: str
    channel: str
    since: float
    by: str


@dataclass(frozen=True)
class Ack:
    alarm: str
    node: str
    channel: str
    since: float
    by: str
    at: float  # the gateway's wall clock when it was recorded

    def as_json(self) -> dict[str, Any]:
        return {"by": self.by, "at": self.at}


def parse_ack(body: Any) -> AckRequest:
    if not isinstance(body, dict):
        raise AckError(400, f"expected a JSON object, got {type(body).__name__}")
    for key in ("alarm", "node", "channel"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise AckError(400, f"{key}: expected the alarm's {key} (a string), got {body.get(key)!r}")
    since = body.get("since")
    if isinstance(since, bool) or not isinstance(since, int | float) or not math.isfinite(since):
        raise AckError(400, f"since: expected the alarm's start (epoch seconds), got {since!r}")
    by = body.get("by")
    by = by.strip() if isinstance(by, str) else by
    if not isinstance(by, str) or not _NAME.match(by):
        raise AckError(400, f"by: who acknowledges, 1-{MAX_NAME} characters without < > or control characters, "
                            f"got {body.get('by')!r}")
    return AckRequest(body["alarm"], body["node"], body["channel"], float(since), by)


class AckStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(SCHEMA)

    def record(self, request: AckRequest, at: float) -> tuple[Ack, bool]:
        """The acknowledgement now on record, and whether this request made it (False: it was acknowledged)."""
        key = (request.alarm, request.node, request.channel, request.since)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            earlier = self.of(*key)
            if earlier is not None:
                return earlier, False
            self._db.execute("INSERT INTO acks VALUES (?, ?, ?, ?, ?, ?)", (*key, request.by, at))
        return Ack(*key, request.by, at), True

    def of(self, alarm: str, node: str, channel: str, since: float) -> Ack | None:
        row = self._db.execute("SELECT by, at FROM acks WHERE alarm = ? AND node = ? AND channel = ? AND since = ?",
                               (alarm, node, channel, since)).fetchone()
        return None if row is None else Ack(alarm, node, channel, since, str(row[0]), float(row[1]))

    def close(self) -> None:
        self._db.close()
