# SDS011 parser and commands. MicroPython-compatible (no pytest import, no
# f-string specs).

import sys

from firmware import sds011
from firmware.sds011 import Sds011Parser

# The data frame example of the SDS011 control protocol: PM2.5 0x04D4 =
# 1236 -> 123.6, PM10 0x0A3A = 2618 -> 261.8, ID A1 60; checksum
# D4 + 04 + 3A + 0A + A1 + 60 = 0x21D -> 0x1D.
FRAME = bytes([0xAA, 0xC0, 0xD4, 0x04, 0x3A, 0x0A, 0xA1, 0x60, 0x1D, 0xAB])


def frame(pm25_x10, pm10_x10, id1=0x12, id2=0x34):
    out = bytearray([0xAA, 0xC0, pm25_x10 & 0xFF, pm25_x10 >> 8, pm10_x10 & 0xFF, pm10_x10 >> 8, id1, id2])
    total = 0
    for b in out[2:8]:
        total += b
    out.append(total & 0xFF)
    out.append(0xAB)
    return bytes(out)


def feed_all(parser, data):
    found = 0
    for b in data:
        if parser.feed(b):
            found += 1
    return found


def test_datasheet_frame():
    assert frame(1236, 2618, 0xA1, 0x60) == FRAME
    p = Sds011Parser()
    assert feed_all(p, FRAME) == 1
    assert (p.pm25_x10, p.pm10_x10) == (1236, 2618)
    assert abs(p.pm25 - 123.6) < 1e-9
    assert abs(p.pm10 - 261.8) < 1e-9
    assert p.device_id == 0xA160


def test_bad_checksum_counted_and_previous_values_kept():
    p = Sds011Parser()
    feed_all(p, FRAME)
    bad = bytearray(frame(100, 200))
    bad[8] = (bad[8] + 1) & 0xFF
    assert feed_all(p, bad) == 0
    assert p.checksum_errors == 1
    assert p.last_failed
    assert p.pm25_x10 == 1236


def test_checksum_is_the_low_byte_only():
    # 0xFF * 2 + 0x12 + 0x34 + 0x80 + 0x80 overflows a byte.
    p = Sds011Parser()
    assert feed_all(p, frame(0xFFFF, 0x8080)) == 1
    assert p.pm25_x10 == 0xFFFF
    assert p.pm10_x10 == 0x8080


def test_wrong_tail_is_not_a_frame():
    p = Sds011Parser()
    bad = bytearray(FRAME)
    bad[9] = 0xAC
    assert feed_all(p, bad) == 0
    assert p.frames == 0
    assert p.checksum_errors == 0
    assert p.skipped == 10


def test_resync_after_garbage_and_command_reply():
    # A reply to a command (AA C5 ...) is skipped, as are stray AA bytes.
    reply = bytes([0xAA, 0xC5, 0x06, 0x01, 0x00, 0x00, 0xA1, 0x60, 0x08, 0xAB])
    garbage = bytes([0xAA, 0xAA, 0x00, 0xC0, 0xAB])
    p = Sds011Parser()
    assert feed_all(p, garbage + reply + FRAME + garbage + frame(5, 7)) == 2
    assert (p.pm25_x10, p.pm10_x10) == (5, 7)
    assert p.skipped == 2 * len(garbage) + len(reply)


def test_frame_starting_inside_a_broken_frame():
    p = Sds011Parser()
    good = frame(42, 43)
    assert feed_all(p, FRAME[:6] + good) == 1
    assert p.pm25_x10 == 42
    assert p.skipped == 6


def test_split_frames_byte_by_byte_and_in_chunks():
    stream = FRAME + frame(1, 2) + frame(3, 4)
    p = Sds011Parser()
    values = []
    for b in stream:
        if p.feed(b):
            values.append(p.pm10_x10)
    assert values == [2618, 2, 4]
    q = Sds011Parser()
    done = 0
    for start in range(0, len(stream), 3):
        chunk = stream[start : start + 3]
        done += q.feed_buffer(chunk, len(chunk))
    assert done == 3
    assert q.pm25_x10 == 3


def cmd(head, ident_and_tail):
    """A 19-byte command frame: head bytes, zero padding, then ID, checksum, tail."""
    return bytes(head) + bytes(19 - len(head) - len(ident_and_tail)) + bytes(ident_and_tail)


def test_command_frames_match_the_protocol():
    # Star unpacking in list displays is a SyntaxError in MicroPython, hence cmd().
    assert cmd([0xAA, 0xB4, 0x04], [0xFF, 0xFF, 0x02, 0xAB]) == sds011.QUERY
    assert cmd([0xAA, 0xB4, 0x06, 0x01], [0xFF, 0xFF, 0x05, 0xAB]) == sds011.SLEEP
    assert cmd([0xAA, 0xB4, 0x06, 0x01, 0x01], [0xFF, 0xFF, 0x06, 0xAB]) == sds011.WORK
    assert sds011.query_mode_command() == cmd([0xAA, 0xB4, 0x02, 0x01, 0x01], [0xFF, 0xFF, 0x02, 0xAB])
    assert sds011.active_mode_command() == cmd([0xAA, 0xB4, 0x02, 0x01], [0xFF, 0xFF, 0x01, 0xAB])
    # Addressed to sensor A1 60: checksum 04 + A1 + 60 = 0x105 -> 0x05.
    assert sds011.query_command(0xA160) == cmd([0xAA, 0xB4, 0x04], [0xA1, 0x60, 0x05, 0xAB])
    assert len(sds011.QUERY) == 19
    assert sds011.QUERY[3:15] == bytes(12)


def test_feed_allocates_nothing():
    p = Sds011Parser()
    stream = bytes([0xAA, 0x01]) + FRAME + bytes([0xAA, 0xC0, 0x00]) + FRAME
    feed_all(p, stream)
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
    assert p.skipped + 10 * p.frames + p.pending == 21 * len(stream)
