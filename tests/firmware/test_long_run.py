# Counters that a node running for months drives past MicroPython's small-int
# range (2**30 - 1 on the ESP32, a 31-bit signed int): beyond it every
# increment allocates a long int, in the request path or 16000 times a
# second. Each wraps at COUNT_MASK instead; the registers that publish them
# take their low 16 bits, so the gateway sees no difference.
# MicroPython-compatible (no pytest).

from firmware import noise_sensor
from firmware.fakes import FakeI2S
from firmware.modbus_rtu import RtuSlave
from firmware.regbank import RegisterBank
from firmware.regmap import KIND_DUST
from firmware.rs485 import FrameAssembler
from tests.firmware.mp_support import with_crc

SMALL_INT_MAX = 0x3FFFFFFF


def test_bus_frame_counters_wrap_inside_the_small_int_range():
    # Every frame on the bus (at 50 frames/s, 2**30 of them take 8 months).
    asm = FrameAssembler(1750)
    asm.frames = SMALL_INT_MAX
    frame = with_crc(9, 3, 0, 0, 0, 1)
    asm.feed(frame, len(frame), 0)
    assert asm.poll(10000) == len(frame)
    assert asm.frames == 0
    slave = RtuSlave(1, RegisterBank(KIND_DUST))
    slave.other_unit = SMALL_INT_MAX
    slave.frames_ok = SMALL_INT_MAX
    slave.crc_errors = SMALL_INT_MAX
    slave.handle(frame, len(frame))  # unit 9: someone else's
    assert slave.other_unit == 0
    slave.handle(with_crc(1, 4, 0, 0, 0, 1), 8)
    assert slave.frames_ok == 0
    broken = bytearray(with_crc(1, 4, 0, 0, 0, 1))
    broken[-1] ^= 0xFF
    slave.handle(broken, 8)
    assert slave.crc_errors == 0


def test_i2s_sample_count_wraps_inside_the_small_int_range():
    # 16000 samples a second leave the small-int range after 18.6 hours.
    i2s = FakeI2S()
    source = noise_sensor.I2sSource(i2s, 16000, -26.0, 64)
    source.samples = SMALL_INT_MAX - 10
    i2s.load([1 << 20] * 64)
    source.poll(0)
    assert source.samples == 53
