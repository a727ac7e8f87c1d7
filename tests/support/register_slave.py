"""A plain Modbus RTU slave on a pseudo-terminal, serving fixed registers: vendor devices for scan tests.

Independent of the simulator's firmware nodes: it answers reads (functions 3 and 4) of the
registers it holds, exception 2 (illegal data address) for any other address, exception 1 for
any other function, and stays silent for other unit ids, bad CRCs and broadcasts. Requests are
cut at line silence (t3.5 at 9600 baud, but at least 5 ms: the pty delivers a request whole).
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from collections.abc import Mapping

from gateway.protocols import modbus_rtu_master as rtu

Registers = Mapping[tuple[int, int], int]  # (function, address) -> word


class RegisterSlave:
    def __init__(self, devices: Mapping[int, Registers]) -> None:
        self.devices = devices  # unit id -> its registers
        self.requests = 0
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="register-slave", daemon=True)

    def __enter__(self) -> RegisterSlave:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _serve(self) -> None:
        frame = bytearray()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.005 if frame else 0.05)
            if ready:
                with contextlib.suppress(OSError):
                    frame += os.read(self._master, 512)
                continue
            if frame:
                reply = self.answer(bytes(frame))
                frame.clear()
                if reply:
                    os.write(self._master, reply)

    def answer(self, frame: bytes) -> bytes:
        request = rtu.parse_request(frame)
        if isinstance(request, rtu.FrameError) or request.unit not in self.devices:
            return b""
        self.requests += 1
        registers = self.devices[request.unit]
        if request.function not in rtu.READ_REGISTERS:
            return rtu.with_crc(bytes((request.unit, request.function | 0x80, 1)))  # illegal function
        addresses = range(request.address, request.address + request.count)
        read = rtu.read_registers(request.unit, request.function, request.address, request.count)
        if not all((request.function, a) in registers for a in addresses):
            return rtu.encode_reply(read, rtu.ExceptionReply(2))  # illegal data address
        return rtu.encode_reply(read, rtu.Registers(tuple(registers[(request.function, a)] for a in addresses)))
