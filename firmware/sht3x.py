# Sensirion SHT3x (SHT30/31/35) temperature and humidity sensor on I2C.
#
# Sans-IO part: commands, the CRC and the conversion (datasheet "SHT3x-DIS",
# sections 4.4-4.6 and 4.12):
#   - a measurement is 6 bytes: T msb, T lsb, CRC, RH msb, RH lsb, CRC;
#   - CRC-8, polynomial 0x31 (x^8 + x^5 + x^4 + 1), initial value 0xFF, no
#     reflection, no final XOR; CRC(0xBE, 0xEF) = 0x92;
#   - T = -45 + 175 * raw / 65535 degC, RH = 100 * raw / 65535 %.
#
# The driver uses single-shot measurements without clock stretching and
# pipelines them: each read() collects the result of the measurement started
# by the previous one and starts the next (high repeatability takes at most
# 15.5 ms, far less than any sample interval), so it never sleeps. A read
# made too early is not acknowledged by the sensor: that shows as absent.

ADDRESS = 0x44  # ADDR pin low; 0x45 with ADDR high

MEASURE_HIGH = b"\x24\x00"  # single shot, high repeatability, no clock stretching
SOFT_RESET = b"\x30\xa2"

T_MIN = -40.0
T_MAX = 125.0


def crc8(data, start=0, count=2):
    crc = 0xFF
    for i in range(start, start + count):
        crc ^= data[i]
        for _ in range(8):
            if crc & 0x80:
                crc = ((crc << 1) ^ 0x31) & 0xFF
            else:
                crc = (crc << 1) & 0xFF
    return crc


def frame_ok(buf):
    """True when both words of a 6-byte measurement pass their CRC."""
    return crc8(buf, 0, 2) == buf[2] and crc8(buf, 3, 2) == buf[5]


def temperature_c(raw):
    return -45.0 + 175.0 * raw / 65535.0


def humidity_pct(raw):
    return 100.0 * raw / 65535.0


class Sht3x:
    """Pipelined single-shot driver. After read(): ok, temperature, humidity, raw_t, raw_rh."""

    has_pressure = False

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.address = address
        self.buf = bytearray(6)
        self.ok = False
        self.crc_failed = False
        self.raw_t = 0
        self.raw_rh = 0
        self.temperature = 0.0
        self.humidity = 0.0
        self.pressure = 0.0  # not measured
        self.crc_errors = 0
        self.bus_errors = 0

    def start(self):
        """Reset the sensor and start the first measurement; False if nothing answers."""
        try:
            self.i2c.writeto(self.address, SOFT_RESET)
        except OSError:
            self.bus_errors += 1
            return False
        return self._trigger()

    def _trigger(self):
        try:
            self.i2c.writeto(self.address, MEASURE_HIGH)
            return True
        except OSError:
            self.bus_errors += 1
            return False

    def read(self):
        """Collect the pending measurement and start the next one; True if it was valid."""
        self.ok = False
        self.crc_failed = False
        try:
            self.i2c.readfrom_into(self.address, self.buf)
        except OSError:
            self.bus_errors += 1
            self._trigger()
            return False
        self._trigger()
        buf = self.buf
        if not frame_ok(buf):
            self.crc_errors += 1
            self.crc_failed = True
            return False
        self.raw_t = (buf[0] << 8) | buf[1]
        self.raw_rh = (buf[3] << 8) | buf[4]
        self.temperature = temperature_c(self.raw_t)
        self.humidity = humidity_pct(self.raw_rh)
        self.ok = True
        return True

    def in_range(self):
        return T_MIN <= self.temperature <= T_MAX

    def fingerprint(self):
        """The raw reading as one small int (stuck detection)."""
        return ((self.raw_t << 14) ^ self.raw_rh) & 0x3FFFFFFF
