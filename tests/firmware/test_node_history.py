# The history window over Modbus and the node's steady state: records laid
# out as regmap.py says, ages at the time of the read, empty records, the
# history_oldest diagnostic; 1,000 samples and 1,000 requests with the heap
# unchanged under MicroPython (gc.mem_alloc after gc.collect).
# MicroPython-compatible (no pytest).

import gc
import sys

from firmware import regmap
from firmware.config_store import ConfigStore
from firmware.node import Node
from tests.firmware.mp_support import fresh_dir, remove_dir, with_crc

MICROPYTHON = sys.implementation.name == "micropython"
KINDS = (regmap.KIND_DUST, regmap.KIND_NOISE, regmap.KIND_TILT, regmap.KIND_WIND)
UNIT = 7

def read_inputs(address, count, unit=UNIT):
    return with_crc(unit, 4, address >> 8, address & 0xFF, count >> 8, count & 0xFF)


def write_u32(address, value, unit=UNIT):
    return with_crc(
        unit,
        16,
        address >> 8,
        address & 0xFF,
        0,
        2,
        4,
        (value >> 24) & 0xFF,
        (value >> 16) & 0xFF,
        (value >> 8) & 0xFF,
        value & 0xFF,
    )


def ask(node, request, now_ms):
    n = node.handle(request, len(request), now_ms)
    return bytes(node.slave.tx[:n])


def words_of(reply):
    return [(reply[3 + 2 * i] << 8) | reply[4 + 2 * i] for i in range(reply[2] // 2)]


def expected_word(n, k):
    return (n * 7 + k * 1000) & 0xFFFF


class CountingSensor:
    """Writes words derived from its call count into the measurement registers; every 10th sample is absent.

    Allocates nothing per call (ints stay small), so the heap tests measure the node alone.
    """

    def __init__(self, kind):
        self.width = regmap.measurement_words(kind)
        self.calls = 0

    def read(self, bank, now_ms):
        self.calls += 1
        n = self.calls
        inputs = bank.inputs
        for k in range(self.width):
            inputs[regmap.MEASUREMENT_BASE + k] = (n * 7 + k * 1000) & 0xFFFF
        if n % 10 == 0:
            return regmap.STATUS_ABSENT
        return regmap.STATUS_OK


def sampled_node(kind, samples, interval=1000, capacity=600):
    node = Node(kind, CountingSensor(kind), 0, unit_id=UNIT, history_capacity=capacity)
    for i in range(samples):
        node.sample(interval * (i + 1))
    return node


def history_seq_address():
    return regmap.find(regmap.COMMON_HOLDING, "history_seq")[1]


def parse_records(kind, words):
    rw = regmap.history_record_words(kind)
    out = []
    for r in range(len(words) // rw):
        rec = words[r * rw : (r + 1) * rw]
        out.append(((rec[0] << 16) | rec[1], (rec[2] << 16) | rec[3], rec[4], rec[5:]))
    return out


def test_window_records_for_every_kind():
    for kind in KINDS:
        node = sampled_node(kind, 20)
        assert ask(node, write_u32(history_seq_address(), 5), 20100)[1] == 16
        size = regmap.history_window_words(kind)
        reply = ask(node, read_inputs(regmap.HISTORY_BASE, size), 20500)
        assert reply[1] == 4 and reply[2] == 2 * size, regmap.KIND_NAMES[kind]
        records = parse_records(kind, words_of(reply))
        assert len(records) == regmap.history_records(kind)
        width = regmap.measurement_words(kind)
        for i, (seq, age, status, words) in enumerate(records):
            want = 5 + i
            if want > 20:
                assert (seq, age, status, list(words)) == (0, 0, 0, [0] * width)
                continue
            assert seq == want
            assert age == 20500 - 1000 * want  # sample n was taken at n * 1000 ms
            assert status == (regmap.STATUS_ABSENT if want % 10 == 0 else regmap.STATUS_OK)
            assert list(words) == [expected_word(want, k) for k in range(width)]


def test_ring_of_600_after_1000_samples_and_oldest_diagnostic():
    kind = regmap.KIND_TILT  # the widest record
    node = Node(kind, CountingSensor(kind), 0, unit_id=UNIT)
    node.sample(1000)
    gc.collect()
    before = gc.mem_alloc() if MICROPYTHON else 0
    for i in range(2, 1001):
        node.sample(1000 * i)
    if MICROPYTHON:
        assert gc.mem_alloc() == before, gc.mem_alloc() - before
    h = node.history
    assert (h.oldest(), h.newest()) == (401, 1000)
    assert node.bank.get_input("history_oldest") == 401
    assert node.bank.get_input("sample_seq") == 1000
    width = regmap.measurement_words(kind)
    assert list(h.get(401)) == [expected_word(401, k) for k in range(width)]
    assert list(h.get(1000)) == [expected_word(1000, k) for k in range(width)]
    assert h.get(400) is None
    # Over Modbus: the oldest record, and the newest at the end of a window.
    records = regmap.history_records(kind)
    ask(node, write_u32(history_seq_address(), 400), 1000500)
    reply = ask(node, read_inputs(regmap.HISTORY_BASE, regmap.history_window_words(kind)), 1000500)
    got = parse_records(kind, words_of(reply))
    assert got[0][0] == 0  # 400 has been overwritten: an empty record
    assert got[1][0] == 401 and list(got[1][3]) == [expected_word(401, k) for k in range(width)]
    ask(node, write_u32(history_seq_address(), 1001 - records), 1000600)
    reply = ask(node, read_inputs(regmap.HISTORY_BASE, regmap.history_window_words(kind)), 1000600)
    got = parse_records(kind, words_of(reply))
    assert got[-1][0] == 1000 and got[-1][1] == 600
    assert got[-1][2] == regmap.STATUS_ABSENT


def test_empty_ring_and_sequence_zero_give_empty_records():
    node = Node(regmap.KIND_WIND, CountingSensor(regmap.KIND_WIND), 0, unit_id=UNIT)
    assert node.bank.get_input("history_oldest") == 0
    reply = ask(node, read_inputs(regmap.HISTORY_BASE, 16), 10)
    assert words_of(reply) == [0] * 16
    node.sample(100)
    # history_seq is still 0: record 0 shows sample 0, which never exists; record 1 is sample 1.
    reply = ask(node, read_inputs(regmap.HISTORY_BASE, 16), 110)
    assert words_of(reply)[:8] == [0] * 8
    assert words_of(reply)[8:13] == [0, 1, 0, 10, regmap.STATUS_OK]
    ask(node, write_u32(history_seq_address(), 1), 120)
    reply = ask(node, read_inputs(regmap.HISTORY_BASE, 5), 130)
    assert words_of(reply) == [0, 1, 0, 30, regmap.STATUS_OK]


def test_a_read_inside_the_window_and_reads_outside_it():
    kind = regmap.KIND_DUST
    node = sampled_node(kind, 30)
    ask(node, write_u32(history_seq_address(), 10), 30000)
    rw = regmap.history_record_words(kind)
    # Words 3..5 of the second record: low word of its age, status, first measurement.
    reply = ask(node, read_inputs(regmap.HISTORY_BASE + rw + 3, 3), 30250)
    assert words_of(reply) == [30250 - 11000, regmap.STATUS_OK, expected_word(11, 0)]
    size = regmap.history_window_words(kind)
    assert ask(node, read_inputs(regmap.HISTORY_BASE, size + 1), 0) == with_crc(UNIT, 0x84, 2)
    assert ask(node, read_inputs(regmap.HISTORY_BASE + size, 1), 0) == with_crc(UNIT, 0x84, 2)
    # Between the measurements and the window there are no registers.
    count = regmap.input_count(kind)
    assert ask(node, read_inputs(count, 1), 0) == with_crc(UNIT, 0x84, 2)
    assert ask(node, read_inputs(regmap.HISTORY_BASE - 1, 2), 0) == with_crc(UNIT, 0x84, 2)
    assert ask(node, read_inputs(0, count), 0)[1] == 4


def test_history_seq_is_working_state_not_configuration():
    root = fresh_dir("hist")
    try:
        node = Node(regmap.KIND_NOISE, CountingSensor(regmap.KIND_NOISE), 0, unit_id=UNIT, store=ConfigStore(root))
        node.store.save(node.bank)
        ask(node, write_u32(history_seq_address(), 123), 0)
        assert node.bank.get_holding_raw("history_seq") == 123
        assert not node.store.dirty  # no flash write for a history fetch
        assert "history_seq" not in node.store.document(node.bank)["holding"]
    finally:
        remove_dir(root)


def test_1000_requests_leave_the_heap_unchanged():
    for kind in (regmap.KIND_DUST, regmap.KIND_TILT):
        node = sampled_node(kind, 700)
        interval = regmap.find(regmap.COMMON_HOLDING, "sample_interval")[1]
        requests = [
            read_inputs(0, regmap.input_count(kind)),
            with_crc(UNIT, 3, 0, 0, 0, regmap.holding_count(kind)),
            write_u32(history_seq_address(), 150),
            read_inputs(regmap.HISTORY_BASE, regmap.history_window_words(kind)),
            with_crc(UNIT, 6, 0, interval, 0x03, 0xE8),
            read_inputs(regmap.HISTORY_BASE + 7, 20),
            read_inputs(0, 200),  # exception 3
            with_crc(UNIT, 4, 0, 0, 0, 1)[:-1] + b"\x00",  # bad CRC: silence
            with_crc(UNIT + 1, 4, 0, 0, 0, 1),  # another unit: silence
            with_crc(0, 6, 0, interval, 0x03, 0xE8),  # broadcast write: silence
        ]
        if regmap.coil_count(kind):
            requests.append(with_crc(UNIT, 1, 0, 0, 0, 1))
            requests.append(with_crc(UNIT, 5, 0, 0, 0xFF, 0))
        lengths = [len(r) for r in requests]
        answers = [0] * len(requests)
        handle = node.handle
        # Warm up once (first use of every path), then measure.
        for i in range(len(requests)):
            handle(requests[i], lengths[i], 800000)
        gc.collect()
        before = gc.mem_alloc() if MICROPYTHON else 0
        now = 800000
        for j in range(1000):
            i = j % len(requests)
            now += 3
            answers[i] = handle(requests[i], lengths[i], now)
        if MICROPYTHON:
            grown = gc.mem_alloc() - before
            assert grown == 0, regmap.KIND_NAMES[kind] + ": heap grew by " + str(grown) + " bytes"
        assert answers[3] == 5 + 2 * regmap.history_window_words(kind)
        assert answers[7] == 0 and answers[8] == 0 and answers[9] == 0
        answered = len(requests) - 3  # all but the bad CRC, the other unit and the broadcast
        rounds, rest = 1000 // len(requests), 1000 % len(requests)
        extra = rest - (1 if rest > 7 else 0) - (1 if rest > 8 else 0) - (1 if rest > 9 else 0)
        assert node.slave.frames_ok == answered * (1 + rounds) + extra
        records = parse_records(kind, words_of(ask(node, requests[3], now)))
        assert records[0][0] == 150 and records[0][1] == now - 150000
