"""The embedded default sink: records stored durably in SQLite (WAL mode).

WAL keeps readers (the demo table, a status page) from blocking the writer,
and synchronous=FULL makes a committed batch survive a power cut: on a
Raspberry Pi on a construction site, the power does fail.

Tables: ``readings`` (one row per reading, as before the queue existed),
``aggregates`` (a window's statistic with its count and validity: one row per
node, channel, source, statistic, window and start, holding the highest
revision that arrived, see docs/revisions.md),
``alarms`` (raised and cleared events), ``actuations`` (spray commands, the
reason and what came of writing the coil), ``outages`` and ``gaps`` (samples
lost for good, from the history backfill).

As a sink (``SqliteSink``, registered as "sqlite") it reads from the durable
queue. The id of the last queue record it stored is kept in the store, in
the same transaction as the records (table ``delivered``), so records the
queue hands over again after a crash (delivery is at least once) are not
stored twice.

Memory: the page cache is bounded like the queue's (queue.bound_memory).
Disk quota (``max_bytes``, 0: none): when the store's used pages exceed it,
the oldest readings are deleted, then the oldest aggregates, down to
``QUOTA_LOW_WATER`` of it (counted in ``quota_deleted``, logged); alarms,
actuations, outages and gaps are never deleted. Everything in the store was
delivered (the store is a sink): the queue's quota is the one that can lose
undelivered data.

Retention (``retention_days``, 0: none): readings older than that (their
timestamp) and aggregates whose window ended before it are deleted, in
transactions of at most ``PRUNE_CHUNK`` rows (a reader or the next batch
never waits long), by the sink's worker thread after a delivery, at most every
``prune_interval_s``: off the event loop that polls the buses. "Older" is
by the gateway's clock (the service's, attached), so a simulated site's
records age at the simulated pace. Alarms, actuations, outages and gaps are
kept: they are few, and they are the record of what happened on site.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gateway.deliver.queue import PRUNE_CHUNK, QUOTA_LOW_WATER, Batch, bound_memory, used_bytes
from gateway.deliver.records import Actuation, Outage
from gateway.deliver.sinks import SINKS
from gateway.deliver.worker_thread import WorkerThread
from gateway.model import Gap, Quality, Reading
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent

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
CREATE TABLE IF NOT EXISTS aggregates (
    id         INTEGER PRIMARY KEY,
    node       TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    channel    TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    statistic  TEXT    NOT NULL,
    window     TEXT    NOT NULL,
    start      REAL    NOT NULL,
    "end"      REAL    NOT NULL,
    value      REAL,
    unit       TEXT    NOT NULL,
    count      INTEGER NOT NULL,
    expected   INTEGER NOT NULL,
    valid      INTEGER NOT NULL,
    quality    TEXT    NOT NULL,
    revision   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS aggregates_node_channel_start ON aggregates (node, channel, start);
CREATE TABLE IF NOT EXISTS alarms (
    id        INTEGER PRIMARY KEY,
    alarm     TEXT NOT NULL,
    node      TEXT NOT NULL,
    channel   TEXT NOT NULL,
    severity  TEXT NOT NULL,
    state     TEXT NOT NULL,
    value     REAL,
    "limit"   REAL,
    ts        REAL NOT NULL,
    reason    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS actuations (
    id       INTEGER PRIMARY KEY,
    node     TEXT    NOT NULL,
    coil     TEXT    NOT NULL,
    "on"     INTEGER NOT NULL,
    ts       REAL    NOT NULL,
    mode     TEXT    NOT NULL,
    reason   TEXT    NOT NULL,
    value    REAL,
    level    REAL    NOT NULL,
    result   TEXT    NOT NULL,
    attempt  INTEGER NOT NULL,
    written  REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS outages (
    id      INTEGER PRIMARY KEY,
    node    TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    start   REAL    NOT NULL,
    "end"   REAL    NOT NULL,
    reason  TEXT    NOT NULL,
    missed  INTEGER NOT NULL,
    closed  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS gaps (
    id        INTEGER PRIMARY KEY,
    node      TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    start     REAL    NOT NULL,
    "end"     REAL    NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER,
    reason    TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS delivered (
    queue_id  TEXT PRIMARY KEY,
    last_id   INTEGER NOT NULL
);
"""

# A window's statistic is one row: a revision replaces it, a lower (older) revision arriving later is ignored.
_AGGREGATE_INDEX = (
    "CREATE UNIQUE INDEX IF NOT EXISTS aggregates_window"
    " ON aggregates (node, channel, source, statistic, window, start)"
)
_AGGREGATE_SQL = (
    'INSERT INTO aggregates (node, kind, channel, source, statistic, window, start, "end", value, unit,'
    " count, expected, valid, quality, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (node, channel, source, statistic, window, start) DO UPDATE SET"
    ' kind = excluded.kind, "end" = excluded."end", value = excluded.value, unit = excluded.unit,'
    " count = excluded.count, expected = excluded.expected, valid = excluded.valid, quality = excluded.quality,"
    " revision = excluded.revision"
    " WHERE excluded.revision > aggregates.revision"
)


def _upgrade_aggregates(db: sqlite3.Connection) -> None:
    """A store written before revisions: add the column, keep the newest row of each window, index it."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(aggregates)")}
    with db:
        db.execute("BEGIN IMMEDIATE")
        if "revision" not in columns:
            db.execute("ALTER TABLE aggregates ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
            # Before revisions a window was emitted once; rows repeated by a re-delivery are the same.
            db.execute(
                "DELETE FROM aggregates WHERE id NOT IN"
                " (SELECT max(id) FROM aggregates GROUP BY node, channel, source, statistic, window, start)"
            )
        db.execute(_AGGREGATE_INDEX)


_READING_SQL = (
    "INSERT INTO readings (node, kind, channel, value, unit, quality, ts, sequence) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _reading_row(r: Reading) -> tuple[object, ...]:
    return (r.node, r.kind, r.channel, r.value, r.unit, r.quality.value, r.timestamp, r.sequence)


log = logging.getLogger(__name__)
QUOTA_ORDER = ("readings", "aggregates")  # what the store's quota deletes, in this order, oldest first
RETENTION_TIME = (("readings", "ts"), ("aggregates", '"end"'))  # what retention deletes, and by which time


class SqliteStore:
    def __init__(self, path: Path | str, max_bytes: int = 0) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.quota_deleted = 0  # rows deleted for the disk quota
        self.retention_deleted = 0  # rows deleted for being older than the retention
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        bound_memory(self._db)
        self._db.executescript(f"BEGIN; {SCHEMA} COMMIT;")  # one transaction: one fsync, not one per table
        _upgrade_aggregates(self._db)

    def used_bytes(self) -> int:
        """Bytes of the store file's pages in use."""
        return used_bytes(self._db)

    def enforce_quota(self) -> int:
        """Delete the oldest readings, then aggregates, until the used pages are within the quota."""
        used = self.used_bytes()
        if not self.max_bytes or used <= self.max_bytes:
            return 0
        target = int(self.max_bytes * QUOTA_LOW_WATER)
        deleted = 0
        for table in QUOTA_ORDER:
            while used > target:
                rows = sum(int(self._db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in QUOTA_ORDER)
                if rows == 0:
                    break
                n = max(1, min(PRUNE_CHUNK, math.ceil((used - target) / max(1.0, used / rows))))
                with self._db:
                    self._db.execute("BEGIN")
                    cur = self._db.execute(
                        f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} ORDER BY id LIMIT ?)", (n,)
                    )
                if cur.rowcount == 0:
                    break
                deleted += cur.rowcount
                used = self.used_bytes()
        self.quota_deleted += deleted
        log.info("store %s: over its disk quota (%d bytes): deleted the %d oldest readings/aggregates (%d in all)",
                 self.path, self.max_bytes, deleted, self.quota_deleted)
        if used > self.max_bytes:
            log.error("store %s: still %d bytes over its disk quota with only alarms, actuations, outages and gaps "
                      "left: they are kept", self.path, used - self.max_bytes)
        return deleted

    def prune_older(self, cutoff: float, chunk: int = PRUNE_CHUNK) -> int:
        """Delete readings taken, and aggregates ended, before `cutoff` (a Unix time), `chunk` rows a transaction."""
        deleted = 0
        for table, column in RETENTION_TIME:
            while True:
                with self._db:
                    self._db.execute("BEGIN")
                    cur = self._db.execute(
                        f"DELETE FROM {table} WHERE id IN "
                        f"(SELECT id FROM {table} WHERE {column} < ? ORDER BY id LIMIT ?)",
                        (cutoff, chunk),
                    )
                deleted += cur.rowcount
                if cur.rowcount < chunk:
                    break
        self.retention_deleted += deleted
        return deleted

    def write(self, readings: Iterable[Reading]) -> int:
        rows = [_reading_row(r) for r in readings]
        if not rows:
            return 0
        with self._db:  # one transaction per batch
            self._db.execute("BEGIN")
            self._db.executemany(_READING_SQL, rows)
        return len(rows)

    def store_batch(self, batch: Batch) -> tuple[int, int]:
        """Store a queue batch in one transaction, skipping what an earlier delivery already stored.

        Returns (records delivered, readings among them newly stored).
        """
        if not batch.items:
            return 0, 0
        with self._db:
            self._db.execute("BEGIN")
            row = self._db.execute("SELECT last_id FROM delivered WHERE queue_id = ?", (batch.queue_id,)).fetchone()
            done = int(row[0]) if row else 0
            readings, aggregates, alarms, actuations, outages, gaps = [], [], [], [], [], []
            for item in batch.items:
                if item.id <= done:
                    continue
                r = item.record
                if isinstance(r, Reading):
                    readings.append(_reading_row(r))
                elif isinstance(r, Aggregate):
                    aggregates.append((r.node, r.kind, r.channel, r.source, r.statistic, r.window, r.start, r.end,
                                       r.value, r.unit, r.count, r.expected, int(r.valid), r.quality.value,
                                       r.revision))
                elif isinstance(r, AlarmEvent):
                    alarms.append((r.alarm, r.node, r.channel, r.severity.value, r.state.value, r.value, r.limit,
                                   r.time, r.reason))
                elif isinstance(r, Actuation):
                    actuations.append((r.node, r.coil, int(r.on), r.time, r.mode.value, r.reason, r.value, r.level,
                                       r.result, r.attempt, r.written))
                elif isinstance(r, Outage):
                    outages.append((r.node, r.kind, r.start, r.end, r.reason, r.missed, int(r.closed)))
                elif isinstance(r, Gap):
                    gaps.append((r.node, r.kind, r.start, r.end, r.first_sequence, r.last_sequence, r.reason))
                # Other kinds are not stored: the bare spray commands (their actuation is), health reports (the
                # uplinks carry them; the status page shows the present).
            self._db.executemany(_READING_SQL, readings)
            self._db.executemany(_AGGREGATE_SQL, aggregates)
            self._db.executemany(
                'INSERT INTO alarms (alarm, node, channel, severity, state, value, "limit", ts, reason)'
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                alarms,
            )
            self._db.executemany(
                'INSERT INTO actuations (node, coil, "on", ts, mode, reason, value, level, result, attempt, written)'
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                actuations,
            )
            self._db.executemany(
                'INSERT INTO outages (node, kind, start, "end", reason, missed, closed) VALUES (?, ?, ?, ?, ?, ?, ?)',
                outages,
            )
            self._db.executemany(
                'INSERT INTO gaps (node, kind, start, "end", first_seq, last_seq, reason) VALUES (?, ?, ?, ?, ?, ?, ?)',
                gaps,
            )
            self._db.execute(
                "INSERT INTO delivered VALUES (?, ?) ON CONFLICT (queue_id) DO UPDATE SET last_id = excluded.last_id",
                (batch.queue_id, max(done, batch.last_id)),
            )
        if self.max_bytes:
            self.enforce_quota()
        return len(batch.items), len(readings)

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

    def query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Rows of a read-only query (for status pages and tests)."""
        return [tuple(row) for row in self._db.execute(sql, args)]

    def close(self) -> None:
        self._db.close()


@SINKS.register("sqlite")
class SqliteSink:
    """The local SQLite store as a sink of the queue ([store] in the configuration)."""

    def __init__(
        self, name: str, path: str, max_bytes: int = 0, retention_days: float = 0.0, prune_interval_s: float = 600.0
    ) -> None:
        self.name = name
        self.store = SqliteStore(path, max_bytes)
        self.readings_stored = 0
        self.retention_s = retention_days * 86400.0
        self.prune_interval_s = prune_interval_s
        self.wall: Callable[[], float] = time.time  # the service's clock once attached
        self.clock_valid: Callable[[], bool] = lambda: True  # the service's, once attached
        self.mono: Callable[[], float] = time.monotonic
        self._prune_due = -math.inf
        # The store's own long-lived thread (not the queue's: a store write runs beside a queue commit, as before).
        self.thread = WorkerThread(f"store-{name}")

    def attach(self, service: Any) -> None:
        self.wall = service.clock.wall
        self.clock_valid = getattr(service.clock, "valid", self.clock_valid)

    async def send(self, batch: Batch) -> int:
        # In a worker thread: an fsync on an SD card must not stall the bus owners' event loop.
        delivered, readings = await self.thread.run(self._store, batch)
        self.readings_stored += readings
        return delivered

    def _store(self, batch: Batch) -> tuple[int, int]:
        result = self.store.store_batch(batch)
        self.apply_retention()
        return result

    def apply_retention(self) -> int:
        """Delete what is older than the retention, if a prune is due (in the thread that stores)."""
        # Not by a clock that is not valid yet: one set years ahead would cut away the whole store.
        if not self.retention_s or self.mono() < self._prune_due or not self.clock_valid():
            return 0
        self._prune_due = self.mono() + self.prune_interval_s
        cutoff = self.wall() - self.retention_s
        deleted = self.store.prune_older(cutoff)
        if deleted:
            log.info("store %s: deleted %d readings/aggregates older than %g days (%d in all)", self.store.path,
                     deleted, self.retention_s / 86400.0, self.store.retention_deleted)
        return deleted

    def close(self) -> None:
        self.thread.close()  # a store write under way ends before its connection closes
        self.store.close()
