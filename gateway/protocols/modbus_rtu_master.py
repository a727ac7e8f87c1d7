"""Modbus RTU master codec, sans-IO: request frames out, reply frames in, and the line timing.

Nothing here reads a port or sleeps. The bus owner (gateway/acquire/link.py)
writes ``Request.frame``, feeds the bytes it receives to ``reply_length`` to
learn when the reply is complete (so it never waits for an inter-character
timeout), and hands the complete frame to ``parse_reply``.

Every problem with a reply is a value (``FrameError``, ``ExceptionReply``),
never an exception: a bad CRC is something to count, not something that
unwinds a poll loop. Only programming errors (a request that cannot be
encoded, e.g. 126 registers) raise ``ValueError``.

The reply encoder and the request parser are here too: a slave-side view of
the same frames, used by round-trip tests and by test servers.

Timing (domain.md section 5, Modbus over Serial Line v1.02): a character is
11 bits (start, 8 data, parity or a second stop bit, stop); t3.5 is 3.5
characters up to 19200 baud and a fixed 1.75 ms above (t1.5: 0.75 ms).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

READ_COILS = 1
READ_DISCRETE_INPUTS = 2
READ_HOLDING_REGISTERS = 3
READ_INPUT_REGISTERS = 4
WRITE_SINGLE_COIL = 5
WRITE_SINGLE_REGISTER = 6
WRITE_MULTIPLE_COILS = 15
WRITE_MULTIPLE_REGISTERS = 16

READ_BITS = (READ_COILS, READ_DISCRETE_INPUTS)
READ_REGISTERS = (READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS)
WRITES = (WRITE_SINGLE_COIL, WRITE_SINGLE_REGISTER, WRITE_MULTIPLE_COILS, WRITE_MULTIPLE_REGISTERS)
FUNCTIONS = READ_BITS + READ_REGISTERS + WRITES

# Protocol limits per request (Modbus application protocol v1.1b3).
MAX_READ_BITS = 2000
MAX_READ_REGISTERS = 125
MAX_WRITE_COILS = 1968
MAX_WRITE_REGISTERS = 123

BROADCAST = 0
EXCEPTION_LENGTH = 5  # unit, function | 0x80, code, CRC (2)
WRITE_REPLY_LENGTH = 8  # unit, function, address (2), value or count (2), CRC (2)
MAX_FRAME = 256

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "slave device failure",
    5: "acknowledge",
    6: "slave device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}

BITS_PER_CHARACTER = 11


# -- line timing ---------------------------------------------------------------------


def character_time(baud: int) -> float:
    """Seconds one character occupies the line."""
    return BITS_PER_CHARACTER / baud


def wire_time(n_bytes: int, baud: int) -> float:
    """Seconds a frame of n_bytes occupies the line."""
    return n_bytes * BITS_PER_CHARACTER / baud


def t35(baud: int) -> float:
    """The silence that separates frames."""
    return 3.5 * character_time(baud) if baud <= 19200 else 0.00175


def t15(baud: int) -> float:
    """The longest silence allowed inside a frame."""
    return 1.5 * character_time(baud) if baud <= 19200 else 0.00075


# -- CRC -----------------------------------------------------------------------------


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/MODBUS (init 0xFFFF, reflected polynomial 0xA001); sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def with_crc(body: bytes) -> bytes:
    crc = crc16(body)
    return body + bytes((crc & 0xFF, crc >> 8))


def crc_ok(frame: bytes | bytearray | memoryview) -> bool:
    if len(frame) < 4:
        return False
    crc = crc16(frame[:-2])
    return frame[-2] == crc & 0xFF and frame[-1] == crc >> 8


# -- requests ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One encoded request and what its reply must look like."""

    unit: int
    function: int
    address: int
    count: int  # registers or bits read or written; 1 for the single writes
    frame: bytes
    reply_length: int  # length of a normal reply; 0 for a broadcast (no reply)

    @property
    def expects_reply(self) -> bool:
        return self.unit != BROADCAST


def _check_unit(unit: int, broadcast_ok: bool) -> None:
    low = 0 if broadcast_ok else 1
    if not low <= unit <= 247:
        raise ValueError(f"unit {unit} is outside {low} .. 247")


def _check_span(address: int, count: int, limit: int) -> None:
    if not 1 <= count <= limit:
        raise ValueError(f"count {count} is outside 1 .. {limit}")
    if not 0 <= address <= 0xFFFF or address + count > 0x10000:
        raise ValueError(f"address range {address} + {count} is outside 0 .. 65535")


def _request(unit: int, function: int, address: int, count: int, body: bytes, reply_length: int) -> Request:
    return Request(unit, function, address, count, with_crc(body), 0 if unit == BROADCAST else reply_length)


def read_registers(unit: int, function: int, address: int, count: int) -> Request:
    """FC 03 (holding) or 04 (input): read count registers from address."""
    if function not in READ_REGISTERS:
        raise ValueError(f"function {function} is not a register read")
    _check_unit(unit, broadcast_ok=False)
    _check_span(address, count, MAX_READ_REGISTERS)
    body = bytes((unit, function)) + address.to_bytes(2, "big") + count.to_bytes(2, "big")
    return _request(unit, function, address, count, body, 5 + 2 * count)


def read_bits(unit: int, function: int, address: int, count: int) -> Request:
    """FC 01 (coils) or 02 (discrete inputs)."""
    if function not in READ_BITS:
        raise ValueError(f"function {function} is not a bit read")
    _check_unit(unit, broadcast_ok=False)
    _check_span(address, count, MAX_READ_BITS)
    body = bytes((unit, function)) + address.to_bytes(2, "big") + count.to_bytes(2, "big")
    return _request(unit, function, address, count, body, 5 + (count + 7) // 8)


def write_coil(unit: int, address: int, on: bool) -> Request:
    """FC 05."""
    _check_unit(unit, broadcast_ok=True)
    _check_span(address, 1, 1)
    body = bytes((unit, WRITE_SINGLE_COIL)) + address.to_bytes(2, "big") + (b"\xff\x00" if on else b"\x00\x00")
    return _request(unit, WRITE_SINGLE_COIL, address, 1, body, WRITE_REPLY_LENGTH)


def write_register(unit: int, address: int, value: int) -> Request:
    """FC 06."""
    _check_unit(unit, broadcast_ok=True)
    _check_span(address, 1, 1)
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"register value {value} is outside 0 .. 65535")
    body = bytes((unit, WRITE_SINGLE_REGISTER)) + address.to_bytes(2, "big") + value.to_bytes(2, "big")
    return _request(unit, WRITE_SINGLE_REGISTER, address, 1, body, WRITE_REPLY_LENGTH)


def write_registers(unit: int, address: int, values: Sequence[int]) -> Request:
    """FC 16."""
    _check_unit(unit, broadcast_ok=True)
    _check_span(address, len(values), MAX_WRITE_REGISTERS)
    if any(not 0 <= v <= 0xFFFF for v in values):
        raise ValueError("register values must be 0 .. 65535")
    body = bytearray((unit, WRITE_MULTIPLE_REGISTERS))
    body += address.to_bytes(2, "big") + len(values).to_bytes(2, "big") + bytes((2 * len(values),))
    for v in values:
        body += v.to_bytes(2, "big")
    return _request(unit, WRITE_MULTIPLE_REGISTERS, address, len(values), bytes(body), WRITE_REPLY_LENGTH)


def _pack_bits(values: Sequence[bool]) -> bytes:
    packed = bytearray((len(values) + 7) // 8)
    for i, on in enumerate(values):
        if on:
            packed[i >> 3] |= 1 << (i & 7)
    return bytes(packed)


def write_coils(unit: int, address: int, values: Sequence[bool]) -> Request:
    """FC 15."""
    _check_unit(unit, broadcast_ok=True)
    _check_span(address, len(values), MAX_WRITE_COILS)
    packed = _pack_bits(values)
    body = bytes((unit, WRITE_MULTIPLE_COILS)) + address.to_bytes(2, "big") + len(values).to_bytes(2, "big")
    body += bytes((len(packed),)) + packed
    return _request(unit, WRITE_MULTIPLE_COILS, address, len(values), body, WRITE_REPLY_LENGTH)


# -- replies -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Registers:
    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Bits:
    values: tuple[bool, ...]


@dataclass(frozen=True, slots=True)
class WriteAck:
    address: int
    value: int  # the value written (FC 05: 0xFF00 or 0; FC 06: the register) or the count (FC 15, 16)


@dataclass(frozen=True, slots=True)
class ExceptionReply:
    code: int

    @property
    def name(self) -> str:
        return EXCEPTION_NAMES.get(self.code, f"exception {self.code}")


FrameProblem = Literal["crc", "short", "length", "unit", "function", "content"]


@dataclass(frozen=True, slots=True)
class FrameError:
    problem: FrameProblem
    detail: str


Reply = Registers | Bits | WriteAck | ExceptionReply | FrameError


def reply_length(request: Request, head: bytes | bytearray) -> int | None:
    """Length of the reply whose first bytes are head, or None if head is too short to tell.

    The request says what a normal reply looks like, so two bytes (unit and
    function) are enough. Returns -1 when the function byte matches neither
    the request nor its exception: the frame is garbled and only line
    silence can end it.
    """
    if len(head) < 2:
        return None
    function = head[1]
    if function == request.function:
        return request.reply_length
    if function == request.function | 0x80:
        return EXCEPTION_LENGTH
    return -1


def self_delimited_length(head: bytes | bytearray) -> int | None:
    """Length of a reply frame judged from its own header (for frames meant for someone else).

    None when more bytes are needed, -1 for an unknown function code.
    """
    if len(head) < 2:
        return None
    function = head[1]
    if function & 0x80:
        return EXCEPTION_LENGTH
    if function in WRITES:
        return WRITE_REPLY_LENGTH
    if function in READ_BITS or function in READ_REGISTERS:
        return None if len(head) < 3 else 5 + head[2]
    return -1


def parse_reply(request: Request, frame: bytes | bytearray) -> Reply:
    """Check and decode one complete reply frame to request."""
    if len(frame) < 4:
        return FrameError("short", f"{len(frame)} bytes is shorter than any reply")
    if not crc_ok(frame):
        return FrameError("crc", f"CRC mismatch in a {len(frame)}-byte frame")
    if frame[0] != request.unit:
        return FrameError("unit", f"reply from unit {frame[0]}, expected {request.unit}")
    function = frame[1]
    if function == request.function | 0x80:
        if len(frame) != EXCEPTION_LENGTH:
            return FrameError("length", f"exception reply of {len(frame)} bytes")
        return ExceptionReply(frame[2])
    if function != request.function:
        return FrameError("function", f"reply function {function}, expected {request.function}")
    if len(frame) != request.reply_length:
        return FrameError("length", f"reply of {len(frame)} bytes, expected {request.reply_length}")
    data = bytes(frame[2:-2])
    if function in READ_REGISTERS or function in READ_BITS:
        if data[0] != len(data) - 1:
            return FrameError("content", f"byte count {data[0]} does not match {len(data) - 1} data bytes")
        if function in READ_REGISTERS:
            # One C call for every register (a generator of int.from_bytes cost a Python step per register).
            return Registers(struct.unpack_from(f">{len(data) // 2}H", data, 1))
        bits = tuple(bool(data[1 + (i >> 3)] >> (i & 7) & 1) for i in range(request.count))
        return Bits(bits)
    address = int.from_bytes(data[0:2], "big")
    value = int.from_bytes(data[2:4], "big")
    # Writes are echoed: anything else means the slave did not do what we asked.
    if data != request.frame[2:6]:
        return FrameError("content", f"write reply ({address}, {value}) does not echo the request")
    return WriteAck(address, value)


# -- the slave's side (for tests and test servers) -------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    unit: int
    function: int
    address: int
    count: int
    values: tuple[int, ...]  # written registers, coil states as 0/1, or () for reads


def parse_request(frame: bytes | bytearray) -> ParsedRequest | FrameError:
    """Decode a request frame (the slave's view)."""
    if len(frame) < 8:
        return FrameError("short", f"{len(frame)} bytes is shorter than any request")
    if not crc_ok(frame):
        return FrameError("crc", "CRC mismatch")
    unit, function = frame[0], frame[1]
    address = int.from_bytes(frame[2:4], "big")
    word = int.from_bytes(frame[4:6], "big")
    if function in READ_REGISTERS or function in READ_BITS:
        return ParsedRequest(unit, function, address, word, ())
    if function == WRITE_SINGLE_COIL:
        return ParsedRequest(unit, function, address, 1, (1 if word == 0xFF00 else 0,))
    if function == WRITE_SINGLE_REGISTER:
        return ParsedRequest(unit, function, address, 1, (word,))
    if function in (WRITE_MULTIPLE_COILS, WRITE_MULTIPLE_REGISTERS):
        data = frame[7:-2]
        if len(frame) < 9 or frame[6] != len(data):
            return FrameError("length", "byte count does not match the frame")
        if function == WRITE_MULTIPLE_REGISTERS:
            if len(data) != 2 * word:
                return FrameError("content", "byte count does not match the register count")
            regs = tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
            return ParsedRequest(unit, function, address, word, regs)
        if len(data) != (word + 7) // 8:
            return FrameError("content", "byte count does not match the coil count")
        return ParsedRequest(unit, function, address, word, tuple(data[i >> 3] >> (i & 7) & 1 for i in range(word)))
    return FrameError("function", f"function {function} is not supported")


def encode_reply(request: Request, reply: Registers | Bits | WriteAck | ExceptionReply) -> bytes:
    """The frame a slave sends for request (the inverse of parse_reply)."""
    head = bytes((request.unit,))
    if isinstance(reply, ExceptionReply):
        return with_crc(head + bytes((request.function | 0x80, reply.code)))
    if isinstance(reply, Registers):
        data = b"".join(v.to_bytes(2, "big") for v in reply.values)
        return with_crc(head + bytes((request.function, len(data))) + data)
    if isinstance(reply, Bits):
        packed = _pack_bits(reply.values)
        return with_crc(head + bytes((request.function, len(packed))) + packed)
    body = reply.address.to_bytes(2, "big") + reply.value.to_bytes(2, "big")
    return with_crc(head + bytes((request.function,)) + body)
