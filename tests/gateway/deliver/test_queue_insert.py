"""Appends insert many records per SQL statement (issue 13): order, ids and kinds stay as one insert per
record had them, across statement boundaries and backlogs of the memory kept for a refusing disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.deliver import queue as queue_module
from gateway.deliver.queue import DurableQueue
from gateway.deliver.records import Outage, Record, kind_of
from gateway.model import Quality, Reading
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent, EventState, Severity

T0 = 1_790_000_000.0


def mixed(n: int, offset: int = 0) -> list[Record]:
    out: list[Record] = []
    for i in range(offset, offset + n):
        if i % 17 == 5:
            out.append(Aggregate(f"dust-{i % 3}", "dust", "pm10_1min_mean", "pm10", "mean", "1min", T0 + i,
                                 T0 + i + 60, 40.0 + i, "ug/m3", 60, 60, True, Quality.NORMAL))
        elif i % 41 == 7:
            out.append(AlarmEvent("dust", f"dust-{i % 3}", "pm10_15min_mean", Severity.ALARM, EventState.RAISED,
                                  150.0, 100.0, T0 + i, "pm10 150 >= 100"))
        elif i % 53 == 3:
            out.append(Outage(f"dust-{i % 3}", "dust", T0 + i, T0 + i + 5, "B: timeout", 5))
        else:
            out.append(Reading(f"dust-{i % 3}", "dust", "pm10", float(i), "ug/m3", Quality.NORMAL, T0 + i, i + 1))
    return out


def test_a_large_append_keeps_the_records_order_ids_and_kinds(tmp_path: Path) -> None:
    assert queue_module.INSERT_ROWS < 250  # the append below spans several statements, and a short last one
    queue = DurableQueue(tmp_path / "queue.sqlite3", ["store"])
    first, second = mixed(250), mixed(7, offset=250)
    assert queue.append(first) == 250 and queue.append(second) == 7
    batch = queue.read("store", limit=1000)
    assert [q.record for q in batch.items] == first + second
    assert [q.id for q in batch.items] == list(range(1, 258))
    assert [q.kind for q in batch.items] == [kind_of(r) for r in first + second]
    queue.close()
    with sqlite3.connect(tmp_path / "queue.sqlite3") as db:
        rows = db.execute("SELECT node, ts FROM records ORDER BY id").fetchall()
        kinds = [kind for (kind,) in db.execute("SELECT kind FROM records ORDER BY id")]
    assert rows[0] == ("dust-0", T0) and rows[-1] == ("dust-1", T0 + 256)
    # The file says "reading" in full (a reading's row binds NULL, the statement writes the text).
    assert kinds == [kind_of(r) for r in first + second] and kinds.count("reading") > 200


def test_records_kept_in_memory_go_first_at_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    queue = DurableQueue(path, ["store"])
    records = mixed(230)
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the file: the append is refused, kept in memory
    queue._db.execute("PRAGMA busy_timeout=0")
    assert queue.append(records[:120]) == 0
    assert queue.backlog == 120
    blocker.rollback()
    blocker.close()
    assert queue.append(records[120:]) == 230
    assert [q.record for q in queue.read("store", limit=1000).items] == records
    queue.close()


def test_an_append_of_readings_only_keeps_their_order_ids_and_kind(tmp_path: Path) -> None:
    """Readings alone take the statement that writes their kind itself (issue 13, fourth pass)."""
    queue = DurableQueue(tmp_path / "queue.sqlite3", ["store"])
    readings: list[Record] = [
        Reading(f"dust-{i % 3}", "dust", "pm10", float(i), "ug/m3", Quality.NORMAL, T0 + i, i + 1) for i in range(230)
    ]
    assert queue.append(readings[:3]) == 3 and queue.append(readings[3:]) == 227
    batch = queue.read("store", limit=1000)
    assert [q.record for q in batch.items] == readings and [q.id for q in batch.items] == list(range(1, 231))
    queue.close()
    with sqlite3.connect(tmp_path / "queue.sqlite3") as db:
        rows = db.execute("SELECT kind, node, ts FROM records ORDER BY id").fetchall()
    assert rows == [("reading", r.node, r.timestamp) for r in readings]  # type: ignore[union-attr]


def test_a_full_memory_backlog_keeps_alarm_events_not_readings_of_a_node_named_alarm(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    queue = DurableQueue(path, ["store"], memory_limit=2)
    event = AlarmEvent("dust", "dust-1", "pm10_15min_mean", Severity.ALARM, EventState.RAISED, 150.0, 100.0, T0,
                       "pm10 150 >= 100")
    readings = [Reading("alarm", "dust", "pm10", float(i), "ug/m3", Quality.NORMAL, T0 + i, i + 1) for i in range(3)]
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # the disk refuses: records stay in memory, two at most
    queue._db.execute("PRAGMA busy_timeout=0")
    assert queue.append([readings[0], event, readings[1], readings[2]]) == 0
    assert queue.stats.dropped == 2  # the two oldest readings; the alarm event is never dropped
    blocker.rollback()
    blocker.close()
    assert queue.append([]) == 2
    assert [q.record for q in queue.read("store", limit=10).items] == [event, readings[2]]
    queue.close()
