"""The ids of accepted downlink commands, durably: a replay is refused also after a restart.

A small SQLite file (WAL, synchronous=FULL: an id recorded before the
command was applied survives a power cut, so a command is applied at most
once). Ids older than ``keep_s`` are pruned as new ones arrive: a command
that old is refused as stale anyway (keep_s is twice the replay window).
The reply sent for each is kept too: a replay (say, the platform resending a
command whose reply it never got) is refused, and its reply carries the
original one. A command recorded but without a reply was interrupted while
being applied (the gateway stopped): its outcome is unknown.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA = "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, received REAL NOT NULL, reply TEXT)"


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
            self._db.execute("INSERT INTO seen (id, received) VALUES (?, ?)", (command_id, now))
        return None

    def settle(self, command_id: str, reply: str) -> None:
        """Keep the reply sent for an accepted command (a replay is answered with it)."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("UPDATE seen SET reply = ? WHERE id = ?", (reply, command_id))

    def reply_of(self, command_id: str) -> str | None:
        row = self._db.execute("SELECT reply FROM seen WHERE id = ?", (command_id,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])

    def close(self) -> None:
        self._db.close()
