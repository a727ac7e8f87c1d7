# Test doubles of the machine peripherals the sensor drivers use: I2C, SPI,
# ADC, input pins with interrupts, I2S; and FakeIO, which stands in for the
# hal module handed to make_sensor(settings, io).
#
# Only the peripheral is faked, never the driver: a fake I2C bus moves bytes
# to and from a model of the chip's registers or commands that the test
# fills in, the way the real chip would answer. The board's own services are
# faked here too: a clock that only moves when told to (and wraps like the
# board's ticks), an output pin, a UART whose wire takes time, a watchdog.
# The board never imports this module and `sitewatch firmware build` does
# not ship it.
#
# MicroPython-compatible, so the same tests run under both interpreters.

from firmware import clock as ticks
from firmware import hal

ENODEV = 19  # MicroPython raises OSError(ENODEV) when an I2C address does not acknowledge


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


class RegisterChip:
    """A chip seen as a file of 8-bit registers with address auto-increment (BME280, ADXL355)."""

    def __init__(self, size=256):
        self.mem = bytearray(size)
        self.present = True
        self.writes = []  # (register, bytes), in order
        self.reads = 0
        self.on_write = None  # called with (chip, register, data) after a write

    def read_mem(self, reg, n):
        self.reads += 1
        out = bytearray(n)
        for i in range(n):
            if reg + i < len(self.mem):
                out[i] = self.mem[reg + i]
        return out

    def write_mem(self, reg, data):
        self.writes.append((reg, bytes(data)))
        for i in range(len(data)):
            if reg + i < len(self.mem):
                self.mem[reg + i] = data[i]
        if self.on_write is not None:
            self.on_write(self, reg, bytes(data))


class CommandChip:
    """A chip driven by command words (SHT3x): writes are logged, reads return queued replies.

    A read with no reply queued is not acknowledged (OSError), as an SHT3x
    does while it is still measuring. on_command(chip, data) may queue one.
    """

    def __init__(self):
        self.present = True
        self.commands = []
        self.replies = []
        self.on_command = None

    def write(self, data):
        self.commands.append(bytes(data))
        if self.on_command is not None:
            self.on_command(self, bytes(data))

    def read(self, n):
        if not self.replies:
            raise OSError(ENODEV)
        reply = self.replies.pop(0)
        out = bytearray(n)
        for i in range(n):
            if i < len(reply):
                out[i] = reply[i]
        return out


class FakeI2C:
    """machine.I2C with chips attached by address."""

    def __init__(self):
        self.devices = {}
        self.errors = 0

    def attach(self, address, chip):
        self.devices[address] = chip
        return chip

    def _chip(self, address):
        chip = self.devices.get(address)
        if chip is None or not chip.present:
            self.errors += 1
            raise OSError(ENODEV)
        return chip

    def scan(self):
        return sorted(a for a in self.devices if self.devices[a].present)

    def readfrom_mem_into(self, address, memaddr, buf):
        data = self._chip(address).read_mem(memaddr, len(buf))
        for i in range(len(buf)):
            buf[i] = data[i]

    def writeto_mem(self, address, memaddr, buf):
        self._chip(address).write_mem(memaddr, bytes(buf))

    def writeto(self, address, buf, stop=True):
        self._chip(address).write(bytes(buf))
        return len(buf) + 1

    def readfrom_into(self, address, buf, stop=True):
        data = self._chip(address).read(len(buf))
        for i in range(len(buf)):
            buf[i] = data[i]


class FakeSPI:
    """machine.SPI; each write_readinto is one chip-select framed transfer handed to device.transfer().

    device.transfer(out) returns as many bytes as it was given. With cs (an
    output pin) the fake checks that chip select is low during every
    transfer and counts those that were not in cs_errors.
    """

    def __init__(self, device=None, cs=None):
        self.device = device
        self.cs = cs
        self.cs_errors = 0
        self.transfers = 0

    def write_readinto(self, out, into):
        self.transfers += 1
        if self.cs is not None and self.cs.value() != 0:
            self.cs_errors += 1
        if self.device is None:
            data = bytes(len(out))  # nothing on the bus: MISO reads 0
        else:
            data = self.device.transfer(bytes(out))
        for i in range(len(into)):
            into[i] = data[i]

    def write(self, buf):
        self.write_readinto(buf, bytearray(len(buf)))


class FakeADC:
    """machine.ADC: read_u16() returns raw, read_uv() returns uv; the test sets them."""

    def __init__(self, raw=0, uv=0):
        self.raw = raw
        self.uv = uv
        self.reads = 0

    def read_u16(self):
        self.reads += 1
        return self.raw

    def read_uv(self):
        self.reads += 1
        return self.uv


class FakeInputPin:
    """An input pin; pulse() calls the IRQ handler as a falling edge would."""

    def __init__(self, number, level=1):
        self.number = number
        self.level = level
        self.handler = None

    def value(self):
        return self.level

    def irq(self, handler=None, trigger=0, hard=False):
        self.handler = handler

    def pulse(self, n=1):
        handler = self.handler
        for _ in range(n):
            if handler is not None:
                handler(self)


class FakeI2S:
    """machine.I2S receiving 32-bit mono slots into an array('i').

    load() queues samples (ints as the 32-bit slot holds them); readinto()
    hands over as many as are queued and fit, and returns the byte count as
    the real one does.
    """

    def __init__(self):
        self.samples = []
        self.pos = 0
        self.reads = 0

    def load(self, samples):
        self.samples = list(samples)
        self.pos = 0

    def available(self):
        return len(self.samples) - self.pos

    def readinto(self, buf):
        self.reads += 1
        n = len(buf)
        left = len(self.samples) - self.pos
        if n > left:
            n = left
        for i in range(n):
            buf[i] = self.samples[self.pos + i]
        self.pos += n
        return 4 * n


class FakeIO:
    """The hal module's board functions, returning fakes; what a test attaches beforehand is used.

    Put chips on io.i2c_buses[bus_id] (a FakeI2C), a device on
    io.spi_buses[bus_id] (a FakeSPI), ADC readings in io.adcs[pin]; UARTs
    are FakeUARTs made on demand in io.uarts[uart_id].
    """

    def __init__(self, clock=None):
        self._clock = clock if clock is not None else FakeClock()
        self.uarts = {}
        self.uart_settings = {}
        self.pins = {}
        self.i2c_buses = {}
        self.spi_buses = {}
        self.adcs = {}
        self.i2s_buses = {}
        self.i2s_settings = {}
        self.logs = []
        self.slept_ms = 0

    def clock(self):
        return self._clock

    def sleep_ms(self, ms):
        if ms > 0:
            self._clock.advance_ms(ms)
            self.slept_ms += ms

    def log(self, message):
        self.logs.append(message)

    def reset_cause(self):
        return hal.PWRON_RESET

    def idle(self):
        pass

    def watchdog(self, timeout_ms):
        return FakeWDT(self._clock, timeout_ms)

    def uart(self, uart_id, baud, parity_code, tx, rx, rxbuf=512):
        port = self.uarts.get(uart_id)
        if port is None:
            port = FakeUART(self._clock, baud, 11 if parity_code else 10)
            self.uarts[uart_id] = port
        self.uart_settings[uart_id] = (baud, parity_code, tx, rx)
        return port

    def output_pin(self, number, value):
        pin = FakePin("gpio" + str(number), value, self._clock)
        self.pins[number] = pin
        return pin

    def input_pin(self, number, pull_up=False):
        pin = self.pins.get(number)
        if pin is None:
            pin = FakeInputPin(number)
            self.pins[number] = pin
        return pin

    def pulse_input(self, number, handler, pull_up=False):
        pin = self.input_pin(number, pull_up)
        pin.irq(handler=handler, trigger=2, hard=True)
        return pin

    def i2c(self, bus_id, scl, sda, freq=100000):
        bus = self.i2c_buses.get(bus_id)
        if bus is None:
            bus = FakeI2C()
            self.i2c_buses[bus_id] = bus
        return bus

    def spi(self, bus_id, sck, mosi, miso, baudrate=2000000, polarity=0, phase=0):
        bus = self.spi_buses.get(bus_id)
        if bus is None:
            bus = FakeSPI()
            self.spi_buses[bus_id] = bus
        return bus

    def adc(self, number):
        channel = self.adcs.get(number)
        if channel is None:
            channel = FakeADC()
            self.adcs[number] = channel
        return channel

    def i2s_rx(self, bus_id, sck, ws, sd, rate, ibuf=16384):
        bus = self.i2s_buses.get(bus_id)
        if bus is None:
            bus = FakeI2S()
            self.i2s_buses[bus_id] = bus
        self.i2s_settings[bus_id] = (sck, ws, sd, rate)
        return bus
