"""The sans-IO Modbus RTU master codec: published frames, round trips, and the firmware slave as a peer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware import regmap
from firmware.modbus_rtu import RtuSlave
from firmware.regbank import RegisterBank
from gateway.protocols import modbus_rtu_master as rtu


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- published vectors -------------------------------------------------------------------
# Request/reply pairs are the worked examples of the Simply Modbus pages (unit 0x11),
# which every Modbus implementation is checked against; the CRC check value is the
# CRC catalogue's for CRC-16/MODBUS.


def test_crc_check_value_of_the_catalogue() -> None:
    assert rtu.crc16(b"123456789") == 0x4B37


@pytest.mark.parametrize(
    ("request_", "frame"),
    [
        (rtu.read_registers(0x11, 3, 0x6B, 3), "11 03 00 6B 00 03 76 87"),
        (rtu.read_registers(1, 3, 0, 10), "01 03 00 00 00 0A C5 CD"),
        (rtu.read_registers(0x11, 4, 8, 1), "11 04 00 08 00 01 B2 98"),
        (rtu.read_bits(0x11, 1, 0x13, 0x25), "11 01 00 13 00 25 0E 84"),
        (rtu.write_coil(0x11, 0xAC, True), "11 05 00 AC FF 00 4E 8B"),
        (rtu.write_register(0x11, 1, 3), "11 06 00 01 00 03 9A 9B"),
        (rtu.write_registers(0x11, 1, [0x000A, 0x0102]), "11 10 00 01 00 02 04 00 0A 01 02 C6 F0"),
        (
            rtu.write_coils(0x11, 0x13, [bool(0xCD >> i & 1) for i in range(8)] + [True, False]),
            "11 0F 00 13 00 0A 02 CD 01 BF 0B",
        ),
    ],
)
def test_requests_match_published_frames(request_: rtu.Request, frame: str) -> None:
    assert request_.frame == h(frame)


def test_replies_to_published_requests_decode() -> None:
    read = rtu.read_registers(0x11, 3, 0x6B, 3)
    assert rtu.parse_reply(read, h("11 03 06 AE 41 56 52 43 40 49 AD")) == rtu.Registers((0xAE41, 0x5652, 0x4340))
    assert rtu.parse_reply(rtu.read_registers(0x11, 4, 8, 1), h("11 04 02 00 0A F8 F4")) == rtu.Registers((10,))
    coils = rtu.parse_reply(rtu.read_bits(0x11, 1, 0x13, 0x25), h("11 01 05 CD 6B B2 0E 1B 45 E6"))
    assert isinstance(coils, rtu.Bits) and len(coils.values) == 0x25
    assert coils.values[:8] == (True, False, True, True, False, False, True, True)  # 0xCD, LSB first
    assert rtu.parse_reply(rtu.write_coil(0x11, 0xAC, True), h("11 05 00 AC FF 00 4E 8B")) == rtu.WriteAck(
        0xAC, 0xFF00
    )
    written = rtu.write_registers(0x11, 1, [10, 258])
    assert rtu.parse_reply(written, h("11 10 00 01 00 02 12 98")) == rtu.WriteAck(1, 2)
    many = rtu.write_coils(0x11, 0x13, [True] * 10)
    assert rtu.parse_reply(many, h("11 0F 00 13 00 0A 26 99")) == rtu.WriteAck(0x13, 10)


def test_exception_reply() -> None:
    reply = rtu.parse_reply(rtu.read_registers(1, 3, 0, 10), h("01 83 02 C0 F1"))
    assert reply == rtu.ExceptionReply(2)
    assert isinstance(reply, rtu.ExceptionReply) and reply.name == "illegal data address"


def test_expected_reply_lengths() -> None:
    assert rtu.read_registers(1, 4, 0, 22).reply_length == 5 + 44
    assert rtu.read_bits(1, 2, 0, 9).reply_length == 5 + 2
    assert rtu.write_registers(1, 0, [1, 2, 3]).reply_length == 8
    assert rtu.write_coil(0, 0, True).reply_length == 0  # broadcast: nobody answers
    assert not rtu.write_coil(0, 0, True).expects_reply


def test_line_timing() -> None:
    assert rtu.t35(9600) == pytest.approx(3.5 * 11 / 9600)  # 4.01 ms
    assert rtu.t35(19200) == pytest.approx(3.5 * 11 / 19200)  # 2.005 ms
    assert rtu.t35(38400) == rtu.t35(115200) == 0.00175
    assert rtu.t15(57600) == 0.00075
    assert rtu.wire_time(8, 9600) == pytest.approx(8 * 11 / 9600)


def test_requests_that_cannot_be_encoded_raise() -> None:
    with pytest.raises(ValueError, match="count 126"):
        rtu.read_registers(1, 4, 0, 126)
    with pytest.raises(ValueError, match="unit 0"):
        rtu.read_registers(0, 4, 0, 1)  # a read cannot be broadcast
    with pytest.raises(ValueError, match="not a register read"):
        rtu.read_registers(1, 6, 0, 1)
    with pytest.raises(ValueError, match="address range"):
        rtu.read_registers(1, 3, 0xFFFF, 2)
    with pytest.raises(ValueError, match=r"outside 0 \.\. 65535"):
        rtu.write_register(1, 0, 0x10000)


def test_wrong_replies_are_frame_errors_not_exceptions() -> None:
    read = rtu.read_registers(1, 4, 0, 2)
    good = rtu.encode_reply(read, rtu.Registers((1, 2)))
    other_unit = rtu.encode_reply(rtu.read_registers(2, 4, 0, 2), rtu.Registers((1, 2)))
    assert rtu.parse_reply(read, other_unit) == rtu.FrameError("unit", "reply from unit 2, expected 1")
    other_function = rtu.encode_reply(rtu.read_registers(1, 3, 0, 2), rtu.Registers((1, 2)))
    assert isinstance(e := rtu.parse_reply(read, other_function), rtu.FrameError) and e.problem == "function"
    short = rtu.encode_reply(rtu.read_registers(1, 4, 0, 1), rtu.Registers((1,)))
    assert isinstance(e := rtu.parse_reply(read, short), rtu.FrameError) and e.problem == "length"
    assert isinstance(e := rtu.parse_reply(read, good[:3]), rtu.FrameError) and e.problem == "short"
    wrong_echo = rtu.encode_reply(rtu.write_register(1, 5, 7), rtu.WriteAck(5, 8))
    assert isinstance(e := rtu.parse_reply(rtu.write_register(1, 5, 7), wrong_echo), rtu.FrameError)
    assert e.problem == "content"


def test_reply_length_from_two_bytes_and_for_garbled_function() -> None:
    read = rtu.read_registers(7, 4, 0, 19)
    assert rtu.reply_length(read, b"") is None
    assert rtu.reply_length(read, b"\x07") is None
    assert rtu.reply_length(read, b"\x07\x04") == 43
    assert rtu.reply_length(read, b"\x07\x84") == rtu.EXCEPTION_LENGTH
    assert rtu.reply_length(read, b"\x07\x05") == -1
    assert rtu.self_delimited_length(b"\x09\x04") is None
    assert rtu.self_delimited_length(b"\x09\x04\x26") == 5 + 0x26
    assert rtu.self_delimited_length(b"\x09\x06") == 8
    assert rtu.self_delimited_length(b"\x09\x44") == -1


# -- properties ------------------------------------------------------------------------------

units = st.integers(1, 247)
words = st.integers(0, 0xFFFF)


@st.composite
def register_reads(draw: st.DrawFn) -> tuple[rtu.Request, tuple[int, ...]]:
    count = draw(st.integers(1, rtu.MAX_READ_REGISTERS))
    address = draw(st.integers(0, 0x10000 - count))
    request = rtu.read_registers(draw(units), draw(st.sampled_from(rtu.READ_REGISTERS)), address, count)
    return request, tuple(draw(st.lists(words, min_size=count, max_size=count)))


@given(register_reads())
def test_register_read_round_trip(case: tuple[rtu.Request, tuple[int, ...]]) -> None:
    request, values = case
    assert rtu.parse_request(request.frame) == rtu.ParsedRequest(
        request.unit, request.function, request.address, request.count, ()
    )
    frame = rtu.encode_reply(request, rtu.Registers(values))
    assert len(frame) == request.reply_length
    assert rtu.parse_reply(request, frame) == rtu.Registers(values)


@given(units, st.sampled_from(rtu.READ_BITS), st.lists(st.booleans(), min_size=1, max_size=rtu.MAX_READ_BITS))
def test_bit_read_round_trip(unit: int, function: int, bits: list[bool]) -> None:
    request = rtu.read_bits(unit, function, 0, len(bits))
    frame = rtu.encode_reply(request, rtu.Bits(tuple(bits)))
    assert len(frame) == request.reply_length
    assert rtu.parse_reply(request, frame) == rtu.Bits(tuple(bits))


@given(units, st.integers(0, 1000), st.lists(words, min_size=1, max_size=rtu.MAX_WRITE_REGISTERS))
def test_register_write_round_trip(unit: int, address: int, values: list[int]) -> None:
    request = rtu.write_registers(unit, address, values)
    assert rtu.parse_request(request.frame) == rtu.ParsedRequest(
        unit, rtu.WRITE_MULTIPLE_REGISTERS, address, len(values), tuple(values)
    )
    ack = rtu.WriteAck(address, len(values))
    assert rtu.parse_reply(request, rtu.encode_reply(request, ack)) == ack


@given(units, st.integers(0, 1000), st.lists(st.booleans(), min_size=1, max_size=rtu.MAX_WRITE_COILS))
def test_coil_write_round_trip(unit: int, address: int, values: list[bool]) -> None:
    request = rtu.write_coils(unit, address, values)
    parsed = rtu.parse_request(request.frame)
    assert isinstance(parsed, rtu.ParsedRequest)
    assert parsed.values == tuple(int(v) for v in values)
    ack = rtu.WriteAck(address, len(values))
    assert rtu.parse_reply(request, rtu.encode_reply(request, ack)) == ack


@given(register_reads(), st.data())
def test_every_single_bit_error_is_caught_by_the_crc(
    case: tuple[rtu.Request, tuple[int, ...]], data: st.DataObject
) -> None:
    request, values = case
    frame = bytearray(rtu.encode_reply(request, rtu.Registers(values)))
    bit = data.draw(st.integers(0, 8 * len(frame) - 1))
    frame[bit // 8] ^= 1 << (bit % 8)
    assert rtu.parse_reply(request, frame) == rtu.FrameError("crc", f"CRC mismatch in a {len(frame)}-byte frame")


@given(register_reads(), st.booleans(), st.integers(1, 11))
def test_reply_length_is_known_from_any_prefix_of_two_bytes(
    case: tuple[rtu.Request, tuple[int, ...]], exception: bool, code: int
) -> None:
    request, values = case
    reply: rtu.Registers | rtu.ExceptionReply = rtu.ExceptionReply(code) if exception else rtu.Registers(values)
    frame = rtu.encode_reply(request, reply)
    for n in range(2, len(frame) + 1):
        assert rtu.reply_length(request, frame[:n]) == len(frame)


# -- against the firmware's slave (an independent implementation of the other side) ---------


@given(st.sampled_from(sorted(regmap.KIND_NAMES)), st.data())
def test_firmware_slave_answers_our_reads(kind: int, data: st.DataObject) -> None:
    bank = RegisterBank(kind)
    for i in range(len(bank.inputs)):
        bank.inputs[i] = data.draw(words)
    slave = RtuSlave(9, bank)
    count = data.draw(st.integers(1, len(bank.inputs)))
    address = data.draw(st.integers(0, len(bank.inputs) - count))
    request = rtu.read_registers(9, rtu.READ_INPUT_REGISTERS, address, count)
    n = slave.handle(request.frame)
    assert rtu.parse_reply(request, bytes(slave.tx[:n])) == rtu.Registers(tuple(bank.inputs[address : address + count]))


def test_firmware_slave_exceptions_and_writes() -> None:
    bank = RegisterBank(regmap.KIND_DUST)
    slave = RtuSlave(3, bank)
    beyond = rtu.read_registers(3, rtu.READ_INPUT_REGISTERS, len(bank.inputs), 1)
    assert rtu.parse_reply(beyond, bytes(slave.tx[: slave.handle(beyond.frame)])) == rtu.ExceptionReply(2)
    interval = regmap.find(regmap.COMMON_HOLDING, "sample_interval")[1]
    write = rtu.write_register(3, interval, 2500)
    assert rtu.parse_reply(write, bytes(slave.tx[: slave.handle(write.frame)])) == rtu.WriteAck(interval, 2500)
    assert bank.get_holding_raw("sample_interval") == 2500
    too_small = rtu.write_registers(3, interval, [5])
    assert rtu.parse_reply(too_small, bytes(slave.tx[: slave.handle(too_small.frame)])) == rtu.ExceptionReply(3)
    relay = regmap.find(regmap.COILS[regmap.KIND_DUST], "spray_relay")[1]
    on = rtu.write_coil(3, relay, True)
    assert rtu.parse_reply(on, bytes(slave.tx[: slave.handle(on.frame)])) == rtu.WriteAck(relay, 0xFF00)
    assert bank.coils[relay] == 1
    silent = rtu.write_coil(rtu.BROADCAST, relay, False)
    assert slave.handle(silent.frame) == 0 and bank.coils[relay] == 0  # done, not answered
