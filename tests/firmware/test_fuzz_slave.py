# Fuzzing the node's Modbus request path (Node.handle -> RtuSlave.handle):
# valid requests of every function code, mutations of them, random bytes of
# random lengths, bad CRCs, other units and broadcasts. Nothing may escape as
# an exception, and every answer must be a valid frame that fits the
# request (or silence where silence is due); after the run every holding
# register must still lie inside its range.
#
# 100,000 frames under CPython (seeded, a few seconds); a smaller count under
# MicroPython, where this module also runs (test_under_micropython.py).
# MicroPython-compatible (no pytest).

import sys

from firmware import regmap
from firmware.modbus_rtu import crc16, crc_ok
from firmware.node import Node

MICROPYTHON = sys.implementation.name == "micropython"
FRAMES = 10000 if MICROPYTHON else 100000
UNIT = 17
KINDS = (regmap.KIND_DUST, regmap.KIND_NOISE, regmap.KIND_TILT, regmap.KIND_WIND)
FUNCTIONS = (1, 2, 3, 4, 5, 6, 15, 16, 0x2B, 0x80, 0x84)


class Rng:
    """Seeded random numbers: CPython's C generator where there is one, a small LCG under MicroPython."""

    def __init__(self, seed):
        self._state = seed & 0x7FFFFFFF
        self._random = None
        if not MICROPYTHON:
            import random

            self._random = random.Random(seed)

    def below(self, n):
        if self._random is not None:
            return self._random.randrange(n)
        self._state = (self._state * 1103515245 + 12345) & 0x7FFFFFFF
        return (self._state >> 8) % n


class QuietSensor:
    def read(self, bank, now_ms):
        return regmap.STATUS_OK


def add_crc(buf):
    crc = crc16(buf, len(buf))
    buf.append(crc & 0xFF)
    buf.append(crc >> 8)
    return buf


def unit_for(rng):
    pick = rng.below(10)
    if pick < 6:
        return UNIT
    if pick < 8:
        return 0  # broadcast
    return rng.below(256)


def plausible_address(rng, kind):
    pick = rng.below(4)
    if pick == 0:
        return rng.below(regmap.input_count(kind) + 4)
    if pick == 1:
        return regmap.HISTORY_BASE + rng.below(regmap.history_window_words(kind) + 4) - 2
    if pick == 2:
        return rng.below(regmap.holding_count(kind) + 2)
    return rng.below(65536)


def holding_value(rng, row):
    """A raw value of the row, inside its range most of the time."""
    if rng.below(4) == 0:
        return rng.below(1 << (16 * regmap.FORMAT_WORDS[row[2]]))
    span = row[6] - row[5] + 1
    return (row[5] + rng.below(span if span < (1 << 30) else (1 << 30))) & 0xFFFFFFFF


def valid_request(rng, kind):
    """A well-formed request (good CRC) aimed at the kind's tables; fields may still be out of range."""
    fc = FUNCTIONS[rng.below(len(FUNCTIONS))]
    sensible = rng.below(4) != 0
    holdings = regmap.holding_registers(kind)
    row = holdings[rng.below(len(holdings))]
    if not sensible:
        address = rng.below(65536)
    elif fc == 1 or fc == 5 or fc == 15:
        address = rng.below(regmap.coil_count(kind) + 1)
    elif fc == 3 or fc == 6 or fc == 16:
        address = row[1] if rng.below(4) else rng.below(regmap.holding_count(kind) + 2)
    else:
        address = plausible_address(rng, kind)
    buf = bytearray([unit_for(rng), fc, address >> 8, address & 0xFF])
    if fc == 16 and sensible and address == row[1]:
        words = regmap.FORMAT_WORDS[row[2]]
        raw = holding_value(rng, row)
        buf.extend(bytes([0, words, 2 * words]))
        if words == 2:
            buf.extend(bytes([(raw >> 24) & 0xFF, (raw >> 16) & 0xFF]))
        buf.extend(bytes([(raw >> 8) & 0xFF, raw & 0xFF]))
    elif fc == 16 or fc == 15:
        count = rng.below(8) if rng.below(4) else rng.below(130)
        nbytes = 2 * count if fc == 16 else (count + 7) // 8
        if rng.below(8) == 0:
            nbytes = rng.below(256)
        buf.append(count >> 8)
        buf.append(count & 0xFF)
        buf.append(nbytes & 0xFF)
        for _ in range(min(nbytes, 240)):
            buf.append(rng.below(256) if rng.below(3) else rng.below(3))
    elif fc == 5:
        value = (0xFF00, 0x0000, rng.below(65536))[rng.below(3)]
        buf.append(value >> 8)
        buf.append(value & 0xFF)
    elif fc == 6:
        value = holding_value(rng, row) & 0xFFFF if sensible else rng.below(65536)
        buf.append(value >> 8)
        buf.append(value & 0xFF)
    else:
        count = rng.below(130) if rng.below(2) else 1 + rng.below(20)
        if fc == 1 and rng.below(4) == 0:
            count = rng.below(2100)
        elif fc == 1 and sensible:
            count = 1 + rng.below(2)
        buf.append(count >> 8)
        buf.append(count & 0xFF)
    return add_crc(buf)


def mutate(rng, buf):
    # New bytearrays by slicing: MicroPython's bytearray has no item deletion or insert().
    for _ in range(1 + rng.below(3)):
        how = rng.below(6)
        if how == 0 and buf:
            i = rng.below(len(buf))
            buf[i] ^= 1 << rng.below(8)
        elif how == 1 and buf:
            buf[rng.below(len(buf))] = rng.below(256)
        elif how == 2 and len(buf) < 255:
            i = rng.below(len(buf) + 1)
            buf = buf[:i] + bytearray([rng.below(256)]) + buf[i:]
        elif how == 3 and buf:
            i = rng.below(len(buf))
            buf = buf[:i] + buf[i + 1 :]
        elif how == 4:
            buf = buf[: rng.below(len(buf) + 1)]
        else:
            for _ in range(rng.below(8)):
                buf.append(rng.below(256))
    return buf


def recrc(buf):
    return add_crc(buf[: len(buf) - 2])


def random_frame(rng):
    n = rng.below(261)
    buf = bytearray(n)
    for i in range(n):
        buf[i] = rng.below(256)
    if n and rng.below(2):
        buf[0] = UNIT
    return buf


def make_frame(rng, kind):
    mode = rng.below(8)
    if mode < 3:
        return valid_request(rng, kind)
    if mode < 6:
        buf = mutate(rng, valid_request(rng, kind))
        if rng.below(2) and len(buf) >= 2:
            buf = recrc(buf)  # the mutation gets past the CRC check
        return buf
    if mode == 6:
        buf = random_frame(rng)
        if rng.below(2) and len(buf) >= 2:
            buf = recrc(buf)
        return buf
    buf = valid_request(rng, kind)
    buf[len(buf) - 1 - rng.below(2)] ^= 1 + rng.below(255)  # a bad CRC
    return buf


def check_reply(node, frame, length, n):
    """Raise AssertionError unless reply n to frame[0:length] is right (n == 0: silence)."""
    tx = node.slave.tx
    addressed = length >= 4 and frame[0] == UNIT and crc_ok(frame, length)
    if not addressed:
        # Another unit, a broadcast, a short frame or a bad CRC: silence.
        assert n == 0, "answered a frame it must ignore"
        return
    assert n >= 5, "no answer to a request addressed to it"
    assert crc_ok(tx, n), "reply with a bad CRC"
    assert tx[0] == UNIT, "reply from another unit"
    fc = frame[1]
    assert tx[1] == fc or tx[1] == (fc | 0x80), "reply to another function"
    if tx[1] & 0x80:
        assert n == 5, "exception reply of the wrong length"
        assert 1 <= tx[2] <= 4, "unknown exception code"
        return
    bank = node.bank
    address = (frame[2] << 8) | frame[3]
    count = (frame[4] << 8) | frame[5]
    if fc == 3 or fc == 4:
        assert length == 8 and tx[2] == 2 * count and n == 5 + tx[2], "read reply length"
        if fc == 3:
            table, start = bank.holdings, address
        elif address >= bank.window_base:
            table, start = bank.window, address - bank.window_base
        else:
            table, start = bank.inputs, address
        for i in range(count):
            assert (tx[3 + 2 * i] << 8) | tx[4 + 2 * i] == table[start + i], "read reply content"
    elif fc == 1:
        assert length == 8 and tx[2] == (count + 7) // 8 and n == 5 + tx[2], "coil reply length"
        for i in range(count):
            assert ((tx[3 + (i >> 3)] >> (i & 7)) & 1) == bank.coils[address + i], "coil reply content"
    elif fc == 5 or fc == 6 or fc == 16:
        assert n == 8, "write reply length"
        for i in range(1, 6):
            assert tx[i] == frame[i], "write reply does not echo the request"
    else:
        raise AssertionError("normal reply to function " + str(fc))


def holding_problems(bank):
    problems = []
    for row in bank.holding_rows:
        raw = bank.get_holding_raw(row[0])
        if raw < row[5] or raw > row[6]:
            problems.append(row[0] + " = " + str(raw))
    return problems


def fuzz(frames, seed):
    rng = Rng(seed)
    nodes = [Node(kind, QuietSensor(), 0, unit_id=UNIT, history_capacity=50) for kind in KINDS]
    for node in nodes:
        for t in range(1, 60):
            node.sample(t * 1000)
    answered = 0
    now = 60000
    for i in range(frames):
        k = rng.below(len(KINDS))
        node = nodes[k]
        frame = make_frame(rng, KINDS[k])
        length = len(frame)
        if rng.below(10) == 0:
            frame.extend(b"\x55\xaa\x00")  # junk past the frame: handle() must honour length
        now += 1
        try:
            n = node.handle(frame, length, now)
            check_reply(node, frame, length, n)
        except Exception as e:
            raise AssertionError("frame " + str(i) + " " + bytes(frame[:length]).hex() + ": " + repr(e)) from e
        if n:
            answered += 1
    for node in nodes:
        assert node.slave.unit_id == UNIT
        problems = holding_problems(node.bank)
        assert not problems, problems
    return answered


def test_fuzz_frames_into_the_node():
    answered = fuzz(FRAMES, 20240611)
    # A fair share of the frames reached the dispatcher and got answers.
    assert answered > FRAMES // 5, answered


def test_checker_rejects_wrong_replies():
    # The checker itself must be able to fail.
    node = Node(regmap.KIND_DUST, QuietSensor(), 0, unit_id=UNIT)
    frame = add_crc(bytearray([UNIT, 4, 0, 0, 0, 2]))
    n = node.handle(frame, len(frame), 0)
    check_reply(node, frame, len(frame), n)
    node.slave.tx[4] ^= 1
    for bad_n in (n, 0):
        try:
            check_reply(node, frame, len(frame), bad_n)
        except AssertionError:
            continue
        raise Exception("a wrong reply passed the checker")
