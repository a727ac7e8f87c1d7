"""The HJ 212 sink against a real TCP receiver on a free loopback port (sitewatch's own `listen` receiver)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.deliver.hj212 import Hj212Sink, aclose, store_history
from gateway.deliver.hj212_listen import Received, Receiver
from gateway.deliver.hj212_session import Settings, Uplink
from gateway.deliver.queue import Batch, Queued
from gateway.deliver.records import Record, kind_of
from gateway.deliver.sinks import SINKS, SinkError, load_builtin_sinks
from gateway.deliver.sqlite_store import SqliteStore
from gateway.model import Quality, Reading
from gateway.process.aggregate import Aggregate
from gateway.protocols import hj212
from gateway.protocols.hj212 import Packet

MN = "88888880000001"
T0 = 1_704_427_200.0  # 2024-01-05 12:00:00 +08:00 (04:00 UTC)
OFFSET = 8 * 3600


def reading(channel: str, value: float | None, t: float, kind: str = "dust", q: Quality = Quality.NORMAL) -> Reading:
    return Reading("dust-1", kind, channel, value, "ug/m3", q, t, 1)


def aggregate(source: str, statistic: str, window: str, start: float, value: float | None,
              q: Quality = Quality.NORMAL) -> Aggregate:
    return Aggregate("dust-1", "dust", f"{source}_{window}_{statistic}", source, statistic, window, start,
                     start + 60, value, "ug/m3", 45, 60, q is Quality.NORMAL, q)


def batch(records: list[Record], first: int = 1) -> Batch:
    return Batch("q", tuple(Queued(first + i, kind_of(r), r) for i, r in enumerate(records)))


async def until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# -- the session alone (sans-IO) -------------------------------------------------------------


def test_readings_make_one_snapshot_per_interval_sent_when_the_interval_is_over() -> None:
    up = Uplink(Settings(mn=MN, rtd_interval=30))
    assert up.records([reading("pm10", 80.0, T0 + 1), reading("pm10", 82.0, T0 + 11), reading("pm25", None, T0 + 12,
                                                                                             q=Quality.DEVICE_FAULT)],
                      T0) == []
    (packet,) = up.records([reading("pm10", 90.0, T0 + 31)], T0)
    assert packet.cn == "2011" and packet.mn == MN and packet.st == "22" and packet.flag == 4
    assert packet.cp_fields()["DataTime"] == "20240105120000"
    # The latest value of the interval; a reading without a value is its flag alone, never a repeat.
    assert packet.factors() == {"a34002": {"Rtd": "82.000", "Flag": "N"}, "a34004": {"Flag": "D"}}
    # Late for real time: counted, not sent.
    assert up.records([reading("pm10", 1.0, T0 + 2)], T0) == []
    assert up.counts["late_realtime"] == 1


def test_a_missing_value_flagged_normal_goes_out_as_b() -> None:
    up = Uplink(Settings(mn=MN))
    up.records([reading("pm10", None, T0)], T0)
    (packet,) = up.flush_realtime(T0)
    assert packet.factors() == {"a34002": {"Flag": "B"}}


def test_aggregates_become_minute_hour_day_data_and_the_pm_factor_applies() -> None:
    up = Uplink(Settings(mn=MN, pm_unit_factor=0.001, reply=True))
    records: list[Record] = [
        aggregate("pm10", "mean", "1min", T0, 80.0),
        aggregate("pm10", "min", "1min", T0, 70.0),
        aggregate("pm10", "max", "1min", T0, 95.0),
        aggregate("pm10", "count", "1min", T0, 60.0),  # no HJ 212 form
        aggregate("pm25", "mean", "1h", T0, None, Quality.COMMUNICATION_FAILURE),
        aggregate("pm25", "mean", "15min", T0, 40.0),  # no CN for 15 min
        aggregate("pm10", "mean", "24h", T0, 81.0),
    ]
    minute, hour, day = up.records(records, T0)
    assert (minute.cn, hour.cn, day.cn) == ("2051", "2061", "2031")
    assert minute.flag == 5
    assert minute.factors() == {"a34002": {"Avg": "0.080", "Min": "0.070", "Max": "0.095", "Flag": "N"}}
    assert hour.factors() == {"a34004": {"Flag": "B"}}
    assert up.counts["not_sent"] == 2
    assert len({minute.qn, hour.qn, day.qn}) == 3  # distinct QNs: the replies name them


def test_two_nodes_giving_one_factor_are_counted() -> None:
    up = Uplink(Settings(mn=MN))
    other = Reading("dust-2", "dust", "pm10", 90.0, "ug/m3", Quality.NORMAL, T0 + 1, 1)
    up.records([reading("pm10", 80.0, T0), other, reading("pm10", 81.0, T0 + 2)], T0)
    assert up.counts["factor_from_two_nodes"] == 2


def test_only_the_configured_nodes_are_sent() -> None:
    up = Uplink(Settings(mn=MN, nodes=frozenset({"dust-2"})))
    up.records([reading("pm10", 80.0, T0)], T0)
    assert up.flush_realtime(T0) == []


# -- the sink over TCP -------------------------------------------------------------------


class Platform:
    """A receiver on a free loopback port that keeps what it gets."""

    def __init__(self, acknowledge: bool = True) -> None:
        self.received: list[Received] = []
        self.receiver = Receiver(self.received.append, acknowledge=acknowledge)
        self.port = 0

    def cns(self) -> list[str]:
        return [r.cn for r in self.received]


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    p = Platform()
    _, p.port = await p.receiver.start("127.0.0.1", 0)
    yield p
    await p.receiver.close()


def make_sink(port: int, **params: object) -> Hj212Sink:
    load_builtin_sinks()
    sink = SINKS.create("hj212", "hj212", {"host": "127.0.0.1", "port": port, "mn": MN, **params})
    assert isinstance(sink, Hj212Sink)
    sink.wall = lambda: T0 + 100
    return sink


async def test_sink_to_listen_round_trip_with_replies(platform: Platform) -> None:
    sink = make_sink(platform.port, reply=True, reply_timeout=20.0)
    try:
        records: list[Record] = [
            reading("pm10", 80.0, T0), reading("wind_speed", 3.5, T0 + 5, kind="wind"),
            aggregate("pm10", "mean", "1min", T0, 79.5), reading("pm10", 81.0, T0 + 30),
        ]
        assert await sink.send(batch(records)) == 4
        assert sink.counts["replies"] == 2 and sink.counts["reply_timeouts"] == 0
        await until(lambda: len(platform.received) == 2, "two packets")
        minute, realtime = sorted(platform.received, key=lambda r: r.cn, reverse=True)
        assert (realtime.mn, realtime.cn, realtime.data_time) == (MN, "2011", "20240105120000")
        assert realtime.factors["a34002"].value == 80.0 and realtime.factors["a34002"].flag == "N"
        assert realtime.factors["a01007"].value == 3.5
        assert minute.cn == "2051" and minute.factors["a34002"].values == {"Avg": 79.5}
        assert platform.receiver.counts["acknowledged"] == 2
    finally:
        await aclose(sink)


async def test_no_reply_retries_then_fails_and_counts() -> None:
    p = Platform(acknowledge=False)
    _, port = await p.receiver.start()
    sink = make_sink(port, reply=True, reply_timeout=0.2, retries=2)
    try:
        with pytest.raises(SinkError, match="no reply"):
            await sink.send(batch([aggregate("pm10", "mean", "1min", T0, 79.5)]))
        assert sink.counts["reply_timeouts"] == 3 and sink.counts["reply_failures"] == 1
        await until(lambda: len(p.received) == 3, "three copies of the packet")
        assert len({r.packet.qn for r in p.received}) == 1  # the same packet again, same QN
        # A failed batch leaves the real-time snapshot as it was: the batch's readings count again next time.
        readings: list[Record] = [reading("pm10", 80.0, T0), reading("pm10", 81.0, T0 + 31)]
        with pytest.raises(SinkError):
            await sink.send(batch(readings))
        (again,) = sink.uplink.records(readings, T0)
        assert again.cn == "2011" and again.factors()["a34002"]["Rtd"] == "80.000"
        assert sink.counts["late_realtime"] == 0
    finally:
        await aclose(sink)
        await p.receiver.close()


async def test_a_late_reply_on_the_second_try_is_enough() -> None:
    seen: list[Packet] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = hj212.StreamParser()
        while data := await reader.read(4096):
            for item in parser.feed(data):
                assert isinstance(item, Packet)
                seen.append(item)
                if len(seen) >= 2:  # the first copy is "lost"
                    writer.write(hj212.data_reply(item).encode())
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    # The first try always times out (its copy is "lost"); 2 s leaves the second reply room on a busy machine.
    sink = make_sink(server.sockets[0].getsockname()[1], reply=True, reply_timeout=2.0, retries=3)
    try:
        assert await sink.send(batch([aggregate("pm10", "mean", "1h", T0, 79.5)])) == 1
        assert sink.counts["reply_timeouts"] == 1 and sink.counts["replies"] == 1
    finally:
        await aclose(sink)
        server.close()


async def test_reconnects_after_the_platform_drops_the_connection(platform: Platform) -> None:
    sink = make_sink(platform.port)
    try:
        await sink.send(batch([aggregate("pm10", "mean", "1min", T0, 1.0)]))
        await until(lambda: len(platform.received) == 1, "the first packet")
        platform.receiver.drop_connections()
        await until(lambda: not sink.connected, "the sink to see the drop")
        await sink.send(batch([aggregate("pm10", "mean", "1min", T0 + 60, 2.0)], first=2))
        await until(lambda: len(platform.received) == 2, "the packet after reconnecting")
        assert sink.counts["connects"] == 2 and sink.counts["disconnects"] == 1
    finally:
        await aclose(sink)


async def test_a_platform_that_is_down_is_a_sink_error_and_the_snapshot_is_kept() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    sink = make_sink(port)
    sink.uplink.records([reading("pm10", 80.0, T0)], T0)
    with pytest.raises(SinkError, match="cannot connect"):
        await sink.send(batch([reading("pm10", 81.0, T0 + 31)]))
    assert sink.counts["connect_failures"] == 1
    # Rolled back: the interval's snapshot is still there to be sent when the batch comes again.
    assert sink.uplink.flush_realtime(T0)[0].factors()["a34002"]["Rtd"] == "80.000"


async def connected_sink(platform: Platform, **params: object) -> Hj212Sink:
    sink = make_sink(platform.port, **params)
    await sink.send(batch([reading("temperature", 20.0, T0)]))  # opens the connection
    await until(lambda: platform.receiver.counts["connections"] == 1, "the connection")
    return sink


def request(cn: str, *fields: tuple[str, str], mn: str = MN, pw: str = "123456") -> Packet:
    return Packet(cn=cn, mn=mn, st="22", pw=pw, qn="20240105120500123", flag=5, cp=(fields,) if fields else ())


async def test_downlink_set_rtd_interval(platform: Platform) -> None:
    sink = await connected_sink(platform)
    try:
        await platform.receiver.send(request("1062", ("RtdInterval", "60")))
        await until(lambda: "9012" in platform.cns(), "the execution result")
        assert platform.cns() == ["9011", "9012"]
        assert platform.received[0].packet.cp_fields() == {"QnRtn": "1"}
        assert platform.received[1].packet.cp_fields() == {"ExeRtn": "1"}
        assert sink.uplink.rtd_interval == 60
        # An interval out of range is refused and changes nothing.
        await platform.receiver.send(request("1062", ("RtdInterval", "0")))
        await until(lambda: len(platform.received) == 3, "the refusal")
        assert platform.received[2].packet.cp_fields() == {"QnRtn": "2"} and sink.uplink.rtd_interval == 60
        # A wrong password is refused with QnRtn 3.
        await platform.receiver.send(request("1062", ("RtdInterval", "90"), pw="000000"))
        await until(lambda: len(platform.received) == 4, "the refusal")
        assert platform.received[3].packet.cp_fields() == {"QnRtn": "3"} and sink.uplink.rtd_interval == 60
    finally:
        await aclose(sink)


async def test_downlink_set_time_is_acknowledged_not_applied(platform: Platform) -> None:
    sink = await connected_sink(platform)
    try:
        # The sink's wall clock says 12:01:40; the platform says 12:03:10.
        await platform.receiver.send(request("1012", ("SystemTime", "20240105120310")))
        await until(lambda: "9012" in platform.cns(), "the execution result")
        assert sink.uplink.clock_offset == pytest.approx(90.0)
        assert platform.received[-1].packet.cp_fields() == {"ExeRtn": "1"}
    finally:
        await aclose(sink)


async def test_history_request_is_answered_from_the_store_with_revisions(platform: Platform, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    hour = T0 - 3600
    records: list[Record] = [
        aggregate("pm10", "mean", "1h", hour, 70.0),
        aggregate("pm10", "mean", "1h", T0, 80.0),
        dataclasses.replace(aggregate("pm10", "mean", "1h", T0, 85.0), revision=1),  # revised after a late sample
        aggregate("pm10", "mean", "1min", T0, 1.0),  # another window
    ]
    store.store_batch(batch(records))
    store.close()
    latest = store_history(tmp_path / "store.db")("1h", hour, T0)
    assert [(a.start, a.value) for a in latest] == [(hour, 70.0), (T0, 85.0)]  # one row per window: the last
    sink = await connected_sink(platform, store=str(tmp_path / "store.db"))
    try:
        await platform.receiver.send(request("2061", ("BeginTime", "20240105110000"), ("EndTime", "20240105120000")))
        await until(lambda: "9012" in platform.cns(), "the execution result")
        assert platform.cns() == ["9011", "2061", "2061", "9012"]
        first, second = platform.received[1], platform.received[2]
        assert (first.data_time, first.factors["a34002"].value) == ("20240105110000", 70.0)
        assert (second.data_time, second.factors["a34002"].value) == ("20240105120000", 85.0)
        assert first.packet.qn == "20240105120500123"  # the request's QN
        assert platform.received[3].packet.cp_fields() == {"ExeRtn": "1"}
        # Nothing in the range: "no data".
        await platform.receiver.send(request("2031", ("BeginTime", "20240101000000"), ("EndTime", "20240102000000")))
        await until(lambda: platform.cns().count("9012") == 2, "the second execution result")
        assert platform.received[-1].packet.cp_fields() == {"ExeRtn": "100"}
    finally:
        await aclose(sink)


def test_bad_settings_are_config_errors() -> None:
    load_builtin_sinks()
    from gateway.deliver.sinks import SinkConfigError

    with pytest.raises(SinkConfigError, match="rtd_interval"):
        SINKS.create("hj212", "h", {"host": "x", "port": 1, "mn": MN, "rtd_interval": 0})
    with pytest.raises(SinkConfigError, match="mn"):
        SINKS.create("hj212", "h", {"host": "x", "port": 1, "mn": "a;b"})


def test_the_configuration_takes_an_hj212_sink() -> None:
    import tomllib

    from gateway.ops.config import ConfigError, parse_config

    bus = '[[bus]]\nport = "/dev/ttyUSB0"\n[[bus.node]]\nkind = "dust"\nunit_id = 1\n'
    sink = '[[sink]]\ntype = "hj212"\nhost = "platform.example"\nport = 9212\nmn = "M1"\nreply = true\n'
    config = parse_config(tomllib.loads(sink + bus), "site.toml")
    (spec,) = config.sinks
    assert (spec.type, spec.name, spec.params["port"]) == ("hj212", "hj212", 9212)
    with pytest.raises(ConfigError, match="rtd_intervall"):
        parse_config(tomllib.loads(sink + "rtd_intervall = 60\n" + bus), "site.toml")


async def test_from_the_durable_queue_through_the_dispatcher_while_the_platform_comes_and_goes(tmp_path: Path) -> None:
    from gateway.deliver.dispatch import Delivery
    from gateway.deliver.queue import DurableQueue

    queue = DurableQueue(tmp_path / "queue.db", ["hj212"])
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # the platform is down
    sink = make_sink(port, reply=True, reply_timeout=20.0)
    delivery = Delivery(queue, sink, min_backoff=0.01, max_backoff=0.05)
    queue.append([aggregate("pm10", "mean", "1min", T0 + 60 * i, float(i)) for i in range(3)])
    try:
        assert not await delivery.pump()
        assert queue.pending("hj212") == 3 and delivery.stats.failures == 1
        p = Platform()
        await p.receiver.start("127.0.0.1", port)  # the platform is back, same address
        try:
            assert await delivery.pump()
            assert queue.pending("hj212") == 0
            await until(lambda: len(p.received) == 3, "three minute packets")
            assert [r.factors["a34002"].value for r in p.received] == [0.0, 1.0, 2.0]
        finally:
            await p.receiver.close()
    finally:
        await aclose(sink)
        queue.close()


def test_requests_the_session_refuses_or_answers_without_a_store() -> None:
    up = Uplink(Settings(mn=MN, rtd_interval=45))
    now = T0 + 100

    def cp(packets: list[Packet]) -> list[tuple[str, dict[str, str]]]:
        return [(p.cn, p.cp_fields()) for p in packets]

    assert cp(up.handle(request("1061"), now)) == [("9011", {"QnRtn": "1"}), ("1061", {"RtdInterval": "45"}),
                                                   ("9012", {"ExeRtn": "1"})]
    assert cp(up.handle(request("1011"), now)) == [("9011", {"QnRtn": "1"}), ("1011", {"SystemTime": "20240105120140"}),
                                                   ("9012", {"ExeRtn": "1"})]
    assert cp(up.handle(request("1072", ("NewPW", "1")), now)) == [("9011", {"QnRtn": "8"})]
    assert cp(up.handle(request("1062", ("RtdInterval", "60"), mn="OTHER"), now)) == [("9011", {"QnRtn": "4"})]
    assert cp(up.handle(request("2051", ("BeginTime", "20240105120000")), now)) == [("9011", {"QnRtn": "2"})]
    assert cp(up.handle(request("2051", ("BeginTime", "20240105120000"), ("EndTime", "20240105110000")), now)) == [
        ("9011", {"QnRtn": "2"})]
    assert cp(up.handle(request("2051", ("BeginTime", "20240105110000"), ("EndTime", "20240105120000")), now)) == [
        ("9011", {"QnRtn": "1"}), ("9012", {"ExeRtn": "100"})]
    assert up.counts["requests_refused"] == 4 and up.rtd_interval == 45
    # Without the reply bit, no 9011: only the result.
    quiet = Packet(cn="1062", mn=MN, st="22", pw="123456", qn="20240105120500123", flag=4,
                   cp=((("RtdInterval", "120"),),))
    assert cp(up.handle(quiet, now)) == [("9012", {"ExeRtn": "1"})] and up.rtd_interval == 120


async def test_a_failing_writer_is_counted_and_the_receiver_goes_on() -> None:
    got: list[Received] = []

    def write(received: Received) -> None:
        if not got and received.cn == "2051":
            got.append(received)
            raise OSError("disk full")
        got.append(received)

    receiver = Receiver(write)
    _, port = await receiver.start()
    sink = make_sink(port, reply=True, reply_timeout=20.0)
    try:
        records: list[Record] = [aggregate("pm10", "mean", "1min", T0 + 60 * i, float(i)) for i in range(2)]
        sent = await sink.send(batch(records))  # the trailing window waits for the next batch (whole_windows)
        assert sent == 1 and await sink.send(batch(records[sent:], first=1 + sent)) == 1
        await until(lambda: len(got) == 2, "both packets")
        assert receiver.errors["writer"] == 1 and sink.counts["replies"] == 2
    finally:
        await aclose(sink)
        await receiver.close()


async def test_a_request_the_session_fails_on_does_not_make_the_sink_deaf(platform: Platform) -> None:
    sink = await connected_sink(platform, reply=True, reply_timeout=20.0)

    def broken(request: Packet, now: float, history: object = None) -> list[Packet]:
        raise RuntimeError("bug")

    sink.uplink.handle = broken  # type: ignore[method-assign]
    try:
        await platform.receiver.send(request("1061"))
        await until(lambda: sink.counts["downlink_errors"] == 1, "the failure to be counted")
        assert await sink.send(batch([aggregate("pm10", "mean", "1min", T0, 1.0)], first=5)) == 1
        assert sink.counts["replies"] >= 1
    finally:
        await aclose(sink)


async def test_a_window_the_queue_batch_cuts_goes_out_whole_in_one_packet(tmp_path: Path) -> None:
    """Found by the fault campaign: a queue batch that ends inside a window's statistics made two 2051
    packets for one factor, the first with its Avg only, the second with Min/Max and no Avg. A platform
    that keeps the latest packet of a DataTime then holds a minute without its mean."""
    from gateway.deliver.dispatch import Delivery
    from gateway.deliver.queue import DurableQueue

    queue = DurableQueue(tmp_path / "queue.db", ["hj212"])
    p = Platform()
    _, port = await p.receiver.start("127.0.0.1", 0)
    sink = make_sink(port, reply=True, reply_timeout=20.0)
    delivery = Delivery(queue, sink, batch=4, min_backoff=0.01, max_backoff=0.05)
    for minute in range(3):  # each window's statistics in one append, as the pipeline emits them
        start = T0 + 60 * minute
        queue.append([aggregate("pm10", s, "1min", start, 40.0 + minute + d) for s, d in
                      (("mean", 0.0), ("min", -1.0), ("max", 1.0))])
    try:
        assert await delivery.pump()
        assert queue.pending("hj212") == 0
        await until(lambda: len(p.received) >= 3, "three minute packets")
        assert [(r.data_time, r.factors["a34002"].values) for r in p.received] == [
            (hj212.data_time(T0 + 60 * m, OFFSET), {"Avg": 40.0 + m, "Min": 39.0 + m, "Max": 41.0 + m})
            for m in range(3)
        ]
    finally:
        await aclose(sink)
        await p.receiver.close()
        queue.close()


def test_the_factor_codes_come_from_the_kind_profiles_as_domain_md_lists_them() -> None:
    """The table the session used to hold by hand (domain.md section 6), now the kinds' [hj212] tables."""
    from gateway.deliver.hj212_session import factor_table

    table = factor_table()
    pm = {"pm10": "a34002", "pm25": "a34004", "pm1": "a34005", "temperature": "a01001", "humidity": "a01002",
          "pressure": "a01006"}
    assert dict(table.realtime) == {**{("dust", c): code for c, code in pm.items()},
                                    ("wind", "wind_speed"): "a01007", ("wind", "wind_dir"): "a01008",
                                    ("noise", "laeq_1s"): "LA"}
    assert dict(table.aggregates) == {
        **{("dust", c, stat): (code, suffix) for c, code in pm.items()
           for stat, suffix in (("mean", "Avg"), ("min", "Min"), ("max", "Max"))},
        ("noise", "laeq_1s", "leq"): ("LA", "Avg"), ("noise", "laeq_1s", "lmax"): ("LA", "Max"),
        ("noise", "laeq_1s", "lmin"): ("LA", "Min"), ("noise", "laeq_1s", "l10"): ("L10", "Avg"),
        ("noise", "laeq_1s", "l50"): ("L50", "Avg"), ("noise", "laeq_1s", "l90"): ("L90", "Avg"),
        ("wind", "wind_speed", "speed_mean"): ("a01007", "Avg"), ("wind", "wind_speed", "gust"): ("a01007", "Max"),
        ("wind", "wind_dir", "dir_mean"): ("a01008", "Avg"),
    }
    assert set(table.without) == {"tilt"}  # HJ 212 has no factor for tilt


def test_two_kinds_with_a_channel_of_the_same_name_send_their_aggregates_under_their_own_codes() -> None:
    """A kind from a folder may name a channel as a shipped kind does (temperature): the table was keyed by
    (channel, statistic) alone, so the first kind's code went out for the other kind's aggregates too."""
    from gateway.deliver.hj212_session import FactorTable
    from gateway.profiles.kinds import Hj212Factors, kind_profile

    dust = kind_profile("dust")
    soil = dataclasses.replace(dust, name="soil", hj212=Hj212Factors(
        realtime={"temperature": "x02001"}, aggregates={("temperature", "mean"): ("x02001", "Avg")}))
    for order in ([dust, soil], [soil, dust]):
        uplink = Uplink(Settings(mn=MN), factors=FactorTable.of(order))
        minute = [Aggregate(node, kind, "temperature_1min_mean", "temperature", "mean", "1min", T0, T0 + 60, value,
                            "degC", 60, 60, True, Quality.NORMAL)
                  for node, kind, value in (("dust-1", "dust", 21.5), ("soil-1", "soil", 12.5))]
        packets = uplink.records(minute, T0 + 120)
        assert len(packets) == 1
        text = packets[0].encode().decode()
        assert "a01001-Avg=21.5" in text and "x02001-Avg=12.5" in text, text


def test_a_kind_without_factor_codes_is_counted_and_said_once(caplog: pytest.LogCaptureFixture) -> None:
    uplink = Uplink(Settings(mn=MN))
    tilt = [Reading("tilt-1", "tilt", "slope_x", 0.5, "permille", Quality.NORMAL, T0 + i, i) for i in range(3)]
    with caplog.at_level(logging.INFO, logger="gateway.deliver.hj212_session"):
        assert uplink.records(tilt, T0 + 100) == []
    assert uplink.counts["kind_without_factors"] == uplink.counts["not_sent"] == 3
    said = [r.getMessage() for r in caplog.records if "no HJ 212 factor codes" in r.getMessage()]
    assert len(said) == 1 and "tilt" in said[0] and "tilt.toml" in said[0]
