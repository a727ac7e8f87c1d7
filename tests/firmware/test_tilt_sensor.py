# The tilt node's adapter: ADXL355 over I2C and SPI, SCL3300 over SPI (CRC
# vectors from the datasheet's operation codes), pitch / roll / slopes,
# baseline zeroing over Modbus persisted through the config store, and the
# status bits. Only the buses are faked. MicroPython-compatible (no pytest).

import math

from firmware import adxl355, main, regmap, scl3300, tilt_sensor
from firmware.config_store import ConfigStore
from firmware.fakes import FakeIO, FakeSPI, RegisterChip
from firmware.node import Node
from tests.firmware.mp_support import fresh_dir, remove_dir, with_crc

OK = regmap.STATUS_OK
G = 256000  # ADXL355 counts per g at +-2 g

# -- ADXL355 --------------------------------------------------------------------------------
def axis_bytes(v):
    v &= 0xFFFFF
    return bytes([v >> 12, (v >> 4) & 0xFF, (v & 0xF) << 4])


def adxl_chip():
    chip = RegisterChip()
    chip.mem[0] = 0xAD
    chip.mem[1] = 0x1D
    chip.mem[2] = 0xED
    return chip


def set_accel(chip, x, y, z, t_raw=1885):
    chip.mem[6] = (t_raw >> 8) & 0x0F
    chip.mem[7] = t_raw & 0xFF
    chip.mem[8:17] = axis_bytes(x) + axis_bytes(y) + axis_bytes(z)


def attitude(pitch_deg, roll_deg=0.0, g=1.0):
    """Accelerations (counts) of a sensor at rest whose x axis is pitch_deg and y axis roll_deg above horizontal."""
    sx = math.sin(math.radians(pitch_deg))
    sy = math.sin(math.radians(roll_deg))
    z2 = 1.0 - sx * sx - sy * sy
    sz = math.sqrt(z2) if z2 > 0 else 0.0
    return round(g * G * sx), round(g * G * sy), round(g * G * sz)


def test_adxl355_20_bit_axes_and_temperature():
    assert adxl355.axis(axis_bytes(1), 0) == 1
    assert adxl355.axis(b"\xff\xff\xf0", 0) == -1
    assert adxl355.axis(b"\x7f\xff\xf0", 0) == 524287
    assert adxl355.axis(b"\x80\x00\x00", 0) == -524288
    assert adxl355.axis(b"\x3e\x80\x00", 0) == G
    # The low nibble of DATA1 is not data.
    assert adxl355.axis(b"\x00\x00\x1f", 0) == 1
    assert adxl355.temperature_c(1885) == 25.0
    assert abs(adxl355.temperature_c(1885 - 181) - 45.0) < 1e-9


def i2c_tilt(settings=None):
    io = FakeIO()
    chip = io.i2c(0, 22, 21).attach(0x1D, adxl_chip())
    set_accel(chip, 0, 0, G)
    s = {}
    for k in settings or {}:
        s[k] = settings[k]
    sensor = tilt_sensor.make_sensor(s, io)
    return io, chip, sensor


def test_adxl355_is_set_up_for_static_tilt():
    _io, chip, _sensor = i2c_tilt()
    assert chip.writes == [
        (adxl355.REG_RESET, bytes([0x52])),
        (adxl355.REG_RANGE, bytes([adxl355.RANGE_2G])),
        (adxl355.REG_FILTER, bytes([adxl355.FILTER_ODR_3_9HZ])),
        (adxl355.REG_POWER_CTL, bytes([0])),
    ]


def test_level_and_tilted_attitudes():
    _io, chip, sensor = i2c_tilt()
    node = Node(regmap.KIND_TILT, sensor, 0)
    set_accel(chip, 0, 0, G, 1885 - 91)
    node.sample(1000)
    bank = node.bank
    assert bank.get_input("sensor_status") == OK
    assert (bank.get_input("pitch"), bank.get_input("roll")) == (0, 0)
    assert bank.get_input("temperature") == 35.1  # 25 + 91 / 9.05, to 0.1 degC
    x, y, z = attitude(0.5, -0.25)
    set_accel(chip, x, y, z)
    node.sample(2000)
    assert abs(bank.get_input("pitch") - 500) <= 1
    assert abs(bank.get_input("roll") + 250) <= 1
    assert abs(bank.get_input("slope_x") - 1000 * math.tan(math.radians(0.5))) <= 0.02
    assert abs(bank.get_input("slope_y") + 1000 * math.tan(math.radians(0.25))) <= 0.02


def test_zero_baseline_over_modbus_is_persisted():
    root = fresh_dir("tilt")
    try:
        _io, chip, sensor = i2c_tilt()
        node = Node(regmap.KIND_TILT, sensor, 0, unit_id=5, store=ConfigStore(root))
        x, y, z = attitude(1.2, 0.4)
        set_accel(chip, x, y, z)
        node.sample(1000)
        assert abs(node.bank.get_input("pitch") - 1200) <= 1
        zero = regmap.find(regmap.KIND_HOLDING[regmap.KIND_TILT], "zero_baseline")[1]
        request = with_crc(5, 6, 0, zero, 0, 1)
        n = node.handle(request, len(request), 1100)
        assert bytes(node.slave.tx[:n]) == request
        bank = node.bank
        assert bank.get_holding_raw("zero_baseline") == 0  # a command reads back 0
        assert abs(bank.get_holding_raw("baseline_pitch") - 1200) <= 1
        assert abs(bank.get_holding_raw("baseline_roll") - 400) <= 1
        assert bank.get_input("pitch") == 0 and bank.get_input("slope_x") == 0
        assert sensor.zeroings == 1
        assert node.store.save_if_dirty(bank)
        # After a restart the stored zero is in force.
        _io2, chip2, sensor2 = i2c_tilt()
        set_accel(chip2, x, y, z)
        again = Node(regmap.KIND_TILT, sensor2, 0, unit_id=5, store=ConfigStore(root))
        assert again.bank.get_holding_raw("baseline_pitch") == bank.get_holding_raw("baseline_pitch")
        again.sample(1000)
        assert abs(again.bank.get_input("pitch")) <= 1 and abs(again.bank.get_input("roll")) <= 1
        x, y, z = attitude(1.2 + 0.23, 0.4)  # formwork moves by 4 per mille
        set_accel(chip2, x, y, z)
        again.sample(2000)
        assert abs(again.bank.get_input("slope_x") - 4.0) <= 0.05
    finally:
        remove_dir(root)


def test_zeroing_without_a_sample_is_refused():
    _io, chip, sensor = i2c_tilt()
    chip.present = False
    node = Node(regmap.KIND_TILT, sensor, 0, unit_id=5)
    node.sample(1000)
    assert node.bank.get_input("sensor_status") == regmap.STATUS_ABSENT
    zero = regmap.find(regmap.KIND_HOLDING[regmap.KIND_TILT], "zero_baseline")[1]
    request = with_crc(5, 6, 0, zero, 0, 1)
    node.handle(request, len(request), 1100)
    assert sensor.zero_refused == 1
    assert node.bank.get_holding_raw("baseline_pitch") == 0
    assert node.bank.get_holding_raw("zero_baseline") == 0


def test_out_of_range_attitude_and_gravity_and_a_stuck_part():
    _io, chip, sensor = i2c_tilt({"max_angle_deg": 30, "stuck_samples": 3})
    node = Node(regmap.KIND_TILT, sensor, 0)
    x, y, z = attitude(40.0)
    set_accel(chip, x, y, z)
    node.sample(1000)
    assert node.bank.get_input("sensor_status") == OK | regmap.STATUS_RANGE
    x, y, z = attitude(1.0, 0.0, g=1.3)  # a shock
    set_accel(chip, x, y, z)
    node.sample(2000)
    assert node.bank.get_input("sensor_status") == OK | regmap.STATUS_RANGE
    node.sample(3000)
    assert node.bank.get_input("sensor_status") == OK | regmap.STATUS_RANGE
    node.sample(4000)  # the third identical raw reading in a row
    assert node.bank.get_input("sensor_status") & regmap.STATUS_STUCK
    assert not node.bank.get_input("sensor_status") & OK


def test_part_in_standby_reads_as_absent_and_is_set_up_again():
    _io, chip, sensor = i2c_tilt()
    node = Node(regmap.KIND_TILT, sensor, 0)
    set_accel(chip, 0, 0, 0)  # after a brown-out the part sits in standby
    node.sample(1000)
    assert node.bank.get_input("sensor_status") == regmap.STATUS_ABSENT
    writes = len(chip.writes)
    set_accel(chip, 0, 0, G)
    node.sample(2000)
    assert node.bank.get_input("sensor_status") == OK
    assert len(chip.writes) == writes + 4  # reset, range, filter, measure again


class AdxlOnSpi:
    """The ADXL355's SPI protocol in front of a register chip: first byte = register << 1 | read."""

    def __init__(self, chip):
        self.chip = chip

    def transfer(self, out):
        reg = out[0] >> 1
        if out[0] & 1:
            return b"\x00" + bytes(self.chip.read_mem(reg, len(out) - 1))
        self.chip.write_mem(reg, out[1:])
        return bytes(len(out))


def test_adxl355_over_spi():
    io = FakeIO()
    chip = adxl_chip()
    x, y, z = attitude(-2.0, 1.0)
    set_accel(chip, x, y, z)
    spi = FakeSPI(AdxlOnSpi(chip))
    io.spi_buses[2] = spi
    sensor = tilt_sensor.make_sensor({"bus": "spi", "cs": 13}, io)
    spi.cs = io.pins[13]
    node = Node(regmap.KIND_TILT, sensor, 0)
    node.sample(1000)
    assert node.bank.get_input("sensor_status") == OK
    assert abs(node.bank.get_input("pitch") + 2000) <= 1
    assert abs(node.bank.get_input("roll") - 1000) <= 1
    assert spi.cs_errors == 0 and io.pins[13].level == 1
    assert (adxl355.REG_POWER_CTL, bytes([0])) in chip.writes


# -- SCL3300 --------------------------------------------------------------------------------
DATASHEET_FRAMES = (
    0x040000F7,  # read ACC_X
    0x080000FD,  # read ACC_Y
    0x0C0000FB,  # read ACC_Z
    0x100000E9,  # read STO
    0x140000EF,  # read temperature
    0x180000E5,  # read status summary
    0x240000C7,  # read ANG_X
    0x280000CD,  # read ANG_Y
    0x2C0000CB,  # read ANG_Z
    0x40000091,  # read WHOAMI
    0xB0001F6F,  # enable angle outputs
    0xB400001F,  # mode 1
    0xB4000102,  # mode 2
    0xB4000225,  # mode 3
    0xB4000338,  # mode 4
    0xB4002098,  # software reset
)


def test_scl3300_crc_matches_every_datasheet_operation_code():
    for value in DATASHEET_FRAMES:
        assert scl3300.frame(value >> 24, (value >> 8) & 0xFFFF) == value, hex(value)
        assert scl3300.crc_ok(bytes([value >> 24, (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF]))
    assert scl3300.temperature_c(5160) > 0
    assert abs(scl3300.temperature_c(int((25 + 273) * 18.9)) - 25.0) < 0.06


class Scl3300Model:
    """An SCL3300 on the SPI bus: off-frame answers, CRC on both directions."""

    def __init__(self, x=0, y=0, z=12000, t_raw=5632):
        self.values = {0x04: x, 0x08: y, 0x0C: z, 0x14: t_raw, 0x18: 0, 0x40: 0xC1}
        self.pending = bytes(4)
        self.rs = 1
        self.break_crc = False
        self.bad_requests = 0
        self.ops = []

    def transfer(self, out):
        if not scl3300.crc_ok(out):
            self.bad_requests += 1
        op = out[0]
        self.ops.append(op)
        data = self.values.get(op, (out[1] << 8) | out[2]) & 0xFFFF
        head = (op & 0xFC) | self.rs
        crc = scl3300.crc8((head << 16) | data) ^ (0x01 if self.break_crc else 0)
        answer, self.pending = self.pending, bytes([head, data >> 8, data & 0xFF, crc])
        return answer


def scl_node():
    io = FakeIO()
    model = Scl3300Model()
    spi = FakeSPI(model)
    io.spi_buses[2] = spi
    sensor = main.load_sensor(regmap.KIND_TILT, {"sensor": {"module": "firmware.tilt", "device": "scl3300"}}, io)
    spi.cs = io.pins[13]
    return io, model, spi, sensor, Node(regmap.KIND_TILT, sensor, 0)


def test_scl3300_start_up_and_reading():
    io, model, spi, _sensor, node = scl_node()
    assert model.ops[:2] == [0xB4, 0xB4]  # software reset, then mode 4
    assert io.slept_ms >= scl3300.STARTUP_MS_MODE_4
    x, y, z = attitude(3.0, -1.5)
    scale = 12000 / G
    model.values[0x04] = round(x * scale)
    model.values[0x08] = round(y * scale) & 0xFFFF
    model.values[0x0C] = round(z * scale)
    node.sample(1000)
    assert node.bank.get_input("sensor_status") == OK
    assert abs(node.bank.get_input("pitch") - 3000) <= 6
    assert abs(node.bank.get_input("roll") + 1500) <= 6
    assert abs(node.bank.get_input("temperature") - (5632 / 18.9 - 273)) <= 0.06
    assert model.bad_requests == 0 and spi.cs_errors == 0


def test_scl3300_crc_error_and_error_status():
    _io, model, _spi, sensor, node = scl_node()
    model.break_crc = True
    node.sample(1000)
    assert node.bank.get_input("sensor_status") == regmap.STATUS_CHECKSUM
    model.break_crc = False
    model.rs = 3
    node.sample(2000)
    assert node.bank.get_input("sensor_status") == regmap.STATUS_ABSENT
    assert not sensor.device.started  # set up again at the next sample
    model.rs = 1
    node.sample(3000)
    node.sample(4000)
    assert node.bank.get_input("sensor_status") == OK
