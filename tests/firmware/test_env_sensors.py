# SHT3x and BME280 drivers: datasheet vectors, an independent float
# reference for the BME280's integer compensation, and the drivers on a fake
# I2C bus (only the bus is faked: the chip model answers as the datasheet
# says). MicroPython-compatible (no pytest).

from firmware import bme280, sht3x
from firmware.fakes import CommandChip, FakeI2C, RegisterChip

# -- SHT3x -------------------------------------------------------------------------------


def crc31(data):
    # Bitwise CRC-8/NRSC-5 style (poly 0x31, init 0xFF), written independently of the driver.
    crc = 0xFF
    for b in data:
        for bit in range(7, -1, -1):
            top = ((crc >> 7) ^ (b >> bit)) & 1
            crc = (crc << 1) & 0xFF
            if top:
                crc ^= 0x31
    return crc


def sht_reply(raw_t, raw_rh, break_crc=False):
    t = bytes([raw_t >> 8, raw_t & 0xFF])
    h = bytes([raw_rh >> 8, raw_rh & 0xFF])
    ct = crc31(t) ^ (1 if break_crc else 0)
    return t + bytes([ct]) + h + bytes([crc31(h)])


def test_sht3x_crc_datasheet_vector():
    assert sht3x.crc8(b"\xbe\xef") == 0x92
    assert crc31(b"\xbe\xef") == 0x92
    for data in (b"\x00\x00", b"\xff\xff", b"\x66\x66", b"\x12\x34"):
        assert sht3x.crc8(data) == crc31(data)


def test_sht3x_conversion_end_points():
    assert sht3x.temperature_c(0) == -45.0
    assert abs(sht3x.temperature_c(65535) - 130.0) < 1e-9
    assert sht3x.humidity_pct(0) == 0.0
    assert abs(sht3x.humidity_pct(65535) - 100.0) < 1e-9
    # 25 degC: raw = (25 + 45) / 175 * 65535 = 26214
    assert abs(sht3x.temperature_c(26214) - 25.0) < 0.01


def sht_on_bus(address=0x44):
    bus = FakeI2C()
    chip = bus.attach(address, CommandChip())
    return bus, chip


def test_sht3x_pipelined_single_shot():
    bus, chip = sht_on_bus()
    s = sht3x.Sht3x(bus)
    assert s.start()
    assert chip.commands == [sht3x.SOFT_RESET, sht3x.MEASURE_HIGH]
    chip.replies.append(sht_reply(26214, 32768))
    assert s.read()
    assert abs(s.temperature - 25.0) < 0.01
    assert abs(s.humidity - 50.0) < 0.01
    # Each read starts the next measurement.
    assert chip.commands[-1] == sht3x.MEASURE_HIGH
    assert len(chip.commands) == 3


def test_sht3x_crc_failure_and_not_ready():
    bus, chip = sht_on_bus()
    s = sht3x.Sht3x(bus)
    s.start()
    chip.replies.append(sht_reply(26214, 32768, break_crc=True))
    assert not s.read()
    assert s.crc_failed and s.crc_errors == 1
    # Nothing measured yet: the sensor does not acknowledge the read.
    assert not s.read()
    assert not s.crc_failed and s.bus_errors == 1
    chip.present = False
    assert not s.start()


# -- BME280 --------------------------------------------------------------------------------
# Calibration of the worked example in Bosch's BMP280 datasheet (section 3.12),
# whose temperature and pressure formulas the BME280 shares, with humidity
# trimming values typical of real parts.
EXAMPLE = {
    "T": (27504, 26435, -1000),
    "P": (36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000),
    "H1": 75,
    "H2": 362,
    "H3": 0,
    "H4": 313,
    "H5": 50,
    "H6": 30,
}


def le16(v):
    v &= 0xFFFF
    return bytes([v & 0xFF, v >> 8])


def calibration_bytes(c):
    tp = b""
    for v in c["T"] + c["P"]:
        tp += le16(v)
    tp += b"\x00\x00"  # 0x9E-0x9F reserved: 26 bytes read as one burst
    h4 = c["H4"]
    h5 = c["H5"]
    h = le16(c["H2"]) + bytes([c["H3"], (h4 >> 4) & 0xFF, (h4 & 0x0F) | ((h5 & 0x0F) << 4), (h5 >> 4) & 0xFF])
    h += bytes([c["H6"] & 0xFF])
    return tp, c["H1"], h


def example_calibration():
    tp, h1, h = calibration_bytes(EXAMPLE)
    return bme280.Calibration(tp, h1, h)


def float_reference(c, adc_t, adc_p, adc_h):
    """The datasheet's double-precision formulas, written out separately."""
    t1, t2, t3 = c["T"]
    p1, p2, p3, p4, p5, p6, p7, p8, p9 = c["P"]
    v1 = (adc_t / 16384.0 - t1 / 1024.0) * t2
    v2 = (adc_t / 131072.0 - t1 / 8192.0) * (adc_t / 131072.0 - t1 / 8192.0) * t3
    fine = v1 + v2
    temperature = fine / 5120.0
    v1 = fine / 2.0 - 64000.0
    v2 = v1 * v1 * p6 / 32768.0
    v2 = v2 + v1 * p5 * 2.0
    v2 = v2 / 4.0 + p4 * 65536.0
    v1 = (p3 * v1 * v1 / 524288.0 + p2 * v1) / 524288.0
    v1 = (1.0 + v1 / 32768.0) * p1
    p = 1048576.0 - adc_p
    p = (p - v2 / 4096.0) * 6250.0 / v1
    v1 = p9 * p * p / 2147483648.0
    v2 = p * p8 / 32768.0
    pressure = p + (v1 + v2 + p7) / 16.0
    h = fine - 76800.0
    h = (adc_h - (c["H4"] * 64.0 + c["H5"] / 16384.0 * h)) * (
        c["H2"] / 65536.0 * (1.0 + c["H6"] / 67108864.0 * h * (1.0 + c["H3"] / 67108864.0 * h))
    )
    h = h * (1.0 - c["H1"] * h / 524288.0)
    h = min(100.0, max(0.0, h))
    return temperature, pressure, h


def test_calibration_parsing_round_trips_signed_fields():
    cal = example_calibration()
    assert EXAMPLE["T"] == (cal.T1, cal.T2, cal.T3)
    assert EXAMPLE["P"] == (cal.P1, cal.P2, cal.P3, cal.P4, cal.P5, cal.P6, cal.P7, cal.P8, cal.P9)
    assert (cal.H1, cal.H2, cal.H3, cal.H4, cal.H5, cal.H6) == (75, 362, 0, 313, 50, 30)
    negative = dict(EXAMPLE)
    negative["H4"] = -300
    negative["H5"] = -7
    negative["H6"] = -3
    tp, h1, h = calibration_bytes(negative)
    c = bme280.Calibration(tp, h1, h)
    assert (c.H4, c.H5, c.H6) == (-300, -7, -3)


def test_bme280_datasheet_example():
    cal = example_calibration()
    fine = bme280.t_fine(cal, 519888)
    assert fine == 128422
    assert bme280.temperature_centi(fine) == 2508  # 25.08 degC
    pa = bme280.pressure_q24_8(cal, fine, 415148) / 256
    assert abs(pa - 100653.27) < 0.05, pa


def test_bme280_integer_formulas_agree_with_the_float_reference():
    cal = example_calibration()
    seed = 12345
    for _ in range(200):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        adc_t = 380000 + seed % 260000  # about -20 .. +60 degC with this calibration
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        adc_p = 250000 + seed % 300000
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        adc_h = 20000 + seed % 30000
        t_ref, p_ref, h_ref = float_reference(EXAMPLE, adc_t, adc_p, adc_h)
        fine = bme280.t_fine(cal, adc_t)
        assert abs(bme280.temperature_centi(fine) / 100 - t_ref) <= 0.011
        assert abs(bme280.pressure_q24_8(cal, fine, adc_p) / 256 - p_ref) < 1.0
        assert abs(bme280.humidity_q22_10(cal, fine, adc_h) / 1024 - h_ref) < 0.05


def bme_chip(chip_id=bme280.CHIP_BME280):
    chip = RegisterChip()
    chip.mem[bme280.REG_CHIP_ID] = chip_id
    tp, h1, h = calibration_bytes(EXAMPLE)
    chip.mem[0x88 : 0x88 + 26] = tp
    chip.mem[0xA1] = h1
    chip.mem[0xE1 : 0xE1 + 7] = h
    set_data(chip, 0x80000, 0x80000, 0x8000)  # the reset values: nothing measured yet
    return chip


def set_data(chip, adc_p, adc_t, adc_h):
    chip.mem[0xF7 : 0xF7 + 8] = bytes(
        [adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0xF) << 4, adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0xF) << 4]
    ) + bytes([adc_h >> 8, adc_h & 0xFF])


def test_bme280_driver_forced_mode_pipeline():
    bus = FakeI2C()
    chip = bus.attach(0x76, bme_chip())
    b = bme280.Bme280(bus)
    assert b.start()
    assert b.has_humidity
    # ctrl_hum is written before ctrl_meas (it only takes effect then), forced mode last.
    regs = [w[0] for w in chip.writes]
    assert regs.index(bme280.REG_CTRL_HUM) < regs.index(bme280.REG_CTRL_MEAS)
    assert chip.writes[-1] == (bme280.REG_CTRL_MEAS, bytes([bme280.CTRL_MEAS_FORCED]))
    # The first read finds the reset values: not a measurement.
    assert not b.read()
    assert b.skipped == 1
    set_data(chip, 415148, 519888, 30000)
    writes = len(chip.writes)
    assert b.read()
    assert abs(b.temperature - 25.08) < 1e-9
    assert abs(b.pressure - 100.65327) < 0.0001
    _t_ref, _p_ref, h_ref = float_reference(EXAMPLE, 519888, 415148, 30000)
    assert abs(b.humidity - h_ref) < 0.05
    assert b.in_range()
    # ... and started the next measurement.
    assert chip.writes[writes:] == [(bme280.REG_CTRL_MEAS, bytes([bme280.CTRL_MEAS_FORCED]))]


def test_bmp280_has_no_humidity_and_unknown_chips_are_refused():
    bus = FakeI2C()
    bus.attach(0x77, bme_chip(bme280.CHIP_BMP280))
    b = bme280.Bme280(bus, 0x77)
    assert b.start()
    assert not b.has_humidity
    set_data(bus.devices[0x77], 415148, 519888, 0x8000)
    assert b.read()
    assert b.humidity == 0.0
    other = FakeI2C()
    other.attach(0x76, bme_chip(0x55))
    assert not bme280.Bme280(other).start()
    assert not bme280.Bme280(FakeI2C()).start()  # nothing on the bus
