"""An HJ 212 receiver: a TCP server that validates, acknowledges and hands on what monitors send.

For `sitewatch hj212 listen` (a bureau taking in vendor dust monitors next
to sitewatch gateways) and for testing the sink against a real socket.

Each connection has its own stream parser and reassembler. A packet that
asks for a reply gets it as soon as it verifies (each part of a split packet
too): 9014 for data (2011 / 2051 / 2061 / 2031), 9011 QnRtn=1 for anything
else that is not itself a reply. A packet that fails its CRC or length is
not acknowledged (its QN cannot be trusted): the sender times out and sends
it again. Errors are counted per reason in ``errors`` and reported to
``on_error``.

The extension point: ``on_packet`` gets every whole (reassembled) packet as
a ``Received``: MN, CN, DataTime and factor -> {value, flag}, ready to
write to a database (the InfluxDB writer plugs in here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from gateway.protocols import hj212
from gateway.protocols.hj212 import FrameError, Packet

log = logging.getLogger(__name__)

DATA_CNS = frozenset({hj212.CN_REALTIME, hj212.CN_MINUTE, hj212.CN_HOURLY, hj212.CN_DAILY})
VALUE_SUFFIXES = ("Rtd", "Avg", "Min", "Max", "Cou")


@dataclass(frozen=True)
class Factor:
    values: dict[str, float | None]  # suffix -> number ("Rtd", "Avg", "Min", "Max" ...); None: not a number
    flag: str | None  # the data flag as sent (N, B, D ... or a vendor's own), None when absent

    @property
    def value(self) -> float | None:
        """The factor's main value: real-time, else the mean."""
        for suffix in ("Rtd", "Avg"):
            if suffix in self.values:
                return self.values[suffix]
        return None


@dataclass(frozen=True)
class Received:
    peer: str
    packet: Packet
    data_time: str | None
    factors: dict[str, Factor]

    @property
    def mn(self) -> str:
        return self.packet.mn

    @property
    def cn(self) -> str:
        return self.packet.cn

    def as_dict(self) -> dict[str, object]:
        return {
            "peer": self.peer, "mn": self.mn, "cn": self.cn, "st": self.packet.st, "qn": self.packet.qn,
            "flag": self.packet.flag, "data_time": self.data_time,
            "factors": {code: {"values": f.values, "flag": f.flag} for code, f in self.factors.items()},
            "fields": {k: v for k, v in self.packet.cp_fields().items() if "-" not in k},
        }


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def structured(packet: Packet, peer: str = "") -> Received:
    factors = {}
    for code, fields in packet.factors().items():
        values = {s: _number(v) for s, v in fields.items() if s in VALUE_SUFFIXES}
        factors[code] = Factor(values, fields.get("Flag"))
    return Received(peer, packet, packet.cp_fields().get("DataTime"), factors)


def acknowledgement(packet: Packet) -> Packet | None:
    """The reply a verified packet gets, if it asks for one."""
    if not packet.wants_reply or packet.cn.startswith("9"):
        return None
    if packet.cn in DATA_CNS:
        return hj212.data_reply(packet)
    return hj212.request_reply(packet, hj212.QN_READY)


class Receiver:
    def __init__(
        self,
        on_packet: Callable[[Received], None],
        on_error: Callable[[str, FrameError], None] | None = None,
        acknowledge: bool = True,
    ) -> None:
        self.on_packet = on_packet
        self.on_error = on_error
        self.acknowledge = acknowledge
        self.errors: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._writers: dict[str, asyncio.StreamWriter] = {}
        self.connected = asyncio.Event()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, host, port)
        address = self._server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    async def close(self) -> None:
        for writer in list(self._writers.values()):
            writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def drop_connections(self) -> None:
        """Close every client connection (tests: a platform that goes away)."""
        for writer in list(self._writers.values()):
            writer.close()

    async def send(self, packet: Packet) -> int:
        """Write a packet (a request to the device) to every connected client; returns how many got it."""
        for writer in self._writers.values():
            for part in hj212.split(packet):
                writer.write(part.encode())
            await writer.drain()
        return len(self._writers)

    def _error(self, peer: str, error: FrameError) -> None:
        self.errors[error.reason] += 1
        log.warning("hj212 listen: %s: %s", peer, error)
        if self.on_error is not None:
            self.on_error(peer, error)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        parser, joiner = hj212.StreamParser(), hj212.Reassembler()
        self._writers[peer] = writer
        self.counts["connections"] += 1
        self.connected.set()
        try:
            while data := await reader.read(4096):
                for item in parser.feed(data):
                    if isinstance(item, FrameError):
                        self._error(peer, item)
                        continue
                    self.counts["packets"] += 1
                    ack = acknowledgement(item) if self.acknowledge else None
                    if ack is not None:
                        writer.write(ack.encode())
                        self.counts["acknowledged"] += 1
                    evicted = joiner.evicted
                    try:
                        whole = joiner.add(item)
                    except FrameError as error:
                        self._error(peer, error)
                        continue
                    if joiner.evicted > evicted:
                        self._error(peer, FrameError("incomplete", "a split packet's parts never all arrived"))
                    if whole is not None:
                        try:
                            self.on_packet(structured(whole, peer))
                        except Exception as error:  # a writer's failure (disk full ...) must not end the connection
                            self.errors["writer"] += 1
                            log.error("hj212 listen: %s: packet QN %s not written: %s", peer, whole.qn, error)
                await writer.drain()
        except (ConnectionError, OSError) as error:
            log.info("hj212 listen: %s: %s", peer, error)
        finally:
            self._writers.pop(peer, None)
            if joiner.pending:
                self.errors["incomplete"] += joiner.pending
            writer.close()
