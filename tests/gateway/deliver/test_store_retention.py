"""The store's retention: old readings and aggregates go in small transactions; alarms and events stay."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import SimpleNamespace

from gateway.deliver.queue import Batch, Queued
from gateway.deliver.records import Actuation, Outage, Record, kind_of
from gateway.deliver.sqlite_store import SqliteSink, SqliteStore
from gateway.model import Gap, Quality, Reading
from gateway.ops.config import parse_config
from gateway.process.aggregate import Aggregate
from gateway.process.alarms import AlarmEvent, EventState, Severity
from gateway.process.spray import SprayMode

DAY = 86400.0
NOW = 1_790_000_000.0  # 2026-09-21


def reading(ts: float, seq: int) -> Reading:
    return Reading("dust-1", "dust", "pm10", float(seq), "ug/m3", Quality.NORMAL, ts, seq)


def aggregate(end: float) -> Aggregate:
    return Aggregate("dust-1", "dust", "pm10_1h_mean", "pm10", "mean", "1h", end - 3600, end, 42.0, "ug/m3", 3600,
                     3600, True, Quality.NORMAL)


def events(ts: float) -> list[Record]:
    return [
        AlarmEvent("dust", "dust-1", "pm10_1h_mean", Severity.ALARM, EventState.RAISED, 160.0, 150.0, ts, "high"),
        Outage("dust-1", "dust", ts, ts + 60, "no reply", 3),
        Gap("dust-1", "dust", ts, ts + 5, 1, 5, "overwritten"),
        Actuation("dust-1", "spray_relay", True, ts, SprayMode.AUTO, "pm10 high", 160.0, 150.0, "ok", 1, ts),
    ]


def site_history(days: int) -> list[Record]:
    """One reading an hour and one aggregate a day for `days` days before NOW, and events on the first day."""
    records: list[Record] = []
    for hour in range(days * 24):
        ts = NOW - days * DAY + hour * 3600
        records.append(reading(ts, hour + 1))
        if hour % 24 == 23:
            records.append(aggregate(ts))
    return records + events(NOW - days * DAY)


def batch(records: list[Record], first_id: int = 1) -> Batch:
    return Batch("q", tuple(Queued(first_id + i, kind_of(r), r) for i, r in enumerate(records)))


def counts(store: SqliteStore) -> dict[str, int]:
    tables = ("readings", "aggregates", "alarms", "outages", "gaps", "actuations")
    return {t: int(str(store.query(f"SELECT COUNT(*) FROM {t}")[0][0])) for t in tables}


def test_prune_older_deletes_old_readings_and_aggregates_in_chunks_and_keeps_events(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.sqlite3")
    store.store_batch(batch(site_history(10)))
    assert counts(store) == {"readings": 240, "aggregates": 10, "alarms": 1, "outages": 1, "gaps": 1, "actuations": 1}
    deleted = store.prune_older(NOW - 3 * DAY, chunk=7)  # many small transactions
    assert deleted == 7 * 24 + 7
    assert counts(store) == {"readings": 72, "aggregates": 3, "alarms": 1, "outages": 1, "gaps": 1, "actuations": 1}
    assert min(r.timestamp for r in store.readings()) >= NOW - 3 * DAY
    assert store.retention_deleted == deleted
    assert store.prune_older(NOW - 3 * DAY) == 0
    store.close()


class FakeTime:
    def __init__(self) -> None:
        self.wall_now = NOW
        self.mono_now = 100.0

    def wall(self) -> float:
        return self.wall_now

    def mono(self) -> float:
        return self.mono_now


async def test_the_sink_prunes_by_the_services_clock_at_most_every_interval(tmp_path: Path) -> None:
    sink = SqliteSink("sqlite", str(tmp_path / "store.sqlite3"), retention_days=2, prune_interval_s=600)
    t = FakeTime()
    sink.attach(SimpleNamespace(clock=SimpleNamespace(wall=t.wall)))
    sink.mono = t.mono
    history = site_history(5)
    assert await sink.send(batch(history)) == len(history)
    assert counts(sink.store)["readings"] == 48 and counts(sink.store)["alarms"] == 1
    t.wall_now += DAY  # a day later, but the next prune is not due yet
    t.mono_now += 599
    await sink.send(batch([reading(t.wall_now, 10_000)], first_id=len(history) + 1))
    assert counts(sink.store)["readings"] == 49
    t.mono_now += 1
    await sink.send(batch([reading(t.wall_now, 10_001)], first_id=len(history) + 2))
    assert counts(sink.store)["readings"] == 24 + 2  # the last day of the history, and the two new ones
    sink.close()


async def test_a_zero_retention_keeps_everything(tmp_path: Path) -> None:
    sink = SqliteSink("sqlite", str(tmp_path / "store.sqlite3"), retention_days=0)
    history = site_history(5)
    await sink.send(batch(history))
    assert counts(sink.store)["readings"] == 120
    sink.close()


def test_the_store_section_reaches_the_sink(tmp_path: Path) -> None:
    text = f'[store]\npath = "{tmp_path / "s.sqlite3"}"\nretention_days = 14\nprune_interval_s = 60\n' \
           f'[[bus]]\nport = "/dev/ttyUSB0"\n[[bus.node]]\nkind = "dust"\nunit_id = 1\n'
    config = parse_config(tomllib.loads(text), "t.toml")
    store = config.all_sinks()[0]
    assert (store.type, store.params["retention_days"], store.params["prune_interval_s"]) == ("sqlite", 14.0, 60.0)
    default = parse_config(tomllib.loads(text.replace("retention_days = 14\n", "")), "t.toml")
    assert default.all_sinks()[0].params["retention_days"] == 30.0


async def test_no_pruning_while_the_clock_is_not_valid(tmp_path: Path) -> None:
    """Audit: retention cut by the wall clock even before it was synchronised. A clock set years ahead (a
    real-time clock gone wrong, before chrony corrects it) deleted the whole store; the readings are held
    meanwhile, but health records and outages still reach the store and trigger its pruning."""
    sink = SqliteSink("sqlite", str(tmp_path / "store.sqlite3"), retention_days=2, prune_interval_s=600)
    t = FakeTime()
    valid = [False]
    sink.attach(SimpleNamespace(clock=SimpleNamespace(wall=t.wall, valid=lambda: valid[0])))
    sink.mono = t.mono
    history = site_history(5)
    assert await sink.send(batch(history)) == len(history)
    t.wall_now += 3650 * DAY  # ten years ahead, not synchronised
    t.mono_now += 601
    await sink.send(batch([reading(t.wall_now, 10_000)], first_id=len(history) + 1))
    assert counts(sink.store)["readings"] == 5 * 24 + 1  # nothing pruned
    valid[0] = True  # synchronised (here to the same time: it really is ten years on)
    t.mono_now += 601
    await sink.send(batch([reading(t.wall_now, 10_001)], first_id=len(history) + 2))
    assert counts(sink.store)["readings"] == 2
    sink.close()
