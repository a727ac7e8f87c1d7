# RS-485 transport: frame timing and the DE/RE sequence. MicroPython-compatible
# (no pytest, plain asserts): tests/firmware/test_under_micropython.py runs the
# same functions under real MicroPython.

from firmware import regmap
from firmware.fakes import FakeClock, FakePin, FakeUART
from firmware.node import Node
from firmware.rs485 import FrameAssembler, Rs485Port, char_us, find_tail_request, t15_us, t35_us
from tests.firmware.mp_support import with_crc


class GoodSensor:
    def read(self, bank, now_ms):
        bank.set_input("pm25", 12)
        return regmap.STATUS_OK


def dust_node(unit=1):
    return Node(regmap.KIND_DUST, GoodSensor(), 0, unit_id=unit)


def feed_spaced(asm, data, start_us, spacing_us):
    """Feed bytes one per spacing_us from start_us; return the tick of the last one."""
    t = start_us
    for b in data:
        asm.feed_byte(b, t)
        t += spacing_us
    return t - spacing_us


# -- timing constants ---------------------------------------------------------------
def test_character_time_is_eleven_bits():
    # 11 bits / 9600 baud = 1145.8 us, rounded up; 11 / 115200 = 95.5 us.
    assert char_us(9600) == 1146
    assert char_us(19200) == 573
    assert char_us(115200) == 96


def test_t35_is_three_and_a_half_characters_up_to_19200():
    # 3.5 * 11 / 9600 = 4010.4 us; 3.5 * 11 / 19200 = 2005.2 us (rounded up).
    assert t35_us(9600) == 4011
    assert t35_us(19200) == 2006
    assert t15_us(9600) == 1719


def test_t35_is_fixed_above_19200():
    for baud in (38400, 57600, 115200):
        assert t35_us(baud) == 1750
        assert t15_us(baud) == 750
    # Above 19200, 3.5 characters would be far shorter than the fixed value.
    assert 35 * char_us(115200) // 10 < 1750


# -- frame assembly ---------------------------------------------------------------------
def test_frame_completes_after_t35_of_silence_at_9600():
    asm = FrameAssembler(t35_us(9600))
    request = with_crc(1, 3, 0, 0, 0, 4)
    last = feed_spaced(asm, request, 1000, char_us(9600))
    assert asm.poll(last) == 0
    assert asm.poll(last + 4010) == 0
    assert asm.poll(last + 4011) == len(request)
    assert bytes(asm.frame[: len(request)]) == request


def test_gap_below_t35_does_not_split_at_9600():
    asm = FrameAssembler(t35_us(9600))
    first = feed_spaced(asm, b"\x01\x03\x00", 0, char_us(9600))
    # 3.4 characters of silence inside the frame: still the same frame.
    second = feed_spaced(asm, b"\x00\x00\x04", first + 3896, char_us(9600))
    assert asm.poll(second + 4011) == 6
    assert asm.frames == 1


def test_gap_of_t35_splits_at_9600():
    asm = FrameAssembler(t35_us(9600))
    first = feed_spaced(asm, b"\x01\x03\x00", 0, char_us(9600))
    feed_spaced(asm, b"\x00\x00\x04", first + 4011, char_us(9600))
    # The first part became a frame of its own the moment the second began.
    assert asm.poll(first + 4011) == 3
    assert bytes(asm.frame[:3]) == b"\x01\x03\x00"


def test_fixed_gap_at_115200():
    asm = FrameAssembler(t35_us(115200))
    c = char_us(115200)
    first = feed_spaced(asm, b"\x01\x04", 0, c)
    # 1000 us is more than 3.5 characters (334 us) but less than the fixed
    # 1.750 ms: the frame goes on.
    second = feed_spaced(asm, b"\x00\x10", first + 1000, c)
    assert asm.poll(second + 1749) == 0
    assert asm.poll(second + 1750) == 4
    asm.release()
    third = feed_spaced(asm, b"\x07", second + 1750 + 10, c)
    fourth = feed_spaced(asm, b"\x08", third + 1750, c)
    assert asm.poll(fourth) == 1
    assert asm.frame[0] == 7
    asm.release()
    assert asm.poll(fourth + 1750) == 1
    assert asm.frame[0] == 8


def test_completed_frame_survives_the_next_start_and_an_overwrite_is_counted():
    asm = FrameAssembler(1000)
    asm.feed(b"\xaa\xab", 2, 0)
    asm.feed(b"\xbb", 1, 5000)  # completes the first
    assert asm.ready == 2
    asm.feed(b"\xcc", 1, 10000)  # completes the second while the first is unserved
    assert asm.dropped == 1
    assert asm.poll(10000) == 1
    assert asm.frame[0] == 0xBB


def test_chunk_feed_matches_byte_feed():
    a = FrameAssembler(t35_us(19200))
    b = FrameAssembler(t35_us(19200))
    data = with_crc(9, 6, 0, 3, 1, 0xF4)
    a.feed(data, len(data), 500)
    for x in data:
        b.feed_byte(x, 500)
    assert a.poll(500 + 2006) == b.poll(500 + 2006) == len(data)
    assert bytes(a.frame[: len(data)]) == bytes(b.frame[: len(data)]) == data


def test_oversized_frame_is_discarded_and_counted():
    asm = FrameAssembler(1750, size=16)
    asm.feed(bytes(range(20)), 20, 0)
    assert asm.poll(1750) == 0
    assert asm.overruns == 1
    asm.feed(b"\x01\x02", 2, 2000)
    assert asm.poll(3750) == 2


def test_tail_request_found_after_another_slaves_reply():
    other_reply = with_crc(2, 3, 2, 0x12, 0x34)
    ours = with_crc(1, 3, 0, 0, 0, 2)
    burst = other_reply + ours
    assert find_tail_request(burst, len(burst), 1) == len(other_reply)
    assert find_tail_request(burst, len(burst), 5) == -1
    write16 = with_crc(1, 16, 0, 3, 0, 1, 2, 0x01, 0xF4)
    burst = other_reply + write16
    assert find_tail_request(burst, len(burst), 1) == len(other_reply)


def test_tail_search_rejects_noise():
    noise = bytes([1, 3, 0, 0, 0, 2, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF])
    assert find_tail_request(noise, len(noise), 1) == -1


# -- the port: DE/RE and replies -----------------------------------------------------------
def make_port(baud=9600, trace=None):
    clock = FakeClock(1000)
    de = FakePin("de", 0, clock, trace)
    uart = FakeUART(clock, baud, trace=trace)
    port = Rs485Port(uart, de, baud, clock)
    return clock, de, uart, port


def test_send_raises_de_writes_flushes_then_waits_one_character():
    trace = []
    _clock, de, uart, port = make_port(9600, trace)
    del trace[:]
    buf = bytearray(b"\x01\x03\x02\x00\x2a\x38\x5b\xff\xff")
    port.send(buf, 7)
    assert bytes(uart.sent) == bytes(buf[:7])
    events = [e[1:] for e in trace]
    assert events == [("de", 1), ("write", 7), ("flush",), ("de", 0)]
    t_de_high, t_write, t_flush, t_de_low = [e[0] for e in trace]
    assert t_de_high <= t_write
    # flush() returned when the last character had left the shift register ...
    assert t_flush == t_write + 7 * uart.char_us()
    # ... and DE stayed high one more (11-bit) character time.
    assert t_de_low - t_flush >= char_us(9600)
    assert uart.flushes == 1
    assert de.value() == 0


def test_send_timing_at_115200():
    trace = []
    _clock, _de, _uart, port = make_port(115200, trace)
    del trace[:]
    port.send(bytearray(8), 8)
    t_flush = trace[2][0]
    t_de_low = trace[3][0]
    assert trace[3][1:] == ("de", 0)
    assert t_de_low - t_flush == char_us(115200)


def run_until_quiet(clock, port, node, max_steps=200, step_us=100):
    """Turn the loop until the port answered or gave up; returns the frames taken."""
    taken = 0
    for _ in range(max_steps):
        if port.serve(node, clock.ticks_ms()):
            taken += 1
        clock.advance_us(step_us)
    return taken


def test_serve_answers_a_request_delivered_at_line_speed():
    clock, de, uart, port = make_port(9600)
    node = dust_node(1)
    node.sample(0)
    request = with_crc(1, 4, 0, 16, 0, 1)
    uart.deliver(request)
    assert run_until_quiet(clock, port, node) == 1
    assert uart.take_sent() == with_crc(1, 4, 2, 0, 12)
    assert port.replies == 1
    assert de.value() == 0


def test_serve_stays_silent_for_another_unit_and_never_drives_the_bus():
    trace = []
    clock, _de, uart, port = make_port(9600, trace)
    node = dust_node(1)
    uart.deliver(with_crc(2, 4, 0, 16, 0, 1))
    assert run_until_quiet(clock, port, node) == 1
    assert uart.take_sent() == b""
    assert [e for e in trace if e[1] == "de" and e[2] == 1] == []


def test_serve_recovers_our_request_merged_with_other_traffic():
    clock, _de, uart, port = make_port(115200)
    node = dust_node(1)
    node.sample(0)
    # The UART driver delivered another slave's reply and our request as one burst.
    burst = with_crc(2, 4, 2, 0, 7) + with_crc(1, 4, 0, 16, 0, 1)
    uart.deliver(burst, gap_us=0)
    assert run_until_quiet(clock, port, node) == 1
    assert uart.take_sent() == with_crc(1, 4, 2, 0, 12)
    assert port.resyncs == 1


def test_serve_two_requests_in_a_row():
    clock, _de, uart, port = make_port(19200)
    node = dust_node(3)
    uart.deliver(with_crc(3, 6, 0, 3, 0x01, 0xF4))
    run_until_quiet(clock, port, node)
    assert uart.take_sent() == with_crc(3, 6, 0, 3, 0x01, 0xF4)
    uart.deliver(with_crc(3, 3, 0, 3, 0, 1))
    run_until_quiet(clock, port, node)
    assert uart.take_sent() == with_crc(3, 3, 2, 0x01, 0xF4)


def test_own_reply_heard_back_is_not_served_again():
    # A transceiver with /RE not tied to DE hears its own reply. An FC 6
    # reply equals its request, so serving it would write again and answer
    # again, for ever.
    clock, _de, uart, port = make_port(9600)
    node = dust_node(1)
    request = with_crc(1, 6, 0, 3, 0x01, 0xF4)
    uart.deliver(request)
    for _ in range(200):
        port.serve(node, clock.ticks_ms())
        if uart.sent:
            break
        clock.advance_us(100)
    assert uart.take_sent() == request
    # The echo: the UART driver hands it over in one burst after the reply.
    uart.deliver(request, gap_us=0)
    run_until_quiet(clock, port, node)
    assert uart.take_sent() == b""
    assert port.echoes == 1
    assert node.slave.frames_ok == 1
    # The master repeating the request after its timeout is served.
    clock.advance_us(200000)
    uart.deliver(request)
    run_until_quiet(clock, port, node)
    assert uart.take_sent() == request
    assert node.slave.frames_ok == 2


def test_request_path_allocates_nothing():
    # Under MicroPython the heap is locked while a request is assembled and
    # answered: any allocation raises MemoryError. (CPython has no heap lock;
    # there the same path still has to produce the right answer.)
    try:
        import micropython

        lock = micropython.heap_lock
        unlock = micropython.heap_unlock
    except (ImportError, AttributeError):
        lock = None
        unlock = None
    node = dust_node(1)
    node.sample(0)
    asm = FrameAssembler(t35_us(115200))
    _clock, _de, _uart, port = make_port(115200)
    request = with_crc(1, 4, 0, 0, 0, 12)
    # Warm-up: the first reply of a length makes its memoryview once.
    port._tx_view(node.slave.tx, 29)
    n = 0
    reply = 0
    view = None
    if lock is not None:
        lock()
    try:
        asm.feed(request, len(request), 100)
        n = asm.poll(2000)
        reply = node.handle(asm.frame, n, 2)
        asm.release()
        view = port._tx_view(node.slave.tx, reply)
    finally:
        if unlock is not None:
            unlock()
    assert n == 8
    assert reply == 3 + 24 + 2
    assert len(view) == reply
    assert node.slave.tx[0] == 1 and node.slave.tx[1] == 4
