"""Setting a serial port's VMIN in one system call.

The RTU link changes VMIN twice per transaction (docs/performance.md, issue 13). ``termios.tcsetattr``
costs four ioctls each time (CPython reads the attributes first, glibc reads them again around the
write: TCGETS, TCGETS, TCSETS, TCGETS in strace) and builds the attribute list anew. The kernel's own
``struct termios`` (asm-generic: four 32-bit flag words, ``c_line``, 19 control characters) read once
with TCGETS can instead be written back with one TCSETS with only the VMIN byte changed. The layout is
checked against ``termios.tcgetattr`` when the port opens; where it does not match (another kernel ABI)
or TCGETS/TCSETS are missing, ``termios.tcsetattr`` is used as before.
"""

from __future__ import annotations

import fcntl
import struct
import termios
from typing import Any

KERNEL_TERMIOS = struct.Struct("=4IB19s")  # c_iflag, c_oflag, c_cflag, c_lflag, c_line, c_cc[NCCS = 19]
_CC_OFFSET = 17


class VminSetter:
    """VMIN of one open port; `attrs` is what termios.tcgetattr(fd) returned (kept for the fallback)."""

    def __init__(self, fd: int, attrs: list[Any]) -> None:
        self.attrs = attrs
        self.raw: bytearray | None = _kernel_attrs(fd, attrs)

    @property
    def one_call(self) -> bool:
        """True when a change is one TCSETS ioctl."""
        return self.raw is not None

    def set(self, fd: int, count: int) -> None:
        """VMIN = count (0..255), VTIME untouched; raises OSError or termios.error as the port refuses."""
        self.attrs[6][termios.VMIN] = count
        raw = self.raw
        if raw is None:
            termios.tcsetattr(fd, termios.TCSANOW, self.attrs)
            return
        raw[_CC_OFFSET + termios.VMIN] = count
        fcntl.ioctl(fd, termios.TCSETS, raw)


def _kernel_attrs(fd: int, attrs: list[Any]) -> bytearray | None:
    """The port's kernel struct termios, or None when its layout is not the one expected here."""
    request = getattr(termios, "TCGETS", None)
    if request is None or getattr(termios, "TCSETS", None) is None or termios.VMIN >= 19 or termios.VTIME >= 19:
        return None
    try:
        raw = bytearray(fcntl.ioctl(fd, request, bytes(KERNEL_TERMIOS.size)))
    except OSError:
        return None
    iflag, oflag, cflag, lflag, _, cc = KERNEL_TERMIOS.unpack(raw)
    cc_now = attrs[6]
    if [iflag, oflag, cflag, lflag] != list(attrs[:4]):
        return None
    if any(cc[index] != _byte(cc_now[index]) for index in (termios.VMIN, termios.VTIME)):
        return None
    return raw


def _byte(value: bytes | int) -> int:
    return value if isinstance(value, int) else value[0]
