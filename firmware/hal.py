# Hardware abstraction: the few board services the node runtime needs.
#
# On the ESP32 these are machine.UART, machine.Pin, machine.WDT and the
# time.ticks_* functions. Under CPython (the simulator, the tests) and under
# the MicroPython WebAssembly build there is no `machine` module: the fakes of
# exactly those (a pin, a UART, a watchdog, a clock that only moves when told
# to) are in firmware/fakes.py, which the build does not ship. Nothing else is
# faked: the file system, JSON and the protocol code are the real ones
# everywhere.
#
# `machine` is imported inside the functions that need it, so importing this
# module never fails on a host without it.

import time

from firmware import clock as ticks

MICROPYTHON = hasattr(time, "ticks_us")

try:
    from micropython import const  # type: ignore  # the stubs type it position-only, the CPython stand-in not
except ImportError:  # CPython

    def const(value):
        return value


# machine.reset_cause() values (the same on every MicroPython port that has them).
PWRON_RESET = 1
_HARD_RESET = const(2)
WDT_RESET = 3
_DEEPSLEEP_RESET = const(4)
SOFT_RESET = 5

# Holding register "parity" -> the parity argument of machine.UART.
# MicroPython takes None (no parity), 0 (even) or 1 (odd).
UART_PARITY = (None, 0, 1)


# -- time ---------------------------------------------------------------------
class Clock:
    """The board's tick counters. Ticks wrap on the ESP32: compare them with ticks_diff()."""

    def ticks_us(self):
        if MICROPYTHON:
            return time.ticks_us()
        # getattr: the ESP32 stubs rightly say MicroPython's time has no monotonic_ns().
        return (getattr(time, "monotonic_ns")() // 1000) & ticks.TICKS_MAX

    def ticks_ms(self):
        return ticks.ticks_ms()

    def ticks_add(self, t, delta):
        return ticks.ticks_add(t, delta)

    def ticks_diff(self, a, b):
        return ticks.ticks_diff(a, b)

    def sleep_us(self, us):
        if us <= 0:
            return
        if MICROPYTHON:
            time.sleep_us(us)
        else:
            time.sleep(us / 1000000)


_CLOCK = Clock()


def clock():
    """The board's clock (one shared instance)."""
    return _CLOCK


def sleep_ms(ms):
    """Block for ms milliseconds: for start-up sequences only, never in the main loop."""
    if ms <= 0:
        return
    if MICROPYTHON:
        time.sleep_ms(ms)
    else:
        time.sleep(ms / 1000)


# -- the real board ----------------------------------------------------------------
def uart(uart_id, baud, parity_code, tx, rx, rxbuf=512):
    """The RS-485 UART: 8 data bits, 1 stop bit, parity from the holding register code."""
    import machine

    # timeout=0: reads never wait (the node only reads what any() reports).
    return machine.UART(
        uart_id,
        baudrate=baud,
        bits=8,
        parity=UART_PARITY[parity_code],
        stop=1,
        tx=tx,
        rx=rx,
        rxbuf=rxbuf,
        timeout=0,
    )


def output_pin(number, value):
    """An output pin driven to value from the moment it is configured."""
    import machine

    return machine.Pin(number, machine.Pin.OUT, value=value)


def input_pin(number, pull_up=False):
    import machine

    if pull_up:
        return machine.Pin(number, machine.Pin.IN, machine.Pin.PULL_UP)
    return machine.Pin(number, machine.Pin.IN)


def pulse_input(number, handler, pull_up=False):
    """An input pin whose falling edges call handler(pin) as a hard IRQ; returns the pin.

    The handler must not allocate (firmware.wind.PulseCounter.irq does not).
    """
    import machine

    pin = input_pin(number, pull_up)
    pin.irq(handler=handler, trigger=machine.Pin.IRQ_FALLING, hard=True)
    return pin


def i2c(bus_id, scl, sda, freq=100000):
    import machine

    return machine.I2C(bus_id, scl=machine.Pin(scl), sda=machine.Pin(sda), freq=freq)


def spi(bus_id, sck, mosi, miso, baudrate=2000000, polarity=0, phase=0):
    import machine

    return machine.SPI(
        bus_id,
        baudrate=baudrate,
        polarity=polarity,
        phase=phase,
        sck=machine.Pin(sck),
        mosi=machine.Pin(mosi),
        miso=machine.Pin(miso),
    )


def adc(number):
    """An ADC input with 11 dB attenuation (about 0.15-2.45 V usable, read_uv() calibrated)."""
    import machine

    return machine.ADC(machine.Pin(number), atten=machine.ADC.ATTN_11DB)


def i2s_rx(bus_id, sck, ws, sd, rate, ibuf=16384):
    """A mono I2S receiver with 32-bit slots (INMP441 / ICS-43434 put 24 bits at the top)."""
    import machine

    return machine.I2S(
        bus_id,
        sck=machine.Pin(sck),
        ws=machine.Pin(ws),
        sd=machine.Pin(sd),
        mode=machine.I2S.RX,
        bits=32,
        format=machine.I2S.MONO,
        rate=rate,
        ibuf=ibuf,
    )


def watchdog(timeout_ms):
    """Start the hardware watchdog. It cannot be stopped again."""
    import machine

    return machine.WDT(timeout=timeout_ms)


def reset_cause():
    try:
        import machine
    except ImportError:
        return PWRON_RESET
    return machine.reset_cause()


def log(message):
    """A line for the console (the REPL's UART, or stdout under the simulator)."""
    print(message)


def idle():
    """Let the CPU rest until the next interrupt (a tick at most 1 ms away)."""
    try:
        import machine
    except ImportError:
        return
    machine.idle()
