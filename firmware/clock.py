# Millisecond ticks that behave the same on the ESP32 and under CPython.
#
# MicroPython's ticks_ms() and ticks_us() wrap around at TICKS_PERIOD (2**30
# on the ESP32 and most ports): ticks_ms after about 12.4 days, ticks_us
# after about 17.9 minutes. A deadline must therefore be made with
# ticks_add() and compared with ticks_diff(), never with + and <: a plain
# sum leaves the tick range and a comparison against it stays False for
# ever after the wrap. Under CPython (the simulator, the tests) the same
# modular arithmetic is done by hand, so that code exercised there is the
# code that survives the wrap on the board.

import time

try:
    from micropython import const  # type: ignore  # the stubs type it position-only, the CPython stand-in not
except ImportError:  # CPython: const() is MicroPython's compile-time constant marker

    def const(value):
        return value


_MICROPYTHON = hasattr(time, "ticks_ms")

TICKS_PERIOD = const(0x40000000)
TICKS_MAX = const(0x3FFFFFFF)
_TICKS_HALF = const(0x20000000)


def ticks_ms():
    if _MICROPYTHON:
        return time.ticks_ms()
    # getattr: the ESP32 stubs rightly say MicroPython's time has no monotonic_ns().
    return (getattr(time, "monotonic_ns")() // 1000000) & TICKS_MAX


def ticks_add(ticks, delta):
    """The tick delta ms after ticks (delta may be negative), wrapped like the board's."""
    if _MICROPYTHON:
        return time.ticks_add(ticks, delta)
    return (ticks + delta) & TICKS_MAX


def ticks_diff(a, b):
    """Signed a - b across the wrap; valid while the true difference is below TICKS_PERIOD / 2."""
    if _MICROPYTHON:
        return time.ticks_diff(a, b)
    # MicroPython gives a meaningless difference for a tick outside the
    # tick range (what a + b deadline becomes near the wrap): fail loudly here.
    if a < 0 or a > TICKS_MAX or b < 0 or b > TICKS_MAX:
        raise ValueError("ticks_diff: tick outside 0.." + str(TICKS_MAX) + ": " + str(a) + ", " + str(b))
    return ((a - b + _TICKS_HALF) & TICKS_MAX) - _TICKS_HALF
