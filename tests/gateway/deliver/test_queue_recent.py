"""Lanes reading the same new records decode each body once (issue 13), and never get another file's records."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.deliver import queue as queue_module
from gateway.deliver.queue import RECENT_RECORDS, DurableQueue
from gateway.deliver.records import Record, from_json
from gateway.model import Quality, Reading


def readings(n: int, start: int = 0, node: str = "dust-1") -> list[Record]:
    return [Reading(node, "dust", "pm10", float(start + i), "ug/m3", Quality.NORMAL, 1e9 + start + i, start + i)
            for i in range(n)]


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per body the queue decodes."""
    calls: list[int] = []

    def counted(kind: str, body: str) -> Record:
        calls.append(1)
        return from_json(kind, body)

    monkeypatch.setattr(queue_module, "from_json", counted)
    return calls


def test_every_lane_gets_the_same_records_and_each_body_is_decoded_once(tmp_path: Path, decodes: list[int]) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store", "influx", "mqtt", "hj212"])
    try:
        queue.append(readings(30))
        batches = {lane: queue.read(lane, 500) for lane in queue.sinks}
        assert len(decodes) == 30  # was 4 x 30
        expected = readings(30)
        for batch in batches.values():
            assert [item.record for item in batch.items] == expected
            assert [item.id for item in batch.items] == list(range(1, 31))
        queue.confirm("store", 30)
        queue.append(readings(5, start=30))
        assert [item.record for item in queue.read("store").items] == readings(5, start=30)
        assert [item.id for item in queue.peek(25, 500).items] == list(range(26, 36))
        assert len(decodes) == 35
    finally:
        queue.close()


def test_the_kept_records_are_bounded_and_older_ones_are_decoded_again(tmp_path: Path, decodes: list[int]) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store", "influx"])
    try:
        total = RECENT_RECORDS + 100
        queue.append(readings(total))
        assert len(queue.read("store", total).items) == total
        assert len(queue._recent) <= RECENT_RECORDS
        again = queue.peek(0, 10)
        assert [item.record for item in again.items] == readings(10)  # evicted: decoded again, the same records
        assert len(decodes) == total + 10
    finally:
        queue.close()


def test_a_new_file_after_corruption_never_gets_the_old_files_records(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store", "influx"])
    try:
        queue.append(readings(5, node="old-1"))
        assert {item.record.node for item in queue.read("store").items} == {"old-1"}  # type: ignore[union-attr]
        # Corruption found while running: the file goes aside, a new one starts with ids from 1 again.
        queue._recover(sqlite3.DatabaseError("database disk image is malformed"))
        queue.append(readings(5, node="new-1"))
        batch = queue.read("store")
        assert [item.id for item in batch.items] == [1, 2, 3, 4, 5]
        assert {item.record.node for item in batch.items} == {"new-1"}  # type: ignore[union-attr]
    finally:
        queue.close()


def test_a_queue_with_one_cursor_keeps_nothing(tmp_path: Path, decodes: list[int]) -> None:
    """Nobody reads a record twice there: keeping decoded records would only keep them alive (and the GC busy)."""
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store"])
    try:
        queue.append(readings(20))
        assert [item.record for item in queue.read("store").items] == readings(20)
        assert [item.record for item in queue.peek(0, 500).items] == readings(20)
        assert not queue._recent and len(decodes) == 40
    finally:
        queue.close()
