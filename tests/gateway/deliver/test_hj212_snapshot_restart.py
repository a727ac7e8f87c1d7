"""The HJ 212 sink's real-time snapshot survives a restart: the interval in progress still goes out as its 2011,
once, to a real TCP receiver (sitewatch's own `listen` receiver on a loopback port)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gateway.deliver.hj212 import aclose
from gateway.deliver.hj212_session import Settings, Uplink
from gateway.deliver.queue import DurableQueue
from gateway.deliver.records import Record
from gateway.deliver.sinks import SINKS, load_builtin_sinks
from gateway.model import Quality
from tests.gateway.deliver.test_hj212_sink import MN, T0, Platform, batch, make_sink, platform, reading, until

__all__ = ["platform"]  # the fixture, used by name


async def test_the_interval_in_progress_at_a_restart_still_goes_out_once(platform: Platform, tmp_path: Path) -> None:
    state = tmp_path / "hj212-realtime.json"
    first = make_sink(platform.port, state_file=str(state))
    try:
        records: list[Record] = [reading("pm10", 80.0, T0 + 1), reading("pm25", 41.0, T0 + 5),
                                 reading("pm10", 82.0, T0 + 11)]
        assert await first.send(batch(records)) == 3  # the interval T0 .. T0+30 is being built: nothing sent
        assert platform.received == []
    finally:
        await aclose(first)  # the gateway stops here (kill -9 loses nothing more: the file is written already)
    assert json.loads(state.read_text())["slot"] == T0

    second = make_sink(platform.port, state_file=str(state))
    try:
        # The batch was confirmed (send returned): after the restart only the next interval's readings come.
        assert await second.send(batch([reading("pm10", 90.0, T0 + 31)], first=4)) == 1
        await until(lambda: len(platform.received) == 1, "the interval's 2011")
    finally:
        await aclose(second)
    (packet,) = platform.received
    assert (packet.cn, packet.data_time) == ("2011", "20240105120000")
    assert packet.factors["a34002"].value == 82.0 and packet.factors["a34004"].value == 41.0
    assert second.counts["realtime_packets"] == 1


async def test_a_batch_delivered_again_after_the_interval_went_out_is_late_not_sent_twice(
    platform: Platform, tmp_path: Path
) -> None:
    state = tmp_path / "rt.json"
    records: list[Record] = [reading("pm10", 80.0, T0 + 1), reading("pm10", 90.0, T0 + 31)]
    first = make_sink(platform.port, state_file=str(state))
    try:
        assert await first.send(batch(records)) == 2  # T0's interval goes out; T0+30's is being built
        await until(lambda: len(platform.received) == 1, "the first 2011")
    finally:
        await aclose(first)  # killed before the cursor moved: the batch comes again
    second = make_sink(platform.port, state_file=str(state))
    try:
        assert await second.send(batch(records)) == 2
        assert await second.send(batch([reading("pm10", 95.0, T0 + 61)], first=3)) == 1
        await until(lambda: len(platform.received) == 2, "the second 2011")
    finally:
        await aclose(second)
    assert [r.data_time for r in platform.received] == ["20240105120000", "20240105120030"]
    assert platform.received[1].factors["a34002"].value == 90.0
    assert second.counts["late_realtime"] == 1  # the first interval's reading, again: counted, not resent


@pytest.mark.parametrize("content, problem", [
    ("{not json", "does not read"),
    ('{"mn": "OTHER-MN", "slot": 1704427200.0, "values": {}}', "OTHER-MN"),
    (f'{{"mn": "{MN}", "slot": "noon", "values": {{}}}}', "slot 'noon' is not a time"),
    (f'{{"mn": "{MN}", "slot": 1704427200.0, "values": {{"a34002": [80.0]}}}}', "values.a34002"),
])
async def test_a_snapshot_file_that_does_not_read_is_logged_counted_and_replaced(
    platform: Platform, tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str, problem: str
) -> None:
    state = tmp_path / "rt.json"
    state.write_text(content)
    sink = make_sink(platform.port, state_file=str(state))
    try:
        with caplog.at_level(logging.ERROR):
            assert await sink.send(batch([reading("pm10", 70.0, T0 + 1)])) == 1
    finally:
        await aclose(sink)
    assert sink.counts["state_unreadable"] == 1
    assert problem in caplog.text and str(state) in caplog.text
    assert json.loads(state.read_text()) == {"mn": MN, "slot": T0, "values": {"a34002": [70.0, "N"]}}


async def test_inside_the_gateway_the_file_lies_beside_the_queue(platform: Platform, tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "site-queue.sqlite3", ["hj212"])

    class Service:
        pass

    service = Service()
    service.queue = queue  # type: ignore[attr-defined]
    load_builtin_sinks()
    sink = SINKS.create("hj212", "bureau", {"host": "127.0.0.1", "port": platform.port, "mn": MN})
    sink.attach(service)  # type: ignore[attr-defined]
    try:
        assert await sink.send(batch([reading("pm10", 70.0, T0 + 1)])) == 1
    finally:
        await aclose(sink)  # type: ignore[arg-type]
        queue.close()
    assert json.loads((tmp_path / "site-queue-bureau-realtime.json").read_text())["slot"] == T0


def test_the_snapshot_state_round_trips_through_the_session() -> None:
    up = Uplink(Settings(mn=MN, rtd_interval=30))
    up.records([reading("pm10", 80.0, T0 + 1), reading("pm25", None, T0 + 2, q=Quality.DEVICE_FAULT)], T0)
    again = Uplink(Settings(mn=MN, rtd_interval=30))
    assert again.load_snapshot(json.loads(json.dumps(up.snapshot_state())))
    assert again.snapshot_state() == up.snapshot_state()
    assert [p.factors() for p in again.flush_realtime(T0)] == [p.factors() for p in up.flush_realtime(T0)]
    assert not Uplink(Settings(mn="OTHER", rtd_interval=30)).load_snapshot(up.snapshot_state())
