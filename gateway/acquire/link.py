"""Links: how a bus owner puts one request on the line and gets its reply.

Two links share one interface (``Link``): ``RtuLink``, our own Modbus RTU
transaction layer on a serial port, and ``TcpLink``, pymodbus'
AsyncModbusTcpClient for Modbus TCP nodes and gateways.

Why RTU is not pymodbus' AsyncModbusSerialClient. Measured with
bench/bus_efficiency.py (32 mixed nodes on one simulated 19200-baud bus, the
simulator pacing every byte at 11 bits per character, turnaround 2 ms;
pymodbus 3.16.1; one run on the development machine). Wire-time bound of one
cycle (every node read once): 1.146 s.

=====================================  ==============  ==================
                                       this link       pymodbus
=====================================  ==============  ==================
clean cycle (ratio to the bound)       1.164 s (1.02)  1.096 s (0.96)
silence before the next request        2.33 ms         0.14 ms
one reply with a bad CRC costs         35 ms           502 ms (timeout)
cycle with one of 32 nodes dead        1.128 s         1.565 s
=====================================  ==============  ==================

(Since issue 13's seventh round, which takes each reply in one timer wake-up
at its due time: clean cycle 1.220 s (1.065), silence 2.70 ms; see
docs/performance.md.)

* Throughput on a clean bus is not the problem: pymodbus reads replies
  length-aware too. It is *below* the bound because it puts the next
  request on the line as soon as it has parsed a reply, 0.14 ms later, where
  Modbus requires t3.5 (2.005 ms) of silence. On a real RS-485 line the
  other nodes, which hear every reply, then see reply and request as one
  frame, fail its CRC and ignore the request. (The simulator only parses
  the master's bytes, so it cannot show that failure; the bound includes
  the t3.5 gaps.)
* pymodbus' framer drops a reply that fails its CRC and keeps waiting, so a
  corrupted reply costs the whole timeout, and it cannot be counted: it is a
  debug log line followed by a generic "no response" exception.
* The timeout is one number per client: it cannot adapt per node, and a
  dead node costs the full timeout every cycle.

So RTU is our own transaction layer on the raw serial fd (termios), and
pymodbus serves Modbus TCP, where none of this applies. Per transaction
RtuLink waits out exactly t3.5 after the last byte on the line (3.5
characters <= 19200 baud, 1.75 ms above; the event loop's millisecond timer
granularity adds up to 1 ms, hence 2.33 ms); drops stale input; writes the
request; reads the reply until it has the length the request implies (two
bytes tell: the function byte says normal or exception reply), waking once
when it should be whole (_step_away, _expect_reply); ends a garbled reply (unknown
function byte) after line silence, and a missing one at the node's own
adaptive timeout, counted from the end of the request on the wire.

Errors are values: ``transact`` returns an ``Exchange`` whose outcome is a
reply, a ``FrameError`` (CRC, length ...), an ``ExceptionReply`` or a
``NoReply`` (timeout, port failure); it raises only for programming errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import select
import termios
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from gateway.acquire.tty_vmin import VminSetter
from gateway.protocols import modbus_rtu_master as rtu

log = logging.getLogger(__name__)

# A reply that has started but stops short with the line silent this long is over (garbled).
# Longer than t3.5 on purpose: USB-serial adapters deliver bytes in bursts up to their
# latency timer apart (FTDI: 16 ms by default), and a genuine reply must not be cut.
DEFAULT_GARBLE_GAP = 0.020
# After a broadcast (no reply), slaves need time to carry it out (Modbus serial line 2.4.1).
BROADCAST_DELAY = 0.100
# Every reply's length is known from its first two bytes (address, function: normal or exception reply).
LENGTH_BYTES = 2
# A unit's turnaround (end of the request on the wire to the first byte of its reply) as last measured, plus this,
# is when the link expects the reply to start (RtuLink._expect_reply). Covers a node's jitter of a few characters.
TURNAROUND_MARGIN = 0.0003
# After a reply found whole at the expected time, the next is expected this much earlier: the estimate follows a
# node that got quicker, and the reply that comes in part shows the turnaround again.
TURNAROUND_STEP = 0.00002


@dataclass(frozen=True, slots=True)
class NoReply:
    reason: Literal["timeout", "io"]
    detail: str


Outcome = rtu.Reply | NoReply


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and what came of it, with monotonic times."""

    outcome: Outcome
    sent: float  # the request's first byte was handed to the port
    request_end: float  # the request's last byte has left on the wire
    completed: float  # the reply's last byte arrived, or the link gave up

    @property
    def response_time(self) -> float:
        return self.completed - self.request_end


@dataclass
class LinkStats:
    transactions: int = 0
    stray_bytes: int = 0  # bytes on the line outside any reply we waited for
    stray_frames: int = 0  # whole frames from another unit (late replies)
    opens: int = 0
    open_failures: int = 0


class Link(Protocol):
    name: str
    stats: LinkStats

    @property
    def is_open(self) -> bool: ...

    async def open(self) -> None: ...

    def close(self) -> None: ...

    async def transact(self, request: rtu.Request, timeout: float) -> Exchange: ...

    def gap(self) -> float:
        """Bus time a transaction needs besides the request and reply wire time."""
        ...

    def request_time(self, n_bytes: int) -> float:
        """Wire time of a request of n_bytes (0 on TCP)."""
        ...


class RtuLink:
    """Modbus RTU master transactions on one serial port (the port's only owner)."""

    def __init__(
        self,
        port: str,
        baud: int = 9600,
        parity: str = "N",
        stopbits: int = 1,
        local_echo: bool = False,
        garble_gap: float = DEFAULT_GARBLE_GAP,
    ) -> None:
        self.name = port
        self.port = port
        self.baud = baud
        self.parity = parity
        self.stopbits = stopbits
        self.local_echo = local_echo
        self.garble_gap = max(garble_gap, rtu.t35(baud))
        self.t35 = rtu.t35(baud)
        self.stats = LinkStats()
        self._fd = -1
        self._rx = bytearray()
        self._last_rx = -1.0
        self._quiet_until = 0.0
        # State of the transaction in flight.
        self._request: rtu.Request | None = None
        self._echo_left = 0
        self._received = 0  # bytes received for the request in flight (after the echo)
        self._done: asyncio.Future[Outcome] | None = None
        self._pending: rtu.Request | None = None  # the request waiting for a quiet line (_when_quiet)
        self._timeout = 0.0
        self._give_up = 0.0  # the request goes out by then even if the line never falls silent
        self._sent = -1.0  # the request's first byte was handed to the port (-1: not yet)
        self._request_end = -1.0
        self._quiet_timer: asyncio.TimerHandle | None = None  # the wait for silence, or the rest of a write
        self._deadline: asyncio.TimerHandle | None = None
        self._garble_timer: asyncio.TimerHandle | None = None
        self._overtime: asyncio.TimerHandle | None = None
        self._failure: OSError | None = None
        # The port's termios attributes and the VMIN set in them: while the rest of a reply of
        # known length is on its way, VMIN makes the port readable only once all of it is there.
        self._vmin_setter: VminSetter | None = None
        self._vmin = 0
        self._bulk = True  # False for the rest of a transaction whose reply stalled mid-way
        self._away: asyncio.TimerHandle | None = None  # the port is out of epoll until this fires (_step_away)
        self._away_missing = 0  # bytes of the reply still on the wire when the link stepped away
        # Per request shape (reply_shape: unit, function, count): the unit's last measured turnaround for it plus
        # TURNAROUND_MARGIN (_expect_reply); none for one whose reply has not been timed yet, or did not come
        # when expected. By shape, not by unit: a node may take longer to prepare a history window than its inputs.
        self._turnaround: dict[tuple[int, int, int], float] = {}
        # The port's own epoll set, itself watched by the event loop: stepping away and back is one
        # epoll_ctl on it, not the loop's remove_reader/add_reader (their Python bookkeeping and handle
        # per call cost more than the system call, twice per transaction: issue 13, fifth round).
        self._watch: select.epoll | None = None
        # Whether the port is in that set's wake-ups. Left out after a reply taken at the time it was due
        # (_come_back): the next request's expected reply wants it out too, and the drain before each request
        # takes what came meanwhile (_when_quiet). So a transaction whose reply keeps its time costs no epoll_ctl.
        self._watched = True

    # -- lifecycle -----------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._fd >= 0

    async def open(self) -> None:
        try:
            fd = open_serial(self.port, self.baud, self.parity, self.stopbits)
        except OSError as error:
            self.stats.open_failures += 1
            raise OSError(f"cannot open serial port {self.port}: {error.strerror or error}") from error
        self._fd = fd
        self._failure = None
        self._rx.clear()
        # A port reopened after a failure may be another adapter (plugged back in), with its own latency: its
        # units are timed by their headers again, not expected at times learnt through the old one.
        self._turnaround.clear()
        self._vmin_setter = VminSetter(fd, termios.tcgetattr(fd))  # one ioctl per change (tty_vmin.py)
        self._vmin = 0
        self._watch = select.epoll(1)
        self._watch.register(fd, select.EPOLLIN)
        self._watched = True
        asyncio.get_running_loop().add_reader(self._watch.fileno(), self._readable)
        self.stats.opens += 1

    def close(self) -> None:
        if self._fd < 0:
            return
        self._release()
        self._finish(NoReply("io", "port closed"))

    def _release(self) -> None:
        self._cancel_away()
        if self._watch is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._watch.fileno())
            self._watch.close()
            self._watch = None
        with contextlib.suppress(OSError):
            os.close(self._fd)  # closing also drops the flock
        self._fd = -1

    def gap(self) -> float:
        return self.t35

    def request_time(self, n_bytes: int) -> float:
        return rtu.wire_time(n_bytes, self.baud)

    # -- one transaction -------------------------------------------------------------
    async def transact(self, request: rtu.Request, timeout: float) -> Exchange:
        if self._fd < 0:
            now = time.monotonic()
            return Exchange(NoReply("io", "port not open"), now, now, now)
        # The wait for silence, the write and the reply run in callbacks of the event loop (timers and the
        # port's reader): the task wakes once per transaction, when it is over. A sleep awaited here before
        # the write cost a second loop iteration and a future per transaction (issue 13, fifth round).
        self._done = done = asyncio.get_running_loop().create_future()
        self._pending = request
        self._timeout = timeout
        self._give_up = time.monotonic() + timeout
        self._sent = self._request_end = -1.0
        self._when_quiet()
        try:
            outcome = await done
        except BaseException:  # cancelled: nothing of this transaction may fire later
            self._end_transaction()
            raise
        now = time.monotonic()
        sent, request_end = self._sent, self._request_end
        self._end_transaction()
        if sent < 0:  # ended before the request went out (the port was closed meanwhile)
            return Exchange(outcome, now, now, now)
        if isinstance(outcome, NoReply) or self._last_rx < sent:
            self._quiet_until = max(self._quiet_until, now + self.t35)
            return Exchange(outcome, sent, request_end, max(now, request_end))
        # The line is free t3.5 after the reply's last byte.
        self._quiet_until = self._last_rx + self.t35
        return Exchange(outcome, sent, request_end, max(self._last_rx, request_end))

    def _end_transaction(self) -> None:
        for timer in (self._quiet_timer, self._deadline, self._overtime):
            if timer is not None:
                timer.cancel()
        self._quiet_timer = self._deadline = self._overtime = None
        self._cancel_garble_timer()
        self._rejoin()
        # Between transactions the port is reported at two bytes at most (VMIN as for the next reply's header:
        # no ioctl per transaction), and not at all after a reply taken at its due time (_watched). Stray bytes
        # the loop was not woken for are taken by the drain before the next request (_when_quiet) and stamped
        # then: the line's silence is judged from there.
        if self._vmin > LENGTH_BYTES:
            self._set_vmin(LENGTH_BYTES)
        self._pending = None
        self._request = None
        self._done = None

    def _when_quiet(self, slept: bool = False) -> None:
        """Send the pending request once the line is free: t3.5 after our last exchange, and no stray bytes coming in.

        Exactly t3.5 when the line stayed quiet, no more. Bytes that came after the last exchange
        ended (a slow node's reply that missed its timeout, a chattering device) are dropped and
        counted, and the request waits until the line has been silent for the garble gap: a request
        sent now would collide with them on the wire, and their tail would run into the reply we
        want and fail its CRC. The garble gap rather than t3.5 because an adapter delivers bytes in
        bursts (its latency timer): a t3.5 pause seen by the host is not silence on the line. A line
        that never falls silent delays the request by at most the transaction's timeout, then it goes
        out anyway. Called at once by transact, then by its own timer (slept: the wait it armed is over).
        """
        self._quiet_timer = None
        if self._pending is None or self._fd < 0:
            return
        while True:
            if not slept:
                wait = self._quiet_until - time.monotonic()
                if wait > 0:
                    self._quiet_timer = asyncio.get_running_loop().call_later(wait, self._when_quiet, True)
                    return
            slept = False
            self._drain()
            if not self._rx:
                break
            self.stats.stray_bytes += len(self._rx)
            self._rx.clear()
            if time.monotonic() >= self._give_up:
                break
            self._quiet_until = min(self._last_rx + self.garble_gap, self._give_up)
        self._send()

    def _send(self) -> None:
        request = self._pending
        assert request is not None
        self._pending = None
        self._request = request
        self._echo_left = len(request.frame) if self.local_echo else 0
        self._received = 0
        self._bulk = True
        if request.expects_reply:
            # No reply tells its length before its second byte: the port wakes the loop once for the first two
            # (set before the write, so a fast reply cannot slip in under VMIN 0). A reply cut after its first
            # byte is then taken in at the timeout and judged by silence after it (_expire), as short.
            self._set_vmin(LENGTH_BYTES)
        self.stats.transactions += 1
        self._sent = time.monotonic()
        # Whether or not the write succeeds: a failed poll is dated from it too (the poller's `heard`).
        self._request_end = self._sent + rtu.wire_time(len(request.frame), self.baud)
        self._write_rest(memoryview(request.frame), self._sent + 1.0)

    def _write_rest(self, view: memoryview, stall_at: float) -> None:
        """Write the request (what is left of it: a full output buffer takes it in parts, a character time apart)."""
        self._quiet_timer = None
        if self._done is None or self._done.done():
            return
        while view:
            try:
                n = os.write(self._fd, view)
                view = view[n:]
            except BlockingIOError:
                pass
            except OSError as error:
                self._broken(error)  # ends the transaction: "port failed: ..."
                return
            if view:
                if time.monotonic() > stall_at:
                    self._finish(NoReply("io", "write stalled"))
                    return
                delay = rtu.character_time(self.baud)
                self._quiet_timer = asyncio.get_running_loop().call_later(delay, self._write_rest, view, stall_at)
                return
        request = self._request
        assert request is not None
        request_end = self._request_end
        if not request.expects_reply:
            self._quiet_until = request_end + BROADCAST_DELAY
            self._finish(NoReply("timeout", "broadcast: no reply expected"))
            return
        # The timeout runs from the end of the request on the wire: the node cannot
        # answer before it has heard all of it.
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(request_end + self._timeout - time.monotonic(), self._expire)
        turnaround = self._turnaround.get(reply_shape(request))
        if turnaround is not None:
            self._expect_reply(request, turnaround, loop)
        else:
            self._watch_port(True)  # the reply's header wakes the link

    def _expect_reply(self, request: rtu.Request, turnaround: float, loop: asyncio.AbstractEventLoop) -> None:
        """Away until the whole normal reply should be there, from the unit's last measured turnaround.

        The header's wake-up (and the kernel's for the reply's first byte) is spared: one wake-up per reply,
        at the time its last byte should have arrived (_come_back), takes what came. A reply that is not all
        there yet has told its length and is waited for as any rest (_step_away), and the turnaround is
        measured again from how much of it came (the bytes arrive at the line's pace); a reply that has not
        started is waited for with the port watched (VMIN at the header's two bytes), and the unit's next
        reply is timed from its header again. Not with an adapter that echoes the request (its echo is part of
        what comes), nor on a port whose VMIN cannot be set.
        """
        if self.local_echo or not self._bulk or self._away is not None or self._watch is None:
            self._watch_port(True)
            return
        self._watch_port(False)
        self._away_missing = LENGTH_BYTES  # what the port is watched for if nothing has come by then (VMIN as set)
        due = self._request_end + turnaround + rtu.wire_time(request.reply_length, self.baud)
        self._away = loop.call_at(due, self._come_back)

    # -- receiving ---------------------------------------------------------------------
    def _drain(self) -> None:
        """Read whatever the port holds now (the reader callback may not have run yet)."""
        data = self._read_available()
        if data:
            self._rx += data

    def _read_available(self) -> bytes:
        """Everything the port holds now, whatever VMIN says (the port is non-blocking)."""
        data = b""
        while self._fd >= 0:
            try:
                chunk = os.read(self._fd, 1024)
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno == errno.EINTR:
                    continue
                self._broken(error)
                break
            if not chunk:
                break
            data += chunk
            self._last_rx = time.monotonic()
            if len(chunk) < 1024:
                break  # a tty's read hands over all it holds: no second system call to learn it is empty
        return data

    def _catch_up(self) -> None:
        """Take in what arrived while the reader was held back by VMIN (before judging silence)."""
        data = self._read_available()
        if data and self._request is not None:
            self._receive(data)
        elif data:
            self._rx += data

    def _set_vmin(self, count: int) -> None:
        """Make the port readable only once count bytes are waiting (0: at every byte).

        Linux's tty layer (n_tty) reports a non-canonical port with VTIME 0 readable to poll/epoll
        only when VMIN bytes are there, so the rest of a reply of known length costs one wake-up
        instead of one per byte. A port whose driver ignores it is read byte by byte as before.
        """
        count = min(count, 255)  # c_cc is one byte
        if count == self._vmin or self._fd < 0 or self._vmin_setter is None:
            return
        try:
            self._vmin_setter.set(self._fd, count)
        except (termios.error, OSError) as error:
            log.debug("serial port %s: cannot set VMIN %d: %s", self.port, count, error)
            self._bulk = False
            return
        self._vmin = count

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 1024)
        except BlockingIOError:
            return
        except OSError as error:
            if error.errno != errno.EINTR:
                self._broken(error)
            return
        if not data:
            return
        self._last_rx = time.monotonic()
        request = self._request
        if request is None:
            self._rx += data  # counted as stray when the next transaction starts
            return
        first = self._received == 0
        self._receive(data)
        if first:
            self._timed(request, data, self._done is None or self._done.done(), expected=False)

    def _timed(self, request: rtu.Request, data: bytes, whole: bool, expected: bool) -> None:
        """Learn the unit's turnaround from the first read of its reply, at _last_rx (see _expect_reply).

        A reply still coming in tells when it started: its bytes arrive at the line's pace, so it began the wire
        time of what has come before the read. A whole one does not: at its expected time it only says it was
        not slower than expected (the next is expected a little earlier, to follow a node that got quicker);
        read at its header's wake-up, it came in one burst (an adapter's latency timer) or was read late, and
        the unit's next reply is timed by its header again.
        """
        if self.local_echo or data[0] != request.unit:  # an echo, or a late reply of another unit: not its timing
            return
        shape = reply_shape(request)
        if whole:
            previous = self._turnaround.pop(shape, None)
            if expected and previous is not None:
                self._turnaround[shape] = max(0.0, previous - TURNAROUND_STEP)
            return
        started = self._last_rx - rtu.wire_time(len(data), self.baud)
        self._turnaround[shape] = max(0.0, started - self._request_end) + TURNAROUND_MARGIN

    def _receive(self, data: bytes) -> None:
        request = self._request
        assert request is not None
        if self._echo_left:
            # RS-485 adapters that hear their own transmitter hand the request back first.
            echo = request.frame[len(request.frame) - self._echo_left :]
            n = 0
            while n < len(data) and n < len(echo) and data[n] == echo[n]:
                n += 1
            mismatch = n < len(data) and n < len(echo)
            self._echo_left = 0 if mismatch else self._echo_left - n
            data = data[n:]
        self._received += len(data)
        self._rx += data
        self._scan(request)

    def _scan(self, request: rtu.Request) -> None:
        rx = self._rx
        while rx and rx[0] != request.unit:
            # A late reply of another unit (it missed its own timeout): skip it whole if it
            # checks out, else one byte at a time until our unit's address turns up.
            n = rtu.self_delimited_length(rx)
            if n is None or n > len(rx):
                self._byte_by_byte()
                self._arm_garble_timer()
                return
            if n > 0 and rtu.crc_ok(rx[:n]):
                self.stats.stray_frames += 1
                del rx[:n]
            else:
                self.stats.stray_bytes += 1
                del rx[:1]
        if not rx:
            return
        n = rtu.reply_length(request, rx)
        if n is not None and 0 < n <= len(rx):
            frame = bytes(rx[:n])
            self.stats.stray_bytes += len(rx) - n
            rx.clear()
            self._finish(rtu.parse_reply(request, frame))
            return
        if n is not None and n > len(rx) + 1 and self._bulk:
            # The reply's length is known: wake up once, when the rest is there. Silence is judged
            # from the last read that brought bytes, after the rest's wire time: a reply that
            # stops short is then ended by the garble timer as before, only later by that time.
            missing = n - len(rx)
            self._arm_garble_timer(rtu.wire_time(missing, self.baud) + self.garble_gap)
            # Away while the rest is on the wire: VMIN is changed only if the port has to be watched for
            # it (here, or in _come_back when the rest is late), so a reply that keeps the line's pace costs
            # no ioctl.
            if not self._step_away(missing):
                self._set_vmin(missing)  # the port reports the rest at once, when it is there
            return
        self._byte_by_byte()
        self._arm_garble_timer()

    def _byte_by_byte(self) -> None:
        """Silence is judged from each byte's arrival from here on: VMIN back to 0 (from LENGTH_BYTES)."""
        self._set_vmin(0)  # nothing when it is 0 already

    def _step_away(self, missing: int) -> bool:
        """Leave the event loop's epoll set while the rest of a reply is on the wire; come back once, at its end.

        VMIN keeps the port from being reported readable before the rest is there, but Linux's n_tty
        still wakes every task waiting on the port at each byte it receives, and the event loop's
        epoll_wait goes back to sleep inside the kernel: a context switch per byte (about 40 per poll at
        19200 baud; docs/performance.md, issue 13). So the port is not watched while the rest is on the
        wire, and the link comes back in one timer callback (_come_back) at the rest's end on the wire,
        counted from the read that brought the header (never before the end of a reply sent at the
        line's pace: the header was on the wire before it was read). A rest that is all there by then
        ends the transaction at that read, one wake-up where a rejoin timer and the port's wake-up for
        the last bytes cost two. A rest that is not all there (a node or adapter slower than the line)
        is waited for as before: the port is watched again with VMIN set, so the reply completes on its
        last byte. A reply is never dated before the read that took its last byte. Silence and the
        timeout are judged as before (_garbled, _expire: both come back first).
        """
        if self._away is not None or self._fd < 0 or self._watch is None:
            return False
        self._watch_port(False)
        self._away_missing = missing
        rest_end = self._last_rx + rtu.wire_time(missing, self.baud)
        self._away = asyncio.get_running_loop().call_at(rest_end, self._come_back)
        return True

    def _come_back(self) -> None:
        """The rest's end on the wire (see _step_away): take the rest, or watch the port for what is missing."""
        self._away = None
        if self._fd < 0 or self._watch is None:
            return
        request = self._request
        if request is not None:
            first = self._received == 0  # away for the whole reply (_expect_reply), not for the rest of one
            data = self._read_available()
            if data:
                self._receive(data)  # completes the reply, or steps away again, or sets VMIN for what is missing
                if first:
                    self._timed(request, data, self._done is None or self._done.done(), expected=True)
            else:
                if first:
                    self._turnaround.pop(reply_shape(request), None)  # late or silent: the next is timed by its header
                self._set_vmin(self._away_missing)  # nothing yet: reported at once when it is all there
        if self._away is None and self._done is not None and not self._done.done():
            self._watch_port(True)  # still waiting, not away again: reported at once when what is missing is there

    def _rejoin(self) -> None:
        """Watch the port again after _step_away, before its timer (at once when the reply is complete by then)."""
        if self._away is None:
            return
        self._cancel_away()
        self._watch_port(True)  # level-triggered: reported at once if complete

    def _watch_port(self, on: bool) -> None:
        """The port in or out of its epoll set's wake-ups: one epoll_ctl, and only when that changes.

        An event mask of 0 keeps the port in the set but out of its wake-ups: n_tty's per-byte wake stops at
        the port's own epoll (ep_poll_callback ignores a disabled item) instead of reaching the event loop.
        """
        if on == self._watched or self._fd < 0 or self._watch is None:
            return
        self._watch.modify(self._fd, select.EPOLLIN if on else 0)
        self._watched = on

    def _cancel_away(self) -> None:
        if self._away is not None:
            self._away.cancel()
            self._away = None

    def _arm_garble_timer(self, delay: float | None = None) -> None:
        self._cancel_garble_timer()
        loop = asyncio.get_running_loop()
        self._garble_timer = loop.call_later(self.garble_gap if delay is None else delay, self._garbled)

    def _cancel_garble_timer(self) -> None:
        if self._garble_timer is not None:
            self._garble_timer.cancel()
            self._garble_timer = None

    def _garbled(self) -> None:
        """The line went silent in the middle of a reply: judge what came."""
        request = self._request
        if request is None:
            return
        self._garble_timer = None
        self._rejoin()
        if self._vmin:
            # Bytes held back by VMIN arrived at unknown times: take them, go on byte by byte
            # and judge silence from now (never early: a reply still coming is not cut).
            self._set_vmin(0)
            self._bulk = False
            self._catch_up()
            if self._request is None or self._done is None or self._done.done():
                return
            if time.monotonic() - self._last_rx < self.garble_gap:
                self._arm_garble_timer(self._last_rx + self.garble_gap - time.monotonic())
                return
        frame = bytes(self._rx)
        self._rx.clear()
        outcome = rtu.parse_reply(request, frame)
        if not isinstance(outcome, rtu.FrameError):
            # Complete frames finish in _scan; one that did not cannot be trusted.
            outcome = rtu.FrameError("length", f"{len(frame)}-byte reply ended by silence")
        self._finish(outcome)

    def _expire(self) -> None:
        if self._request is None:
            return
        self._rejoin()
        if self._vmin:
            self._set_vmin(0)
            self._bulk = False
            self._catch_up()
            if self._done is None or self._done.done():
                return
        if self._rx and time.monotonic() - self._last_rx < self.garble_gap:
            # A reply is still coming in: let the line fall silent (the garble timer
            # judges it then), but no longer than the longest frame could take.
            if self._overtime is None:
                loop = asyncio.get_running_loop()
                self._overtime = loop.call_later(rtu.wire_time(rtu.MAX_FRAME, self.baud), self._expire_hard)
            return
        self._expire_hard()

    def _expire_hard(self) -> None:
        received = self._received
        detail = "no reply" if not received else f"reply incomplete after {received} bytes"
        self._finish(NoReply("timeout", detail))

    def _finish(self, outcome: Outcome) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(outcome)

    def _broken(self, error: OSError) -> None:
        """The port failed (USB adapter unplugged...): close it; the owner reopens later."""
        log.warning("serial port %s failed: %s", self.port, error)
        self._failure = error
        self._release()
        self._finish(NoReply("io", f"port failed: {error.strerror or error}"))


def reply_shape(request: rtu.Request) -> tuple[int, int, int]:
    """What a unit's turnaround is learnt for (RtuLink._expect_reply): its address, the function and the count."""
    return (request.unit, request.function, request.count)


def open_serial(port: str, baud: int, parity: str, stopbits: int) -> int:
    """Open a serial port raw and non-blocking, 8 data bits, and lock it for this process.

    The lock (flock, as pyserial's exclusive=True) keeps a second gateway or a
    stray mbpoll from sharing the line by mistake: one owner per port.
    """
    speed = getattr(termios, f"B{baud}", None)
    if not isinstance(speed, int):
        raise OSError(errno.EINVAL, f"unsupported baud rate {baud}")
    fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise OSError(errno.EBUSY, "in use by another process (one owner per port)") from error
        attrs = termios.tcgetattr(fd)
        cflag = termios.CS8 | termios.CREAD | termios.CLOCAL
        iflag = termios.IGNBRK
        if parity in ("E", "O"):
            # A character with a parity error arrives as 0x00 and then fails the frame's CRC.
            cflag |= termios.PARENB | (termios.PARODD if parity == "O" else 0)
            iflag |= termios.INPCK
        if stopbits == 2:
            cflag |= termios.CSTOPB
        cc: list[bytes | int] = list(attrs[6])
        # Non-canonical, return whatever is there: the reader callback does the framing.
        cc[termios.VMIN] = 0
        cc[termios.VTIME] = 0
        new: list[int | list[bytes | int]] = [iflag, 0, cflag, 0, speed, speed, cc]
        try:
            termios.tcsetattr(fd, termios.TCSANOW, new)
        except termios.error:
            if not cflag & termios.PARENB:
                raise
            # A pseudo-terminal (the simulator's bus) drops PARENB, and Linux refuses (EINVAL) a request whose
            # only change is one it drops: a pty already set up for parity, asked again. Without PARENB the
            # request is what the pty holds; INPCK and PARODD still tell the simulator the parity.
            new[2] = cflag & ~termios.PARENB
            termios.tcsetattr(fd, termios.TCSANOW, new)
        termios.tcflush(fd, termios.TCIOFLUSH)
    except termios.error as error:  # no OSError subclass: as one, so callers report it; the fd must not leak
        os.close(fd)
        raise OSError(error.args[0], str(error.args[-1])) from None
    except OSError:
        os.close(fd)
        raise
    return fd


class TcpLink:
    """Modbus TCP (a TCP node, or a TCP-to-RTU gateway) through pymodbus."""

    def __init__(self, host: str, port: int = 502, ceiling: float = 1.0) -> None:
        self.name = f"{host}:{port}"
        self.host = host
        self.port = port
        self.ceiling = ceiling
        self.stats = LinkStats()
        self.client: AsyncModbusTcpClient | None = None

    @property
    def is_open(self) -> bool:
        return self.client is not None and self.client.connected

    async def open(self) -> None:
        if self.client is None:
            self.client = AsyncModbusTcpClient(self.host, port=self.port, timeout=self.ceiling, retries=0)
        if not await self.client.connect():
            self.stats.open_failures += 1
            raise OSError(f"cannot connect to Modbus TCP {self.name}")
        self.stats.opens += 1

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def gap(self) -> float:
        return 0.0

    def request_time(self, n_bytes: int) -> float:
        return 0.0

    async def transact(self, request: rtu.Request, timeout: float) -> Exchange:
        sent = time.monotonic()
        client = self.client
        if client is None or not client.connected:
            return Exchange(NoReply("io", "not connected"), sent, sent, sent)
        self.stats.transactions += 1
        try:
            response = await asyncio.wait_for(self._call(client, request), timeout)
        except TimeoutError:
            return Exchange(NoReply("timeout", "no reply"), sent, sent, time.monotonic())
        except ModbusIOException as error:
            return Exchange(NoReply("timeout", str(error)), sent, sent, time.monotonic())
        except (ConnectionException, OSError) as error:
            return Exchange(NoReply("io", str(error)), sent, sent, time.monotonic())
        except ModbusException as error:
            return Exchange(rtu.FrameError("content", str(error)), sent, sent, time.monotonic())
        return Exchange(_reply_of(request, response), sent, sent, time.monotonic())

    @staticmethod
    async def _call(client: AsyncModbusTcpClient, request: rtu.Request) -> Any:
        unit, address, count = request.unit, request.address, request.count
        parsed = rtu.parse_request(request.frame)
        assert not isinstance(parsed, rtu.FrameError), parsed
        f = request.function
        if f == rtu.READ_INPUT_REGISTERS:
            return await client.read_input_registers(address, count=count, device_id=unit)
        if f == rtu.READ_HOLDING_REGISTERS:
            return await client.read_holding_registers(address, count=count, device_id=unit)
        if f == rtu.READ_COILS:
            return await client.read_coils(address, count=count, device_id=unit)
        if f == rtu.READ_DISCRETE_INPUTS:
            return await client.read_discrete_inputs(address, count=count, device_id=unit)
        if f == rtu.WRITE_SINGLE_COIL:
            return await client.write_coil(address, bool(parsed.values[0]), device_id=unit)
        if f == rtu.WRITE_SINGLE_REGISTER:
            return await client.write_register(address, parsed.values[0], device_id=unit)
        if f == rtu.WRITE_MULTIPLE_COILS:
            return await client.write_coils(address, [bool(v) for v in parsed.values], device_id=unit)
        return await client.write_registers(address, list(parsed.values), device_id=unit)


def _reply_of(request: rtu.Request, response: Any) -> rtu.Reply:
    if response.isError():
        return rtu.ExceptionReply(int(response.exception_code))
    f = request.function
    if f in rtu.READ_REGISTERS:
        words = tuple(int(w) for w in response.registers)
        if len(words) != request.count:
            return rtu.FrameError("length", f"{len(words)} registers, expected {request.count}")
        return rtu.Registers(words)
    if f in rtu.READ_BITS:
        return rtu.Bits(tuple(bool(b) for b in response.bits[: request.count]))
    parsed = rtu.parse_request(request.frame)
    assert not isinstance(parsed, rtu.FrameError)
    value = request.count if f in (rtu.WRITE_MULTIPLE_COILS, rtu.WRITE_MULTIPLE_REGISTERS) else (
        (0xFF00 if parsed.values[0] else 0) if f == rtu.WRITE_SINGLE_COIL else parsed.values[0]
    )
    return rtu.WriteAck(request.address, value)
