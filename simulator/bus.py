"""A bus in software: firmware nodes behind a pseudo-terminal (RS-485) or a TCP port.

:class:`SimBus` holds what every transport shares: the nodes on the bus,
their boot and their sampling, and answering one request frame the way the
line would, with the faults of the run applied. :class:`PtyBus` puts it on a
pseudo-terminal: the gateway (or mbpoll) opens the pty's slave side like a
serial port; this module sits on the master side, cuts the byte stream into
frames at the t3.5 silence the way a real node does, hands every frame to
every node on the bus (only the addressed one answers; a broadcast gets no
answer, as on a real shared line) and puts the reply on the line at wire
speed. simulator/tcp.py puts the same nodes behind Modbus TCP.

Wire timing (PtyBus): a character is 11 bits (start, 8 data, parity or a
second stop, stop), so n bytes take n * 11 / baud seconds. The request
occupied the wire from its first byte for its own wire time; the reply
starts a node's turnaround later. The reply is written in small groups of
bytes, each group released when the wire would have delivered its last byte,
so no byte is ever seen earlier than on a real line and the last one arrives
exactly at the wire time. Why groups rather than the whole reply at its end:
a master sees the reply trickle in as on a real line, which matters to the
masters that time the first byte separately (libmodbus's response timeout
covers only the first byte; the rest fall under its byte timeout) and to
those that read by the expected length. A group spans at most t1.5 (the
longest silence allowed inside a frame), which is one byte at 19200 baud and
below; above, a few bytes per group keep the number of wake-ups reasonable.
Scheduling is against absolute times, so a late wake-up (a busy host) delays
one group but does not accumulate. A bus in burst mode (``Site(burst=True)``)
writes each reply whole when its last byte is due instead: a busy host can
then delay a reply, but never cut it in two with a pause no real line makes.

Sampling: each node samples at the moments its firmware schedules (every
sample_interval of simulated time). When the host fell behind (the thread
was writing a reply, or the clock runs many times faster than real time),
the missed samples are taken at their scheduled moments, oldest first, so
the sequence of samples and their values depend only on the seed, not on
how busy the host was; beyond MAX_CATCH_UP samples in one go the bus gives
up on the backlog and samples now (counted in BusStats.skipped_samples),
unless it is lossless (``Site(lossless=True)``): then it takes the rest on
its next turns, however late.

Faults (simulator/faults.py) come from a :class:`BusFaults` view of the
run's fault plan, asked at every request and every sample:

- bus_unplugged: the RS-485 cable between the master and the nodes is
  pulled. A master on a real unplugged cable sees silence (its adapter stays
  open; nothing comes back), so that is what this does: no node hears the
  request, nothing is written. Pulling the USB adapter itself is different
  (the port disappears) and is :meth:`PtyBus.replug`.
- no_reply: the node's transceiver is dead: it neither hears nor answers
  (so a write to it has no effect either).
- late_reply: the reply leaves delay_ms after the turnaround.
- crc_corruption: one bit of the reply's CRC flips (a node or a whole bus).
- garbage: random bytes on the line. From the bus (a chattering device):
  they go out right after the request, ahead of any reply, and run into it;
  from a node: its reply is replaced by them.
- reboot: the node goes silent (and stops sampling) while the fault lasts,
  then a fresh firmware Node boots: its sample sequence restarts at 1, its
  boot count is one more, its holding registers (on flash) are kept and its
  coils are off. A reboot shorter than a loop turn still happens.
- sensor faults (stuck_value, spikes, sensor_missing) act in the sensor
  (simulator/sensors.py).

Line settings (PtyBus): every node has its own UART settings (``SimNode.line``:
baud, parity; by default the bus's baud, 8N1), and the bus reads the settings
the master chose from the pty before each request (:func:`master_line`). A
node whose settings match hears the request as sent. One whose settings do not
hears what its UART samples (simulator/uart.py: wrong bytes, framing errors),
so its firmware sees garbage (and counts a CRC error); and when the request
was meant for it, it answers anyway, and the master receives the node's reply
as its own UART samples it at the wrong settings: garbage, with zero bytes
for framing and parity errors when the master checks parity. (A real node
hearing garbage stays silent; answering lets a master at the wrong settings
see what a mismatched line looks like, which is what the simulator is for:
rehearsing that fault, and letting `sitewatch scan --auto` find the setting.)
Linux ptys clear PARENB (the pty driver forces CS8 and no parity), so parity is
read from what survives: INPCK (parity checking, which the gateway and
libmodbus turn on for E and O) and PARODD. A master that sets parity without
INPCK (pyserial) looks like 8N1 at even parity, and like 8O1 at odd.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import termios
import threading
import time
import tty
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from firmware.modbus_rtu import crc_ok
from firmware.node import Node
from firmware.rs485 import BAUD_RATES
from simulator.faults import Fault, FaultKind, corrupt_crc, garbage_bytes, happens
from simulator.uart import LineSettings, fifo_bytes, receive, termios_bytes, wire_seconds

BITS_PER_CHARACTER = 11
IDLE_WAIT = 0.02  # s, longest sleep of a serving loop with nothing to do
MIN_WAIT = 0.0005  # s, shortest one (a node due sooner still waits this long)
MAX_CATCH_UP = 250  # samples one node takes in one loop turn to catch up


def character_time(baud: int) -> float:
    return BITS_PER_CHARACTER / baud


def frame_gap(baud: int) -> float:
    """t3.5: 3.5 characters at <= 19200 baud, a fixed 1.75 ms above (Modbus serial line v1.02)."""
    return 3.5 * character_time(baud) if baud <= 19200 else 0.00175


def character_gap(baud: int) -> float:
    """t1.5, the longest silence allowed inside a frame: 1.5 characters, a fixed 0.75 ms above 19200 baud."""
    return 1.5 * character_time(baud) if baud <= 19200 else 0.00075


def wire_time(n_bytes: int, baud: int) -> float:
    return n_bytes * character_time(baud)


def group_size(baud: int) -> int:
    """Bytes per write when pacing a reply: as many as fit in t1.5, at least one."""
    return max(1, int(character_gap(baud) / character_time(baud) + 1e-9))


class BusFaults(Protocol):
    """What a bus asks the run's fault plan; times are node ticks (simulated ms since the site started)."""

    rng: random.Random  # for the per-event probabilities of link faults

    def node_faults(self, unit_id: int, now_ms: int) -> tuple[Fault, ...]:
        """Faults acting on this node now: its own and its bus's."""
        ...

    def bus_faults(self, now_ms: int) -> tuple[Fault, ...]:
        """Faults acting on the whole bus now."""
        ...

    def reboots(self, unit_id: int, now_ms: int) -> tuple[tuple[float, float], ...]:
        """(start, end) in node ticks of this node's reboot faults that have begun by now."""
        ...


class NoFaults:
    """A fault-free run."""

    def __init__(self) -> None:
        self.rng = random.Random(0)

    def node_faults(self, unit_id: int, now_ms: int) -> tuple[Fault, ...]:
        return ()

    def bus_faults(self, now_ms: int) -> tuple[Fault, ...]:
        return ()

    def reboots(self, unit_id: int, now_ms: int) -> tuple[tuple[float, float], ...]:
        return ()


@dataclass
class BusStats:
    frames_in: int = 0
    replies: int = 0
    silent: int = 0  # frames no node answered (other address, bad CRC, broadcast, faults)
    bytes_in: int = 0
    bytes_out: int = 0
    unplugged: int = 0  # requests lost on an unplugged bus
    ignored: int = 0  # requests to a node with a no_reply fault
    late: int = 0  # replies held back by a late_reply fault
    corrupted: int = 0  # replies sent with a broken CRC
    garbage: int = 0  # bursts of garbage put on the line
    mismatched: int = 0  # requests a node heard at other line settings than its own (it heard garbage)
    reboots: int = 0
    samples: int = 0
    skipped_samples: int = 0  # samples given up because the host fell too far behind


@dataclass
class SimNode:
    """A firmware node on a simulated bus, with its reply turnaround and its boot state."""

    node: Node
    turnaround: float = 0.002  # seconds between the end of a request and the start of the reply
    on_sample: Callable[[SimNode, int], None] | None = None
    stats: dict[str, int] = field(default_factory=dict)
    unit_id: int = 0  # the node's address in the run's fault plan (0: the node's own unit id)
    line: LineSettings | None = None  # the node's UART settings (None: whatever the master uses)
    booted: bool = False
    down: bool = False  # rebooting: deaf, silent, not sampling
    pending_reboot: bool = False
    pending_since: float = 0.0  # start (node ticks) of the first reboot fault of the pending reboot
    seen_reboots: set[float] = field(default_factory=set)

    @property
    def ident(self) -> int:
        return self.unit_id or int(self.node.unit_id)

    def boot(self, now_ms: int) -> None:
        """What the board does at power-up: the self-test, which takes the first sample.

        The bus boots a node at its boot tick (not whenever the thread gets to it), so the
        sample schedule, and with it the ground truth, does not depend on the host.
        """
        self.node.self_test(now_ms)
        self.booted = True
        self.down = False
        self._sampled(now_ms)

    def reboot(self, now_ms: int) -> None:
        """Restart with a fresh firmware Node: new sequence, boot count + 1, configuration kept."""
        old = self.node
        holdings = array("H", old.bank.holdings)  # the configuration survives on flash
        boot_count = int(old.bank.get_input("boot_count")) + 1
        unit_id = int(old.bank.get_holding_raw("unit_id"))  # a unit id written over Modbus applies now
        fresh = Node(old.kind, old.sensor, now_ms, unit_id=unit_id, boot_count=boot_count)
        fresh.bank.holdings[:] = holdings
        self.node = fresh
        if self.line is not None:
            # The firmware sets its UART from baud_code and parity at boot (firmware/main.py): settings
            # written over Modbus apply now, as on a real node after its restart.
            baud_code = int(fresh.bank.get_holding_raw("baud_code"))
            parity = int(fresh.bank.get_holding_raw("parity"))
            baud = BAUD_RATES[baud_code] if 0 <= baud_code < len(BAUD_RATES) else self.line.baud
            self.line = LineSettings(baud, "NEO"[parity] if 0 <= parity < 3 else self.line.parity)
        self.boot(now_ms)

    def sample(self, now_ms: int) -> None:
        self.node.sample(now_ms)
        self._sampled(now_ms)

    def _sampled(self, now_ms: int) -> None:
        if self.on_sample is not None:
            self.on_sample(self, now_ms)


@dataclass(frozen=True, slots=True)
class Reply:
    """What goes on the line after a request, and how long after the request it starts."""

    frame: bytes  # the answering node's reply frame (as damaged by faults), or b""
    delay: float  # s after the end of the request (turnaround plus any late_reply)
    sim: SimNode | None = None  # the node that answered (None: only bus garbage)
    noise: bytes = b""  # bus garbage ahead of the reply
    corrupted: bool = False  # the frame's CRC was broken by a fault
    garbage: bool = False  # the frame was replaced by a node's garbage
    wire: float = 0.0  # s the frame occupies the line when sent at other settings than the master's (0: its own)

    @property
    def data(self) -> bytes:
        return self.noise + self.frame


class SimBus:
    """Nodes on one bus: boot, sampling and answering, whatever carries the bytes."""

    def __init__(
        self,
        name: str,
        nodes: Sequence[SimNode],
        clock_ms: Callable[[], int] | None = None,
        *,
        faults: BusFaults | None = None,
        speed: float = 1.0,
    ) -> None:
        self.name = name
        self.nodes = list(nodes)
        self.clock_ms = clock_ms or (lambda: time.monotonic_ns() // 1_000_000)
        self.faults: BusFaults = faults if faults is not None else NoFaults()
        self.speed = speed
        self.stats = BusStats()
        # Lossless: never give up a backlog; a host that falls behind takes every sample late
        # (in turns of MAX_CATCH_UP, answering requests between them). Tests that count samples
        # use it, so a busy CPU makes them slower, never different.
        self.lossless = False

    def start(self) -> str:
        """Start serving; returns what a master opens."""
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    # -- the nodes' own duties ------------------------------------------------------
    def maintain(self, now_ms: int) -> None:
        """Boot, reboot, tick and sample every node as its firmware would by now."""
        for sim in list(self.nodes):
            self._maintain(sim, now_ms)

    def _maintain(self, sim: SimNode, now_ms: int) -> None:
        windows = self.faults.reboots(sim.ident, now_ms)
        new = [(start, end) for start, end in windows if start not in sim.seen_reboots]
        if new:
            sim.seen_reboots.update(start for start, _ in new)
            # A reboot that was over before the node first booted (a run that skipped past it) is history.
            current = [start for start, end in new if sim.booted or end > sim.node.boot_ms]
            if current:
                if not sim.pending_reboot:
                    sim.pending_reboot = True
                    sim.pending_since = min(current)
                sim.down = True
        if sim.pending_reboot:
            # Boot when the last of the overlapping reboots is over, at that very tick.
            boot_at = max(end for start, end in windows if start >= sim.pending_since)
            if now_ms < boot_at:
                return
            sim.pending_reboot = False
            sim.reboot(int(boot_at))
            self.stats.reboots += 1
            self.stats.samples += 1
            return
        if not sim.booted:
            sim.boot(int(sim.node.boot_ms))
            self.stats.samples += 1
        node = sim.node
        node.tick(now_ms)
        taken = 0
        while node.sample_due(now_ms):
            if taken == MAX_CATCH_UP:
                if self.lossless:
                    break  # the rest on the next turn
                interval = max(1, int(node.bank.get_holding_raw("sample_interval")))
                self.stats.skipped_samples += (now_ms - node.next_sample_ms) // interval
                sim.sample(now_ms)
                self.stats.samples += 1
                break
            sim.sample(node.next_sample_ms)  # at the moment the firmware scheduled it
            self.stats.samples += 1
            taken += 1

    def wait_for_samples(self, now_ms: int, longest: float = IDLE_WAIT) -> float:
        """Real seconds until the next sample falls due (between MIN_WAIT and longest)."""
        soonest = longest
        for sim in self.nodes:
            if sim.booted and not sim.down:
                due = (sim.node.next_sample_ms - now_ms) / 1000 / self.speed
                soonest = min(soonest, due)
        return max(MIN_WAIT, soonest)

    # -- one request ----------------------------------------------------------------
    def respond(self, request: bytes, now_ms: int, master: LineSettings | None = None) -> Reply | None:
        """Hand a request frame to every node; what goes back on the line, if anything.

        master: the master's UART settings (None: every node hears it as sent, as over TCP).
        """
        self.stats.frames_in += 1
        self.stats.bytes_in += len(request)
        faults = self.faults
        rng = faults.rng
        line = faults.bus_faults(now_ms)
        if any(f.kind == FaultKind.BUS_UNPLUGGED for f in line):
            self.stats.unplugged += 1
            return None
        noise = b""
        for fault in line:
            if fault.kind == FaultKind.GARBAGE and happens(fault, rng):
                noise += garbage_bytes(rng, fault.length)
                self.stats.garbage += 1
        answer: Reply | None = None
        for sim in list(self.nodes):
            if sim.down or not sim.booted:
                continue
            acting = faults.node_faults(sim.ident, now_ms)
            own = [f for f in acting if f.unit_id is not None]
            if any(f.kind == FaultKind.NO_REPLY for f in own):
                if request and request[0] == sim.node.unit_id:
                    self.stats.ignored += 1
                continue
            if master is not None and sim.line is not None and not sim.line.understands(master):
                mismatched = self._mismatched(sim, request, now_ms, master, sim.line)
                if mismatched is not None and answer is None:
                    answer = mismatched
                continue
            n = sim.node.handle(request, len(request), now_ms)
            if not n or answer is not None:
                continue  # silent, or a second node with the same address (the first one wins)
            reply = bytes(sim.node.slave.tx[:n])
            delay = sim.turnaround
            late = sum(f.delay_ms for f in own if f.kind == FaultKind.LATE_REPLY)
            if late:
                delay += late / 1000
                self.stats.late += 1
            corrupted = garbled = False
            if any(f.kind == FaultKind.CRC_CORRUPTION and happens(f, rng) for f in acting):
                reply = corrupt_crc(reply, rng)
                corrupted = True
                self.stats.corrupted += 1
            for fault in own:
                if fault.kind == FaultKind.GARBAGE and happens(fault, rng):
                    reply = garbage_bytes(rng, fault.length)
                    garbled = True
                    self.stats.garbage += 1
            answer = Reply(reply, delay, sim, noise, corrupted, garbled)
        if answer is None:
            self.stats.silent += 1
            return Reply(b"", 0.0, None, noise) if noise else None
        self.stats.replies += 1
        return answer if not noise else Reply(
            answer.frame, answer.delay, answer.sim, noise, answer.corrupted, answer.garbage, answer.wire
        )

    def _mismatched(
        self, sim: SimNode, request: bytes, now_ms: int, master: LineSettings, own: LineSettings
    ) -> Reply | None:
        """A node at other line settings than the master's: it hears garbage; meant for it, it answers garbage."""
        self.stats.mismatched += 1
        heard = fifo_bytes(receive(request, master, own))
        n = sim.node.handle(heard, len(heard), now_ms) if heard else 0  # mostly a CRC error, counted
        if n:
            sent = bytes(sim.node.slave.tx[:n])  # its UART got the request through (parity ignored)
        elif len(request) >= 4 and request[0] == sim.node.unit_id and crc_ok(request, len(request)):
            # Meant for it: it answers, as long as a short read's reply, random bytes (the run's seed).
            sent = garbage_bytes(self.faults.rng, 7)
        else:
            return None
        # Sent at its own settings, received as the master's UART samples them.
        seen = termios_bytes(receive(sent, own, master), check_parity=master.parity != "N")
        if not seen:
            return None
        self.stats.garbage += 1
        return Reply(seen, sim.turnaround, sim, garbage=True, wire=wire_seconds(len(sent), own))


class PtyBus(SimBus):
    """One simulated RS-485 bus on one pseudo-terminal, served by one thread."""

    def __init__(
        self,
        name: str,
        nodes: Sequence[SimNode],
        baud: int = 9600,
        link: Path | None = None,
        clock_ms: Callable[[], int] | None = None,
        *,
        faults: BusFaults | None = None,
        speed: float = 1.0,
        clock_at: Callable[[float], int] | None = None,
        parity: str = "N",
    ) -> None:
        super().__init__(name, nodes, clock_ms, faults=faults, speed=speed)
        self.baud = baud
        self.parity = parity  # the line's settings when the pty opens, until a master sets its own
        # The tick of a monotonic instant: the nodes hear a request at the tick its end was on the
        # wire, not whenever this thread got round to it (see _serve).
        self.clock_at = clock_at
        # Burst: each reply handed over whole when its last byte is due (see _transmit).
        self.burst = False
        # Honour the master's line settings (module docstring); off: every node hears every request as sent.
        self.honour_line = True
        # When this thread saw the first byte of each request (monotonic), the latest last: a test
        # compares them with when its master sent them, to know how late a busy host let the
        # simulated nodes hear each request.
        self.requests_seen: deque[float] = deque(maxlen=10_000)
        self.link = link
        self._master = -1
        self._slave = -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.path = ""

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> str:
        """Open the pty and start serving; returns the path a master opens."""
        self._open()
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"bus-{self.name}", daemon=True)
        self._thread.start()
        return str(self.link) if self.link is not None else self.path

    def stop(self) -> None:
        self._halt()
        if self.link is not None and self.link.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    def replug(self, away: float = 0.0) -> str:
        """The USB adapter pulled out and put back after `away` seconds.

        A master holding the old port gets an error (the pty hangs up) and must
        reopen it; the stable path (the link) then leads to the new pty, as a
        udev rule keeps /dev/serial/by-id/... stable across re-plugging.
        While away, the link is gone, as the device node is. The nodes keep
        running (they are powered from elsewhere).
        """
        self._halt()
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
        if away > 0:
            time.sleep(away)
        return self.start()

    def _open(self) -> None:
        self._master, self._slave = os.openpty()
        # Raw on the slave side: no echo, no CR/LF translation, 8-bit clean. At the bus's own settings, as
        # a serial port keeps the last ones it was set to: a master that sets none talks at the bus's.
        tty.setraw(self._slave)
        attrs = termios.tcgetattr(self._slave)
        speed = getattr(termios, f"B{self.baud}", None)
        if isinstance(speed, int):
            attrs[4] = attrs[5] = speed
        attrs[0] &= ~termios.INPCK
        attrs[2] &= ~termios.PARODD
        if self.parity in ("E", "O"):
            attrs[0] |= termios.INPCK
            attrs[2] |= termios.PARODD if self.parity == "O" else 0
        termios.tcsetattr(self._slave, termios.TCSANOW, attrs)
        self.path = os.ttyname(self._slave)
        if self.link is not None:
            self.link.parent.mkdir(parents=True, exist_ok=True)
            # Repoint atomically: a master reopening the link never finds it missing.
            fresh = self.link.with_name(f".{self.link.name}.{os.getpid()}.new")
            with contextlib.suppress(FileNotFoundError):
                fresh.unlink()
            fresh.symlink_to(self.path)
            os.replace(fresh, self.link)

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1

    # -- the serving loop ----------------------------------------------------------
    def _serve(self) -> None:
        gap = frame_gap(self.baud)
        frame = bytearray()
        first_byte_at = 0.0
        last_byte_at = 0.0
        line = LineSettings(self.baud)
        while not self._stop.is_set():
            now_ms = self.clock_ms()
            if not frame:
                # Not while a request is coming in: the nodes hear it at the tick it ended on the
                # wire, and must not have sampled past that tick by then.
                self.maintain(now_ms)
            timeout = min(gap, self.wait_for_samples(now_ms)) if frame else self.wait_for_samples(now_ms)
            try:
                readable, _, _ = select.select([self._master], [], [], timeout)
            except (OSError, ValueError):
                return
            now = time.monotonic()
            if readable:
                try:
                    chunk = os.read(self._master, 1024)
                except OSError:
                    # No process holds the slave side open right now; keep waiting.
                    self._stop.wait(0.01)
                    continue
                if not frame:
                    first_byte_at = now
                    # The master set its line before writing: a request is at one setting.
                    line = self.master_line(line)
                    gap = frame_gap(line.baud)
                frame += chunk
                last_byte_at = now
                continue
            if frame and now - last_byte_at >= gap:
                request = bytes(frame)
                frame.clear()
                self.requests_seen.append(first_byte_at)
                heard_ms = self._heard_ms(first_byte_at, len(request), line.baud)
                reply = self.respond(request, heard_ms, line if self.honour_line else None)
                if reply is not None:
                    # The request occupied the wire from its first byte; the reply
                    # starts after the turnaround (and any fault's delay).
                    start = first_byte_at + wire_time(len(request), line.baud) + reply.delay
                    char = character_time(line.baud)
                    if reply.wire and reply.data:
                        char = reply.wire / len(reply.data)  # sent at the node's rate, whatever arrives
                    self._transmit(reply.data, start, char)

    def master_line(self, previous: LineSettings) -> LineSettings:
        """The line settings the master set on the pty (previous if they cannot be read)."""
        try:
            attrs = termios.tcgetattr(self._master)  # on Linux, the slave's settings
        except (termios.error, OSError):
            return previous
        return line_from_termios(attrs[0], attrs[2], attrs[5], previous)

    def _heard_ms(self, first_byte_at: float, n_bytes: int, baud: int | None = None) -> int:
        """The tick at which a node knows a request is complete: its end on the wire plus t3.5.

        Reckoned from when this thread saw its first byte, not from when the thread handles it: on
        a busy host (the thread waits for the CPU, or for the interpreter lock held by a master in
        the same process) that can be tens of milliseconds later, which no node on a real line
        would add to the sample age it reports. Never later than now.
        """
        now_ms = self.clock_ms()
        if self.clock_at is None:
            return now_ms
        baud = baud or self.baud
        heard = first_byte_at + wire_time(n_bytes, baud) + frame_gap(baud)
        return min(now_ms, self.clock_at(heard))

    def _transmit(self, data: bytes, start: float, char: float | None = None) -> None:
        """Write data as the wire delivers it from `start` (monotonic seconds): never a byte early.

        char: seconds per byte as it arrives (default: a character at the bus's baud rate).
        """
        char = character_time(self.baud) if char is None else char
        # In bursts, the reply arrives as one piece at the moment its last byte would, as through a
        # USB adapter whose latency timer is longer than the frame. Tests that must not depend on
        # the host use it: a paced reply is written by this thread between the master's reads, and
        # a busy host that keeps the thread off the CPU for longer than the master's garble gap cuts
        # the frame in two, a pause no UART makes. The last byte's time is the same either way.
        # As many bytes per write as fit in t1.5 at the rate they arrive (group_size), at least one.
        longest_pause = 1.5 * char if char >= character_time(19200) else character_gap(115200)
        group = len(data) if self.burst else max(1, int(longest_pause / char + 1e-9))
        for offset in range(0, len(data), group):
            chunk = data[offset : offset + group]
            if not self._sleep_until(start + (offset + len(chunk)) * char):
                return
            try:
                os.write(self._master, chunk)
            except OSError:
                return
            self.stats.bytes_out += len(chunk)

    def _sleep_until(self, due: float) -> bool:
        """Sleep until a monotonic time; False if the bus is stopping."""
        while True:
            left = due - time.monotonic()
            if left <= 0:
                return True
            if self._stop.is_set():
                return False
            if left > 0.005:
                self._stop.wait(left - 0.002)  # coarse, interruptible by stop()
            else:
                time.sleep(left)


_SPEEDS = {getattr(termios, name): int(name[1:]) for name in dir(termios) if name[:1] == "B" and name[1:].isdigit()}


def line_from_termios(iflag: int, cflag: int, ospeed: int, previous: LineSettings) -> LineSettings:
    """Line settings from a termios (iflag, cflag, speed); parity from PARENB, or INPCK on a pty (docstring)."""
    baud = _SPEEDS.get(ospeed, previous.baud) or previous.baud
    odd = bool(cflag & termios.PARODD)
    parity = "N"
    if cflag & termios.PARENB or iflag & termios.INPCK:
        parity = "O" if odd else "E"
    elif odd:
        parity = "O"  # PARENB was cleared by the pty driver; PARODD says odd parity was asked for
    return LineSettings(baud, parity, 2 if cflag & termios.CSTOPB else 1)
