"""The durable queue: every record appended once, a cursor per sink.

One SQLite file in WAL mode holds the records in the order they were
appended (``records``, ids that only grow: AUTOINCREMENT, so an id is never
reused even after pruning has emptied the table) and one cursor per sink
(``cursors``: the id of the last record that sink confirmed). A sink reads
what lies beyond its cursor, delivers it, and confirms; so a sink that is
down only falls behind, blocks no other sink and loses nothing, and after a
restart every sink resumes from its own cursor. Delivery is at least once:
a sink that delivered but crashed before confirming sees those records
again (the SQLite store sink skips them, see sqlite_store.py).

Durability: synchronous=FULL, one transaction per append, so a record the
queue accepted survives a power cut (a Raspberry Pi on a construction site
does lose power). The service appends at most every ``commit_interval_ms``
(gateway/deliver/writer.py: group commit, one fsync for many polls), so a
power cut loses at most that much of the newest readings, which the nodes'
history rings hand over again at the next start (the acquisition resumes
after the newest reading in the queue).

Memory: each connection's page cache is bounded (``CACHE_KIB``), memory
mapping is off and the WAL file is truncated back to ``WAL_LIMIT_BYTES``
after each checkpoint (see ``bound_memory``), so resident memory stays flat
however long the gateway runs.

Disk quota (``max_bytes``, 0: none): when the pages the records use exceed
it, records are deleted until they use at most ``QUOTA_LOW_WATER`` of it:
first the oldest records every sink has confirmed (whatever their age), then
the oldest health reports no sink has confirmed yet (``stats.quota_dropped_health``:
the gateway's own vital signs are worth less than the site's data, and the next
report says the same of the present), then the oldest readings and aggregates
no sink has confirmed yet (counted in ``stats.quota_dropped``, logged as an
error; ``Gateway.status()`` raises it as a fault). Alarm events, outages, gaps
and actuations are never deleted for the quota (``PROTECTED``).

Drops since install (``dropped_total``): readings and aggregates the quota
deleted before a sink had them, records dropped from the memory backlog, and
held readings given up (``note_dropped``, for drops counted elsewhere) add up
in the ``meta`` table, written with the next append, so the count a health
report carries survives restarts.

Held readings (table ``held``): readings taken while the wall clock was not
valid (gateway/acquire/timestamps.py), with the monotonic time they were
taken and the boot they were taken in, written with the next append. They
are deleted in the same transaction as the append that carries them
stamped, so a restart (or a power cut) neither loses nor repeats them.

Retention (``prune``): a record is deleted only when every configured sink
has confirmed it *and* it was appended more than the retention age ago. An
undelivered record is never pruned, however old. The cursor of a sink that
is no longer configured is dropped when the queue opens (said in the log),
otherwise it would hold every record forever.

A disk that refuses writes (full, or an I/O error): the append is logged
and counted (``stats.append_errors``) and its records are kept in memory and
written first at the next append. Memory is bounded by ``memory_limit``
records: past it the oldest records that are *not* alarm events are dropped,
counted (``stats.dropped``) and logged as an error. Alarm events are never
dropped.

A corrupt queue file (not a database, or a failed integrity check when it
opens, or corruption found while running): the file (with its -wal and -shm
files) is renamed aside to ``<name>.corrupt-<UTC time>``, a new empty queue
is started in its place, and an error says so, naming both files and what to
do with the old one. The gateway keeps running rather than failing at every
restart.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path

from gateway.deliver.records import (
    Record,
    RecordError,
    from_json,
    kind_of,
    record_node,
    record_time,
    to_json,
    to_json_many,
)
from gateway.model import Reading

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind   TEXT NOT NULL,
    node   TEXT NOT NULL,
    ts     REAL NOT NULL,
    added  REAL NOT NULL,
    body   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    sink      TEXT PRIMARY KEY,
    position  INTEGER NOT NULL,
    updated   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS held (
    id      INTEGER PRIMARY KEY,
    holder  TEXT NOT NULL,
    serial  INTEGER NOT NULL,
    boot    TEXT NOT NULL,
    mono    REAL NOT NULL,
    node    TEXT NOT NULL,
    body    TEXT NOT NULL
);
"""
SCHEMA_VERSION = "1"
PRUNE_CHUNK = 10_000  # rows per delete transaction: the writer never waits long
CACHE_KIB = 1024  # page cache per connection (SQLite's default is 2000 KiB)
# Records decoded by one lane's read, kept for the other lanes' reads of the same ids (DurableQueue._decoded).
RECENT_RECORDS = 2048  # a delivery interval's records of a large site, several times over
WAL_LIMIT_BYTES = 4 * 1024 * 1024  # the WAL is truncated to this after a checkpoint
SOFT_HEAP_LIMIT_BYTES = 8 * 1024 * 1024  # SQLite frees cache pages past this, across all connections
QUOTA_LOW_WATER = 0.9  # the quota deletes down to this share of max_bytes (not one row per append)
# Never deleted for the disk quota: alarm events, and the records that say what happened to the site.
PROTECTED = ("alarm", "outage", "gap", "actuation")
QUOTA_LOG_EVERY_S = 60.0

_CORRUPT = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
# A reading's row: node, ts, added, body (its kind is written by the statement, see _insert_readings_sql);
# any other record's: kind, node, ts, added, body.
_ReadingRow = tuple[str, float, float, str]
_Row = _ReadingRow | tuple[str, str, float, float, str]
_FULL_ROW = 5  # the length of a row that names its kind
# Records are inserted this many to a statement (5 parameters each: within SQLite's oldest limit of 999).
# One INSERT per record (executemany) cost a third more CPU per record: AUTOINCREMENT updates
# sqlite_sequence at the end of every statement (issue 13). A statement's rows get ids in their order.
INSERT_ROWS = 100


@functools.lru_cache(maxsize=INSERT_ROWS)
def _insert_records_sql(count: int) -> str:
    return "INSERT INTO records (kind, node, ts, added, body) VALUES " + ",".join(["(?,?,?,?,?)"] * count)


# Nearly every append holds readings only: their kind is a constant of the statement, not a text bound per
# row (binding copies the text into SQLite: a ninth of an insert's instructions, issue 13, fourth pass).
@functools.lru_cache(maxsize=INSERT_ROWS)
def _insert_readings_sql(count: int) -> str:
    return "INSERT INTO records (kind, node, ts, added, body) VALUES " + ",".join(["('reading',?,?,?,?)"] * count)


def _rows(records: Iterable[Record], added: float) -> list[_Row]:
    """The records' rows, bodies written in one call for the batch (to_json_many)."""
    batch = records if isinstance(records, list) else list(records)
    return [
        (r.node, r.timestamp, added, body) if type(r) is Reading  # nearly every record
        else (kind_of(r), record_node(r), record_time(r), added, body)
        for r, body in zip(batch, to_json_many(batch), strict=True)
    ]


def used_bytes(db: sqlite3.Connection) -> int:
    """Bytes of a database file's pages in use: what a disk quota counts (free pages are reused first)."""
    page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
    pages = int(db.execute("PRAGMA page_count").fetchone()[0])
    free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
    return (pages - free) * page_size


def bound_memory(db: sqlite3.Connection) -> None:
    """Bound what SQLite keeps in memory for this connection (and its WAL on disk)."""
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    db.execute("PRAGMA mmap_size=0")
    db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
    db.execute(f"PRAGMA soft_heap_limit={SOFT_HEAP_LIMIT_BYTES}")


def current_boot() -> str:
    """This machine's boot: time.monotonic() (CLOCK_MONOTONIC) only compares within one boot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


@dataclass(frozen=True, slots=True)
class Held:
    """A reading held until the wall clock is valid: who held it (a bus), in which batch, when (monotonic)."""

    holder: str
    serial: int
    mono: float
    reading: Reading


class QueueError(RuntimeError):
    """The queue cannot go on (it could not even move a corrupt file aside)."""


@dataclass(frozen=True, slots=True)
class Queued:
    id: int
    kind: str
    record: Record


@dataclass(frozen=True, slots=True)
class Batch:
    """Records for one sink, oldest first; queue_id tells which queue file the ids belong to."""

    queue_id: str
    items: tuple[Queued, ...]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def last_id(self) -> int:
        return self.items[-1].id if self.items else 0


@dataclass
class QueueStats:
    appended: int = 0  # records written to the file
    append_errors: int = 0  # appends the disk refused
    dropped: int = 0  # records dropped from the memory backlog (never alarm events)
    pruned: int = 0
    undecodable: int = 0  # bodies that did not decode (skipped, counted)
    commits: int = 0  # append transactions that reached the file
    quota_deleted: int = 0  # confirmed records deleted for the disk quota before their retention age
    quota_dropped: int = 0  # readings and aggregates deleted for the disk quota before any sink had them
    quota_dropped_health: int = 0  # health reports deleted for the disk quota before every sink had them
    over_quota: int = 0  # bytes still over the quota with nothing left that the quota may delete
    held: int = 0  # readings held for a valid clock, in the file now
    held_other_boot: int = 0  # held readings from an earlier boot: their time is unknown, dropped (logged)
    corrupt_files: list[str] = field(default_factory=list)  # where corrupt files were moved


class DurableQueue:
    def __init__(
        self,
        path: Path | str,
        sinks: Sequence[str],
        *,
        memory_limit: int = 100_000,
        check_on_open: bool = True,
        wall: Callable[[], float] = time.time,
        max_bytes: int = 0,
    ) -> None:
        if len(set(sinks)) != len(sinks):
            raise ValueError(f"sink names repeat: {list(sinks)}")
        self.path = Path(path)
        self.sinks = tuple(sinks)
        # Taken by every asynchronous user of this queue (the writer, each delivery, the service's own calls)
        # around a call in a worker thread: the SQLite connection is used by one thread at a time. The queue
        # owns it, so two users of one queue cannot end up with a lock each.
        self.lock = asyncio.Lock()
        self.memory_limit = memory_limit
        self.check_on_open = check_on_open
        self.wall = wall
        self.max_bytes = max_bytes
        self.stats = QueueStats()
        self.queue_id = ""
        self._backlog: list[_Row] = []
        self._held_backlog: list[tuple[str, int, str, float, str, str]] = []
        self._released: dict[str, int] = {}
        self._quota_logged = -float("inf")
        self._full_logged = -float("inf")
        self._failing_since: float | None = None
        self._dropped_saved = 0  # dropped_total as the meta table has it
        self.dropped_total = 0  # see the module docstring
        # id -> record, as the latest reads decoded them: every lane reads the same new records within a
        # delivery interval, and decoding a body (from_json) was most of a read's cost (issue 13). Records
        # are immutable; ids are never reused in one file, and the cache is emptied when a file is opened.
        # With one cursor nobody reads a record twice: nothing is kept (it would only keep records alive).
        self._recent: dict[int, Record] = {}
        self._keep_recent = len(self.sinks) > 1
        self._db = self._open()

    # -- opening ---------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect()
        except sqlite3.DatabaseError as error:
            if not _is_corrupt(error):
                raise QueueError(f"{self.path}: cannot open the queue: {error}") from error
            self._move_aside(str(error))
            try:
                return self._connect()
            except sqlite3.DatabaseError as again:
                raise QueueError(f"{self.path}: cannot start a new queue: {again}") from again

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            bound_memory(db)
            if self.check_on_open:
                problems = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
                if problems != ["ok"]:
                    raise _corrupt_error("; ".join(problems))
            db.executescript(f"BEGIN; {SCHEMA} COMMIT;")  # one transaction: one fsync, not one per table
            with db:
                db.execute("BEGIN IMMEDIATE")
                stored = dict(db.execute("SELECT key, value FROM meta").fetchall())
                if "queue_id" not in stored:
                    db.execute("INSERT INTO meta VALUES ('queue_id', ?)", (uuid.uuid4().hex,))
                    db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                elif stored.get("schema") != SCHEMA_VERSION:
                    raise QueueError(
                        f"{self.path}: queue schema {stored.get('schema')!r}, this gateway writes {SCHEMA_VERSION!r}"
                    )
                known = {sink for (sink,) in db.execute("SELECT sink FROM cursors")}
                for sink in sorted(known - set(self.sinks)):
                    log.warning("queue %s: sink %r is no longer configured: its cursor is dropped", self.path, sink)
                    db.execute("DELETE FROM cursors WHERE sink = ?", (sink,))
                for sink in self.sinks:
                    if sink not in known:
                        # A new sink gets what the queue still holds.
                        db.execute("INSERT INTO cursors VALUES (?, 0, ?)", (sink, self.wall()))
            self.queue_id = db.execute("SELECT value FROM meta WHERE key = 'queue_id'").fetchone()[0]
            row = db.execute("SELECT value FROM meta WHERE key = 'dropped_total'").fetchone()
            self._dropped_saved = int(row[0]) if row is not None else 0
            self.dropped_total = max(self.dropped_total, self._dropped_saved)  # a file moved aside keeps its count
            self.stats.held = int(db.execute("SELECT COUNT(*) FROM held").fetchone()[0])
            self._recent = {}  # ids of another file (a corrupt one moved aside) name other records
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self, problem: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.wall()))
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while aside.exists():  # never overwrite an earlier corrupt file
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        try:
            for suffix in ("", "-wal", "-shm"):
                source = Path(str(self.path) + suffix)
                if source.exists():
                    source.rename(Path(str(aside) + suffix))
        except OSError as error:
            raise QueueError(
                f"queue file {self.path} is corrupt ({problem}) and could not be moved aside ({error.strerror}): "
                f"move or delete it by hand, then start the gateway again"
            ) from error
        self.stats.corrupt_files.append(str(aside))
        log.error(
            "queue file %s is corrupt (%s): moved it to %s and started a new, empty queue. Records in the old file "
            "that a sink had not confirmed were not delivered: recover them with `sqlite3 %s .recover` if needed, "
            "then delete that file.",
            self.path, problem, aside, aside,
        )

    def _recover(self, error: sqlite3.DatabaseError) -> None:
        """Corruption found while running: move the file aside and go on with a new one."""
        self._db.close()
        self._move_aside(str(error))
        self._db = self._open()

    # -- writing ---------------------------------------------------------------------
    def append(
        self,
        records: Iterable[Record],
        held: Iterable[Held] = (),
        released: Mapping[str, int] | None = None,
        boot: str = "",
    ) -> int:
        """Append records (one transaction, one commit). Returns how many reached the file, backlog included.

        held: readings to keep until the clock is valid (taken in `boot`); released: per holder, the
        serial up to which its held readings are gone (in `records`, stamped, or dropped): their
        rows are deleted in the same transaction. Never raises for a refusing disk: see the module
        docstring.
        """
        now = self.wall()
        rows = _rows(records, now)
        held = tuple(held)
        if held:  # the boot id is a file read: only for readings that are held
            boot = boot or current_boot()
        held_rows = [(h.holder, h.serial, boot, h.mono, h.reading.node, to_json(h.reading)) for h in held]
        if self._backlog:
            rows = self._backlog + rows
            self._backlog = []
        if self._held_backlog:
            held_rows = self._held_backlog + held_rows
            self._held_backlog = []
        for holder, upto in (released or {}).items():
            self._released[holder] = max(upto, self._released.get(holder, 0))
        if not rows and not held_rows and not self._released:
            return 0
        try:
            self._insert(rows, held_rows)
        except sqlite3.DatabaseError as error:
            if _is_corrupt(error):
                self._recover(error)
                try:
                    self._insert(rows, held_rows)
                except sqlite3.DatabaseError as again:
                    self._refused(rows, held_rows, again, now)
                    return 0
            else:
                self._refused(rows, held_rows, error, now)
                return 0
        if self._failing_since is not None:
            log.warning("queue %s: writing again after %.0f s; %d records kept in memory were written",
                        self.path, now - self._failing_since, len(rows))
            self._failing_since = None
        self.stats.appended += len(rows)
        self.stats.commits += 1
        if self.max_bytes:
            self.enforce_quota()
        return len(rows)

    def _insert(self, rows: list[_Row], held_rows: list[tuple[str, int, str, float, str, str]]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._save_dropped()
            if _FULL_ROW in map(len, rows):  # a record of another kind among them: one form for all rows
                full = [row if len(row) == _FULL_ROW else ("reading", *row) for row in rows]
                for start in range(0, len(full), INSERT_ROWS):
                    chunk = full[start : start + INSERT_ROWS]
                    self._db.execute(_insert_records_sql(len(chunk)), list(chain.from_iterable(chunk)))
            else:
                for start in range(0, len(rows), INSERT_ROWS):
                    chunk = rows[start : start + INSERT_ROWS]
                    self._db.execute(_insert_readings_sql(len(chunk)), list(chain.from_iterable(chunk)))
            self._db.executemany(
                "INSERT INTO held (holder, serial, boot, mono, node, body) VALUES (?, ?, ?, ?, ?, ?)", held_rows
            )
            released = 0
            for holder, upto in self._released.items():
                cur = self._db.execute("DELETE FROM held WHERE holder = ? AND serial <= ?", (holder, upto))
                released += cur.rowcount
        self._released = {}
        self.stats.held += len(held_rows) - released

    def _save_dropped(self) -> None:
        """Inside a transaction: the drops since install, when they changed (one row, not one per append)."""
        if self.dropped_total != self._dropped_saved:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('dropped_total', ?)", (str(self.dropped_total),))
            self._dropped_saved = self.dropped_total

    def note_dropped(self, count: int) -> None:
        """Readings dropped elsewhere (a bus's hold for a valid clock overflowed): counted since install."""
        self.dropped_total += max(0, count)

    # -- readings held for a valid clock -----------------------------------------------
    def held_readings(self, boot: str = "") -> list[Held]:
        """The held readings of this boot, in the order they were held.

        Those of an earlier boot are deleted, counted and logged: their monotonic
        times belong to a clock that no longer runs, so no wall time can be given to them.
        """
        boot = boot or current_boot()
        with self._db:
            self._db.execute("BEGIN")
            gone = self._db.execute("DELETE FROM held WHERE boot != ?", (boot,)).rowcount
            rows = self._db.execute("SELECT holder, serial, mono, body FROM held ORDER BY id").fetchall()
        if gone:
            self.stats.held_other_boot += gone
            self.stats.held -= gone
            self.dropped_total += gone
            log.error("queue %s: %d readings held for a valid clock before the machine restarted were dropped: "
                      "the time they were taken is unknown", self.path, gone)
        out: list[Held] = []
        for holder, serial, mono, body in rows:
            reading = from_json("reading", body)
            assert isinstance(reading, Reading)
            out.append(Held(holder, int(serial), float(mono), reading))
        return out

    # -- the disk quota ----------------------------------------------------------------
    def used_bytes(self) -> int:
        """Bytes of the queue file's pages in use (free pages are reused before the file grows)."""
        return used_bytes(self._db)

    def enforce_quota(self) -> int:
        """Delete records until the file's used pages are within the quota (see the module docstring).

        Returns how many records were deleted.
        """
        used = self.used_bytes()
        if not self.max_bytes or used <= self.max_bytes:
            return 0
        target = int(self.max_bytes * QUOTA_LOW_WATER)
        row = self._db.execute("SELECT min(position) FROM cursors").fetchone()
        confirmed = 0 if row is None or row[0] is None else int(row[0])
        protected = ", ".join(f"'{kind}'" for kind in PROTECTED)
        stages = (
            # Everything every sink confirmed, oldest first, but the protected kinds.
            ("confirmed", f"id <= {confirmed} AND kind NOT IN ({protected})"),
            # Then the gateway's own health reports some sink still waits for: worth less than the site's data.
            ("health", f"id > {confirmed} AND kind = 'health'"),
            # Then what some sink still waits for: readings and aggregates only.
            ("unconfirmed", f"id > {confirmed} AND kind IN ('reading', 'aggregate')"),
        )
        deleted = {"confirmed": 0, "health": 0, "unconfirmed": 0}
        for stage, where in stages:
            while used > target:
                count = self.count()
                if count == 0:
                    break
                # Enough rows of the average size to get below the low-water mark, in bounded chunks.
                n = max(1, min(PRUNE_CHUNK, math.ceil((used - target) / max(1.0, used / count))))
                with self._db:
                    self._db.execute("BEGIN")
                    cur = self._db.execute(
                        f"DELETE FROM records WHERE id IN (SELECT id FROM records WHERE {where} ORDER BY id LIMIT ?)",
                        (n,),
                    )
                    if stage == "unconfirmed":  # in the same transaction: the count never misses a drop
                        self.dropped_total += cur.rowcount
                        self._save_dropped()
                if cur.rowcount == 0:
                    break
                deleted[stage] += cur.rowcount
                used = self.used_bytes()
        self.stats.quota_deleted += deleted["confirmed"]
        self.stats.quota_dropped += deleted["unconfirmed"]
        self.stats.quota_dropped_health += deleted["health"]
        now = self.wall()
        if deleted["unconfirmed"]:
            if now - self._quota_logged >= QUOTA_LOG_EVERY_S:
                self._quota_logged = now  # once a minute, not once per commit: the count says the rest
                log.error("queue %s: over its disk quota (%d bytes): deleted the %d oldest readings and aggregates no "
                          "sink had received yet (%d in all); a sink is down or too slow for this quota",
                          self.path, self.max_bytes, deleted["unconfirmed"], self.stats.quota_dropped)
        elif deleted["health"]:
            log.warning("queue %s: over its disk quota (%d bytes): deleted the %d oldest health reports a sink had "
                        "not received yet (%d in all)", self.path, self.max_bytes, deleted["health"],
                        self.stats.quota_dropped_health)
        elif deleted["confirmed"]:
            log.info("queue %s: over its disk quota (%d bytes): deleted the %d oldest records every sink had",
                     self.path, self.max_bytes, deleted["confirmed"])
        self.stats.over_quota = max(0, used - self.max_bytes)
        if self.stats.over_quota and now - self._full_logged >= QUOTA_LOG_EVERY_S:
            self._full_logged = now
            log.error("queue %s: still %d bytes over its disk quota with only alarms, outages, gaps and actuations "
                      "left to delete: they are kept", self.path, used - self.max_bytes)
        return deleted["confirmed"] + deleted["health"] + deleted["unconfirmed"]

    def _refused(
        self,
        rows: list[_Row],
        held_rows: list[tuple[str, int, str, float, str, str]],
        error: sqlite3.DatabaseError,
        now: float,
    ) -> None:
        self._held_backlog = held_rows  # bounded by the holders' own limit (clock.max_held)
        self.stats.append_errors += 1
        if self._failing_since is None:
            self._failing_since = now
            log.error("queue %s: cannot write (%s): keeping records in memory (at most %d) and retrying",
                      self.path, error, self.memory_limit)
        excess = len(rows) - self.memory_limit
        if excess > 0:
            kept: list[_Row] = []
            dropped = 0
            for row in rows:
                if dropped < excess and not (len(row) == _FULL_ROW and row[0] == "alarm"):
                    dropped += 1
                else:
                    kept.append(row)
            rows = kept
            self.stats.dropped += dropped
            self.dropped_total += dropped
            log.error("queue %s: memory backlog full: dropped the %d oldest records (alarm events are kept); "
                      "%d dropped in all", self.path, dropped, self.stats.dropped)
        self._backlog = rows

    @property
    def backlog(self) -> int:
        """Records held in memory because the disk refused them."""
        return len(self._backlog)

    # -- reading and confirming ------------------------------------------------------
    def cursor(self, sink: str) -> int:
        row = self._db.execute("SELECT position FROM cursors WHERE sink = ?", (sink,)).fetchone()
        if row is None:
            raise KeyError(f"no sink {sink!r} in queue {self.path}")
        return int(row[0])

    def read(
        self, sink: str, limit: int = 500, kinds: frozenset[str] | None = None, skip: frozenset[str] | None = None
    ) -> Batch:
        """Up to `limit` records after the sink's cursor, oldest first.

        kinds / skip: only records of these kinds / not of these (a sink's lane,
        sinks.Lane). A filtered cursor with nothing of its kinds left moves to
        the last record, so it never holds back retention.
        """
        position = self.cursor(sink)
        rows, items = self._decoded(position, limit, kinds, skip)
        if not rows and (kinds is not None or skip is not None):
            last = self.last_id()
            if last > position:
                self.confirm(sink, last)
        if rows and not items:
            # Nothing decodable in this stretch: let the sink move past it.
            self.confirm(sink, int(rows[-1][0]))
            return self.read(sink, limit, kinds, skip)
        return Batch(self.queue_id, tuple(items))

    def peek(
        self, after: int, limit: int = 500, kinds: frozenset[str] | None = None, skip: frozenset[str] | None = None
    ) -> Batch:
        """Up to `limit` records after id `after`, oldest first, moving no cursor.

        What a delivery reads ahead while the batch before is being sent (dispatch.py); an empty
        batch here does not mean the queue is empty past `after` (undecodable records are skipped).
        """
        return Batch(self.queue_id, tuple(self._decoded(after, limit, kinds, skip)[1]))

    def _decoded(
        self, position: int, limit: int, kinds: frozenset[str] | None = None, skip: frozenset[str] | None = None
    ) -> tuple[list[tuple[int, str, str]], list[Queued]]:
        where, args = "id > ?", list[object]([position])
        for members, test in ((kinds, "IN"), (skip, "NOT IN")):
            if members is not None:
                where += f" AND kind {test} ({', '.join('?' * len(members))})"
                args += sorted(members)
        rows: list[tuple[int, str, str]] = self._db.execute(
            f"SELECT id, kind, body FROM records WHERE {where} ORDER BY id LIMIT ?", (*args, limit)
        ).fetchall()
        items: list[Queued] = []
        recent = self._recent if self._keep_recent else None
        for qid, kind, body in rows:
            record = recent.get(qid) if recent is not None else None
            if record is None:
                try:
                    record = from_json(kind, body)
                except RecordError as error:
                    # Written by a newer or broken gateway: skip it, but say so.
                    self.stats.undecodable += 1
                    log.error("queue %s: record %d skipped: %s", self.path, qid, error)
                    continue
                if recent is not None:
                    recent[qid] = record
            items.append(Queued(qid, kind, record))
        if recent is not None and len(recent) > RECENT_RECORDS:  # the oldest half goes (dicts keep insertion order)
            self._recent = dict(islice(recent.items(), len(recent) - RECENT_RECORDS // 2, None))
        return rows, items

    def confirm(self, sink: str, upto: int) -> None:
        """The sink delivered every record up to id `upto`. Cursors only move forward.

        Not fsynced on its own (synchronous=NORMAL for this transaction): a cursor
        that a power cut moves back only means those records are delivered again
        (delivery is at least once; the store skips them), and the WAL is written in
        order, so the next append's fsync makes the move durable too. Saves one
        fsync per delivery per sink.
        """
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._db:
                self._db.execute("BEGIN")
                cur = self._db.execute(
                    "UPDATE cursors SET position = max(position, ?), updated = ? WHERE sink = ?",
                    (upto, self.wall(), sink),
                )
                if cur.rowcount != 1:
                    raise KeyError(f"no sink {sink!r} in queue {self.path}")
        finally:
            self._db.execute("PRAGMA synchronous=FULL")

    def pending(self, sink: str) -> int:
        position = self.cursor(sink)
        return int(self._db.execute("SELECT COUNT(*) FROM records WHERE id > ?", (position,)).fetchone()[0])

    def oldest_pending(self, sink: str) -> float | None:
        """When the oldest record after the sink's cursor was appended (None: the sink has caught up)."""
        position = self.cursor(sink)
        row = self._db.execute("SELECT added FROM records WHERE id > ? ORDER BY id LIMIT 1", (position,)).fetchone()
        return None if row is None else float(row[0])
    def backlogs(self) -> tuple[tuple[int, float | None], dict[str, tuple[int, float | None]]]:
        """For a health report: the records some sink has yet to confirm (count, when the oldest was appended;
        None: none), and the same per cursor. One read transaction, so the figures agree with each other.

        Each stretch between two cursors is counted once and the counts summed from the newest back: one pass
        over the backlog however many cursors share it (four lanes behind a million records: one scan, not five).
        """
        with self._db:
            self._db.execute("BEGIN")
            cursors = {sink: int(position) for sink, position in self._db.execute("SELECT sink, position FROM cursors")}
            positions = sorted(set(cursors.values())) or [self.last_id()]
            after: dict[int, tuple[int, float | None]] = {}
            total = 0
            for i in range(len(positions) - 1, -1, -1):
                low = positions[i]
                if i + 1 < len(positions):
                    count = self._db.execute("SELECT COUNT(*) FROM records WHERE id > ? AND id <= ?",
                                             (low, positions[i + 1])).fetchone()
                else:
                    count = self._db.execute("SELECT COUNT(*) FROM records WHERE id > ?", (low,)).fetchone()
                total += int(count[0])
                row = self._db.execute("SELECT added FROM records WHERE id > ? ORDER BY id LIMIT 1", (low,)).fetchone()
                after[low] = (total, None if row is None else float(row[0]))
        return after[positions[0]], {sink: after[position] for sink, position in cursors.items()}

    def last_id(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        return int(row[0]) if row else 0

    def last_added(self) -> float | None:
        """When the newest record still in the queue was appended."""
        row = self._db.execute("SELECT added FROM records ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def latest_sequence(self, node: str) -> int | None:
        """The node sample sequence of the newest reading of `node` still in the queue (None: none).

        Where the acquisition resumes after a restart (the queue, not the store,
        holds everything the pipeline produced, delivered or not). The newest,
        not the highest: a node that rebooted counts from 1 again. Readings held for a
        valid clock are newer than any queued record of their node, so they count first.
        """
        row = self._db.execute(
            "SELECT json_extract(body, '$.seq') FROM held WHERE node = ? AND json_extract(body, '$.seq') > 0"
            " ORDER BY id DESC LIMIT 1",
            (node,),
        ).fetchone()
        if row is not None:
            return int(row[0])
        row = self._db.execute(
            "SELECT json_extract(body, '$.seq') FROM records WHERE kind = 'reading' AND node = ?"
            " AND json_extract(body, '$.seq') > 0 ORDER BY id DESC LIMIT 1",
            (node,),
        ).fetchone()
        return None if row is None else int(row[0])

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    # -- retention -------------------------------------------------------------------
    def prune(self, max_age_s: float, now: float | None = None) -> int:
        """Delete records every sink confirmed that were appended more than max_age_s ago.

        Alarm events stay: a restart resumes the alarms still raised from them (replay.py), however long
        ago they were raised. They are few (a raise and a clear per episode).
        """
        now = self.wall() if now is None else now
        row = self._db.execute("SELECT min(position) FROM cursors").fetchone()
        delivered = 0 if row is None or row[0] is None else int(row[0])
        cutoff = now - max_age_s
        total = 0
        while True:
            with self._db:
                self._db.execute("BEGIN")
                cur = self._db.execute(
                    "DELETE FROM records WHERE id IN "
                    "(SELECT id FROM records WHERE id <= ? AND added < ? AND kind != 'alarm' ORDER BY id LIMIT ?)",
                    (delivered, cutoff, PRUNE_CHUNK),
                )
            total += cur.rowcount
            if cur.rowcount < PRUNE_CHUNK:
                break
        self.stats.pruned += total
        return total

    def close(self) -> None:
        self._db.close()


def _is_corrupt(error: sqlite3.DatabaseError) -> bool:
    name = getattr(error, "sqlite_errorname", "")
    if name in _CORRUPT:
        return True
    text = str(error)
    return "malformed" in text or "not a database" in text or text.startswith("integrity check:")


def _corrupt_error(detail: str) -> sqlite3.DatabaseError:
    return sqlite3.DatabaseError(f"integrity check: {detail}")
