# Bosch BME280 temperature, pressure and humidity sensor on I2C (also reads
# a BMP280, which has no humidity).
#
# Sans-IO part: calibration parsing and the integer compensation formulas of
# the BME280 datasheet (section 4.2.3, "compensation formulas in 32 / 64 bit
# fixed point"), transcribed to Python integers. Python's >> on negative
# numbers is arithmetic like the reference C code's; the one division in
# the pressure formula truncates towards zero as C does (_div). Under
# MicroPython the 64-bit steps of the pressure formula become long ints, so
# a sample allocates a little: once per sample, never in the request path.
#
# Registers: chip id 0xD0 (0x60 BME280, 0x58 BMP280), calibration 0x88-0xA1
# and 0xE1-0xE7, ctrl_hum 0xF2, ctrl_meas 0xF4, config 0xF5, data 0xF7-0xFE
# (press msb/lsb/xlsb, temp msb/lsb/xlsb, hum msb/lsb).
#
# The driver uses forced mode, pipelined: each read() collects the
# measurement the previous one started and starts the next (x1 oversampling
# takes under 10 ms). Forced mode is what Bosch recommends for weather
# monitoring: the sensor sleeps between samples and does not warm itself.

ADDRESS = 0x76  # SDO low; 0x77 with SDO high
CHIP_BME280 = 0x60
CHIP_BMP280 = 0x58

try:
    from micropython import const  # type: ignore  # the stubs type it position-only, the CPython stand-in not
except ImportError:  # CPython

    def const(value):
        return value


_REG_CALIB_TP = const(0x88)
_REG_CALIB_H1 = const(0xA1)
_REG_CALIB_H = const(0xE1)
REG_CHIP_ID = 0xD0
REG_RESET = 0xE0
REG_CTRL_HUM = 0xF2
REG_CTRL_MEAS = 0xF4
_REG_CONFIG = const(0xF5)
_REG_DATA = const(0xF7)

_CTRL_HUM_X1 = const(0x01)  # humidity oversampling x1
CTRL_MEAS_FORCED = 0x25  # temperature x1, pressure x1, forced mode
_CONFIG_NO_FILTER = const(0x00)

# The value a skipped (not yet measured) channel reads.
_SKIPPED_TP = const(0x80000)
_SKIPPED_H = const(0x8000)

T_MIN = -40.0
T_MAX = 85.0
P_MIN_KPA = 30.0
P_MAX_KPA = 110.0


def _u16(b, i):
    return b[i] | (b[i + 1] << 8)


def _s16(b, i):
    v = b[i] | (b[i + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


def _s8(v):
    return v - 0x100 if v & 0x80 else v


def _div(a, b):
    """Integer division truncating towards zero, as in C."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


class Calibration:
    """The trimming parameters dig_T1 .. dig_H6."""

    def __init__(self, tp, h1=0, h=None):
        """tp: the 26 bytes from 0x88 (only the first 24 are used); h1: byte 0xA1; h: the 7 bytes from 0xE1."""
        self.T1 = _u16(tp, 0)
        self.T2 = _s16(tp, 2)
        self.T3 = _s16(tp, 4)
        self.P1 = _u16(tp, 6)
        self.P2 = _s16(tp, 8)
        self.P3 = _s16(tp, 10)
        self.P4 = _s16(tp, 12)
        self.P5 = _s16(tp, 14)
        self.P6 = _s16(tp, 16)
        self.P7 = _s16(tp, 18)
        self.P8 = _s16(tp, 20)
        self.P9 = _s16(tp, 22)
        self.H1 = h1
        if h is None:
            h = bytes(7)
        self.H2 = _s16(h, 0)
        self.H3 = h[2]
        # dig_H4 = 0xE4[7:0] / 0xE5[3:0], dig_H5 = 0xE6[7:0] / 0xE5[7:4]; both signed 12-bit.
        self.H4 = (_s8(h[3]) << 4) | (h[4] & 0x0F)
        self.H5 = (_s8(h[5]) << 4) | (h[4] >> 4)
        self.H6 = _s8(h[6])


def t_fine(cal, adc_t):
    var1 = (((adc_t >> 3) - (cal.T1 << 1)) * cal.T2) >> 11
    d = (adc_t >> 4) - cal.T1
    var2 = (((d * d) >> 12) * cal.T3) >> 14
    return var1 + var2


def temperature_centi(fine):
    """Temperature in 0.01 degC."""
    return (fine * 5 + 128) >> 8


def pressure_q24_8(cal, fine, adc_p):
    """Pressure in Pa as Q24.8 (Pa * 256); 0 when the calibration would divide by zero."""
    var1 = fine - 128000
    var2 = var1 * var1 * cal.P6
    var2 = var2 + ((var1 * cal.P5) << 17)
    var2 = var2 + (cal.P4 << 35)
    var1 = ((var1 * var1 * cal.P3) >> 8) + ((var1 * cal.P2) << 12)
    var1 = (((1 << 47) + var1) * cal.P1) >> 33
    if var1 == 0:
        return 0
    p = 1048576 - adc_p
    p = _div(((p << 31) - var2) * 3125, var1)
    var1 = (cal.P9 * (p >> 13) * (p >> 13)) >> 25
    var2 = (cal.P8 * p) >> 19
    return ((p + var1 + var2) >> 8) + (cal.P7 << 4)


def humidity_q22_10(cal, fine, adc_h):
    """Relative humidity in % as Q22.10 (% * 1024), clamped to 0..100 %."""
    x1 = fine - 76800
    a = (((adc_h << 14) - (cal.H4 << 20) - (cal.H5 * x1)) + 16384) >> 15
    b = (((((((x1 * cal.H6) >> 10) * (((x1 * cal.H3) >> 11) + 32768)) >> 10) + 2097152) * cal.H2) + 8192) >> 14
    v = a * b
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * cal.H1) >> 4)
    if v < 0:
        v = 0
    if v > 419430400:
        v = 419430400
    return v >> 12


def parse_data(buf):
    """(adc_p, adc_t, adc_h) from the 8 data bytes at 0xF7."""
    adc_p = (buf[0] << 12) | (buf[1] << 4) | (buf[2] >> 4)
    adc_t = (buf[3] << 12) | (buf[4] << 4) | (buf[5] >> 4)
    adc_h = (buf[6] << 8) | buf[7]
    return adc_p, adc_t, adc_h


class Bme280:
    """Pipelined forced-mode driver. After read(): ok, temperature (degC), pressure (kPa), humidity (%)."""

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.address = address
        self.cal = None
        self.chip_id = 0
        self.has_humidity = False
        self.has_pressure = True
        self.buf = bytearray(8)
        self._one = bytearray(1)
        self.ok = False
        self.crc_failed = False  # no CRC on this bus; kept for the common sensor interface
        self.raw = 0  # adc_t, adc_p and adc_h folded together (stuck detection)
        self.temperature = 0.0
        self.pressure = 0.0
        self.humidity = 0.0
        self.bus_errors = 0
        self.skipped = 0

    def _write(self, reg, value):
        self._one[0] = value
        self.i2c.writeto_mem(self.address, reg, self._one)

    def start(self):
        """Identify the chip, load its calibration, start the first measurement; False if absent."""
        try:
            self.i2c.readfrom_mem_into(self.address, REG_CHIP_ID, self._one)
            self.chip_id = self._one[0]
            if self.chip_id != CHIP_BME280 and self.chip_id != CHIP_BMP280:
                return False
            self.has_humidity = self.chip_id == CHIP_BME280
            tp = bytearray(26)
            self.i2c.readfrom_mem_into(self.address, _REG_CALIB_TP, tp)
            h1 = 0
            h = None
            if self.has_humidity:
                self.i2c.readfrom_mem_into(self.address, _REG_CALIB_H1, self._one)
                h1 = self._one[0]
                h = bytearray(7)
                self.i2c.readfrom_mem_into(self.address, _REG_CALIB_H, h)
            self.cal = Calibration(tp, h1, h)
            self._write(_REG_CONFIG, _CONFIG_NO_FILTER)
            if self.has_humidity:
                # ctrl_hum takes effect only after the next write of ctrl_meas.
                self._write(REG_CTRL_HUM, _CTRL_HUM_X1)
            self._write(REG_CTRL_MEAS, CTRL_MEAS_FORCED)
        except OSError:
            self.bus_errors += 1
            return False
        return True

    def read(self):
        """Collect the pending measurement and start the next one; True if it was valid."""
        self.ok = False
        cal = self.cal
        if cal is None:
            if not self.start():
                return False
            cal = self.cal
        try:
            self.i2c.readfrom_mem_into(self.address, _REG_DATA, self.buf)
            self._write(REG_CTRL_MEAS, CTRL_MEAS_FORCED)
        except OSError:
            self.bus_errors += 1
            return False
        adc_p, adc_t, adc_h = parse_data(self.buf)
        if adc_t == _SKIPPED_TP or adc_p == _SKIPPED_TP or (self.has_humidity and adc_h == _SKIPPED_H):
            # No measurement finished yet (the first read after a reset).
            self.skipped += 1
            return False
        fine = t_fine(cal, adc_t)
        self.temperature = temperature_centi(fine) / 100.0
        self.pressure = pressure_q24_8(cal, fine, adc_p) / 256000.0
        self.humidity = humidity_q22_10(cal, fine, adc_h) / 1024.0 if self.has_humidity else 0.0
        self.raw = (adc_t ^ (adc_p << 3) ^ (adc_h << 7)) & 0x3FFFFFFF
        self.ok = True
        return True

    def in_range(self):
        return T_MIN <= self.temperature <= T_MAX and P_MIN_KPA <= self.pressure <= P_MAX_KPA

    def fingerprint(self):
        """The raw reading as one small int (stuck detection)."""
        return self.raw
