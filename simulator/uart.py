"""What a UART makes of characters sent at other line settings: bit-level, sans-IO.

A character on the line is a start bit (0), 8 data bits (least significant
first), an optional parity bit and one or two stop bits (1); the idle line is 1.
A receiving UART waits for a falling edge, samples the start bit in its middle
(a high level there is a glitch, not a start), then every following bit in its
middle at its own baud rate, and checks the first stop bit: a low level there
is a framing error. With parity on, a parity bit that does not match is a
parity error. After the stop bit's sample it hunts for the next falling edge.

That is all it takes to reproduce what a wrong baud rate or parity does on a
real bus: wrong bytes, framing and parity errors, more or fewer characters than
were sent. :func:`receive` does exactly that for a burst of characters sent
back to back; what the reading program then gets depends on the receiver:

- :func:`termios_bytes`: a Linux serial port (what the gateway reads). With
  INPCK (the gateway sets it for parity E or O) a character with a parity or
  framing error reads as 0x00 (no PARMRK, no IGNPAR); without it the character
  is handed over as sampled. A break (all zeros and a framing error) is
  dropped with IGNBRK, which the gateway sets.
- :func:`fifo_bytes`: a UART whose driver hands over every character as
  sampled (the ESP32's, as sitewatch nodes use it: errors raise interrupts, the
  FIFO keeps the byte).

Only the first stop bit is checked, as UARTs do: 8N2 sent to an 8N1 receiver
reads fine, and the other way round too.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

PARITIES = ("N", "E", "O")
STANDARD_BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


@dataclass(frozen=True, slots=True)
class LineSettings:
    """A UART's configuration: baud rate, parity (N, E, O) and stop bits; always 8 data bits."""

    baud: int
    parity: str = "N"
    stopbits: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.baud, bool) or not isinstance(self.baud, int) or self.baud <= 0:
            raise ValueError(f"baud rate {self.baud!r} is not a positive whole number")
        if self.parity not in PARITIES:
            raise ValueError(f"parity {self.parity!r} is not one of N, E, O")
        if self.stopbits not in (1, 2):
            raise ValueError(f"stop bits {self.stopbits!r} is not 1 or 2")

    @property
    def bits_per_character(self) -> int:
        return 1 + 8 + (self.parity != "N") + self.stopbits

    def understands(self, other: LineSettings) -> bool:
        """True when characters sent at `other` arrive intact here (the stop bit count does not matter)."""
        return self.baud == other.baud and self.parity == other.parity

    def __str__(self) -> str:
        return f"{self.baud} 8{self.parity}{self.stopbits}"

    @classmethod
    def parse(cls, text: str) -> LineSettings:
        """"9600", "9600 8E1", "19200-8N2" -> LineSettings; ValueError naming what is wrong."""
        parts = text.replace("-", " ").split()
        if not parts or len(parts) > 2:
            raise ValueError(f"line settings {text!r}: expected BAUD or 'BAUD 8N1'")
        try:
            baud = int(parts[0])
        except ValueError:
            raise ValueError(f"line settings {text!r}: baud rate {parts[0]!r} is not a number") from None
        if len(parts) == 1:
            return cls(baud)
        frame = parts[1].upper()
        if len(frame) != 3 or frame[0] != "8" or frame[1] not in PARITIES or frame[2] not in "12":
            raise ValueError(f"line settings {text!r}: character format {parts[1]!r} is not like 8N1, 8E1, 8O1, 8N2")
        return cls(baud, frame[1], int(frame[2]))


@dataclass(frozen=True, slots=True)
class Character:
    """One character as a receiving UART sampled it."""

    byte: int
    parity_error: bool = False
    framing_error: bool = False

    @property
    def is_break(self) -> bool:
        return self.byte == 0 and self.framing_error


def parity_bit(byte: int, parity: str) -> int:
    ones = bin(byte).count("1") & 1
    return ones if parity == "E" else ones ^ 1


def line_bits(data: bytes, line: LineSettings) -> list[int]:
    """The line levels of data sent back to back, one entry per bit time."""
    bits: list[int] = []
    for byte in data:
        bits.append(0)
        bits.extend((byte >> i) & 1 for i in range(8))
        if line.parity != "N":
            bits.append(parity_bit(byte, line.parity))
        bits.extend([1] * line.stopbits)
    return bits


def receive(data: bytes, sender: LineSettings, receiver: LineSettings) -> list[Character]:
    """The characters a UART at `receiver` settings samples from `data` sent at `sender` settings."""
    if receiver.understands(sender):
        return [Character(b) for b in data]
    bits = line_bits(data, sender)
    sent_bit = 1.0 / sender.baud
    read_bit = 1.0 / receiver.baud
    # Falling edges: the moments (in sender bit times) the line goes from 1 (or idle) to 0.
    edges = [k for k, level in enumerate(bits) if level == 0 and (k == 0 or bits[k - 1] == 1)]
    edge_times = [k * sent_bit for k in edges]

    def level(t: float) -> int:
        k = int(t / sent_bit)
        return bits[k] if 0 <= k < len(bits) else 1

    out: list[Character] = []
    cursor = 0.0
    parity_on = receiver.parity != "N"
    while True:
        i = bisect.bisect_left(edge_times, cursor - 1e-12)
        if i == len(edge_times):
            return out
        start = edge_times[i]
        if level(start + 0.5 * read_bit) == 1:  # a glitch shorter than half a bit
            cursor = start + 0.5 * read_bit
            continue
        byte = 0
        for n in range(8):
            byte |= level(start + (1.5 + n) * read_bit) << n
        position = 9.5
        parity_error = False
        if parity_on:
            parity_error = level(start + position * read_bit) != parity_bit(byte, receiver.parity)
            position += 1
        stop_at = start + position * read_bit
        framing_error = level(stop_at) == 0
        out.append(Character(byte, parity_error, framing_error))
        cursor = stop_at


def termios_bytes(chars: list[Character], *, check_parity: bool, ignore_break: bool = True) -> bytes:
    """What read() returns on a Linux serial port (INPCK = check_parity, IGNBRK = ignore_break, no PARMRK)."""
    out = bytearray()
    for char in chars:
        if char.is_break:
            if not ignore_break:
                out.append(0)
        elif check_parity and (char.parity_error or char.framing_error):
            out.append(0)
        else:
            out.append(char.byte)
    return bytes(out)


def fifo_bytes(chars: list[Character]) -> bytes:
    """What a UART that keeps every character as sampled hands over (errors flagged, bytes kept)."""
    return bytes(char.byte for char in chars)


def wire_seconds(n_bytes: int, line: LineSettings) -> float:
    """How long n characters sent back to back occupy the line."""
    return n_bytes * line.bits_per_character / line.baud
