"""The ids of accepted downlink commands, durably: a replay is refused also after a restart.

A small SQLite file (WAL, synchronous=FULL: an id recorded before the
command was applied survives a power cut, so a command is applied at most
once). Ids older than ``keep_s`` are pruned as new ones arrive: a command
that old is refused as stale anyway (keep_s is twice the replay window).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA = "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, received REAL NOT NULL)"


class SqliteSeenIds:
    def __init__(self, path: Path | str, keep_s: float) -> None:
        self.path = Path(path)
        self.keep_s = keep_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(SCHEMA)

    def first_seen(self, command_id: str, now: float) -> float | None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT received FROM seen WHERE id = ?", (command_id,)).fetchone()
            if row is not None:
                return float(row[0])
            self._db.execute("DELETE FROM seen WHERE received < ?", (now - self.keep_s,))
            self._db.execute("INSERT INTO seen VALUES (?, ?)", (command_id, now))
        return None

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])

    def close(self) -> None:
        self._db.close()
