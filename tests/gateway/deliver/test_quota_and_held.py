"""Disk quotas of the queue and the store, and readings held for a valid clock, on real SQLite files."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from gateway.deliver.queue import PROTECTED, Batch, DurableQueue, Held, Queued
from gateway.deliver.records import Actuation, Outage, Record, kind_of
from gateway.deliver.sqlite_store import SqliteStore
from gateway.model import Gap, Quality, Reading
from gateway.ops.service import Gateway
from gateway.process.aggregate import Aggregate
from gateway.process.spray import SprayMode
from tests.gateway.deliver.test_queue import Wall, alarm, readings
from tests.gateway.test_pipeline import site_config

QUOTA = 512 * 1024


def protected_records(i: int) -> list[Record]:
    return [
        alarm(i),
        Outage("dust-1", "dust", 1e9 + i, 1e9 + i + 60, "no reply", 3),
        Gap("dust-1", "dust", 1e9 + i, 1e9 + i + 5, 10 * i + 1, 10 * i + 5, "overwritten"),
        Actuation("dust-1", "spray_relay", True, 1e9 + i, SprayMode.AUTO, "pm10 high", 160.0, 150.0, "ok", 1, 1e9),
    ]


def aggregate(i: int) -> Aggregate:
    return Aggregate("dust-1", "dust", "pm10_1min_mean", "pm10", "mean", "1min", 1e9 + 60 * i, 1e9 + 60 * i + 60,
                     42.0, "ug/m3", 60, 60, True, Quality.NORMAL)


def fill(queue: DurableQueue, polls: int, first: int = 0) -> None:
    """A site's worth of records: readings, now and then an aggregate, and rarely an alarm, outage, gap, actuation."""
    for i in range(first, first + polls):
        batch: list[Record] = list(readings(20, start=20 * i))
        if i % 10 == 0:
            batch.append(aggregate(i))
        if i % 50 == 0:
            batch.extend(protected_records(i))
        queue.append(batch)


def kinds(queue: DurableQueue) -> dict[str, int]:
    return {kind: count for kind, count in queue._db.execute("SELECT kind, COUNT(*) FROM records GROUP BY kind")}


def test_the_quota_deletes_what_every_sink_has_before_anything_undelivered(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store", "cloud"], max_bytes=QUOTA)
    fill(queue, 100)
    assert queue.used_bytes() < QUOTA  # below the quota nothing goes
    assert queue.stats.quota_deleted == 0
    # Both sinks delivered everything so far: that is what goes first, however young.
    queue.confirm("store", queue.last_id())
    queue.confirm("cloud", queue.last_id())
    delivered = queue.last_id()
    fill(queue, 100, first=100)
    assert queue.used_bytes() <= QUOTA
    assert queue.stats.quota_deleted > 0 and queue.stats.quota_dropped == 0
    assert queue.pending("cloud") == queue._db.execute("SELECT COUNT(*) FROM records WHERE id > ?",
                                                       (delivered,)).fetchone()[0]
    assert kinds(queue)["alarm"] == 2 * 2  # every protected record of both fills is still there
    queue.close()


def test_past_what_was_delivered_the_oldest_undelivered_readings_go_counted_and_never_an_alarm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store", "cloud"], max_bytes=QUOTA)
    fill(queue, 200)
    queue.confirm("store", queue.last_id())  # the cloud sink is down: nothing is delivered to every sink
    with caplog.at_level(logging.ERROR):
        fill(queue, 800, first=200)
    assert queue.used_bytes() <= QUOTA
    left = kinds(queue)
    assert queue.stats.quota_dropped > 0
    assert queue.stats.quota_dropped == 1000 * 20 + 100 - left["reading"] - left["aggregate"]  # every drop counted
    assert {kind: left[kind] for kind in PROTECTED} == {kind: 20 for kind in PROTECTED}
    assert "no sink had received yet" in caplog.text
    # Oldest first: what is left of the readings is the newest stretch, in order.
    batch = queue.read("cloud", 100_000)
    values = [item.record.value for item in batch.items if isinstance(item.record, Reading)]
    assert values == [float(v) for v in range(20_000 - len(values), 20_000)]
    queue.close()


def test_an_unconfigured_quota_keeps_everything(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store"])
    fill(queue, 300)
    assert queue.count() == 300 * 20 + 30 + 6 * 4 and queue.stats.quota_dropped == 0
    queue.close()


def store_batch(queue_id: str, start_id: int, records: list[Record]) -> Batch:
    return Batch(queue_id, tuple(Queued(start_id + i, kind_of(r), r) for i, r in enumerate(records)))


def test_the_store_quota_deletes_the_oldest_readings_and_keeps_every_alarm(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.sqlite3", max_bytes=QUOTA)
    next_id = 1
    for i in range(600):
        batch: list[Record] = list(readings(20, start=20 * i))
        if i % 50 == 0:
            batch.extend(protected_records(i))
        store.store_batch(store_batch("q", next_id, batch))
        next_id += len(batch)
    assert store.used_bytes() <= QUOTA
    assert store.quota_deleted > 0
    kept = store.readings()
    assert [r.value for r in kept] == [float(v) for v in range(12_000 - len(kept), 12_000)]
    counts = [store.query(f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("alarms", "outages", "gaps", "actuations")]
    assert counts == [12, 12, 12, 12]
    store.close()


def held(holder: str, serial: int, mono: float, seq: int) -> Held:
    return Held(holder, serial, mono, Reading("dust-1", "dust", "pm10", float(seq), "ug/m3", Quality.NORMAL, 0.0, seq))


def test_held_readings_survive_a_restart_and_go_with_the_append_that_releases_them(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    queue = DurableQueue(path, ["store"], wall=Wall())
    queue.append(readings(3), held=[held("bus0", 1, 5.0, 4), held("bus0", 2, 6.0, 5)], boot="b1")
    assert queue.latest_sequence("dust-1") == 5  # acquisition resumes after what is held
    queue.close()
    queue = DurableQueue(path, ["store"], wall=Wall())
    assert queue.stats.held == 2
    assert [(h.serial, h.mono, h.reading.sequence) for h in queue.held_readings("b1")] == [(1, 5.0, 4), (2, 6.0, 5)]
    queue.append([], released={"bus0": 1}, boot="b1")  # released but not yet stamped: must not happen alone...
    queue.append(readings(1, start=5), released={"bus0": 2}, boot="b1")
    assert queue.held_readings("b1") == [] and queue.stats.held == 0
    assert queue.latest_sequence("dust-1") == 5
    queue.close()


def test_held_readings_of_an_earlier_boot_are_dropped_counted_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store"])
    queue.append([], held=[held("bus0", 1, 5.0, 4)], boot="old-boot")
    with caplog.at_level(logging.ERROR):
        assert queue.held_readings("new-boot") == []
    assert queue.stats.held_other_boot == 1 and queue.stats.held == 0
    assert "before the machine restarted" in caplog.text
    queue.close()


def test_only_protected_records_left_over_the_quota_are_kept_and_reported(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.sqlite3", ["store"], max_bytes=64 * 1024)
    for i in range(150):
        queue.append(protected_records(i))
    assert kinds(queue) == {kind: 150 for kind in PROTECTED}  # none deleted, however far over
    assert queue.stats.over_quota > 0 and queue.stats.quota_dropped == 0
    queue.close()


async def test_readings_dropped_for_the_quota_are_a_fault_in_the_gateway_status(tmp_path: Path) -> None:
    config = site_config(tmp_path, tmp_path / "nowhere")
    config = dataclasses.replace(config, queue=dataclasses.replace(config.queue, max_bytes=QUOTA))
    gateway = Gateway(config)
    try:
        assert gateway.faults() == [] and gateway.status()["faults"] == []
        for i in range(400):  # the store sink is not running: nothing is delivered
            gateway._accept(list(readings(20, start=20 * i)))
            await gateway.writer.flush()
        assert gateway.queue.stats.quota_dropped > 0
        assert [f for f in gateway.status()["faults"] if "disk quota" in f and "dropped" in f]
    finally:
        gateway.queue.close()
        for sink in gateway.sinks:
            sink.close()
