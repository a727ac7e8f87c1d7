"""HJ 212-2017 codec, sans-IO: CRC, packet framing, the data segment and its CP, splitting, replies.

A packet on the wire (domain.md section 6)::

    ##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&1C80\r\n

``##``, four decimal digits giving the data segment's length in bytes, the
data segment, its CRC (Appendix A: *not* CRC-16/MODBUS) as four hex digits,
CR LF. Nothing here reads a socket or a clock: times come in as arguments.

Strict where a wrong packet must not pass: the length must be what was
received, at most 1024 bytes, the CRC must verify. Tolerant where real
monitors differ and the meaning is still clear: the header fields in any
order, QN / PW / Flag missing, unknown header fields (kept in ``extra``),
factors spread over CP groups however the sender likes, data flags outside
the standard's list (kept as sent), the CRC in lower-case hex (the value is
still checked; ``Packet.crc_lowercase`` tells).

Errors are values in the stream parser (``StreamParser.feed`` yields
``Packet`` or ``FrameError`` and counts each error by reason); the one-shot
``decode`` raises ``FrameError``.
"""

from __future__ import annotations

import calendar
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

HEADER = b"##"
TRAILER = b"\r\n"
MAX_SEGMENT = 1024  # bytes of data segment per packet (longer data is split with PNUM / PNO)
VERSION_2017 = 1  # the version bits of Flag for HJ 212-2017

FLAG_REPLY = 0x1  # A: the sender wants a reply
FLAG_SPLIT = 0x2  # D: PNUM / PNO are present

ST_REPLY = "91"  # replies (9011 ... 9014) use this system code

# Command codes (CN).
CN_GET_TIME, CN_SET_TIME, CN_TIME_REQUEST = "1011", "1012", "1013"
CN_GET_RTD_INTERVAL, CN_SET_RTD_INTERVAL = "1061", "1062"
CN_SET_PASSWORD = "1072"
CN_REALTIME, CN_MINUTE, CN_HOURLY, CN_DAILY = "2011", "2051", "2061", "2031"
CN_REQUEST_REPLY, CN_EXECUTION_RESULT, CN_NOTIFY_REPLY, CN_DATA_REPLY = "9011", "9012", "9013", "9014"

# QnRtn of a 9011 request reply.
QN_READY, QN_REJECTED, QN_BAD_PW, QN_BAD_MN, QN_BAD_ST, QN_BAD_FLAG, QN_BAD_QN, QN_BAD_CN, QN_BAD_CRC = range(1, 10)
# ExeRtn of a 9012 execution result.
EXE_OK, EXE_FAILED, EXE_NO_DATA = 1, 2, 100

STANDARD_FLAGS = frozenset("NFMSDCTB")  # data flags of the standard (gateway.model.Quality)

_LENGTH = re.compile(rb"^[0-9]{4}$")
_CRC = re.compile(rb"^[0-9A-Fa-f]{4}$")
_HEADER_ORDER = ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO")


class FrameError(ValueError):
    """A packet that cannot be taken: `reason` is a short key for counting, the message says where."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def crc16_bitwise(data: bytes) -> int:
    """The CRC of HJ 212-2017 Appendix A over `data` (the data segment only), as the standard writes it."""
    r = 0xFFFF
    for b in data:
        r = (r >> 8) ^ b
        for _ in range(8):
            lsb = r & 1
            r >>= 1
            if lsb:
                r ^= 0xA001
    return r


def _shift8(v: int) -> int:
    for _ in range(8):
        v = (v >> 1) ^ 0xA001 if v & 1 else v >> 1
    return v


# (r >> 8) ^ b is always below 256, so the eight shifts of each step are one lookup in 256 entries.
_CRC_TABLE = tuple(_shift8(v) for v in range(256))


def crc16(data: bytes) -> int:
    """The CRC of HJ 212-2017 Appendix A (table-driven; equal to crc16_bitwise, a property test checks)."""
    r = 0xFFFF
    table = _CRC_TABLE
    for b in data:
        r = table[(r >> 8) ^ b]
    return r


def flag_bits(reply: bool, split: bool, version: int = VERSION_2017) -> int:
    return (version << 2) | (FLAG_SPLIT if split else 0) | (FLAG_REPLY if reply else 0)


CpGroup = tuple[tuple[str, str], ...]  # the fields of one CP group, ("a34004-Rtd", "75.0") ...


@dataclass(frozen=True, slots=True)
class Packet:
    """One data segment. Fields hold the text as sent; `cp` keeps the CP groups in order."""

    cn: str
    mn: str
    st: str = "22"
    pw: str | None = "123456"
    qn: str | None = None
    flag: int | None = None
    pnum: int | None = None
    pno: int | None = None
    cp: tuple[CpGroup, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()  # header fields outside the standard's list, in order
    crc_lowercase: bool = field(default=False, compare=False)

    @property
    def wants_reply(self) -> bool:
        return self.flag is not None and bool(self.flag & FLAG_REPLY)

    @property
    def version(self) -> int | None:
        return None if self.flag is None else self.flag >> 2

    def cp_fields(self) -> dict[str, str]:
        """Every CP field, flattened (a later repeat of a key wins)."""
        return {key: value for group in self.cp for key, value in group}

    def factors(self) -> dict[str, dict[str, str]]:
        """Factor code -> {suffix: text}, e.g. {"a34004": {"Rtd": "75.0", "Flag": "N"}}."""
        out: dict[str, dict[str, str]] = {}
        for group in self.cp:
            for key, value in group:
                code, dash, suffix = key.partition("-")
                if dash:
                    out.setdefault(code, {})[suffix] = value
        return out

    def segment(self) -> str:
        """The data segment: header fields in the standard's order, then the extra ones, then CP."""
        parts = [
            f"{key}={value}"
            for key, value in (
                ("QN", self.qn), ("ST", self.st), ("CN", self.cn), ("PW", self.pw), ("MN", self.mn),
                ("Flag", self.flag), ("PNUM", self.pnum), ("PNO", self.pno),
            )
            if value is not None
        ]
        parts += [f"{key}={value}" for key, value in self.extra]
        return ";".join([*parts, f"CP=&&{encode_cp(self.cp)}&&"])

    def encode(self) -> bytes:
        return frame(self.segment())


def encode_cp(groups: Iterable[CpGroup]) -> str:
    for group in groups:
        for key, value in group:
            for text in (key, value):
                if any(c in text for c in ";,=&"):
                    raise ValueError(f"CP field {key}={value!r}: ';', ',', '=' and '&' cannot appear in a field")
    return ";".join(",".join(f"{key}={value}" for key, value in group) for group in groups)


def frame(segment: str) -> bytes:
    """A whole packet around a data segment."""
    data = segment.encode("utf-8")
    if len(data) > MAX_SEGMENT:
        raise ValueError(f"data segment of {len(data)} bytes: at most {MAX_SEGMENT} (split it with split())")
    return HEADER + b"%04d" % len(data) + data + b"%04X" % crc16(data) + TRAILER


def parse_segment(segment: str, where: str = "packet") -> Packet:
    """The Packet a data segment describes (raises FrameError naming the field)."""
    head, marker, rest = segment.partition("CP=&&")
    if not marker:
        raise FrameError("no_cp", f"{where}: no 'CP=&&' in the data segment")
    if not rest.endswith("&&"):
        raise FrameError("bad_cp", f"{where}: CP does not end with '&&'")
    if head and not head.endswith(";"):
        raise FrameError("bad_header", f"{where}: no ';' before CP")
    fields: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    for part in head[:-1].split(";") if head else []:
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key:
            raise FrameError("bad_header", f"{where}: header field {part!r} is not key=value")
        if key in fields or any(k == key for k, _ in extra):
            raise FrameError("bad_header", f"{where}: header field {key} repeats")
        if key in _HEADER_ORDER:
            fields[key] = value
        else:
            extra.append((key, value))
    for required in ("CN", "MN", "ST"):
        if required not in fields:
            raise FrameError("bad_header", f"{where}: no {required} field")
    return Packet(
        cn=fields["CN"], mn=fields["MN"], st=fields["ST"], pw=fields.get("PW"), qn=fields.get("QN"),
        flag=_int_field(fields, "Flag", where), pnum=_int_field(fields, "PNUM", where),
        pno=_int_field(fields, "PNO", where), cp=parse_cp(rest[:-2], where), extra=tuple(extra),
    )


def _int_field(fields: dict[str, str], key: str, where: str) -> int | None:
    text = fields.get(key)
    if text is None:
        return None
    if not text.isdigit():
        raise FrameError("bad_header", f"{where}: {key}={text!r} is not a number")
    return int(text)


def parse_cp(body: str, where: str = "packet") -> tuple[CpGroup, ...]:
    groups: list[CpGroup] = []
    for text in body.split(";"):
        if not text:
            continue  # a stray ';' (some monitors end CP with ';&&')
        group = []
        for part in text.split(","):
            key, eq, value = part.partition("=")
            if not eq or not key:
                raise FrameError("bad_cp", f"{where}: CP field {part!r} is not key=value")
            group.append((key, value))
        groups.append(tuple(group))
    return tuple(groups)


def decode(packet: bytes) -> Packet:
    """One whole packet (the trailing CR LF may be missing, e.g. when typed in a shell)."""
    if packet.endswith(TRAILER):
        packet = packet[: -len(TRAILER)]
    if not packet.startswith(HEADER):
        raise FrameError("no_header", "the packet does not start with '##'")
    length_text = packet[2:6]
    if not _LENGTH.match(length_text):
        raise FrameError("bad_length", f"length field {length_text!r} is not four decimal digits")
    length = int(length_text)
    if length > MAX_SEGMENT:
        raise FrameError("too_long", f"data segment of {length} bytes: the standard allows at most {MAX_SEGMENT}")
    body = packet[6:]
    if len(body) != length + 4:
        raise FrameError(
            "bad_length", f"length field says {length} bytes, the data segment has {len(body) - 4} (before the CRC)"
        )
    return _checked(body[:length], body[length:])


def _checked(data: bytes, crc_text: bytes) -> Packet:
    if not _CRC.match(crc_text):
        raise FrameError("bad_crc", f"CRC field {crc_text!r} is not four hex digits")
    expected = crc16(data)
    if int(crc_text, 16) != expected:
        raise FrameError("bad_crc", f"CRC {crc_text.decode()} does not match the data segment ({expected:04X})")
    try:
        segment = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FrameError("bad_encoding", f"data segment is not UTF-8 at byte {error.start}") from None
    packet = parse_segment(segment)
    return replace(packet, crc_lowercase=crc_text != crc_text.upper())


class StreamParser:
    """Fed bytes as they arrive on a connection; yields packets and errors, resynchronising on '##'."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.errors: Counter[str] = Counter()
        self.packets = 0

    def feed(self, data: bytes) -> list[Packet | FrameError]:
        self._buffer += data
        out: list[Packet | FrameError] = []
        while True:
            item = self._next()
            if item is None:
                break
            out.append(item)
        return out

    def _error(self, error: FrameError, skip: int) -> FrameError:
        self.errors[error.reason] += 1
        del self._buffer[:skip]
        return error

    def _next(self) -> Packet | FrameError | None:
        buf = self._buffer
        start = buf.find(HEADER)
        if start < 0:
            # Keep a last '#': it may be the first half of the next header.
            garbage = len(buf) - (1 if buf.endswith(b"#") else 0)
            if garbage > 0:
                return self._error(FrameError("garbage", f"{garbage} bytes outside a packet"), garbage)
            return None
        if start > 0:
            return self._error(FrameError("garbage", f"{start} bytes before '##'"), start)
        if len(buf) < 6:
            return None
        length_text = bytes(buf[2:6])
        # After an error the parser resumes one byte on: in "###0101..." the packet starts at the second '#'.
        if not _LENGTH.match(length_text):
            return self._error(FrameError("bad_length", f"length field {length_text!r} is not 4 digits"), 1)
        length = int(length_text)
        if length > MAX_SEGMENT:
            return self._error(FrameError("too_long", f"length {length} over {MAX_SEGMENT}"), 1)
        end = 6 + length + 4 + len(TRAILER)
        # A data segment holds no CR LF: one before the end the length gives means the length is wrong
        # (or this was no header), and the packets behind it must not wait for `end` bytes to arrive.
        if buf.find(TRAILER, 6, end - 2) >= 0:
            return self._error(FrameError("bad_length", f"CR LF before the end the length {length} gives"), 1)
        if len(buf) < end:
            return None
        if bytes(buf[end - 2 : end]) != TRAILER:
            return self._error(FrameError("bad_length", f"no CR LF where the length {length} puts the end"), 1)
        data, crc_text = bytes(buf[6 : 6 + length]), bytes(buf[6 + length : end - 2])
        try:
            packet = _checked(data, crc_text)
        except FrameError as error:
            # Skip the bad packet, but not a header inside it: garbage may have looked like a packet around one.
            inner = buf.find(HEADER, 1, end)
            return self._error(error, inner if inner > 0 else end)
        del buf[:end]
        self.packets += 1
        return packet


def qn_of(t: float, utc_offset_s: int) -> str:
    """QN: local time YYYYMMDDhhmmsszzz of t (seconds since the epoch)."""
    millis = round(t * 1000)
    seconds, ms = divmod(millis, 1000)
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(seconds + utc_offset_s)) + f"{ms:03d}"


def data_time(t: float, utc_offset_s: int) -> str:
    """DataTime: local time YYYYMMDDhhmmss."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(int(t // 1) + utc_offset_s))


def parse_time(text: str, utc_offset_s: int, where: str = "time") -> float:
    """Seconds since the epoch of a local YYYYMMDDhhmmss (a QN's milliseconds are accepted too)."""
    if not text.isdigit() or len(text) not in (14, 17):
        raise FrameError("bad_time", f"{where}={text!r}: expected YYYYMMDDhhmmss")
    try:
        struct = time.strptime(text[:14], "%Y%m%d%H%M%S")
    except ValueError:
        raise FrameError("bad_time", f"{where}={text!r}: not a date and time") from None
    millis = int(text[14:]) / 1000 if len(text) == 17 else 0.0
    return calendar.timegm(struct) - utc_offset_s + millis


def reply(request: Packet, cn: str, fields: Sequence[tuple[str, str]] = ()) -> Packet:
    """A reply to `request` (ST 91, same QN, PW and MN, no reply wanted)."""
    version = request.version if request.version is not None else VERSION_2017
    return Packet(
        cn=cn, mn=request.mn, st=ST_REPLY, pw=request.pw, qn=request.qn, flag=flag_bits(False, False, version),
        cp=(tuple(fields),) if fields else (),
    )


def request_reply(request: Packet, qn_rtn: int) -> Packet:
    """9011: the request is taken (1) or why not (2 ... 9)."""
    return reply(request, CN_REQUEST_REPLY, (("QnRtn", str(qn_rtn)),))


def execution_result(request: Packet, exe_rtn: int) -> Packet:
    """9012: how the request's execution ended (1 ok, 100 no data ...)."""
    return reply(request, CN_EXECUTION_RESULT, (("ExeRtn", str(exe_rtn)),))


def notify_reply(request: Packet) -> Packet:
    """9013: a notification was received."""
    return reply(request, CN_NOTIFY_REPLY)


def data_reply(request: Packet) -> Packet:
    """9014: an upload of data was received."""
    return reply(request, CN_DATA_REPLY)


def split(packet: Packet, limit: int = MAX_SEGMENT) -> list[Packet]:
    """`packet` as it goes on the wire: itself if it fits, else parts with PNUM / PNO and the D flag.

    Parts break between CP groups. A leading group without factors (DataTime)
    is repeated in every part, so each part says what time its values are for.
    """
    if len(packet.segment().encode("utf-8")) <= limit:
        return [packet]
    version = packet.version if packet.version is not None else VERSION_2017
    reply_wanted = packet.wants_reply
    lead: tuple[CpGroup, ...] = ()
    groups = packet.cp
    if groups and all("-" not in key for key, _ in groups[0]):
        lead, groups = groups[:1], groups[1:]
    # Size each part as if PNUM and PNO took four digits: a part never ends up over the limit.
    probe = replace(packet, flag=flag_bits(reply_wanted, True, version), pnum=9999, pno=9999)
    parts: list[list[CpGroup]] = [[]]
    for group in groups:
        candidate = replace(probe, cp=(*lead, *parts[-1], group))
        if len(candidate.segment().encode("utf-8")) <= limit:
            parts[-1].append(group)
            continue
        alone = replace(probe, cp=(*lead, group))
        if len(alone.segment().encode("utf-8")) > limit:
            raise ValueError(f"CP group {group[0][0]}... alone makes a data segment over {limit} bytes")
        parts.append([group])
    if not parts[-1] or not groups:
        raise ValueError(f"the packet's header alone is over {limit} bytes")
    return [
        replace(packet, flag=probe.flag, pnum=len(parts), pno=i, cp=(*lead, *part))
        for i, part in enumerate(parts, start=1)
    ]


class Reassembler:
    """Joins the parts of split packets (same MN, CN and QN) back into one; bounded, evictions counted."""

    def __init__(self, max_pending: int = 64) -> None:
        self.max_pending = max_pending
        self._pending: dict[tuple[str, str, str | None], dict[int, Packet]] = {}
        self.evicted = 0  # incomplete packets dropped to stay within max_pending
        self.errors: Counter[str] = Counter()

    def add(self, packet: Packet) -> Packet | None:
        """The whole packet once all its parts are in (an unsplit packet comes straight back)."""
        if packet.pnum is None and packet.pno is None:
            return packet
        if packet.pnum is None or packet.pno is None or not 1 <= packet.pno <= packet.pnum:
            self.errors["bad_pno"] += 1
            raise FrameError("bad_pno", f"PNUM={packet.pnum} PNO={packet.pno}: expected 1 <= PNO <= PNUM")
        key = (packet.mn, packet.cn, packet.qn)
        parts = self._pending.setdefault(key, {})
        if any(other.pnum != packet.pnum for other in parts.values()):
            # Parts of one QN that disagree on how many there are cannot be joined (a sender's bug): drop
            # them all, counted, rather than join a packet from two different splits.
            del self._pending[key]
            self.errors["bad_pno"] += 1
            raise FrameError("bad_pno", f"QN {packet.qn}: PNUM={packet.pnum} but earlier parts said "
                                        f"{sorted({p.pnum or 0 for p in parts.values()})}; parts dropped")
        parts[packet.pno] = packet
        if len(parts) < packet.pnum:
            while len(self._pending) > self.max_pending:
                del self._pending[next(iter(self._pending))]
                self.evicted += 1
            return None
        del self._pending[key]
        ordered = [parts[i] for i in range(1, packet.pnum + 1)]
        groups: list[CpGroup] = []
        lead = ordered[0].cp[:1] if ordered[0].cp and all("-" not in k for k, _ in ordered[0].cp[0]) else ()
        for part in ordered:
            groups += part.cp[len(lead) :] if lead and part.cp[:1] == lead else part.cp
        flag = None if packet.flag is None else packet.flag & ~FLAG_SPLIT
        return replace(ordered[0], flag=flag, pnum=None, pno=None, cp=(*lead, *groups))

    @property
    def pending(self) -> int:
        return len(self._pending)
