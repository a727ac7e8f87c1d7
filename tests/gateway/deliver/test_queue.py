"""The durable queue against real SQLite files: cursors, a sink that is down, restarts, retention, bad disks."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.deliver.dispatch import Delivery
from gateway.deliver.queue import Batch, DurableQueue, QueueError
from gateway.deliver.records import Actuation, Outage, Record, from_json, kind_of, to_json
from gateway.deliver.writer import QueueWriter
from gateway.model import Gap, Quality, Reading
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent, EventState, Severity
from gateway.process.spray import SprayCommand, SprayMode

DAY = 86400.0


class Wall:
    """A settable wall clock."""

    def __init__(self, t: float = 1_790_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def readings(n: int, start: int = 0) -> list[Record]:
    return [Reading("dust-1", "dust", "pm10", float(start + i), "ug/m3", Quality.NORMAL, 1e9 + start + i, start + i)
            for i in range(n)]


def alarm(i: int) -> AlarmEvent:
    return AlarmEvent("crane_wind", "wind-2", "wind_gust_3s", Severity.ALARM, EventState.RAISED, 9.5 + i, 9.0,
                      1e9 + i, "wind_gust_3s 9.5 m/s >= 9 m/s")


def values(batch: Batch) -> list[float | None]:
    return [item.record.value for item in batch.items if isinstance(item.record, Reading)]


def test_every_kind_of_record_survives_the_trip_through_json() -> None:
    records: list[Record] = [
        Reading("n", "dust", "pm10", None, "ug/m3", Quality.COMMUNICATION_FAILURE, 1e9, 0),
        Reading("n", "dust", "pm10", math.inf, "ug/m3", Quality.OVER_RANGE, 1e9, 3),
        Aggregate("n", "dust", "pm10_1h_mean", "pm10", "mean", "1h", 1e9, 1e9 + 3600, 42.5, "ug/m3", 2700, 3600,
                  True, Quality.NORMAL),
        AlarmEvent("noise", "n", "noise_20min_leq", Severity.PREWARNING, EventState.CLEARED, 54.0, math.nan, 1e9,
                   "why"),
        SprayCommand("n", "spray_relay", True, 1e9, SprayMode.ON, "manual on by x", None, 150.0),
        Actuation("n", "spray_relay", False, 1e9, SprayMode.AUTO, "r", 12.0, 150.0, "timeout: no reply", 2, 1e9 + 1),
        Outage("gateway", "", 1e9, 1e9 + 60, "gateway not running", 0, closed=True),
        Gap("n", "dust", 1e9, 1e9 + 700, 12, 650, "overwritten"),
        Gap("n", "dust", 1e9, 1e9, 40, None, "reboot"),
    ]
    for record in records:
        text = to_json(record)
        assert "NaN" not in text and "Infinity" not in text  # strict JSON, readable by anything
        back = from_json(kind_of(record), text)
        if isinstance(record, AlarmEvent):  # NaN is never equal to itself: compare the rest
            assert isinstance(back, AlarmEvent) and math.isnan(back.limit)
            assert dataclasses.replace(back, limit=0.0) == dataclasses.replace(record, limit=0.0)
        else:
            assert back == record


def test_each_sink_has_its_own_cursor(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store", "uplink"])
    assert queue.append(readings(10)) == 10
    first = queue.read("store", limit=4)
    assert values(first) == [0.0, 1.0, 2.0, 3.0]
    queue.confirm("store", first.last_id)
    assert values(queue.read("store")) == [float(i) for i in range(4, 10)]
    assert values(queue.read("uplink")) == [float(i) for i in range(10)]  # untouched by the other
    assert (queue.pending("store"), queue.pending("uplink")) == (6, 10)
    queue.confirm("store", 2)  # a cursor never moves back
    assert queue.pending("store") == 6
    with pytest.raises(KeyError):
        queue.read("nobody")


class Sink:
    """A sink that can be switched off; it remembers what it got."""

    def __init__(self, name: str, up: bool = True, take: int | None = None) -> None:
        self.name = name
        self.up = up
        self.take = take  # deliver only this many of each batch
        self.got: list[float | None] = []

    async def send(self, batch: Batch) -> int:
        if not self.up:
            raise ConnectionError("broker unreachable")
        n = len(batch) if self.take is None else min(self.take, len(batch))
        self.got += values(Batch(batch.queue_id, batch.items[:n]))
        return n

    def close(self) -> None:
        pass


async def test_a_sink_that_is_down_blocks_no_other_and_loses_nothing(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store", "mqtt"])
    store, mqtt = Sink("store", take=7), Sink("mqtt", up=False)
    # One lock for the queue's connection (the queue's), as in the gateway: the two run side by side below.
    to_store = Delivery(queue, store, batch=50, min_backoff=0.01, max_backoff=0.05)
    to_mqtt = Delivery(queue, mqtt, batch=50, min_backoff=0.01, max_backoff=0.05)
    queue.append(readings(120))
    assert await to_store.pump() is True  # partial deliveries (7 at a time) still get through everything
    assert store.got == [float(i) for i in range(120)]
    assert await to_mqtt.pump() is False
    assert to_mqtt.stats.failures == 1 and "broker unreachable" in to_mqtt.stats.last_error
    assert to_mqtt.backoff == 0.01 and queue.pending("mqtt") == 120
    # Both running as the gateway runs them; the broker comes back after a while.
    queue.append(readings(30, start=120))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(d.run(stop)) for d in (to_store, to_mqtt)]
    to_store.wake.set()
    await until(lambda: queue.pending("store") == 0 and to_mqtt.stats.failures > 2 and to_mqtt.backoff == 0.05)
    assert queue.pending("mqtt") == 150
    assert to_mqtt.backoff == 0.05  # backing off, at most max_backoff
    mqtt.up = True
    await until(lambda: queue.pending("mqtt") == 0)
    stop.set()
    await asyncio.gather(*tasks)
    assert mqtt.got == [float(i) for i in range(150)]  # everything, in order, once
    assert store.got == [float(i) for i in range(150)]
    assert to_mqtt.stats.down_since is None and to_mqtt.backoff == 0.0


def test_after_a_restart_each_sink_resumes_from_its_cursor(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    queue = DurableQueue(path, ["store", "uplink"])
    queue.append(readings(5))
    queue.confirm("store", queue.read("store", 3).last_id)
    queue_id = queue.queue_id
    queue.close()
    queue = DurableQueue(path, ["store", "uplink"])
    assert queue.queue_id == queue_id
    assert values(queue.read("store")) == [3.0, 4.0]
    assert values(queue.read("uplink")) == [0.0, 1.0, 2.0, 3.0, 4.0]
    queue.append(readings(1, start=5))
    assert values(queue.read("store")) == [3.0, 4.0, 5.0]


def test_the_newest_sample_of_a_node_is_where_acquisition_resumes(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store"])
    assert queue.latest_sequence("dust-1") is None
    queue.append(readings(5, start=100))  # samples 100 .. 104
    missing = Reading("dust-1", "dust", "pm10", None, "ug/m3", Quality.COMMUNICATION_FAILURE, 2e9, 0)
    queue.append([*readings(2, start=1), missing])  # the node rebooted (sequence 1, 2), then a failed poll
    assert queue.latest_sequence("dust-1") == 2
    assert queue.latest_sequence("wind-2") is None


def test_prune_drops_only_what_every_sink_confirmed_and_is_old_enough(tmp_path: Path) -> None:
    wall = Wall()
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store", "uplink"], wall=wall)
    queue.append(readings(10))  # appended "8 days ago"
    wall.t += 8 * DAY
    queue.append(readings(10, start=10))  # appended now
    queue.confirm("store", queue.last_id())
    assert queue.prune(7 * DAY) == 0  # the uplink has confirmed nothing: all of it is still undelivered
    queue.confirm("uplink", queue.read("uplink", 4).last_id)
    assert queue.prune(7 * DAY) == 4  # delivered by both and old
    assert queue.count() == 16
    queue.confirm("uplink", queue.last_id())
    assert queue.prune(7 * DAY) == 6  # the rest of the old ones; the new ones are too young
    assert values(queue.read("store")) == [] and queue.count() == 10
    wall.t += 8 * DAY
    assert queue.prune(7 * DAY) == 10 and queue.count() == 0
    # Ids are never reused, even with the table emptied: no cursor can skip a new record.
    queue.append(readings(1, start=99))
    assert values(queue.read("store")) == [99.0] and values(queue.read("uplink")) == [99.0]


def test_a_new_sink_gets_what_the_queue_holds_and_a_removed_sink_stops_holding_records(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "q.sqlite3"
    queue = DurableQueue(path, ["store", "old"])
    queue.append(readings(3))
    queue.confirm("store", queue.last_id())
    queue.close()
    with caplog.at_level(logging.WARNING):
        queue = DurableQueue(path, ["store", "archive"])
    assert "sink 'old' is no longer configured" in caplog.text
    assert values(queue.read("archive")) == [0.0, 1.0, 2.0]
    queue.confirm("archive", queue.last_id())
    assert queue.prune(0.0, now=queue.wall() + 1) == 3  # 'old' does not hold them back


def test_a_full_disk_is_counted_and_logged_and_loses_no_alarm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store"], memory_limit=1000)
    queue.append(readings(1))
    pages = queue._db.execute("PRAGMA page_count").fetchone()[0]
    queue._db.execute(f"PRAGMA max_page_count = {pages}")  # the "disk" is full now
    with caplog.at_level(logging.ERROR):
        assert queue.append([*readings(600, start=1), alarm(0)]) == 0
        assert queue.append([*readings(600, start=601), alarm(1)]) == 0
    assert queue.stats.append_errors == 2
    assert "cannot write" in caplog.text and "database or disk is full" in caplog.text
    # 1202 records waited in memory; the limit is 1000: the 202 oldest readings went, no alarm did.
    assert queue.backlog == 1000 and queue.stats.dropped == 202
    assert "dropped the 202 oldest records" in caplog.text
    queue._db.execute("PRAGMA max_page_count = 1073741823")  # space again
    assert queue.append([]) == 1000
    batch = queue.read("store", limit=5000)
    kinds = [item.kind for item in batch.items]
    assert kinds.count("alarm") == 2 and len(kinds) == 1001
    assert values(batch)[:3] == [0.0, 203.0, 204.0]  # in order, the dropped ones missing, and said so
    assert queue.backlog == 0


def test_a_corrupt_queue_file_is_moved_aside_and_a_new_queue_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "q.sqlite3"
    path.write_bytes(b"this is not a database, it is a text file someone saved here" * 100)
    with caplog.at_level(logging.ERROR):
        queue = DurableQueue(path, ["store"])
    (aside,) = queue.stats.corrupt_files
    assert Path(aside).read_bytes().startswith(b"this is not a database")
    assert Path(aside).name.startswith("q.sqlite3.corrupt-")
    assert str(path) in caplog.text and aside in caplog.text and "started a new, empty queue" in caplog.text
    assert "sqlite3" in caplog.text and ".recover" in caplog.text  # what to do with the old file
    queue.append(readings(2))
    assert values(queue.read("store")) == [0.0, 1.0]


def test_damage_inside_a_valid_file_is_found_when_it_opens(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    queue = DurableQueue(path, ["store"])
    queue.append(readings(3000))
    queue.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    data = bytearray(path.read_bytes())
    for page in range(2, pages, 3):  # scribble over every third b-tree page header
        start = page * page_size
        data[start : start + 16] = b"\xa5" * 16
    path.write_bytes(bytes(data))
    queue = DurableQueue(path, ["store"])
    assert len(queue.stats.corrupt_files) == 1
    assert queue.count() == 0
    queue.append(readings(1))
    assert queue.pending("store") == 1


def test_two_corrupt_files_in_the_same_second_are_both_kept(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    wall = Wall()
    for text in (b"first" * 500, b"second" * 500):
        path.write_bytes(text)
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        DurableQueue(path, ["store"], wall=wall).close()
    files = [p for p in tmp_path.glob("q.sqlite3.corrupt-*") if not p.name.endswith(("wal", "shm"))]
    kept = sorted(p.read_bytes()[:6] for p in files)
    assert kept == [b"firstf", b"second"]


def test_a_queue_that_cannot_even_be_moved_aside_is_an_error_that_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "q.sqlite3"
    path.write_bytes(b"garbage" * 1000)

    def refuse(self: Path, target: object) -> Path:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "rename", refuse)
    with pytest.raises(QueueError, match="could not be moved aside \\(Permission denied\\)") as raised:
        DurableQueue(path, ["store"])
    assert str(path) in str(raised.value) and "move or delete it by hand" in str(raised.value)


def test_undecodable_records_are_skipped_and_counted(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store"])
    queue.append(readings(1))
    queue._db.execute("INSERT INTO records (kind, node, ts, added, body) VALUES ('reading', 'x', 0, 0, '{}')")
    queue._db.execute("INSERT INTO records (kind, node, ts, added, body) VALUES ('hologram', 'x', 0, 0, '{}')")
    queue.append(readings(1, start=1))
    assert values(queue.read("store")) == [0.0, 1.0]
    assert queue.stats.undecodable == 2


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait for a condition on the event loop (a ceiling for a loaded host, not an expectation)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met"
        await asyncio.sleep(0.01)


def test_every_user_of_a_queue_built_without_a_lock_takes_the_queues_own(tmp_path: Path) -> None:
    # Two deliveries built without a shared lock once used the queue's one SQLite connection from two threads at
    # once (series s5d): the lock is the queue's, not each user's.
    queue = DurableQueue(tmp_path / "q.sqlite3", ["a", "b"])
    try:
        first, second = Delivery(queue, Sink("a")), Delivery(queue, Sink("b"))
        writer = QueueWriter(queue, commit_interval=0.0)
        assert first.lock is second.lock is writer.lock is queue.lock
        other = DurableQueue(tmp_path / "other.sqlite3", ["a"])
        assert Delivery(other, Sink("a")).lock is not queue.lock
        other.close()
    finally:
        queue.close()
