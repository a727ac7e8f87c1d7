# Hardware abstraction: the few board services the node runtime needs.
#
# On the ESP32 these are machine.UART, machine.Pin, machine.WDT and the
# time.ticks_* functions. Under CPython (the simulator, the tests) and under
# the MicroPython WebAssembly build there is no `machine` module, so this file
# also holds fakes of exactly those: a pin, a UART, a watchdog and a clock
# that only moves when told to. Nothing else is faked: the file system, JSON
# and the protocol code are the real ones everywhere.
#
# `machine` is imported inside the functions that need it, so importing this
# module never fails on a host without it.

import time

from firmware import clock as ticks

MICROPYTHON = hasattr(time, "ticks_us")

# machine.reset_cause() values (the same on every MicroPython port that has them).
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
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


class FakeClock:
    """A clock that stands still until advanced; sleeping advances it.

    now_us is the true time (a plain int that never wraps); ticks_us() and
    ticks_ms() wrap at TICKS_PERIOD as the board's do, so a test can start
    just before a wrap (start_ms) and run code across it.
    """

    def __init__(self, start_us=0, start_ms=None):
        self.now_us = start_us if start_ms is None else start_ms * 1000
        self.slept_us = 0

    def ticks_us(self):
        return self.now_us & ticks.TICKS_MAX

    def ticks_ms(self):
        return (self.now_us // 1000) & ticks.TICKS_MAX

    def ticks_add(self, t, delta):
        return (t + delta) & ticks.TICKS_MAX

    def ticks_diff(self, a, b):
        return ticks.ticks_diff(a, b)

    def sleep_us(self, us):
        if us > 0:
            self.now_us += us
            self.slept_us += us

    def advance_us(self, us):
        self.now_us += us

    def advance_ms(self, ms):
        self.now_us += ms * 1000


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


# -- fakes -------------------------------------------------------------------------
class FakePin:
    """An output line. Every level change is logged as (tick_us, name, level) in trace."""

    def __init__(self, name="pin", value=0, clock=None, trace=None):
        self.name = name
        self.level = 1 if value else 0
        self.clock = clock
        self.trace = trace
        self._log()

    def _log(self):
        if self.trace is not None:
            t = self.clock.now_us if self.clock is not None else 0
            self.trace.append((t, self.name, self.level))

    def value(self, level=None):
        if level is None:
            return self.level
        self.level = 1 if level else 0
        self._log()
        return None

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class FakeUART:
    """A UART with a wire that takes time.

    write() queues bytes; they leave one character time (bits_per_char / baud)
    each, back to back, starting at the write. flush() returns once the last
    one has left the shift register, by advancing the fake clock to that
    moment, as the ESP32's uart.flush() blocks until then. Received bytes are
    handed in with deliver(data, at_us) and become readable at their arrival
    time. trace gets ("write", n) and ("flush",) events, timestamped. Times
    here are the fake clock's true time (now_us), which never wraps.
    """

    def __init__(self, clock, baud=9600, bits_per_char=10, trace=None):
        self.clock = clock
        self.baud = baud
        self.bits_per_char = bits_per_char
        self.trace = trace
        self.sent = bytearray()
        self.tx_done_us = 0
        self.flushes = 0
        self._rx = []  # (arrival_us, byte), in arrival order

    def char_us(self):
        return (self.bits_per_char * 1000000 + self.baud - 1) // self.baud

    def write(self, buf):
        now = self.clock.now_us
        start = self.tx_done_us if self.tx_done_us > now else now
        n = len(buf)
        self.sent.extend(buf)
        self.tx_done_us = start + n * self.char_us()
        if self.trace is not None:
            self.trace.append((now, "write", n))
        return n

    def flush(self):
        self.flushes += 1
        now = self.clock.now_us
        if self.tx_done_us > now:
            self.clock.sleep_us(self.tx_done_us - now)
        if self.trace is not None:
            self.trace.append((self.clock.now_us, "flush"))

    def txdone(self):
        return self.clock.now_us >= self.tx_done_us

    def deliver(self, data, at_us=None, gap_us=None):
        """Bytes that reach the RX pin: the first at at_us (default now), then one per gap_us."""
        t = self.clock.now_us if at_us is None else at_us
        step = self.char_us() if gap_us is None else gap_us
        for b in data:
            self._rx.append((t, b))
            t += step

    def any(self):
        now = self.clock.now_us
        n = 0
        for t, _ in self._rx:
            if t > now:
                break
            n += 1
        return n

    def readinto(self, buf, nbytes=-1):
        if nbytes < 0:
            nbytes = len(buf)
        n = self.any()
        if n > nbytes:
            n = nbytes
        for i in range(n):
            buf[i] = self._rx[i][1]
        del self._rx[:n]
        return n if n else None

    def take_sent(self):
        out = bytes(self.sent)
        self.sent = bytearray()
        return out


class FakeWDT:
    """A watchdog that records feeds; expired() says whether the board would have reset."""

    def __init__(self, clock, timeout_ms=5000):
        self.clock = clock
        self.timeout_ms = timeout_ms
        self.feeds = 0
        self.last_feed_ms = clock.ticks_ms()

    def feed(self):
        self.feeds += 1
        self.last_feed_ms = self.clock.ticks_ms()

    def expired(self):
        return self.clock.ticks_diff(self.clock.ticks_ms(), self.last_feed_ms) > self.timeout_ms
