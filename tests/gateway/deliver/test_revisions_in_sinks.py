"""Revisions of an aggregate in the durable forms: JSON bodies, the local SQLite store, JSON Lines."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

from gateway.deliver.jsonl import JsonLinesSink
from gateway.deliver.queue import Batch, Queued
from gateway.deliver.records import from_json, to_json
from gateway.deliver.sqlite_store import SqliteSink, SqliteStore
from gateway.model import Quality
from gateway.process.aggregate import Aggregate

T0 = 1_717_376_400.0
FIRST = Aggregate("dust-1", "dust", "pm10_1min_mean", "pm10", "mean", "1min", T0, T0 + 60, 10.0, "ug/m3", 20, 60,
                  False, Quality.COMMUNICATION_FAILURE)
SECOND = replace(FIRST, value=30.0, count=60, valid=True, quality=Quality.NORMAL, revision=1)


def batch(queue_id: str, first_id: int, *records: Aggregate) -> Batch:
    return Batch(queue_id, tuple(Queued(first_id + i, "aggregate", r) for i, r in enumerate(records)))


def test_the_revision_travels_in_the_json_body_and_an_old_body_reads_as_revision_0() -> None:
    assert from_json("aggregate", to_json(SECOND)) == SECOND
    body = json.loads(to_json(FIRST))
    del body["revision"]  # queued by a gateway from before revisions
    assert from_json("aggregate", json.dumps(body)) == FIRST


async def test_the_store_keeps_one_row_per_window_with_its_highest_revision(tmp_path: Path) -> None:
    sink = SqliteSink("sqlite", str(tmp_path / "store.sqlite3"))
    other = replace(FIRST, channel="pm10_1min_count", statistic="count", value=20.0)
    assert await sink.send(batch("q", 1, FIRST, other)) == 2
    assert await sink.send(batch("q", 3, SECOND)) == 1
    # A lower revision that arrives later (another queue file replaying an old record) changes nothing.
    assert await sink.send(batch("q2", 1, FIRST)) == 1
    sink.close()
    store = SqliteStore(tmp_path / "store.sqlite3")
    try:
        rows = store.query("SELECT channel, value, count, valid, quality, revision FROM aggregates ORDER BY channel")
        assert rows == [
            ("pm10_1min_count", 20.0, 20, 0, "B", 0),
            ("pm10_1min_mean", 30.0, 60, 1, "N", 1),
        ]
    finally:
        store.close()


def test_a_store_from_before_revisions_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE aggregates (id INTEGER PRIMARY KEY, node TEXT NOT NULL, kind TEXT NOT NULL,
            channel TEXT NOT NULL, source TEXT NOT NULL, statistic TEXT NOT NULL, window TEXT NOT NULL,
            start REAL NOT NULL, "end" REAL NOT NULL, value REAL, unit TEXT NOT NULL, count INTEGER NOT NULL,
            expected INTEGER NOT NULL, valid INTEGER NOT NULL, quality TEXT NOT NULL);
    """)
    row = ("dust-1", "dust", "pm10_1min_mean", "pm10", "mean", "1min", T0, T0 + 60, 10.0, "ug/m3", 20, 60, 0, "B")
    # The same window twice, as an at-least-once delivery from another queue file could leave it.
    db.executemany('INSERT INTO aggregates (node, kind, channel, source, statistic, window, start, "end", value,'
                   " unit, count, expected, valid, quality) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [row, row])
    db.commit()
    db.close()
    store = SqliteStore(path)
    try:
        assert store.query("SELECT value, revision FROM aggregates") == [(10.0, 0)]
        store.store_batch(batch("q", 1, SECOND))
        assert store.query("SELECT value, revision FROM aggregates") == [(30.0, 1)]
    finally:
        store.close()


async def test_json_lines_appends_every_revision_for_readers_to_take_the_highest(tmp_path: Path) -> None:
    sink = JsonLinesSink("archive", str(tmp_path / "out.jsonl"), fsync=False)
    await sink.send(batch("q", 1, FIRST, SECOND))
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(x["record"]["channel"], x["record"]["revision"]) for x in lines] == [
        ("pm10_1min_mean", 0), ("pm10_1min_mean", 1),
    ]
