"""HJ 212-2017 codec: the standard's CRC vector, framing, tolerant decoding, splitting, replies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocols import hj212
from gateway.protocols.hj212 import FrameError, Packet

STANDARD = (
    b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;"
    b"CP=&&RtdInterval=30&&1C80\r\n"
)
SEGMENT = STANDARD[6:-6]


def test_the_standards_example_verifies() -> None:
    assert hj212.crc16(SEGMENT) == hj212.crc16_bitwise(SEGMENT) == 0x1C80
    packet = hj212.decode(STANDARD)
    assert (packet.qn, packet.st, packet.cn, packet.pw, packet.mn, packet.flag) == (
        "20160801085857223", "32", "1062", "100000", "010000A8900016F000169DC0", 5,
    )
    assert packet.wants_reply and packet.version == 1
    assert packet.cp_fields() == {"RtdInterval": "30"}
    assert packet.encode() == STANDARD


@given(st.binary(max_size=1100))
def test_the_table_crc_is_the_standards_bitwise_crc(data: bytes) -> None:
    assert hj212.crc16(data) == hj212.crc16_bitwise(data)


def test_the_crc_is_not_modbus() -> None:
    # CRC-16/MODBUS of the same bytes differs: an implementation that uses it rejects the standard's packet.
    modbus = 0xFFFF
    for b in SEGMENT:
        modbus ^= b
        for _ in range(8):
            modbus = (modbus >> 1) ^ 0xA001 if modbus & 1 else modbus >> 1
    assert modbus != 0x1C80


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (STANDARD.replace(b"1C80", b"1C81"), "bad_crc"),
        (STANDARD.replace(b"##0101", b"##0100"), "bad_length"),
        (STANDARD.replace(b"##0101", b"##01a1"), "bad_length"),
        (STANDARD.replace(b"1C80", b"1CG0"), "bad_crc"),
        (STANDARD[1:], "no_header"),
        (STANDARD.replace(b"RtdInterval=30", b"RtdInterval=31"), "bad_crc"),
    ],
)
def test_wrong_packets_are_errors_naming_what(packet: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as caught:
        hj212.decode(packet)
    assert caught.value.reason == reason


def test_a_segment_over_1024_bytes_is_refused() -> None:
    segment = "ST=22;CN=2011;MN=X;CP=&&" + "a=" + "1" * 1100 + "&&"
    data = segment.encode()
    raw = b"##%04d" % len(data) + data + b"%04X" % hj212.crc16(data) + b"\r\n"
    with pytest.raises(FrameError, match="too_long"):
        hj212.decode(raw)
    with pytest.raises(ValueError, match="at most 1024"):
        hj212.frame(segment)


def _wire(segment: str, lower: bool = False) -> bytes:
    data = segment.encode()
    crc = b"%04x" % hj212.crc16(data) if lower else b"%04X" % hj212.crc16(data)
    return b"##%04d" % len(data) + data + crc + b"\r\n"


def test_real_world_variants_decode() -> None:
    # Fields out of order, no QN, no Flag, a vendor's extra header field, factors in one group and
    # split over groups, a trailing ';' in CP, a non-standard data flag: all as sent.
    segment = (
        "MN=88888880000001;ST=39;CN=2011;PW=123456;Vendor=acme;"
        "CP=&&DataTime=20240105120000;a34002-Rtd=75.6,a34002-Flag=N;a34004-Rtd=40.1;a34004-Flag=H;"
        "LA-Rtd=61.2,LA-Flag=N;&&"
    )
    packet = hj212.decode(_wire(segment))
    assert packet.qn is None and packet.flag is None and not packet.wants_reply
    assert packet.extra == (("Vendor", "acme"),)
    assert packet.cp_fields()["DataTime"] == "20240105120000"
    assert packet.factors() == {
        "a34002": {"Rtd": "75.6", "Flag": "N"},
        "a34004": {"Rtd": "40.1", "Flag": "H"},
        "LA": {"Rtd": "61.2", "Flag": "N"},
    }


def test_lower_case_crc_is_checked_and_reported() -> None:
    # Appendix A gives the CRC as a number; its value is checked whatever the case, and the case is reported.
    segment = SEGMENT.decode()
    packet = hj212.decode(_wire(segment, lower=True))
    assert packet.crc_lowercase
    wrong = _wire(segment, lower=True).replace(b"1c80", b"1c81")
    with pytest.raises(FrameError, match="bad_crc"):
        hj212.decode(wrong)


@pytest.mark.parametrize(
    "segment",
    [
        "ST=22;CN=2011;MN=X;CP=&&a=1",  # CP not closed
        "ST=22;CN=2011;MN=X",  # no CP
        "ST=22;CN=2011;CP=&&&&",  # no MN
        "ST=22;CN=2011;MN=X;MN=Y;CP=&&&&",  # repeated header field
        "ST=22;CN=2011;MN=X;Flag=x;CP=&&&&",  # Flag not a number
        "ST=22;CN=2011;MN=X;CP=&&a34002-Rtd&&",  # CP field not key=value
    ],
)
def test_malformed_segments_are_errors(segment: str) -> None:
    with pytest.raises(FrameError):
        hj212.decode(_wire(segment))


def test_stream_parser_resyncs_and_counts() -> None:
    parser = hj212.StreamParser()
    bad = STANDARD.replace(b"1C80", b"0000")
    stream = b"noise" + STANDARD + bad + b"##12" + STANDARD
    out: list[Packet | FrameError] = []
    for i in range(0, len(stream), 7):  # arrives in pieces
        out += parser.feed(stream[i : i + 7])
    packets = [p for p in out if isinstance(p, Packet)]
    assert len(packets) == 2 and all(p.cn == "1062" for p in packets)
    assert parser.errors["garbage"] >= 1 and parser.errors["bad_crc"] == 1
    assert parser.packets == 2


def test_a_wrong_length_does_not_lose_the_packets_behind_it() -> None:
    parser = hj212.StreamParser()
    out = parser.feed(b"##0900QN=1;" + STANDARD * 10)
    assert sum(isinstance(p, Packet) for p in out) == 10
    assert parser.errors["bad_length"] >= 1


def test_replies_echo_qn_pw_mn_with_st_91() -> None:
    request = hj212.decode(STANDARD)
    assert hj212.request_reply(request, hj212.QN_READY).segment() == (
        "QN=20160801085857223;ST=91;CN=9011;PW=100000;MN=010000A8900016F000169DC0;Flag=4;CP=&&QnRtn=1&&"
    )
    assert hj212.execution_result(request, hj212.EXE_NO_DATA).cp_fields() == {"ExeRtn": "100"}
    assert hj212.data_reply(request).cn == "9014" and hj212.notify_reply(request).cn == "9013"


def test_qn_and_data_time_are_local_time() -> None:
    t = 1470012537.223  # 2016-08-01 00:48:57.223 UTC
    assert hj212.qn_of(t, 8 * 3600) == "20160801084857223"
    assert hj212.data_time(t, 8 * 3600) == "20160801084857"
    assert hj212.parse_time("20160801084857223", 8 * 3600) == pytest.approx(t)
    with pytest.raises(FrameError, match="bad_time"):
        hj212.parse_time("20161301000000", 0)


# -- properties ------------------------------------------------------------------------

_text = st.text(alphabet=st.characters(codec="ascii", categories=("L", "N"), include_characters="._-"), min_size=1,
                max_size=12)
_code = st.text(alphabet="abcdefLA0123456789", min_size=1, max_size=8)
_field = st.tuples(st.builds(lambda c, s: f"{c}-{s}", _code, st.sampled_from(["Rtd", "Avg", "Min", "Max", "Flag"])),
                   _text)
_groups = st.lists(st.lists(_field, min_size=1, max_size=4).map(tuple), max_size=60).map(tuple)


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    return Packet(
        cn=draw(st.sampled_from(["2011", "2051", "2061", "2031", "1062"])),
        mn=draw(_text),
        st=draw(st.sampled_from(["22", "23", "39"])),
        pw=draw(st.none() | _text),
        qn=draw(st.none() | st.from_regex(r"\A[0-9]{17}\Z")),
        flag=draw(st.none() | st.sampled_from([4, 5])),
        cp=(((("DataTime", "20240105120000"),),) if draw(st.booleans()) else ()) + draw(_groups),
    )


@settings(max_examples=200, deadline=None)
@given(packets())
def test_round_trip(packet: Packet) -> None:
    wire = b"".join(part.encode() for part in hj212.split(packet))
    parser = hj212.StreamParser()
    joiner = hj212.Reassembler()
    out = [joiner.add(p) for p in parser.feed(wire) if isinstance(p, Packet)]
    whole = [p for p in out if p is not None]
    assert parser.errors == {}
    assert len(whole) == 1
    assert whole[0].cp == packet.cp
    assert (whole[0].cn, whole[0].mn, whole[0].qn, whole[0].pw) == (packet.cn, packet.mn, packet.qn, packet.pw)
    assert joiner.pending == 0


@settings(max_examples=100, deadline=None)
@given(packets(), st.integers(min_value=200, max_value=1024))
def test_split_parts_fit_carry_pnum_pno_and_the_d_flag(packet: Packet, limit: int) -> None:
    try:
        parts = hj212.split(packet, limit)
    except ValueError:
        return  # one group larger than a small limit: refused, not sent oversize
    for part in parts:
        assert len(part.segment().encode()) <= limit
    if len(parts) > 1:
        assert [p.pno for p in parts] == list(range(1, len(parts) + 1))
        assert {p.pnum for p in parts} == {len(parts)}
        assert all(p.flag is not None and p.flag & hj212.FLAG_SPLIT for p in parts)
        if packet.cp and packet.cp[0] == (("DataTime", "20240105120000"),):
            assert all(p.cp[0] == packet.cp[0] for p in parts)


def test_a_big_snapshot_is_split_and_joined() -> None:
    groups = tuple(((f"a{i:05d}-Rtd", f"{i}.5"), (f"a{i:05d}-Flag", "N")) for i in range(120))
    packet = Packet(cn="2011", mn="M1", qn="20240105120000000", flag=5, cp=((("DataTime", "20240105120000"),), *groups))
    parts = hj212.split(packet)
    assert len(parts) >= 3 and all(p.flag == 7 for p in parts)
    joiner = hj212.Reassembler()
    results = [joiner.add(hj212.decode(p.encode())) for p in reversed(parts)]  # out of order
    assert results[:-1] == [None] * (len(parts) - 1)
    assert results[-1] == packet


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.binary(max_size=30) | st.sampled_from([b"#", b"##", b"##0012", b"##0900", b"##00", b"\r\n"]),
                       st.booleans()), min_size=1, max_size=8),
    st.integers(min_value=1, max_value=64),
)
def test_the_stream_parser_finds_every_packet_between_garbage(pieces: list[tuple[bytes, bool]], chunk: int) -> None:
    # Garbage (even with '#' next to a packet's '##') never costs a packet that follows it.
    stream = b"".join(garbage + (STANDARD if packet else b"") for garbage, packet in pieces)
    parser = hj212.StreamParser()
    out: list[Packet | FrameError] = []
    for i in range(0, len(stream), chunk):
        out += parser.feed(stream[i : i + chunk])
    found = [p for p in out if isinstance(p, Packet)]
    assert len(found) == sum(packet for _, packet in pieces)
    assert all(p.cn == "1062" for p in found)


def test_the_reassembler_is_bounded_and_counts_what_it_gives_up() -> None:
    joiner = hj212.Reassembler(max_pending=2)
    for i in range(3):
        assert joiner.add(Packet(cn="2011", mn="M", qn=f"{i:017d}", flag=6, pnum=2, pno=1)) is None
    assert joiner.pending == 2 and joiner.evicted == 1
    with pytest.raises(FrameError, match="bad_pno"):
        joiner.add(Packet(cn="2011", mn="M", qn="1", flag=6, pnum=2, pno=3))
