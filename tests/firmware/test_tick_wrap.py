# The node keeps running across the tick wrap: ticks_ms() wraps at 2**30 ms
# (about 12.4 days) and ticks_us() at 2**30 us (about 17.9 minutes) on the
# ESP32. Each test starts the fake clock just before a wrap and runs the
# node, its sensor adapters, its relay and its RS-485 port across it, days
# of ticks in large steps. MicroPython-compatible (no pytest): run under
# CPython by pytest and under real MicroPython by test_under_micropython.py.

from firmware import clock, main, noise_sensor, regmap, wind_sensor
from firmware.fakes import FakeClock, FakeIO
from firmware.node import Node
from firmware.relay import Relay
from firmware.rs485 import FrameAssembler
from tests.firmware.mp_support import fresh_dir, remove_dir, with_crc

PERIOD = clock.TICKS_PERIOD
DAY_MS = 24 * 3600 * 1000


class AlwaysOk:
    def __init__(self):
        self.reads = 0

    def read(self, bank, now_ms):
        self.reads += 1
        return regmap.STATUS_OK


def test_ticks_add_and_diff_wrap_like_the_board():
    assert clock.ticks_add(clock.TICKS_MAX, 1) == 0
    assert clock.ticks_add(0, -1) == clock.TICKS_MAX
    assert clock.ticks_add(PERIOD - 500, 1000) == 500
    assert clock.ticks_diff(500, PERIOD - 500) == 1000
    assert clock.ticks_diff(PERIOD - 500, 500) == -1000
    assert clock.ticks_diff(7, 3) == 4


def test_fake_clock_starts_anywhere_and_wraps_both_counters():
    fake = FakeClock(start_ms=PERIOD - 3)
    assert fake.ticks_ms() == PERIOD - 3
    fake.advance_ms(5)
    assert fake.ticks_ms() == 2
    assert fake.ticks_diff(fake.ticks_ms(), PERIOD - 3) == 5
    # ticks_us wraps on its own, every 2**30 us.
    fake = FakeClock(start_us=PERIOD - 10)
    fake.advance_us(25)
    assert fake.ticks_us() == 15
    assert fake.ticks_add(PERIOD - 10, 25) == 15
    assert fake.ticks_diff(15, PERIOD - 10) == 25


def test_node_samples_for_days_across_the_wrap():
    interval = 60000
    start = PERIOD - DAY_MS  # one day before the wrap
    sensor = AlwaysOk()
    node = Node(regmap.KIND_DUST, sensor, start)
    node.bank.set_holding_raw("sample_interval", interval)
    fake = FakeClock(start_ms=start)
    days = 3
    for _ in range(days * DAY_MS // interval):
        now = fake.ticks_ms()
        assert node.sample_due(now), "no sample due at " + str(now)
        node.sample(now)
        assert not node.sample_due(fake.ticks_add(now, interval - 1))
        fake.advance_ms(interval)
    assert node.seq == days * DAY_MS // interval
    # The uptime register counts on through the wrap (2 of the 3 days are after it).
    node.handle(with_crc(1, 4, 0, 0, 0, 1), 8, fake.ticks_ms())
    assert node.uptime_s == days * 24 * 3600
    assert node.healthy(fake.ticks_ms())


def test_board_keeps_sampling_and_answering_across_both_wraps():
    root = fresh_dir("wrap")
    try:
        # ticks_ms 2 s before its wrap; ticks_us wraps every 17.9 minutes on its own.
        fake = FakeClock(start_ms=PERIOD - 2000)
        io = FakeIO(fake)
        config = {"kind": "dust", "unit_id": 7, "sensor": {"module": "tests.firmware.test_tick_wrap"}}
        board = main.assemble(config, root, fake, io)
        uart = io.uarts[2]
        first = board.node.seq
        for _ in range(100):  # 10 s across the ms wrap, one turn every 100 ms
            board.step()
            fake.advance_ms(100)
        assert board.node.seq - first >= 9
        # An hour more in big strides (several ticks_us wraps), then a request must still be served.
        for _ in range(60):
            fake.advance_ms(60000)
            board.step()
        request = with_crc(7, 4, 0, 0, 0, 1)
        uart.deliver(request)
        for _ in range(50):
            board.step()
            fake.advance_us(500)
        sent = uart.take_sent()
        assert len(sent) == 7 and sent[:3] == b"\x07\x04\x02", sent
        assert board.wdt.feeds > 0 and not board.wdt.expired()
    finally:
        remove_dir(root)


def make_sensor(settings, io):
    """A driver factory for main.load_sensor."""
    return AlwaysOk()


def test_noise_blocks_continue_across_the_wrap():
    io = FakeIO(FakeClock(start_ms=PERIOD - 5000))
    fake = io.clock()
    sensor = noise_sensor.make_sensor({"source": "analog"}, io)
    io.adcs[36].uv = 12 * 120 * 1000  # 12 mA: mid-scale
    node = Node(regmap.KIND_NOISE, sensor, fake.ticks_ms())
    for _ in range(8 * 20):  # 20 s of 125 ms blocks
        node.tick(fake.ticks_ms())
        fake.advance_ms(125)
    assert sensor.aggregator.periods == 20
    node.sample(fake.ticks_ms())
    assert node.bank.get_input("sensor_status") & regmap.STATUS_OK


def test_wind_steps_continue_across_the_wrap():
    io = FakeIO(FakeClock(start_ms=PERIOD - 2000))
    fake = io.clock()
    sensor = wind_sensor.make_sensor({}, io)
    node = Node(regmap.KIND_WIND, sensor, fake.ticks_ms())
    pin = io.pins[27]
    for _ in range(40):  # 10 s of 250 ms steps, 5 pulses each
        pin.pulse(5)
        fake.advance_ms(250)
        node.tick(fake.ticks_ms())
    node.sample(fake.ticks_ms())
    assert sensor.counters.ok >= 1
    assert 0 < node.bank.get_input("wind_speed") < 60


def test_relay_times_out_after_the_wrap_not_before():
    fake = FakeClock(start_ms=PERIOD - 30000)
    pins = FakeIO(fake)
    relay = Relay(pins.output_pin(26, 0), 60000, False, fake.ticks_diff)
    relay.set(True, fake.ticks_ms())
    fake.advance_ms(59000)
    assert not relay.poll(fake.ticks_ms())
    assert relay.on_for_ms(fake.ticks_ms()) == 59000
    fake.advance_ms(1000)
    assert relay.poll(fake.ticks_ms())


def test_relay_default_tick_arithmetic_wraps():
    fake = FakeClock(start_ms=PERIOD - 30000)
    relay = Relay(FakeIO(fake).output_pin(26, 0), 60000)
    relay.set(True, fake.ticks_ms())
    fake.advance_ms(31000)
    assert not relay.poll(fake.ticks_ms())
    fake.advance_ms(29000)
    assert relay.poll(fake.ticks_ms())


def test_frame_silence_is_measured_across_the_us_wrap():
    asm = FrameAssembler(1750)  # the default tick arithmetic
    request = with_crc(7, 3, 0, 0, 0, 1)
    t = PERIOD - 700  # the last byte arrives just before the wrap, the silence ends after it
    for b in request:
        asm.feed_byte(b, t)
        t = clock.ticks_add(t, 87)
    assert asm.poll(clock.ticks_add(t, 100)) == 0  # silence not long enough yet
    last = clock.ticks_add(t, -87)
    assert last > PERIOD - 100
    assert asm.poll(clock.ticks_add(last, 1800)) == len(request)
