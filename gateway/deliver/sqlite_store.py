"""The embedded default sink: readings stored durably in SQLite (WAL mode).

WAL keeps readers (the demo table, a status page) from blocking the writer,
and synchronous=FULL makes a committed batch survive a power cut: on a
Raspberry Pi on a construction site, the power does fail.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from gateway.model import Quality, Reading

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id        INTEGER PRIMARY KEY,
    node      TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    channel   TEXT    NOT NULL,
    value     REAL,
    unit      TEXT    NOT NULL,
    quality   TEXT    NOT NULL,
    ts        REAL    NOT NULL,
    sequence  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_node_channel_ts ON readings (node, channel, ts);
"""


class SqliteStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def write(self, readings: Iterable[Reading]) -> int:
        rows = [
            (r.node, r.kind, r.channel, r.value, r.unit, r.quality.value, r.timestamp, r.sequence) for r in readings
        ]
        if not rows:
            return 0
        with self._db:  # one transaction per batch
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO readings (node, kind, channel, value, unit, quality, ts, sequence)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def count_by_node(self) -> dict[str, int]:
        cur = self._db.execute("SELECT node, COUNT(*) FROM readings GROUP BY node ORDER BY node")
        return {node: count for node, count in cur.fetchall()}

    def readings(self, node: str | None = None, channel: str | None = None) -> list[Reading]:
        query = "SELECT node, kind, channel, value, unit, quality, ts, sequence FROM readings"
        clauses, args = [], []
        if node is not None:
            clauses.append("node = ?")
            args.append(node)
        if channel is not None:
            clauses.append("channel = ?")
            args.append(channel)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY id"
        return [
            Reading(n, k, c, v, u, Quality(q), ts, seq) for n, k, c, v, u, q, ts, seq in self._db.execute(query, args)
        ]

    def close(self) -> None:
        self._db.close()
