"""Single-precision arithmetic for running firmware code as the ESP32 computes it.

MicroPython on the ESP32 stores every float as an IEEE 754 binary32 and
rounds each operation's result to it; CPython (and the WebAssembly
MicroPython the tests use) compute in double precision. F32 is a number
whose every arithmetic result is rounded to binary32, so handing F32 values
to the firmware's own functions and objects (coefficients, state, inputs)
makes them run in single precision, step by step: the firmware's code, not
a copy of it. math functions take F32 through __float__ and return a double,
which the next F32 operation rounds, as the board's float32 libm result
would be (to within its last bit).
"""

from __future__ import annotations

import math
import struct
from typing import SupportsFloat

_PACK = struct.Struct("<f")


def round32(x: SupportsFloat) -> float:
    """x rounded to the nearest binary32 (inf beyond its range, as the board overflows)."""
    value = float(x)
    if math.isnan(value) or math.isinf(value):
        return value
    try:
        return float(_PACK.unpack(_PACK.pack(value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


class F32:
    __slots__ = ("value",)

    def __init__(self, value: SupportsFloat = 0.0) -> None:
        self.value = round32(value)

    def __float__(self) -> float:
        return self.value

    def __int__(self) -> int:
        return int(self.value)

    def __round__(self, ndigits: int | None = None) -> float | int:
        return round(self.value) if ndigits is None else round(self.value, ndigits)

    def __repr__(self) -> str:
        return f"F32({self.value!r})"

    def __add__(self, other: SupportsFloat) -> F32:
        return F32(self.value + float(other))

    __radd__ = __add__

    def __sub__(self, other: SupportsFloat) -> F32:
        return F32(self.value - float(other))

    def __rsub__(self, other: SupportsFloat) -> F32:
        return F32(float(other) - self.value)

    def __mul__(self, other: SupportsFloat) -> F32:
        return F32(self.value * float(other))

    __rmul__ = __mul__

    def __truediv__(self, other: SupportsFloat) -> F32:
        return F32(self.value / float(other))

    def __rtruediv__(self, other: SupportsFloat) -> F32:
        return F32(float(other) / self.value)

    def __mod__(self, other: SupportsFloat) -> F32:
        return F32(self.value % float(other))

    def __neg__(self) -> F32:
        return F32(-self.value)

    def __abs__(self) -> F32:
        return F32(abs(self.value))

    def __lt__(self, other: SupportsFloat) -> bool:
        return self.value < float(other)

    def __le__(self, other: SupportsFloat) -> bool:
        return self.value <= float(other)

    def __gt__(self, other: SupportsFloat) -> bool:
        return self.value > float(other)

    def __ge__(self, other: SupportsFloat) -> bool:
        return self.value >= float(other)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (int, float, F32)) and self.value == float(other)

    def __hash__(self) -> int:
        return hash(self.value)


class Math32:
    """The math functions a firmware module calls, returning F32 (the board's float32 libm)."""

    pi = F32(math.pi)
    e = F32(math.e)

    @staticmethod
    def sqrt(x: SupportsFloat) -> F32:
        return F32(math.sqrt(float(x)))

    @staticmethod
    def atan2(y: SupportsFloat, x: SupportsFloat) -> F32:
        return F32(math.atan2(float(y), float(x)))

    @staticmethod
    def tan(x: SupportsFloat) -> F32:
        return F32(math.tan(float(x)))

    @staticmethod
    def sin(x: SupportsFloat) -> F32:
        return F32(math.sin(float(x)))

    @staticmethod
    def cos(x: SupportsFloat) -> F32:
        return F32(math.cos(float(x)))

    @staticmethod
    def pow(x: SupportsFloat, y: SupportsFloat) -> F32:
        return F32(math.pow(float(x), float(y)))

    @staticmethod
    def log10(x: SupportsFloat) -> F32:
        return F32(math.log10(float(x)))
