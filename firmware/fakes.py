# Test doubles of the machine peripherals the sensor drivers use: I2C, SPI,
# ADC, input pins with interrupts, I2S; and FakeIO, which stands in for the
# hal module handed to make_sensor(settings, io).
#
# Only the peripheral is faked, never the driver: a fake I2C bus moves bytes
# to and from a model of the chip's registers or commands that the test
# fills in, the way the real chip would answer. UART, output pin, clock and
# watchdog fakes are in firmware/hal.py. The board never imports this module
# (it is compiled and flashed with the rest, and costs flash, not RAM).
#
# MicroPython-compatible, so the same tests run under both interpreters.

from firmware import hal

ENODEV = 19  # MicroPython raises OSError(ENODEV) when an I2C address does not acknowledge


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
    are hal.FakeUARTs made on demand in io.uarts[uart_id].
    """

    def __init__(self, clock=None):
        self._clock = clock if clock is not None else hal.FakeClock()
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
        return hal.FakeWDT(self._clock, timeout_ms)

    def uart(self, uart_id, baud, parity_code, tx, rx, rxbuf=512):
        port = self.uarts.get(uart_id)
        if port is None:
            port = hal.FakeUART(self._clock, baud, 11 if parity_code else 10)
            self.uarts[uart_id] = port
        self.uart_settings[uart_id] = (baud, parity_code, tx, rx)
        return port

    def output_pin(self, number, value):
        pin = hal.FakePin("gpio" + str(number), value, self._clock)
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
