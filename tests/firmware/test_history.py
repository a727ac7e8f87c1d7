# The sample history ring. MicroPython-compatible.

import sys
from array import array

from firmware.history import History


def words_for(seq, width):
    return array("H", [(seq * 7 + k) & 0xFFFF for k in range(width)])


def test_empty():
    h = History(4, 2)
    assert len(h) == 0
    assert h.oldest() is None
    assert h.newest() is None
    assert h.get(1) is None
    assert h.stamp(1) is None


def test_ten_minutes_at_one_hertz_fits():
    h = History()
    assert h.capacity >= 600
    for seq in range(1, 601):
        h.push(seq, seq * 1000, words_for(seq, h.width))
    assert (h.oldest(), h.newest()) == (1, 600)
    assert list(h.get(1)) == list(words_for(1, h.width))


def test_wrap_around_keeps_the_newest_n():
    n = 10
    h = History(n, 3)
    for seq in range(1, 26):  # 25 pushes into 10 slots
        assert h.push(seq, 5000 + seq * 1000, words_for(seq, 3))
    assert len(h) == n
    assert h.oldest() == 16
    assert h.newest() == 25
    for seq in range(16, 26):
        assert list(h.get(seq)) == list(words_for(seq, 3))
        assert h.stamp(seq) == 5000 + seq * 1000
    assert h.get(15) is None  # overwritten
    assert h.get(26) is None  # not yet taken
    assert h.get(0) is None


def test_push_takes_words_at_an_offset():
    h = History(3, 2)
    registers = array("H", [9, 9, 41, 42, 9])
    h.push(1, 0, registers, 2)
    assert list(h.get(1)) == [41, 42]


def test_get_into_copies_without_a_new_array():
    h = History(3, 2)
    h.push(7, 70, array("H", [1, 2]))
    out = array("H", [0, 0, 0, 0])
    assert h.get_into(7, out, 1)
    assert list(out) == [0, 1, 2, 0]
    assert not h.get_into(8, out)


def test_gaps_in_sequence_numbers():
    h = History(5, 1)
    for seq in (3, 4, 9, 10, 20, 21, 30):
        h.push(seq, seq, array("H", [seq]))
    assert (h.oldest(), h.newest()) == (9, 30)
    for seq in (9, 10, 20, 21, 30):
        assert list(h.get(seq)) == [seq]
    for seq in (3, 4, 5, 11, 25, 31):
        assert h.get(seq) is None


def test_non_increasing_sequence_is_refused():
    h = History(4, 1)
    assert h.push(5, 0, array("H", [5]))
    assert not h.push(5, 0, array("H", [6]))
    assert not h.push(4, 0, array("H", [4]))
    assert len(h) == 1
    assert list(h.get(5)) == [5]


def test_large_sequence_numbers_and_stamps():
    h = History(2, 1)
    h.push(0xFFFFFFF0, 0xFFFFFFFF, array("H", [0xFFFF]))
    assert h.newest() == 0xFFFFFFF0
    assert h.oldest() == 0xFFFFFFF0
    assert h.stamp(0xFFFFFFF0) == 0xFFFFFFFF
    assert list(h.get(0xFFFFFFF0)) == [0xFFFF]


def test_push_allocates_nothing():
    width = 6
    h = History(50, width)
    src = array("H", [0] * width)
    h.push(1, 10, src)
    if sys.implementation.name == "micropython":
        import gc

        gc.collect()
        before = gc.mem_alloc()
        for seq in range(2, 1002):
            src[0] = seq
            h.push(seq, seq * 10, src)
        assert gc.mem_alloc() == before
    else:
        for seq in range(2, 1002):
            src[0] = seq
            h.push(seq, seq * 10, src)
    assert (h.oldest(), h.newest()) == (952, 1001)
    assert h.get(960)[0] == 960
    assert h.stamp(1001) == 10010
