"""HJ 212 packets received -> InfluxDB points (measurement hj212): encoding, and against the real influxd 1.6.7."""

from __future__ import annotations

import asyncio
import calendar
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.deliver.hj212_influx import InfluxPacketWriter, PacketCounts, packet_lines
from gateway.deliver.hj212_listen import structured
from gateway.deliver.influx import make_writer
from gateway.protocols.hj212 import Packet
from tests.support.influx import InfluxServer

CHINA = 8 * 3600


def _packet(cn: str, *factors: tuple[str, str], data_time: str | None = "20240105120000", mn: str = "M1") -> Packet:
    head = ((("DataTime", data_time),),) if data_time is not None else ()
    return Packet(cn=cn, mn=mn, st="22", qn="20240105120000123", flag=4, cp=(*head, tuple(factors)))


def test_one_point_per_factor_at_datatime_in_utc_with_flags() -> None:
    counts = PacketCounts()
    received = structured(_packet("2011", ("a34002-Rtd", "80.5"), ("a34002-Flag", "N"), ("a34004-Flag", "B"),
                                  ("a34001-Rtd", "12"), ("a34001-Flag", "H")))
    lines = packet_lines(received, CHINA, counts)
    stamp = calendar.timegm((2024, 1, 5, 4, 0, 0, 0, 0, 0))  # 12:00 in China is 04:00 UTC
    assert lines == [
        f'hj212,cn=2011,factor=a34002,mn=M1,st=22 rtd=80.5,value=80.5,quality="N",quality_code=0i {stamp}',
        f'hj212,cn=2011,factor=a34004,mn=M1,st=22 quality="B",quality_code=7i {stamp}',  # no value: flag alone
        f'hj212,cn=2011,factor=a34001,mn=M1,st=22 rtd=12.0,value=12.0,quality="H" {stamp}',  # vendor flag: no code
    ]
    assert (counts.packets, counts.points) == (1, 3)


def test_minute_values_and_what_is_left_out_is_counted() -> None:
    counts = PacketCounts()
    minute = structured(_packet("2051", ("a34002-Avg", "79.5"), ("a34002-Min", "x"), ("a34002-Max", "nan"),
                                ("a34002-Flag", "N"), ("a01001-ZsAvg", "1")))
    (point,) = packet_lines(minute, CHINA, counts)
    assert ' avg=79.5,value=79.5,quality="N",quality_code=0i ' in point
    assert counts.not_numbers == 2  # "x" and "nan"
    assert counts.empty_factors == 1  # a01001 has only a vendor's ZsAvg: nothing to write
    assert packet_lines(structured(_packet("2011", ("a34002-Rtd", "1"), data_time=None)), CHINA, counts) == []
    assert packet_lines(structured(_packet("2011", ("a34002-Rtd", "1"), data_time="2024")), CHINA, counts) == []
    assert counts.no_time == 2
    assert packet_lines(structured(_packet("1062", ("a34002-Rtd", "1"))), CHINA, counts) == []
    assert counts.not_data == 1


def test_a_refused_write_is_reported_kept_and_retried_until_the_database_exists(influxd: InfluxServer) -> None:
    database = "t_later_" + influxd.database()  # a name not created yet: 404 database not found
    messages: list[str] = []
    writer = InfluxPacketWriter(make_writer("v1", influxd.url, database, "", "", "s", True, 10.0, None), CHINA,
                                min_backoff_s=0.05, max_backoff_s=0.2, on_error=messages.append)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(writer.run(stop))
        writer(structured(_packet("2011", ("a34002-Rtd", "80"), ("a34002-Flag", "N"))))
        deadline = asyncio.get_running_loop().time() + 30
        while not messages and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        assert messages and "404" in messages[0] and "1 points wait" in messages[0], messages
        assert writer.pending and writer.stats.written == 0
        influxd.query(f'CREATE DATABASE "{database}"')
        while writer.stats.written == 0 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        await task
        await writer.close(10)

    asyncio.run(scenario())
    assert writer.stats.written == 1 and not writer.pending
    assert messages[-1].endswith("writing again")
    assert influxd.rows('SELECT "value" FROM "hj212"', database)[0]["value"] == 80.0


def test_a_point_the_server_refuses_for_good_is_dropped_and_counted_the_others_written(influxd: InfluxServer) -> None:
    database = influxd.database()
    # cou is an integer field in the shard of the packet's week now (InfluxDB 1.x keeps field types per shard).
    earlier = calendar.timegm((2024, 1, 5, 3, 0, 0, 0, 0, 0)) * 10**9
    influxd.write(database, f"hj212,cn=2011,factor=a34004,mn=M1,st=22 cou=1i {earlier}")
    writer = InfluxPacketWriter(make_writer("v1", influxd.url, database, "", "", "s", True, 10.0, None), CHINA)
    writer(structured(_packet("2011", ("a34002-Rtd", "80"), ("a34002-Flag", "N"), ("a34004-Rtd", "30"),
                              ("a34004-Cou", "5"), ("a34004-Flag", "N"), ("a01001-Rtd", "20"))))
    asyncio.run(writer.flush())
    assert (writer.stats.written, writer.stats.refused, len(writer.pending)) == (2, 1, 0)
    assert "1 refused by the server" in writer.summary()
    rows = influxd.rows('SELECT "value" FROM "hj212" WHERE "value" > 0 GROUP BY "factor"', database)
    assert sorted(r["factor"] for r in rows) == ["a01001", "a34002"]


_CODES = st.sampled_from(["a34001", "a34002", "a34004", "a01001", "a01007", "LA", "a34002x"])
_SUFFIXES = st.sampled_from(["Rtd", "Avg", "Min", "Max", "Cou", "Flag", "ZsRtd"])
_TEXTS = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(["N", "B", "H", "", "x"]))


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(_CODES, _SUFFIXES, _TEXTS), max_size=12, unique_by=lambda f: (f[0], f[1])),
       st.sampled_from(["20240105120000123", "20240105120001999"]))
def test_a_packet_sent_again_is_the_same_points_and_every_factor_is_a_point_or_counted(
    fields: list[tuple[str, str, str]], qn: str
) -> None:
    factors = tuple((f"{code}-{suffix}", text) for code, suffix, text in fields)
    first, again = PacketCounts(), PacketCounts()
    packet = Packet(cn="2051", mn="M1", st="22", qn="20240105120000000", flag=4,
                    cp=((("DataTime", "20240105120000"),), factors))
    lines = packet_lines(structured(packet), CHINA, first)
    resent = Packet(cn="2051", mn="M1", st="22", qn=qn, flag=5, cp=packet.cp)  # another QN, a reply wanted
    assert packet_lines(structured(resent), CHINA, again) == lines  # same identity, same fields: one point
    codes = {code for code, _, _ in fields}
    assert len(lines) + first.empty_factors == len(codes)
    for text in lines:  # a number field is never NaN or infinite (no spelling in line protocol)
        assert not re.search(r"=-?(inf|nan)[, ]", text), text
