# Modbus RTU slave vectors. This module is plain MicroPython-compatible code
# (no pytest import, no f-string specs, no typing): pytest runs it under
# CPython, and tests/firmware/test_under_micropython.py runs the very same
# functions under real MicroPython.

from firmware import regmap
from firmware.modbus_rtu import RtuSlave, crc16, crc_ok
from firmware.regbank import RegisterBank
from tests.firmware.mp_support import with_crc


def reply(slave, request):
    n = slave.handle(request)
    return bytes(slave.tx[:n])


def dust_slave(unit=1):
    bank = RegisterBank(regmap.KIND_DUST)
    return RtuSlave(unit, bank)


def test_crc_known_vectors():
    # Published examples: read 1 holding register of unit 1 ends 84 0A;
    # read 10 holding registers of unit 1 ends C5 CD.
    assert with_crc(0x01, 0x03, 0x00, 0x00, 0x00, 0x01) == bytes([1, 3, 0, 0, 0, 1, 0x84, 0x0A])
    assert with_crc(0x01, 0x03, 0x00, 0x00, 0x00, 0x0A) == bytes([1, 3, 0, 0, 0, 10, 0xC5, 0xCD])
    # CRC-16/MODBUS check value over "123456789" is 0x4B37.
    assert crc16(b"123456789", 9) == 0x4B37
    assert crc_ok(bytes([1, 3, 0, 0, 0, 1, 0x84, 0x0A]), 8)
    assert not crc_ok(bytes([1, 3, 0, 0, 0, 1, 0x0A, 0x84]), 8)


def test_read_input_registers_returns_diagnostics():
    s = dust_slave()
    r = reply(s, with_crc(1, 4, 0, 0, 0, 2))
    assert r == with_crc(1, 4, 4, regmap.FIRMWARE_VERSION >> 8, regmap.FIRMWARE_VERSION & 0xFF, 0, regmap.KIND_DUST)


def test_read_input_registers_scaled_measurement():
    s = dust_slave()
    s.bank.set_input("pm10", 123)
    s.bank.set_input("temperature", -5.4)
    pm10 = regmap.find(regmap.MEASUREMENTS[regmap.KIND_DUST], "pm10")[1]
    temp = regmap.find(regmap.MEASUREMENTS[regmap.KIND_DUST], "temperature")[1]
    assert reply(s, with_crc(1, 4, 0, pm10, 0, 1)) == with_crc(1, 4, 2, 0, 123)
    # -54 as two's complement 16 bit = 0xFFCA
    assert reply(s, with_crc(1, 4, 0, temp, 0, 1)) == with_crc(1, 4, 2, 0xFF, 0xCA)


def test_read_holding_registers_defaults():
    s = dust_slave(7)
    r = reply(s, with_crc(7, 3, 0, 0, 0, 4))
    # unit_id 1 (the default stored; the slave answers as 7), baud code 0,
    # parity 0, sample interval 1000 ms
    assert r == with_crc(7, 3, 8, 0, 1, 0, 0, 0, 0, 0x03, 0xE8)


def test_write_single_register_echo_and_effect():
    s = dust_slave()
    req = with_crc(1, 6, 0, 3, 0x01, 0xF4)  # sample interval 500 ms
    assert reply(s, req) == req
    assert s.bank.get_holding_raw("sample_interval") == 500


def test_write_single_register_out_of_range_is_exception_3():
    s = dust_slave()
    assert reply(s, with_crc(1, 6, 0, 3, 0, 10)) == with_crc(1, 0x86, 3)  # 10 ms < minimum
    assert s.bank.get_holding_raw("sample_interval") == 1000


def test_write_undocumented_register_is_exception_2():
    s = dust_slave()
    assert reply(s, with_crc(1, 6, 0, 10, 0, 1)) == with_crc(1, 0x86, 2)
    assert reply(s, with_crc(1, 6, 0x10, 0, 0, 1)) == with_crc(1, 0x86, 2)


def test_write_multiple_registers_is_all_or_nothing():
    s = dust_slave()
    good = with_crc(1, 16, 0, 2, 0, 2, 4, 0, 1, 0x07, 0xD0)  # parity even, interval 2000
    assert reply(s, good) == with_crc(1, 16, 0, 2, 0, 2)
    assert s.bank.get_holding_raw("parity") == 1
    assert s.bank.get_holding_raw("sample_interval") == 2000
    bad = with_crc(1, 16, 0, 2, 0, 2, 4, 0, 0, 0, 5)  # second value out of range
    assert reply(s, bad) == with_crc(1, 0x90, 3)
    assert s.bank.get_holding_raw("parity") == 1  # first word not applied either


def test_write_multiple_byte_count_mismatch_is_exception_3():
    s = dust_slave()
    assert reply(s, with_crc(1, 16, 0, 2, 0, 2, 3, 0, 1, 0x07)) == with_crc(1, 0x90, 3)


def test_thirty_two_bit_holding_register_must_be_written_whole():
    bank = RegisterBank(regmap.KIND_TILT)
    s = RtuSlave(1, bank)
    row = regmap.find(regmap.holding_registers(regmap.KIND_TILT), "baseline_pitch")
    a = row[1]
    # -1500 mdeg = 0xFFFFFA24
    whole = with_crc(1, 16, 0, a, 0, 2, 4, 0xFF, 0xFF, 0xFA, 0x24)
    assert reply(s, whole) == with_crc(1, 16, 0, a, 0, 2)
    assert bank.get_holding_raw("baseline_pitch") == -1500
    assert reply(s, with_crc(1, 6, 0, a, 0, 0)) == with_crc(1, 0x86, 2)
    too_far = with_crc(1, 16, 0, a, 0, 2, 4, 0x00, 0x01, 0x86, 0xA1)  # 100001 > 90000
    assert reply(s, too_far) == with_crc(1, 0x90, 3)


def test_coils_read_and_write():
    s = dust_slave()
    seen = []
    s.bank.on_coil_written = lambda address, on: seen.append((address, on))
    assert reply(s, with_crc(1, 1, 0, 0, 0, 1)) == with_crc(1, 1, 1, 0)
    on = with_crc(1, 5, 0, 0, 0xFF, 0)
    assert reply(s, on) == on
    assert reply(s, with_crc(1, 1, 0, 0, 0, 1)) == with_crc(1, 1, 1, 1)
    assert seen == [(0, True)]
    assert reply(s, with_crc(1, 5, 0, 0, 0x12, 0x34)) == with_crc(1, 0x85, 3)
    assert reply(s, with_crc(1, 5, 0, 1, 0xFF, 0)) == with_crc(1, 0x85, 2)
    assert reply(s, with_crc(1, 1, 0, 0, 0, 2)) == with_crc(1, 0x81, 2)


def test_read_past_the_end_is_exception_2():
    s = dust_slave()
    n = regmap.input_count(regmap.KIND_DUST)
    assert reply(s, with_crc(1, 4, 0, 0, 0, n))[1] == 4
    assert reply(s, with_crc(1, 4, 0, 0, 0, n + 1)) == with_crc(1, 0x84, 2)


def test_read_count_zero_or_above_125_is_exception_3():
    s = dust_slave()
    assert reply(s, with_crc(1, 4, 0, 0, 0, 0)) == with_crc(1, 0x84, 3)
    assert reply(s, with_crc(1, 3, 0, 0, 0, 126)) == with_crc(1, 0x83, 3)


def test_unknown_function_is_exception_1():
    s = dust_slave()
    assert reply(s, with_crc(1, 0x2B, 0x0E, 1, 0)) == with_crc(1, 0xAB, 1)
    assert reply(s, with_crc(1, 2, 0, 0, 0, 1)) == with_crc(1, 0x82, 1)


def test_silence_for_other_units_bad_crc_and_short_frames():
    s = dust_slave(5)
    assert s.handle(with_crc(6, 3, 0, 0, 0, 1)) == 0
    bad = bytearray(with_crc(5, 3, 0, 0, 0, 1))
    bad[-1] ^= 0xFF
    assert s.handle(bad) == 0
    assert s.crc_errors == 1
    assert s.handle(bytes([5, 3, 0])) == 0
    assert s.short_frames == 1


def test_broadcast_write_is_applied_without_reply():
    s = dust_slave(5)
    assert s.handle(with_crc(0, 6, 0, 3, 0x0B, 0xB8)) == 0
    assert s.bank.get_holding_raw("sample_interval") == 3000
    assert s.handle(with_crc(0, 3, 0, 0, 0, 1)) == 0


def test_handle_accepts_a_length_into_a_larger_buffer():
    s = dust_slave()
    buf = bytearray(64)
    req = with_crc(1, 4, 0, 0, 0, 1)
    for i in range(len(req)):
        buf[i] = req[i]
    n = s.handle(buf, len(req))
    assert bytes(s.tx[:n]) == with_crc(1, 4, 2, regmap.FIRMWARE_VERSION >> 8, regmap.FIRMWARE_VERSION & 0xFF)
