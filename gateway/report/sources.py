"""Where a report's records come from: the gateway's local store (SQLite), or InfluxDB for a bureau.

Both return a ``DayRecords`` (gateway/report/summary.py) for the window a report needs: readings
from LOOKBACK_S before local midnight to the next midnight, alarm events up to the next midnight
from ALARM_LOOKBACK_S before it (so that an alarm raised the day before pairs with its clear),
and the outages and gaps that overlap the day.

The store is opened read-only (``mode=ro``): a report never changes it, and it can run beside
the gateway, which keeps writing (WAL lets a reader in while it does).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gateway.deliver.records import Outage
from gateway.model import Gap, Quality, Reading
from gateway.process.alarms import AlarmEvent, EventState, Severity
from gateway.report.summary import LOOKBACK_S, DayRecords, ReportError, report_channels

QUALITIES = {q.value: q for q in Quality}
ALARM_LOOKBACK_S = 7 * 86400.0  # an alarm raised up to a week before the day still pairs with its clear

T = TypeVar("T")
Step = Callable[[str], None]  # told what was fetched, for a progress bar


def _no_step(what: str) -> None:
    return None


def _float_or_nan(value: object) -> float:
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


class StoreSource:
    """The gateway's local SQLite store (gateway/deliver/sqlite_store.py), read-only."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ReportError(f"store {self.path}: no such file")
        try:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as error:
            raise ReportError(f"store {self.path}: not a SQLite database ({error})") from error
        missing = {"readings", "alarms", "outages", "gaps"} - tables
        if missing:
            raise ReportError(f"store {self.path}: not a sitewatch store (no table {', '.join(sorted(missing))})")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StoreSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self, start: float, end: float, step: Step = _no_step) -> DayRecords:
        """The records a report of the day [start, end) needs."""
        # A day of 1-s samples is millions of rows: every row's strings are shared (a fresh str per row and
        # column would be most of the memory), and of the kinds the report knows only the channels it reads
        # are fetched (those carry every sample's sequence and time for the completeness too).
        shared: dict[str, str] = {}
        read = report_channels()
        known = sorted(read)
        channels = sorted({c for cs in read.values() for c in cs})
        query = (
            "SELECT node, kind, channel, value, unit, quality, ts, sequence FROM readings"
            f" WHERE ts >= ? AND ts < ? AND (kind NOT IN ({', '.join('?' * len(known))})"
            f" OR channel IN ({', '.join('?' * len(channels))})) ORDER BY ts, id"
        )
        readings = [
            Reading(shared.setdefault(node, node), shared.setdefault(kind, kind), shared.setdefault(channel, channel),
                    value, shared.setdefault(unit, unit), QUALITIES[quality], ts, seq)
            for node, kind, channel, value, unit, quality, ts, seq in self._db.execute(
                query, (start - LOOKBACK_S, end, *known, *channels)
            )
        ]
        step(f"{len(readings)} readings")
        alarms = [
            AlarmEvent(alarm, node, channel, Severity(severity), EventState(state), _float_or_nan(value),
                       _float_or_nan(limit), ts, reason)
            for alarm, node, channel, severity, state, value, limit, ts, reason in self._db.execute(
                'SELECT alarm, node, channel, severity, state, value, "limit", ts, reason FROM alarms'
                " WHERE ts >= ? AND ts < ? ORDER BY ts, id",
                (start - ALARM_LOOKBACK_S, end),
            )
        ]
        step(f"{len(alarms)} alarm events")
        outages = [
            Outage(node, kind, s, e, reason, missed, bool(closed))
            for node, kind, s, e, reason, missed, closed in self._db.execute(
                'SELECT node, kind, start, "end", reason, missed, closed FROM outages'
                ' WHERE "end" >= ? AND start < ? ORDER BY start, id',
                (start, end),
            )
        ]
        gaps = [
            Gap(node, kind, s, e, first, last, reason)
            for node, kind, s, e, first, last, reason in self._db.execute(
                'SELECT node, kind, start, "end", first_seq, last_seq, reason FROM gaps'
                ' WHERE "end" >= ? AND start < ? ORDER BY start, id',
                (start, end),
            )
        ]
        step(f"{len(outages)} outages, {len(gaps)} gaps")
        return DayRecords(readings, alarms, outages, gaps)
