# Millisecond ticks that behave the same on the ESP32 and under CPython.
#
# MicroPython's ticks_ms() wraps around (at 2**30 on the ESP32); ticks_diff()
# gives the signed difference across the wrap. Under CPython (the simulator,
# the tests) a monotonic millisecond counter that never wraps stands in.

import time

_MICROPYTHON = hasattr(time, "ticks_ms")


def ticks_ms():
    if _MICROPYTHON:
        return time.ticks_ms()
    # getattr: the ESP32 stubs rightly say MicroPython's time has no monotonic_ns().
    return getattr(time, "monotonic_ns")() // 1000000


def ticks_diff(a, b):
    if _MICROPYTHON:
        return time.ticks_diff(a, b)
    return a - b
