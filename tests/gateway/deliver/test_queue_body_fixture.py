"""Queue files written before issue 13 read the same, and new bodies are the old bytes.

`queue_bodies_515d518.txt` holds the bodies the gateway wrote at commit 515d518 (before the direct
writing of reading and aggregate bodies) for the records of `queue_body_records.py`: NaN and
infinities spelt as strings, a missing value, an int value, quotes and non-ASCII text, a revision.
A queue file holding them (as an old gateway left it) is read back as those records.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

from gateway.deliver.queue import DurableQueue
from gateway.deliver.records import Record, from_json, kind_of, record_node, record_time, to_json
from gateway.model import Reading
from tests.gateway.deliver.queue_body_records import fixture_records

FIXTURE = Path(__file__).with_name("queue_bodies_515d518.txt")


def old_bodies() -> list[tuple[str, str]]:
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    return [(kind, body) for kind, body in (line.split("\t", 1) for line in lines if not line.startswith("#"))]


def same_record(a: Record, b: Record) -> bool:
    """Equal, NaN values counting as equal; an int value reads back as its float."""
    if (isinstance(a, Reading) and isinstance(b, Reading) and a.value is not None and b.value is not None
            and math.isnan(a.value) and math.isnan(b.value)):
        return (a.node, a.channel, a.quality, a.timestamp) == (b.node, b.channel, b.quality, b.timestamp)
    return a == b


def test_new_bodies_are_the_old_bytes() -> None:
    records = fixture_records()
    assert [(kind_of(r), to_json(r)) for r in records] == old_bodies()


def test_old_bodies_read_back_as_the_records() -> None:
    for record, (kind, body) in zip(fixture_records(), old_bodies(), strict=True):
        assert same_record(from_json(kind, body), record), body


def test_a_queue_file_of_old_bodies_is_delivered_by_the_new_code(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    DurableQueue(path, ["store"]).close()  # the schema (unchanged since version 1)
    records = fixture_records()
    with sqlite3.connect(path) as db:  # the rows as the old gateway wrote them
        db.executemany(
            "INSERT INTO records (kind, node, ts, added, body) VALUES (?, ?, ?, ?, ?)",
            [(kind, record_node(r), record_time(r), 1_790_000_100.0, body)
             for r, (kind, body) in zip(records, old_bodies(), strict=True)],
        )
    queue = DurableQueue(path, ["store"])
    batch = queue.read("store", limit=100)
    assert len(batch) == len(records)
    assert all(same_record(q.record, r) for q, r in zip(batch.items, records, strict=True))
    assert queue.latest_sequence("dust-1") == 9
    queue.close()
