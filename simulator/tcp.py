"""Modbus TCP for simulated nodes on Wi-Fi: the same firmware slave behind an MBAP header.

A Modbus TCP request is a 7-byte MBAP header (transaction id, protocol id 0,
length of what follows, unit id) and a PDU (function code and data); the
reply echoes the header with its own length. RTU frames are the unit id, the
same PDU and a CRC. So the firmware's RTU slave serves TCP unchanged: the
request's unit id and PDU become an RTU frame with a fresh CRC, and the
reply frame loses its address and CRC again (the pure functions below).

:class:`TcpBus` serves one scenario bus with ``transport = "tcp"`` on
127.0.0.1 (port 0: any free port), all its nodes behind one port, chosen by
the MBAP unit id as a Modbus TCP gateway does. One thread runs everything
(selectors): accepting, reading, the nodes' sampling and the replies, which
leave after the node's turnaround (there is no baud rate to pace by on
Wi-Fi). Several clients may be connected at once; each gets its own replies
in order.

Faults on TCP: no_reply, late_reply, reboot and the sensor faults act as on
a serial bus. A reply whose CRC a crc_corruption fault broke is dropped (the
Wi-Fi and TCP checksums discard damaged frames, so the client sees silence
and times out); garbage is written onto the connection as it is (a confused
stack) and the client must cope; bus_unplugged (the access point gone) makes
the whole bus silent while connections stay open. A request for a unit id
nobody has, and a broadcast (unit id 0), get no reply. A header with a
protocol id other than 0 or an impossible length closes the connection.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from firmware.modbus_rtu import crc16, crc_ok
from simulator.bus import IDLE_WAIT, BusFaults, SimBus, SimNode

MBAP_HEADER = 7
MAX_PDU = 253  # bytes: a Modbus PDU, as on a serial line
HOST = "127.0.0.1"

_HEADER = struct.Struct(">HHHB")


class MbapError(ValueError):
    """A byte stream that is not Modbus TCP: the connection is closed."""


@dataclass(frozen=True, slots=True)
class MbapRequest:
    transaction: int
    unit_id: int
    pdu: bytes


def encode_mbap(transaction: int, unit_id: int, pdu: bytes) -> bytes:
    """An ADU: MBAP header (protocol 0, length = unit id + PDU) and the PDU."""
    if not 1 <= len(pdu) <= MAX_PDU:
        raise ValueError(f"a PDU has 1 .. {MAX_PDU} bytes, not {len(pdu)}")
    return _HEADER.pack(transaction & 0xFFFF, 0, len(pdu) + 1, unit_id & 0xFF) + pdu


def rtu_frame(unit_id: int, pdu: bytes) -> bytes:
    """The RTU frame of a PDU: address, PDU, CRC (low byte first)."""
    body = bytes((unit_id & 0xFF,)) + pdu
    crc = crc16(body, len(body))
    return body + bytes((crc & 0xFF, crc >> 8))


def rtu_pdu(frame: bytes) -> bytes | None:
    """The PDU of an RTU frame; None when the frame is too short or its CRC is wrong."""
    if len(frame) < 4 or not crc_ok(frame, len(frame)):
        return None
    return frame[1:-2]


@dataclass
class MbapDecoder:
    """Cuts a TCP byte stream into requests (TCP has no frame boundaries of its own)."""

    buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[MbapRequest]:
        self.buffer += data
        requests: list[MbapRequest] = []
        while len(self.buffer) >= MBAP_HEADER:
            transaction, protocol, length, unit_id = _HEADER.unpack_from(self.buffer)
            if protocol != 0:
                raise MbapError(f"protocol id {protocol}, not 0 (Modbus)")
            if not 2 <= length <= MAX_PDU + 1:
                raise MbapError(f"length {length} is outside 2 .. {MAX_PDU + 1}")
            end = MBAP_HEADER - 1 + length
            if len(self.buffer) < end:
                break
            requests.append(MbapRequest(transaction, unit_id, bytes(self.buffer[MBAP_HEADER:end])))
            del self.buffer[:end]
        return requests


@dataclass
class _Client:
    sock: socket.socket
    decoder: MbapDecoder = field(default_factory=MbapDecoder)
    outgoing: bytearray = field(default_factory=bytearray)


class TcpBus(SimBus):
    """A bus of Wi-Fi nodes served over Modbus TCP on 127.0.0.1, one thread."""

    def __init__(
        self,
        name: str,
        nodes: Sequence[SimNode],
        port: int = 0,
        clock_ms: Callable[[], int] | None = None,
        *,
        faults: BusFaults | None = None,
        speed: float = 1.0,
        host: str = HOST,
    ) -> None:
        super().__init__(name, nodes, clock_ms, faults=faults, speed=speed)
        self.host = host
        self.port = port
        self.path = ""
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pending: list[tuple[float, _Client, bytes]] = []  # (due, client, bytes) in due order
        self._selector: selectors.BaseSelector = selectors.DefaultSelector()
        self._clients: dict[socket.socket, _Client] = {}
        self.connections = 0

    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def start(self) -> str:
        """Listen and serve; returns tcp://HOST:PORT (the real port when 0 was asked for)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(8)
        listener.setblocking(False)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        self._selector = selectors.DefaultSelector()
        self._clients = {}
        self.path = self.url
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"tcp-bus-{self.name}", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # -- the serving loop ----------------------------------------------------------
    def _serve(self) -> None:
        assert self._listener is not None
        selector = self._selector
        selector.register(self._listener, selectors.EVENT_READ, None)
        clients = self._clients
        try:
            while not self._stop.is_set():
                now_ms = self.clock_ms()
                self.maintain(now_ms)
                self._send_due()
                timeout = self.wait_for_samples(now_ms)
                if self._pending:
                    timeout = max(0.0, min(timeout, self._pending[0][0] - time.monotonic()))
                for key, events in selector.select(min(timeout, IDLE_WAIT)):
                    if key.data is None:
                        self._accept()
                        continue
                    client: _Client = key.data
                    if events & selectors.EVENT_READ:
                        self._receive(client)
                    if events & selectors.EVENT_WRITE and client.sock in clients:
                        self._flush(client)
        finally:
            for client in list(clients.values()):
                self._close(client)
            selector.close()
            self._listener.close()
            self._listener = None

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = _Client(sock)
        self._clients[sock] = client
        self._selector.register(sock, selectors.EVENT_READ, client)
        self.connections += 1

    def _receive(self, client: _Client) -> None:
        try:
            data = client.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(client)
            return
        try:
            requests = client.decoder.feed(data)
        except MbapError:
            self._close(client)
            return
        received = time.monotonic()
        for request in requests:
            self._answer(client, request, received)

    def _answer(self, client: _Client, request: MbapRequest, received: float) -> None:
        frame = rtu_frame(request.unit_id, request.pdu)
        reply = self.respond(frame, self.clock_ms())
        if reply is None:
            return
        out = reply.noise
        if reply.garbage:
            out += reply.frame
        elif reply.frame and not reply.corrupted:
            pdu = rtu_pdu(reply.frame)
            if pdu is not None:
                out += encode_mbap(request.transaction, request.unit_id, pdu)
        if not out:
            return
        self._pending.append((received + reply.delay, client, out))
        self._pending.sort(key=lambda item: item[0])

    def _send_due(self) -> None:
        now = time.monotonic()
        while self._pending and self._pending[0][0] <= now:
            _, client, data = self._pending.pop(0)
            if client.sock not in self._clients:
                continue
            client.outgoing += data
            self._flush(client)

    def _flush(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.outgoing)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(client)
            return
        del client.outgoing[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.outgoing else 0)
        self._selector.modify(client.sock, events, client)

    def _close(self, client: _Client) -> None:
        self._clients.pop(client.sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client.sock)
        with contextlib.suppress(OSError):
            client.sock.close()
        self._pending = [item for item in self._pending if item[1] is not client]

