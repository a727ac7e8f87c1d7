"""An RS-485 bus in software: a pseudo-terminal carrying several firmware nodes.

The gateway (or mbpoll) opens the pty's slave side like a serial port. This
module sits on the master side, cuts the byte stream into frames at the
t3.5 silence the way a real node does, hands every frame to every node on
the bus (only the addressed one answers, as on a real shared line), and
writes the reply back no earlier than the wire would have delivered it.

Wire timing: a character is 11 bits (start, 8 data, parity or second stop,
stop), so a frame of n bytes takes n * 11 / baud seconds. The simulator
waits for the request's wire time, the node's turnaround, and the reply's
wire time before the reply appears, so a master measures at least the real
bus time.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from firmware.node import Node

BITS_PER_CHARACTER = 11


def character_time(baud: int) -> float:
    return BITS_PER_CHARACTER / baud


def frame_gap(baud: int) -> float:
    """t3.5: 3.5 characters at <= 19200 baud, a fixed 1.75 ms above (Modbus serial line v1.02)."""
    return 3.5 * character_time(baud) if baud <= 19200 else 0.00175


def wire_time(n_bytes: int, baud: int) -> float:
    return n_bytes * character_time(baud)


@dataclass
class BusStats:
    frames_in: int = 0
    replies: int = 0
    silent: int = 0  # frames no node answered (other address, bad CRC, broadcast)
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass
class SimNode:
    """A firmware node on a simulated bus, with its reply turnaround."""

    node: Node
    turnaround: float = 0.002  # seconds between the end of a request and the start of the reply
    on_sample: Callable[[SimNode, int], None] | None = None
    stats: dict[str, int] = field(default_factory=dict)


class PtyBus:
    """One simulated bus on one pseudo-terminal, served by one thread."""

    def __init__(
        self,
        name: str,
        nodes: Sequence[SimNode],
        baud: int = 9600,
        link: Path | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.name = name
        self.nodes = list(nodes)
        self.baud = baud
        self.link = link
        self.clock_ms = clock_ms or (lambda: time.monotonic_ns() // 1_000_000)
        self.stats = BusStats()
        self._master = -1
        self._slave = -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.path = ""

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> str:
        """Open the pty and start serving; returns the path a master opens."""
        self._master, self._slave = os.openpty()
        # Raw on the slave side: no echo, no CR/LF translation, 8-bit clean.
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        if self.link is not None:
            self.link.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
            self.link.symlink_to(self.path)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"bus-{self.name}", daemon=True)
        self._thread.start()
        return str(self.link) if self.link is not None else self.path

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1
        if self.link is not None and self.link.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    # -- the serving loop ----------------------------------------------------------
    def _sample_due_nodes(self) -> None:
        now = self.clock_ms()
        for sim in self.nodes:
            if sim.node.sample_due(now):
                sim.node.sample(now)
                if sim.on_sample is not None:
                    sim.on_sample(sim, now)

    def _serve(self) -> None:
        gap = frame_gap(self.baud)
        frame = bytearray()
        first_byte_at = 0.0
        last_byte_at = 0.0
        while not self._stop.is_set():
            self._sample_due_nodes()
            timeout = gap if frame else 0.02
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
                    time.sleep(0.01)
                    continue
                if not frame:
                    first_byte_at = now
                frame += chunk
                last_byte_at = now
                continue
            if frame and now - last_byte_at >= gap:
                self._dispatch(bytes(frame), first_byte_at)
                frame.clear()

    def _dispatch(self, request: bytes, first_byte_at: float) -> None:
        self.stats.frames_in += 1
        self.stats.bytes_in += len(request)
        now_ms = self.clock_ms()
        for sim in self.nodes:
            n = sim.node.handle(request, len(request), now_ms)
            if n:
                reply = bytes(sim.node.slave.tx[:n])
                # The request occupied the wire from its first byte; the reply
                # starts after the node's turnaround and takes its own wire time.
                due = first_byte_at + wire_time(len(request), self.baud) + sim.turnaround
                due += wire_time(len(reply), self.baud)
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                os.write(self._master, reply)
                self.stats.replies += 1
                self.stats.bytes_out += len(reply)
                return
        self.stats.silent += 1
