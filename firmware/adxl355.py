# Analog Devices ADXL355 3-axis accelerometer (20-bit, low noise), on I2C or SPI.
#
# Sans-IO part (datasheet register map):
#   0x00 DEVID_AD = 0xAD, 0x01 DEVID_MST = 0x1D, 0x02 PARTID = 0xED
#   0x06 TEMP2 (bits 3:0 = temperature bits 11:8), 0x07 TEMP1 (bits 7:0)
#   0x08..0x10 XDATA3, XDATA2, XDATA1, then Y and Z alike: each axis is a
#       20-bit two's complement value, left-justified in three bytes
#       (DATA3 = bits 19:12, DATA2 = bits 11:4, DATA1 bits 7:4 = bits 3:0)
#   0x28 FILTER (bits 3:0 output data rate), 0x2C RANGE (bits 1:0, 01 = +-2 g),
#   0x2D POWER_CTL (bit 0 standby: 0 = measure), 0x2F RESET (write 0x52)
# At +-2 g the scale is 256000 LSB/g. Temperature: 1885 LSB at 25 degC,
# -9.05 LSB/degC.
#
# One read fetches TEMP2 .. ZDATA1 (11 bytes) in a single burst, so the
# three axes belong to the same sample. The output data rate is set low
# (3.9 Hz, digital low-pass at about 1 Hz): a tilt node wants the static
# attitude, not vibration.
#
# Bus access goes through a small transport with read(reg, buf) and
# write(reg, value): I2cRegisters or SpiRegisters (SPI: first byte
# = register << 1 | 1 for a read, mode 0, chip select low for the transfer).

DEVID_AD = 0xAD
DEVID_MST = 0x1D
PARTID = 0xED

REG_DEVID_AD = 0x00
REG_TEMP2 = 0x06
REG_FILTER = 0x28
REG_RANGE = 0x2C
REG_POWER_CTL = 0x2D
REG_RESET = 0x2F

RESET_CODE = 0x52
RANGE_2G = 0x01
FILTER_ODR_3_9HZ = 0x0A
POWER_MEASURE = 0x00

COUNTS_PER_G = 256000
ADDRESS = 0x1D  # ASEL low; 0x53 with ASEL high

TEMP_INTERCEPT_LSB = 1885
TEMP_INTERCEPT_C = 25.0
TEMP_SLOPE_LSB_PER_C = -9.05

BURST = 11  # TEMP2 .. ZDATA1


def axis(buf, i):
    """The 20-bit signed value of the axis whose DATA3 byte is buf[i]."""
    v = (buf[i] << 12) | (buf[i + 1] << 4) | (buf[i + 2] >> 4)
    if v & 0x80000:
        v -= 0x100000
    return v


def temperature_c(raw12):
    return TEMP_INTERCEPT_C + (raw12 - TEMP_INTERCEPT_LSB) / TEMP_SLOPE_LSB_PER_C


def parse_burst(buf, offset=0):
    """(x, y, z, temperature raw) from the 11 bytes TEMP2 .. ZDATA1."""
    t = ((buf[offset] & 0x0F) << 8) | buf[offset + 1]
    return axis(buf, offset + 2), axis(buf, offset + 5), axis(buf, offset + 8), t


class I2cRegisters:
    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.address = address
        self._one = bytearray(1)

    def read(self, reg, buf):
        self.i2c.readfrom_mem_into(self.address, reg, buf)

    def write(self, reg, value):
        self._one[0] = value
        self.i2c.writeto_mem(self.address, reg, self._one)


class SpiRegisters:
    """Register access over SPI (mode 0); cs is an output pin, idle high."""

    def __init__(self, spi, cs, size=BURST):
        self.spi = spi
        self.cs = cs
        self._out = bytearray(size + 1)
        self._in = bytearray(size + 1)
        self._views = {}
        cs.value(1)

    def _transfer(self, n):
        # Views per length are made once: a steady read allocates nothing.
        views = self._views.get(n)
        if views is None:
            views = (memoryview(self._out)[:n], memoryview(self._in)[:n])
            self._views[n] = views
        self.cs.value(0)
        try:
            self.spi.write_readinto(views[0], views[1])
        finally:
            self.cs.value(1)

    def read(self, reg, buf):
        n = len(buf)
        out = self._out
        out[0] = (reg << 1) | 1
        for i in range(1, n + 1):
            out[i] = 0
        self._transfer(n + 1)
        for i in range(n):
            buf[i] = self._in[i + 1]

    def write(self, reg, value):
        self._out[0] = reg << 1
        self._out[1] = value
        self._transfer(2)


class Adxl355:
    """After read(): ok, x, y, z (counts), temperature (degC)."""

    counts_per_g = COUNTS_PER_G

    def __init__(self, regs):
        self.regs = regs
        self.buf = bytearray(BURST)
        self.ok = False
        self.crc_failed = False  # no CRC on this part; the common sensor interface has the flag
        self.started = False
        self.x = 0
        self.y = 0
        self.z = 0
        self.raw_t = 0
        self.temperature = 0.0
        self.bus_errors = 0

    def start(self):
        """Check the IDs, reset, set range, filter and measurement mode; False if not found."""
        ids = bytearray(3)
        try:
            self.regs.read(REG_DEVID_AD, ids)
            if ids[0] != DEVID_AD or ids[1] != DEVID_MST or ids[2] != PARTID:
                return False
            self.regs.write(REG_RESET, RESET_CODE)
            self.regs.write(REG_RANGE, RANGE_2G)
            self.regs.write(REG_FILTER, FILTER_ODR_3_9HZ)
            self.regs.write(REG_POWER_CTL, POWER_MEASURE)
        except OSError:
            self.bus_errors += 1
            return False
        self.started = True
        return True

    def read(self):
        self.ok = False
        if not self.started and not self.start():
            return False
        try:
            self.regs.read(REG_TEMP2, self.buf)
        except OSError:
            self.bus_errors += 1
            # Power may have been lost: set the part up again next time.
            self.started = False
            return False
        self.x, self.y, self.z, self.raw_t = parse_burst(self.buf)
        if self.x == 0 and self.y == 0 and self.z == 0:
            # Not measuring (standby after a brown-out): gravity never reads all zero.
            self.started = False
            return False
        self.temperature = temperature_c(self.raw_t)
        self.ok = True
        return True
