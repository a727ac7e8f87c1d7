# Murata SCL3300 3-axis inclinometer on SPI.
#
# Sans-IO part (datasheet, "SPI frame" and "Operations"):
#   - every transfer is one 32-bit frame: 8-bit operation code, 16-bit data,
#     8-bit CRC; the answer to a frame arrives in the *next* frame
#     ("off-frame" protocol);
#   - answer layout: bits 31:26 echo of the operation, bits 25:24 return
#     status RS (0 start-up, 1 normal, 2 self-test, 3 error), bits 23:8 data,
#     bits 7:0 CRC;
#   - CRC-8 over bits 31:8, polynomial 0x1D, initial value 0xFF, result
#     inverted (the operation codes below carry it: checked by the tests);
#   - acceleration in mode 4 (inclination, 10 Hz low-pass, low noise):
#     12000 LSB/g; temperature = -273 + raw / 18.9 degC.
#
# The driver reads X, Y, Z and the temperature with five frames per sample
# (the fifth, a status read, carries the temperature back). The tilt maths
# (firmware/tilt.py) works from the three accelerations, as for the ADXL355.

READ_ACC_X = 0x040000F7
READ_ACC_Y = 0x080000FD
READ_ACC_Z = 0x0C0000FB
READ_TEMPERATURE = 0x140000EF
READ_STATUS = 0x180000E5
READ_WHOAMI = 0x40000091
SW_RESET = 0xB4002098
MODE_1 = 0xB400001F
MODE_4 = 0xB4000338

WHOAMI = 0xC1
RS_NORMAL = 1
RS_ERROR = 3

COUNTS_PER_G_MODE_4 = 12000
STARTUP_MS_MODE_4 = 100


def crc8(value24):
    """CRC of the 24 bits above the CRC byte of a frame."""
    crc = 0xFF
    for i in range(23, -1, -1):
        bit = (value24 >> i) & 1
        top = crc & 0x80
        if bit:
            top ^= 0x80
        crc = (crc << 1) & 0xFF
        if top:
            crc ^= 0x1D
    return (~crc) & 0xFF


def frame(operation, data=0):
    """A 32-bit frame: operation byte, 16-bit data, CRC."""
    value24 = ((operation & 0xFF) << 16) | (data & 0xFFFF)
    return (value24 << 8) | crc8(value24)


def crc_ok(b):
    """b: the 4 bytes of an answer, big-endian."""
    return crc8((b[0] << 16) | (b[1] << 8) | b[2]) == b[3]


def return_status(b):
    return b[0] & 0x03


def data_u16(b):
    return (b[1] << 8) | b[2]


def data_s16(b):
    v = (b[1] << 8) | b[2]
    return v - 0x10000 if v & 0x8000 else v


def temperature_c(raw):
    return -273.0 + raw / 18.9


class Scl3300:
    """After read(): ok, x, y, z (counts), temperature (degC); crc_failed when an answer failed its CRC."""

    counts_per_g = COUNTS_PER_G_MODE_4

    def __init__(self, spi, cs, sleep_ms=None):
        self.spi = spi
        self.cs = cs
        self.sleep_ms = sleep_ms
        self._out = bytearray(4)
        self._in = bytearray(4)
        self.ok = False
        self.crc_failed = False
        self.started = False
        self.x = 0
        self.y = 0
        self.z = 0
        self.raw_t = 0
        self.temperature = 0.0
        self.crc_errors = 0
        self.status_errors = 0
        self.bus_errors = 0
        cs.value(1)

    def _transfer(self, value):
        out = self._out
        out[0] = (value >> 24) & 0xFF
        out[1] = (value >> 16) & 0xFF
        out[2] = (value >> 8) & 0xFF
        out[3] = value & 0xFF
        self.cs.value(0)
        try:
            self.spi.write_readinto(out, self._in)
        finally:
            self.cs.value(1)
        return self._in

    def _wait(self, ms):
        if self.sleep_ms is not None:
            self.sleep_ms(ms)

    def start(self):
        """Reset, select mode 4, wait for it to settle, check WHOAMI; False if not found."""
        try:
            self._transfer(SW_RESET)
            self._wait(1)
            self._transfer(MODE_4)
            self._wait(STARTUP_MS_MODE_4)
            # Status reads clear the start-up flags; the answer to each is in the next frame.
            self._transfer(READ_STATUS)
            self._transfer(READ_STATUS)
            self._transfer(READ_WHOAMI)
            answer = self._transfer(READ_STATUS)
        except OSError:
            self.bus_errors += 1
            return False
        if not crc_ok(answer) or answer[2] != WHOAMI:
            return False
        self.started = True
        return True

    def read(self):
        self.ok = False
        self.crc_failed = False
        if not self.started and not self.start():
            return False
        try:
            self._transfer(READ_ACC_X)  # answers the previous sample's status read
            b = self._transfer(READ_ACC_Y)
            good = self._check(b)
            x = data_s16(b)
            b = self._transfer(READ_ACC_Z)
            good = self._check(b) and good
            y = data_s16(b)
            b = self._transfer(READ_TEMPERATURE)
            good = self._check(b) and good
            z = data_s16(b)
            b = self._transfer(READ_STATUS)
            good = self._check(b) and good
            t = data_u16(b)
        except OSError:
            self.bus_errors += 1
            self.started = False
            return False
        if not good:
            return False
        self.x = x
        self.y = y
        self.z = z
        self.raw_t = t
        self.temperature = temperature_c(t)
        self.ok = True
        return True

    def _check(self, b):
        if not crc_ok(b):
            self.crc_errors += 1
            self.crc_failed = True
            return False
        if return_status(b) != RS_NORMAL:
            self.status_errors += 1
            if return_status(b) == RS_ERROR:
                # An error or a reset of the part: set it up again next time.
                self.started = False
            return False
        return True
