"""Sinks: the registry, the local SQLite store as the queue's first sink, the JSON Lines sink."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.deliver.queue import Batch, DurableQueue, Queued
from gateway.deliver.records import Actuation, Outage, Record, kind_of
from gateway.deliver.sinks import SINKS, SinkConfigError, SinkError, SinkRegistry, load_builtin_sinks
from gateway.deliver.sqlite_store import SqliteSink, SqliteStore
from gateway.model import Gap, Quality, Reading
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent, EventState, Severity
from gateway.process.spray import SprayMode

load_builtin_sinks()

RECORDS: list[Record] = [
    Reading("dust-1", "dust", "pm10", 41.0, "ug/m3", Quality.NORMAL, 1e9, 7),
    Reading("dust-1", "dust", "pm25", None, "ug/m3", Quality.COMMUNICATION_FAILURE, 1e9 + 1, 0),
    Aggregate("dust-1", "dust", "pm10_15min_mean", "pm10", "mean", "15min", 1e9, 1e9 + 900, 41.0, "ug/m3", 600, 900,
              False, Quality.COMMUNICATION_FAILURE),
    AlarmEvent("dust", "dust-1", "pm10_1h_mean", Severity.ALARM, EventState.RAISED, 160.0, 150.0, 1e9, "r"),
    Actuation("dust-1", "spray_relay", True, 1e9, SprayMode.AUTO, "PM10 15-min mean 160 ug/m3 > 150 ug/m3", 160.0,
              150.0, "ok", 1, 1e9 + 0.2),
    Outage("dust-1", "dust", 1e9, 1e9 + 30, "B: communication failure", 30),
    Gap("dust-1", "dust", 1e9, 1e9 + 900, 100, 130, "overwritten"),
]


def batch(queue_id: str = "q1", start: int = 1) -> Batch:
    return Batch(queue_id, tuple(Queued(start + i, kind_of(r), r) for i, r in enumerate(RECORDS)))


def test_builtin_sinks_are_registered_and_unknown_ones_named() -> None:
    assert {"sqlite", "jsonl"} <= set(SINKS.names())
    with pytest.raises(SinkConfigError, match=r"unknown sink type 'influx' \(known: .*jsonl.*sqlite"):
        SINKS.get("influx")
    with pytest.raises(SinkConfigError, match=r"sink 'jsonl'.*unexpected keyword argument 'pth'"):
        SINKS.check("jsonl", {"path": "/tmp/x", "pth": "/tmp/x"})
    with pytest.raises(SinkConfigError, match="missing a required argument: 'path'"):
        SINKS.check("jsonl", {})


def test_a_new_uplink_is_one_class_and_a_registration() -> None:
    registry = SinkRegistry()

    @registry.register("null")
    class NullSink:
        def __init__(self, name: str, verbose: bool = False) -> None:
            self.name = name
            self.verbose = verbose

        async def send(self, batch: Batch) -> int:
            return len(batch)

        def close(self) -> None:
            pass

    sink = registry.create("null", "blackhole", {"verbose": True})
    assert isinstance(sink, NullSink) and (sink.name, sink.verbose) == ("blackhole", True)
    with pytest.raises(SinkConfigError, match="registered twice"):
        registry.register("null")(NullSink)


async def test_the_store_keeps_each_kind_in_its_table_and_never_stores_a_record_twice(tmp_path: Path) -> None:
    sink = SqliteSink("sqlite", str(tmp_path / "store.sqlite3"))
    assert await sink.send(batch()) == len(RECORDS)
    # The same records again, as after a crash between storing and confirming: nothing new.
    assert await sink.send(batch()) == len(RECORDS)
    # From another queue file (a corrupt one was replaced): the ids start over, and are new records.
    assert await sink.send(Batch("q2", batch().items[:1])) == 1
    sink.close()
    store = SqliteStore(tmp_path / "store.sqlite3")
    try:
        assert [(r.channel, r.value, r.quality) for r in store.readings()] == [
            ("pm10", 41.0, Quality.NORMAL),
            ("pm25", None, Quality.COMMUNICATION_FAILURE),
            ("pm10", 41.0, Quality.NORMAL),
        ]
        assert store.query("SELECT channel, count, expected, valid, quality FROM aggregates") == [
            ("pm10_15min_mean", 600, 900, 0, "B")
        ]
        assert store.query('SELECT alarm, severity, state, value, "limit" FROM alarms') == [
            ("dust", "alarm", "raised", 160.0, 150.0)
        ]
        assert store.query('SELECT "on", mode, result, reason FROM actuations') == [
            (1, "auto", "ok", "PM10 15-min mean 160 ug/m3 > 150 ug/m3")
        ]
        assert store.query("SELECT node, missed, closed FROM outages") == [("dust-1", 30, 1)]
        assert store.query("SELECT node, first_seq, last_seq, reason FROM gaps") == [
            ("dust-1", 100, 130, "overwritten")
        ]
    finally:
        store.close()


async def test_the_store_reads_from_the_queue(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["sqlite"])
    queue.append(RECORDS)
    sink = SqliteSink("sqlite", str(tmp_path / "store.sqlite3"))
    read = queue.read("sqlite")
    assert await sink.send(read) == len(RECORDS)
    queue.confirm("sqlite", read.last_id)
    assert sink.readings_stored == 2 and queue.pending("sqlite") == 0
    sink.close()


async def test_json_lines_sink_writes_one_object_per_record(tmp_path: Path) -> None:
    path = tmp_path / "archive" / "records.jsonl"
    sink = SINKS.create("jsonl", "archive", {"path": str(path), "fsync": False})
    assert await sink.send(batch()) == len(RECORDS)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["id"], line["kind"]) for line in lines] == [(i + 1, kind_of(r)) for i, r in enumerate(RECORDS)]
    assert lines[0]["queue_id"] == "q1" and lines[0]["record"]["channel"] == "pm10"
    assert lines[4]["record"]["result"] == "ok"
    blocked = SINKS.create("jsonl", "bad", {"path": str(tmp_path)})  # a folder: cannot be appended to
    with pytest.raises(SinkError, match=str(tmp_path)):
        await blocked.send(batch())
