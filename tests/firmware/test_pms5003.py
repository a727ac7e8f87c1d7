# PMS5003 parser and commands. MicroPython-compatible (no pytest import, no
# f-string specs): pytest runs it under CPython and
# tests/firmware/test_under_micropython.py under real MicroPython.

import sys

from firmware import pms5003, regmap
from firmware.pms5003 import Pms5003, Pms5003Parser

# A data frame written out by hand: CF=1 12/18/21, atmospheric 12/18/21,
# counts 2106/612/104/8/2/0, reserved 0x9700. Checksum, summed by hand:
# 0x42 + 0x4D + 0x1C + 2 * (12 + 18 + 21) + 0x08 + 0x3A + 0x02 + 0x64 + 0x68
# + 0x08 + 0x02 + 0x97 = 706 = 0x02C2.
FRAME = bytes(
    [
        0x42, 0x4D, 0x00, 0x1C,
        0x00, 0x0C, 0x00, 0x12, 0x00, 0x15,
        0x00, 0x0C, 0x00, 0x12, 0x00, 0x15,
        0x08, 0x3A, 0x02, 0x64, 0x00, 0x68, 0x00, 0x08, 0x00, 0x02, 0x00, 0x00,
        0x97, 0x00,
        0x02, 0xC2,
    ]
)  # fmt: skip


def frame(words):
    """A data frame with the given 13 words, checksum computed here (not by the module)."""
    out = bytearray([0x42, 0x4D, 0x00, 0x1C])
    for w in words:
        out.append(w >> 8)
        out.append(w & 0xFF)
    total = 0
    for b in out:
        total += b
    out.append(total >> 8)
    out.append(total & 0xFF)
    return bytes(out)


def feed_all(parser, data):
    found = 0
    for b in data:
        if parser.feed(b):
            found += 1
    return found


def test_literal_frame_decodes_atmospheric_values():
    assert frame([12, 18, 21, 12, 18, 21, 2106, 612, 104, 8, 2, 0, 0x9700]) == FRAME
    p = Pms5003Parser()
    assert feed_all(p, FRAME) == 1
    assert (p.pm1, p.pm25, p.pm10) == (12, 18, 21)
    assert p.words[6] == 2106
    assert p.words[12] == 0x9700
    assert p.frames == 1
    assert p.checksum_errors == 0
    assert p.skipped == 0


def test_reports_words_4_to_6_not_cf1():
    p = Pms5003Parser()
    assert feed_all(p, frame([100, 200, 300, 70, 140, 210, 0, 0, 0, 0, 0, 0, 0])) == 1
    assert (p.pm1, p.pm25, p.pm10) == (70, 140, 210)
    assert (p.words[0], p.words[1], p.words[2]) == (100, 200, 300)


def test_big_values_are_big_endian():
    p = Pms5003Parser()
    feed_all(p, frame([0, 0, 0, 0x0102, 0x1234, 0xFFFF, 0, 0, 0, 0, 0, 0, 0]))
    assert (p.pm1, p.pm25, p.pm10) == (0x0102, 0x1234, 0xFFFF)


def test_bad_checksum_is_counted_and_not_reported():
    p = Pms5003Parser()
    feed_all(p, FRAME)
    bad = bytearray(frame([1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0]))
    bad[-1] ^= 0x01
    assert feed_all(p, bad) == 0
    assert p.checksum_errors == 1
    assert p.last_failed
    assert p.pm25 == 18  # the previous good frame still stands
    assert feed_all(p, FRAME) == 1
    assert not p.last_failed


def test_resync_after_garbage():
    p = Pms5003Parser()
    garbage = bytes([0x00, 0x42, 0x42, 0x4D, 0x00, 0x1D, 0x42, 0xFF, 0x4D, 0x13])
    assert feed_all(p, garbage + FRAME + garbage + FRAME) == 2
    assert p.pm25 == 18
    assert p.skipped == 2 * len(garbage)
    assert p.checksum_errors == 0


def test_frame_starting_inside_a_corrupted_frame_is_found():
    # A frame cut short (lost bytes) runs into the next one: the broken
    # candidate fails its checksum 32 bytes later, and the parser must
    # rescan what it holds to find the real frame that started inside it.
    good = frame([5, 6, 7, 8, 9, 10, 0, 0, 0, 0, 0, 0, 0])
    cut = FRAME[:20]
    p = Pms5003Parser()
    assert feed_all(p, cut + good) == 1
    assert (p.pm1, p.pm25, p.pm10) == (8, 9, 10)
    assert p.checksum_errors == 1
    assert p.skipped == len(cut)
    assert p.pending == 0


def test_split_frames_byte_by_byte_and_in_chunks():
    p = Pms5003Parser()
    seen = []
    stream = FRAME + frame([0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0])
    for b in stream:
        if p.feed(b):
            seen.append(p.pm10)
    assert seen == [21, 3]
    q = Pms5003Parser()
    buf = bytearray(7)
    done = 0
    for start in range(0, len(stream), 7):
        chunk = stream[start : start + 7]
        for i in range(len(chunk)):
            buf[i] = chunk[i]
        done += q.feed_buffer(buf, len(chunk))
    assert done == 2
    assert q.pm10 == 3


def test_short_ack_frame_is_skipped():
    # The sensor acknowledges a mode change with 42 4D 00 04 E1 00 01 74.
    p = Pms5003Parser()
    ack = bytes([0x42, 0x4D, 0x00, 0x04, 0xE1, 0x00, 0x01, 0x74])
    assert feed_all(p, ack + FRAME) == 1
    assert p.skipped == len(ack)


def test_command_frames_match_the_datasheet():
    assert bytes([0x42, 0x4D, 0xE1, 0x00, 0x00, 0x01, 0x70]) == pms5003.PASSIVE_MODE
    assert bytes([0x42, 0x4D, 0xE1, 0x00, 0x01, 0x01, 0x71]) == pms5003.ACTIVE_MODE
    assert bytes([0x42, 0x4D, 0xE2, 0x00, 0x00, 0x01, 0x71]) == pms5003.READ
    assert bytes([0x42, 0x4D, 0xE4, 0x00, 0x00, 0x01, 0x73]) == pms5003.SLEEP
    assert bytes([0x42, 0x4D, 0xE4, 0x00, 0x01, 0x01, 0x74]) == pms5003.WAKE


def test_warmup_after_power_on_and_wake():
    s = Pms5003(now_ms=1000, warmup_ms=30000)
    feed_all(s.parser, FRAME)
    assert s.status(2000) == regmap.STATUS_WARMUP
    feed_all(s.parser, FRAME)
    assert s.status(31000) == regmap.STATUS_OK  # exactly 30 s after power-on
    assert s.sleep() == pms5003.SLEEP
    assert s.warming_up(40000)
    assert s.wake(50000) == pms5003.WAKE
    feed_all(s.parser, FRAME)
    assert s.status(79999) == regmap.STATUS_WARMUP
    feed_all(s.parser, FRAME)
    assert s.status(80000) == regmap.STATUS_OK


def test_status_absent_and_checksum():
    s = Pms5003(now_ms=0, warmup_ms=0)
    assert s.status(10) == regmap.STATUS_ABSENT
    bad = bytearray(FRAME)
    bad[10] ^= 0x40
    feed_all(s.parser, bytes(bad))
    assert s.status(20) == regmap.STATUS_ABSENT | regmap.STATUS_CHECKSUM
    feed_all(s.parser, FRAME)
    assert s.status(30) == regmap.STATUS_OK
    assert s.status(40) == regmap.STATUS_ABSENT  # no new frame since


def test_feed_allocates_nothing():
    p = Pms5003Parser()
    stream = bytes([0x13, 0x42]) + FRAME + bytes([0x42, 0x4D, 0x00]) + FRAME
    feed_all(p, stream)  # warm up any lazily created state
    if sys.implementation.name == "micropython":
        import gc

        gc.collect()
        before = gc.mem_alloc()
        for _ in range(20):
            for i in range(len(stream)):
                p.feed(stream[i])
        assert gc.mem_alloc() == before
    else:
        for _ in range(20):
            feed_all(p, stream)
    assert p.frames == 42
    assert p.skipped + 32 * p.frames + p.pending == 21 * len(stream)
