# The dust node's adapter on fake hardware: PMS5003 / SDS011 in passive mode
# with warm-up, the SHT3x / BME280 humidity sensor, the humidity flag and
# correction, stuck / range / absent / checksum status, and the way main.py
# loads it. Only machine peripherals are faked (UART, I2C, GPIO).
# MicroPython-compatible (no pytest).

from firmware import dust_sensor, humidity, main, pms5003, regmap, sds011
from firmware.fakes import CommandChip, FakeIO, RegisterChip
from firmware.node import Node

OK = regmap.STATUS_OK


def pms_frame(pm1, pm25, pm10, counts=0, break_sum=False):
    words = [pm1, pm25, pm10, pm1, pm25, pm10, counts, counts // 2, 7, 3, 1, 0, 0]
    body = bytearray(b"\x42\x4d\x00\x1c")
    for w in words:
        body.append(w >> 8)
        body.append(w & 0xFF)
    total = sum(body) + (1 if break_sum else 0)
    body.append((total >> 8) & 0xFF)
    body.append(total & 0xFF)
    return bytes(body)


def sds_frame(pm25_x10, pm10_x10):
    data = bytes([pm25_x10 & 0xFF, pm25_x10 >> 8, pm10_x10 & 0xFF, pm10_x10 >> 8, 0x12, 0x34])
    return b"\xaa\xc0" + data + bytes([sum(data) & 0xFF, 0xAB])


def crc31(data):
    crc = 0xFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


class ShtModel:
    """An SHT3x answering each single-shot command with the values set here."""

    def __init__(self, io, address=0x44, t=20.0, rh=50.0):
        self.t = t
        self.rh = rh
        self.chip = io.i2c(0, 22, 21).attach(address, CommandChip())
        self.chip.on_command = self.command

    def command(self, chip, data):
        if data == b"\x24\x00":
            rt = int((self.t + 45.0) / 175.0 * 65535 + 0.5)
            rh = int(self.rh / 100.0 * 65535 + 0.5)
            t = bytes([rt >> 8, rt & 0xFF])
            h = bytes([rh >> 8, rh & 0xFF])
            chip.replies = [t + bytes([crc31(t)]) + h + bytes([crc31(h)])]


def dust(settings, io=None, boot_ms=0):
    io = io or FakeIO()
    base = {"env": "none", "set": 25}
    for k in settings:
        base[k] = settings[k]
    sensor = dust_sensor.make_sensor(base, io)
    node = Node(regmap.KIND_DUST, sensor, boot_ms)
    return io, sensor, node


def sample(node, io, now_ms, frame=None):
    uart = io.uarts[1]
    if frame is not None:
        uart.deliver(frame, at_us=0, gap_us=0)
    node.sample(now_ms)
    return node.bank.get_input("sensor_status")


def test_pms5003_is_woken_put_in_passive_mode_and_asked():
    io, _sensor, _node = dust({})
    assert io.pins[25].level == 1
    assert io.uart_settings[1] == (9600, 0, 33, 32)
    assert io.uarts[1].take_sent() == pms5003.WAKE + pms5003.PASSIVE_MODE + pms5003.READ


def test_warm_up_then_valid_readings():
    io, sensor, node = dust({"warmup_s": 30})
    status = sample(node, io, 1000, pms_frame(10, 20, 30))
    assert status == regmap.STATUS_WARMUP
    assert node.bank.get_input("pm25") == 20  # published, but flagged
    assert io.uarts[1].take_sent()[-7:] == pms5003.READ  # the next reading is requested
    status = sample(node, io, 30000, pms_frame(11, 21, 31))
    assert status == OK
    assert (node.bank.get_input("pm1"), node.bank.get_input("pm25"), node.bank.get_input("pm10")) == (11, 21, 31)
    assert sensor.counters.ok == 1 and sensor.counters.warmup == 1


def test_no_answer_is_absent_and_the_sensor_is_woken_again():
    io, sensor, node = dust({"warmup_s": 0})
    uart = io.uarts[1]
    uart.take_sent()
    for i in range(dust_sensor.ABSENT_RESTART - 1):
        assert sample(node, io, 1000 * (i + 1)) == regmap.STATUS_ABSENT
        assert uart.take_sent() == pms5003.READ
    assert sample(node, io, 9000) == regmap.STATUS_ABSENT
    assert uart.take_sent() == pms5003.WAKE + pms5003.PASSIVE_MODE + pms5003.READ
    assert sensor.restarts == 1 and sensor.woke_ms == 9000
    assert node.bank.get_input("sensor_errors") == dust_sensor.ABSENT_RESTART


def test_checksum_failure_and_out_of_range():
    io, _sensor, node = dust({"warmup_s": 0})
    assert sample(node, io, 1000, pms_frame(1, 2, 3, break_sum=True)) == regmap.STATUS_CHECKSUM
    status = sample(node, io, 2000, pms_frame(900, 1200, 1500))
    assert status == OK | regmap.STATUS_RANGE
    assert node.bank.get_input("pm10") == 1500


def test_stuck_sensor():
    io, sensor, node = dust({"warmup_s": 0, "stuck_samples": 4})
    for i in range(3):
        assert sample(node, io, 1000 * (i + 1), pms_frame(5, 6, 7, counts=40)) == OK
    assert sample(node, io, 4000, pms_frame(5, 6, 7, counts=40)) == regmap.STATUS_STUCK
    assert sample(node, io, 5000, pms_frame(5, 6, 7, counts=41)) == OK
    assert sensor.counters.stuck == 1


def test_sds011_through_its_own_module_name():
    io = FakeIO()
    sensor = sds011.make_sensor({"env": "none", "warmup_s": 0}, io)
    assert sensor.pm_kind == "sds011"
    uart = io.uarts[1]
    assert uart.take_sent() == sds011.WORK + sds011.query_mode_command() + sds011.QUERY
    node = Node(regmap.KIND_DUST, sensor, 0)
    assert sample(node, io, 1000, sds_frame(123, 456)) == OK
    assert node.bank.get_input("pm25") == 12  # 12.3 rounded to the register's 1 ug/m3
    assert node.bank.get_input("pm10") == 46
    assert node.bank.get_input("pm1") == 0
    assert uart.take_sent() == sds011.QUERY


def test_humidity_sensor_found_flags_and_corrects():
    io = FakeIO()
    sht = ShtModel(io, 0x44, t=21.5, rh=60.0)
    io, sensor, node = dust({"env": "auto", "warmup_s": 0}, io)
    assert sensor.env is not None and sensor.env.address == 0x44
    status = sample(node, io, 1000, pms_frame(50, 100, 200))
    assert status == OK
    assert node.bank.get_input("temperature") == 21.5
    assert node.bank.get_input("humidity") == 60.0
    assert node.bank.get_input("pressure") == 0  # an SHT3x has no barometer
    sht.rh = 85.0
    # Pipelined: this sample collects the measurement started at the previous one (60 %) ...
    assert sample(node, io, 1500, pms_frame(50, 100, 200)) == OK
    assert node.bank.get_input("humidity") == 60.0
    # ... and the next one the 85 % measurement it started.
    status = sample(node, io, 2000, pms_frame(50, 100, 200))
    assert node.bank.get_input("humidity") == 85.0
    assert status == OK | regmap.STATUS_HUMID
    assert node.bank.get_input("pm25") == 100  # correction off by default
    # The gateway switches the correction on and lowers the flag threshold.
    node.bank.set_holding_raw("rh_correction", 1)
    node.bank.set_holding_raw("kappa", 400)
    status = sample(node, io, 3000, pms_frame(50, 100, 200))
    c = humidity.growth_factor(85.0, 0.4)
    assert c > 1.5
    assert node.bank.get_input("pm25") == int(100 / c + 0.5)
    assert node.bank.get_input("pm10") == int(200 / c + 0.5)
    node.bank.set_holding_raw("rh_flag_threshold", 900)
    assert sample(node, io, 4000, pms_frame(50, 100, 200)) == OK


def test_failing_humidity_sensor_flags_the_sample():
    io = FakeIO()
    sht = ShtModel(io)
    io, _sensor, node = dust({"env": "sht3x", "warmup_s": 0}, io)
    assert sample(node, io, 1000, pms_frame(1, 2, 3)) == OK
    sht.chip.present = False
    env_absent = regmap.STATUS_SPLIT | (regmap.STATUS_ABSENT << regmap.STATUS_AUX_SHIFT)
    assert sample(node, io, 2000, pms_frame(1, 2, 3)) == OK | env_absent  # the PM values stay valid


def test_bme280_gives_pressure():
    io = FakeIO()
    chip = RegisterChip()
    chip.mem[0xD0] = 0x58  # a BMP280: temperature and pressure only
    # An identity-like calibration is enough to see the wiring: use the datasheet example.
    cal = (
        27504,
        26435,
        -1000 & 0xFFFF,
        36477,
        -10685 & 0xFFFF,
        3024,
        2855,
        140,
        -7 & 0xFFFF,
        15500,
        -14600 & 0xFFFF,
        6000,
    )
    for i in range(len(cal)):
        chip.mem[0x88 + 2 * i] = cal[i] & 0xFF
        chip.mem[0x89 + 2 * i] = cal[i] >> 8

    def measured(c, reg, data):
        if reg == 0xF4:
            c.mem[0xF7:0xFD] = bytes(
                [
                    415148 >> 12,
                    (415148 >> 4) & 0xFF,
                    (415148 & 0xF) << 4,
                    519888 >> 12,
                    (519888 >> 4) & 0xFF,
                    (519888 & 0xF) << 4,
                ]
            )

    chip.on_write = measured
    io.i2c(0, 22, 21).attach(0x77, chip)
    io, _sensor, node = dust({"env": "auto", "warmup_s": 0}, io)
    assert sample(node, io, 1000, pms_frame(1, 2, 3)) == OK
    assert node.bank.get_input("pressure") == 100.65
    assert node.bank.get_input("temperature") == 25.1


def test_no_humidity_sensor_found_is_said_on_the_console():
    io, sensor, _node = dust({"env": "auto"})
    assert sensor.env is None
    assert any("no SHT3x or BME280" in line for line in io.logs)


def test_main_loads_the_adapter_by_kind_and_by_module_name():
    io = FakeIO()
    s = main.load_sensor(regmap.KIND_DUST, {"sensor": {"env": "none"}}, io)
    assert isinstance(s, dust_sensor.DustSensor)
    io = FakeIO()
    s = main.load_sensor(regmap.KIND_DUST, {"sensor": {"module": "firmware.pms5003", "env": "none"}}, io)
    assert isinstance(s, dust_sensor.DustSensor) and s.pm_kind == "pms5003"
    io = FakeIO()
    s = main.load_sensor(regmap.KIND_DUST, {"sensor": {"pm": "nonsense"}}, io)
    assert isinstance(s, main.MissingSensor)
    assert any("unavailable" in line for line in io.logs)
