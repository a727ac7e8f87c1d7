# Node behaviour (sampling, self-test, health) and the board wiring of
# firmware/main.py on fake hardware. MicroPython-compatible (no pytest).

import json

from firmware import hal, main, regmap
from firmware.fakes import FakeClock, FakePin, FakeUART, FakeWDT
from firmware.node import (
    BOOT_REGMAP,
    BOOT_SENSOR,
    BOOT_WATCHDOG,
    HEALTH_WINDOW_MS,
    Node,
    regmap_problems,
    rows_problems,
)
from tests.firmware.mp_support import fresh_dir, remove_dir, with_crc


def reply(node, request, now_ms):
    n = node.handle(request, len(request), now_ms)
    return bytes(node.slave.tx[:n])


class ScriptedSensor:
    """Returns the given statuses in turn (the last one for ever); raises on "raise"."""

    def __init__(self, *statuses):
        self.statuses = list(statuses)
        self.written = []

    def read(self, bank, now_ms):
        status = self.statuses[0]
        if len(self.statuses) > 1:
            self.statuses.pop(0)
        if status == "raise":
            raise OSError("sensor bus error")
        if status & regmap.STATUS_OK and bank.kind == regmap.KIND_DUST:
            bank.set_input("pm25", 35)
        return status

    def on_holding_written(self, bank, name):
        self.written.append((name, bank.get_holding_raw(name)))


def make_sensor(settings, io):
    """A driver factory, so that main.load_sensor can load this module as a sensor driver."""
    sensor = ScriptedSensor(regmap.STATUS_OK)
    sensor.settings = settings
    sensor.io = io
    return sensor


# -- sampling ------------------------------------------------------------------------------
def test_existing_interface():
    node = Node(regmap.KIND_DUST, ScriptedSensor(regmap.STATUS_OK), 100, unit_id=9, boot_count=70000)
    assert node.unit_id == 9
    assert node.bank.get_input("boot_count") == 70000 & 0xFFFF
    assert node.bank.get_input("sensor_status") == regmap.STATUS_ABSENT
    assert node.sample_due(100)
    node.sample(100)
    assert node.bank.get_input("sample_seq") == 1
    assert node.bank.get_input("pm25") == 35
    assert not node.sample_due(1099)
    assert node.sample_due(1100)
    request = with_crc(9, 4, 0, 6, 0, 2)  # sample_age, sensor_status
    assert reply(node, request, 350) == with_crc(9, 4, 4, 0, 250, 0, regmap.STATUS_OK)


def test_failing_and_raising_sensor_count_errors():
    node = Node(regmap.KIND_DUST, ScriptedSensor(regmap.STATUS_CHECKSUM, "raise", regmap.STATUS_OK), 0)
    node.sample(0)
    assert node.bank.get_input("sensor_status") == regmap.STATUS_CHECKSUM
    node.sample(1000)
    assert node.bank.get_input("sensor_status") == regmap.STATUS_ABSENT
    node.sample(2000)
    assert node.bank.get_input("sensor_status") == regmap.STATUS_OK
    assert node.bank.get_input("sensor_errors") == 2
    assert node.bank.get_input("sample_seq") == 3


def test_uptime_and_counters_are_published_on_each_request():
    node = Node(regmap.KIND_WIND, ScriptedSensor(regmap.STATUS_OK), 1000, unit_id=2)
    reply(node, with_crc(2, 4, 0, 0, 0, 1), 2000)
    reply(node, with_crc(2, 4, 0, 0, 0, 1)[:-1] + b"\x00", 3000)  # bad CRC
    r = reply(node, with_crc(2, 4, 0, 2, 0, 2), 66000)  # uptime, 32 bits
    assert r == with_crc(2, 4, 4, 0, 0, 0, 65)
    r = reply(node, with_crc(2, 4, 0, 8, 0, 2), 67000)  # frames_ok, crc_errors
    assert r == with_crc(2, 4, 4, 0, 2, 0, 1)


def test_sensor_hears_holding_writes_before_they_are_stored():
    sensor = ScriptedSensor(regmap.STATUS_OK)
    node = Node(regmap.KIND_TILT, sensor, 0, unit_id=3)
    request = with_crc(3, 6, 0, 16, 0, 1)  # zero_baseline = 1
    assert reply(node, request, 10) == request
    assert sensor.written == [("zero_baseline", 1)]
    assert node.store.dirty


# -- self-test ------------------------------------------------------------------------------
def test_register_map_of_every_kind_is_consistent():
    for kind in regmap.KIND_NAMES:
        assert regmap_problems(kind) == [], regmap.KIND_NAMES[kind]


def test_self_test_finds_broken_tables():
    bad_inputs = (
        ("a", 16, regmap.U16, 1, "", ""),
        ("b", 16, regmap.U16, 1, "", ""),  # overlaps a
        ("c", 3, regmap.U16, 1, "", ""),  # measurement in the diagnostics
    )
    bad_holdings = (
        ("d", 16, regmap.U16, 1, "", 0, 10, 11, ""),  # default above maximum
        ("e", 17, regmap.S16, 1, "", -1, 40000, 0, ""),  # range wider than the format
        ("d", 18, regmap.U16, 1, "", 0, 1, 0, ""),  # duplicate name
    )
    coils = (("x", 0, ""), ("y", 0, ""))
    diagnostics = regmap.DIAGNOSTICS
    common = regmap.COMMON_HOLDING
    problems = rows_problems(diagnostics + bad_inputs, common + bad_holdings, coils)
    text = "\n".join(problems)
    assert "input b: overlaps a" in text
    assert "input c: measurement below MEASUREMENT_BASE" in text
    assert "holding d: default out of range" in text
    assert "holding e: range does not fit the format" in text
    assert "holding d: duplicate name" in text
    assert "coil y: duplicate address" in text
    assert len(problems) == 7  # c also overlaps uptime


def test_self_test_flags_absent_sensor_until_the_first_valid_sample():
    node = Node(regmap.KIND_DUST, ScriptedSensor(regmap.STATUS_ABSENT, regmap.STATUS_OK), 0)
    assert node.self_test(0) == []
    assert node.boot_flags == BOOT_SENSOR
    assert node.bank.get_input("sensor_status") == regmap.STATUS_ABSENT
    node.sample(1000)
    assert node.boot_flags == 0


def test_self_test_reports_a_watchdog_reset():
    node = Node(regmap.KIND_NOISE, ScriptedSensor(regmap.STATUS_OK), 0)
    node.self_test(0, hal.WDT_RESET)
    assert node.boot_flags == BOOT_WATCHDOG
    node = Node(regmap.KIND_NOISE, ScriptedSensor(regmap.STATUS_OK), 0)
    node.self_test(0, hal.PWRON_RESET)
    assert node.boot_flags == 0


def test_broken_register_map_never_publishes_a_valid_sample():
    node = Node(regmap.KIND_DUST, ScriptedSensor(regmap.STATUS_OK | regmap.STATUS_HUMID), 0)
    node.boot_flags = BOOT_REGMAP
    node.sample(0)
    assert node.bank.get_input("sensor_status") == regmap.STATUS_HUMID


# -- health (watchdog feeding) -----------------------------------------------------------------
def test_health_needs_recent_progress():
    node = Node(regmap.KIND_DUST, ScriptedSensor(regmap.STATUS_ABSENT), 0, unit_id=1)
    assert node.healthy(HEALTH_WINDOW_MS - 1)
    assert not node.healthy(HEALTH_WINDOW_MS)
    # A request for another unit is not progress of ours ...
    reply(node, with_crc(2, 4, 0, 0, 0, 1), HEALTH_WINDOW_MS)
    assert not node.healthy(HEALTH_WINDOW_MS)
    # ... an answered one is.
    reply(node, with_crc(1, 4, 0, 0, 0, 1), HEALTH_WINDOW_MS + 10)
    assert node.healthy(HEALTH_WINDOW_MS + 10)
    assert not node.healthy(2 * HEALTH_WINDOW_MS + 10)


def test_valid_samples_keep_a_node_without_master_healthy():
    node = Node(regmap.KIND_DUST, ScriptedSensor(regmap.STATUS_OK), 0)
    node.sample(2 * HEALTH_WINDOW_MS)
    assert node.healthy(2 * HEALTH_WINDOW_MS + 1000)


# -- the board (firmware/main.py) on fake hardware ----------------------------------------------
class FakeIO:
    """Stands in for firmware.hal's board functions."""

    def __init__(self, clock, reset=hal.PWRON_RESET):
        self.clock = clock
        self.reset = reset
        self.trace = []
        self.pins = {}
        self.uarts = []
        self.wdts = []
        self.idles = 0
        self.messages = []

    def log(self, message):
        self.messages.append(message)

    def output_pin(self, number, value):
        pin = FakePin("gpio" + str(number), value, self.clock, self.trace)
        self.pins[number] = pin
        return pin

    def uart(self, uart_id, baud, parity_code, tx, rx):
        self.trace.append((self.clock.ticks_us(), "uart", baud))
        uart = FakeUART(self.clock, baud, 11 if parity_code else 10)
        self.uarts.append((uart_id, baud, parity_code, tx, rx, uart))
        return uart

    def watchdog(self, timeout_ms):
        wdt = FakeWDT(self.clock, timeout_ms)
        self.wdts.append(wdt)
        return wdt

    def reset_cause(self):
        return self.reset

    def idle(self):
        self.idles += 1


def board_config(**extra):
    config = {
        "kind": "dust",
        "unit_id": 7,
        "rs485": {"uart": 2, "tx": 17, "rx": 16, "de": 4},
        "relay": {"pin": 26, "active_low": False, "max_on_s": 60},
        "sensor": {"module": "tests.firmware.test_node", "uart": 1},
        "watchdog_ms": 5000,
    }
    for key in extra:
        config[key] = extra[key]
    return config


def steps(board, clock, count, step_us=200):
    for _ in range(count):
        board.step()
        clock.advance_us(step_us)


def test_board_boots_relay_first_and_answers_requests():
    root = fresh_dir("node")
    try:
        clock = FakeClock(5000000)
        io = FakeIO(clock)
        board = main.assemble(board_config(), root, clock, io)
        node = board.node
        # The relay pin was the first thing driven, and driven off.
        assert io.trace[0][1:] == ("gpio26", 0)
        assert node.unit_id == 7
        assert node.sensor.settings == {"module": "tests.firmware.test_node", "uart": 1}
        assert node.sensor.io is io
        assert node.boot_flags == 0
        assert node.bank.get_input("boot_count") == 1
        assert io.messages == ["sitewatch node: kind dust, unit 7, 9600 baud, boot 1, flags 0x0"]
        uart_id, baud, parity, tx, rx, uart = io.uarts[0]
        assert (uart_id, baud, parity, tx, rx) == (2, 9600, 0, 17, 16)
        assert io.wdts[0].timeout_ms == 5000
        uart.deliver(with_crc(7, 4, 0, 16, 0, 1))
        steps(board, clock, 100)
        assert uart.take_sent() == with_crc(7, 4, 2, 0, 35)
        assert io.wdts[0].feeds == 100
        assert not io.wdts[0].expired()
    finally:
        remove_dir(root)


def test_board_persists_settings_and_uses_the_stored_baud_rate():
    root = fresh_dir("node")
    try:
        clock = FakeClock()
        io = FakeIO(clock)
        board = main.assemble(board_config(), root, clock, io)
        uart = io.uarts[0][5]
        request = with_crc(7, 16, 0, 1, 0, 2, 4, 0, 4, 0, 1)  # baud_code 4, parity 1 (even)
        uart.deliver(request)
        steps(board, clock, 100)
        assert uart.take_sent() == with_crc(7, 16, 0, 1, 0, 2)
        with open(root + "/config.json") as f:
            stored = json.loads(f.read())["holding"]
        assert stored["baud_code"] == 4 and stored["parity"] == 1
        # Next boot: 115200 baud, even parity, t3.5 fixed at 1.75 ms.
        io = FakeIO(clock)
        board = main.assemble(board_config(), root, clock, io)
        assert io.uarts[0][1:3] == (115200, 1)
        assert board.port.gap_us == 1750
        assert board.node.bank.get_input("boot_count") == 2
    finally:
        remove_dir(root)


def test_board_relay_follows_the_coil_and_times_out():
    root = fresh_dir("node")
    try:
        clock = FakeClock()
        io = FakeIO(clock)
        board = main.assemble(board_config(), root, clock, io)
        uart = io.uarts[0][5]
        uart.deliver(with_crc(7, 5, 0, 0, 0xFF, 0))
        steps(board, clock, 100)
        assert io.pins[26].value() == 1
        clock.advance_ms(60 * 1000)
        board.step()
        assert io.pins[26].value() == 0
        assert board.node.bank.coils[0] == 0
    finally:
        remove_dir(root)


def test_board_with_missing_driver_keeps_answering_and_reports_absent():
    root = fresh_dir("node")
    try:
        clock = FakeClock()
        io = FakeIO(clock, reset=hal.WDT_RESET)
        config = board_config(kind="wind", sensor={"module": "firmware.no_such_driver"})
        board = main.assemble(config, root, clock, io)
        node = board.node
        assert isinstance(node.sensor, main.MissingSensor)
        assert "sensor driver firmware.no_such_driver unavailable" in io.messages[0]
        assert node.boot_flags == BOOT_SENSOR | BOOT_WATCHDOG
        assert 26 not in io.pins or io.pins[26].value() == 0
        uart = io.uarts[0][5]
        uart.deliver(with_crc(7, 4, 0, 7, 0, 1))
        steps(board, clock, 100)
        assert uart.take_sent() == with_crc(7, 4, 2, 0, regmap.STATUS_ABSENT)
    finally:
        remove_dir(root)


def test_board_stops_feeding_the_watchdog_when_nothing_progresses():
    root = fresh_dir("node")
    try:
        clock = FakeClock()
        io = FakeIO(clock)
        config = board_config(sensor={"module": "firmware.no_such_driver"})
        board = main.assemble(config, root, clock, io)
        wdt = io.wdts[0]
        assert board.step()
        clock.advance_ms(HEALTH_WINDOW_MS)
        feeds = wdt.feeds
        assert not board.step()
        assert wdt.feeds == feeds
        clock.advance_ms(6000)
        assert wdt.expired()
    finally:
        remove_dir(root)


def test_node_config_helpers():
    assert main.kind_of({"kind": "tilt"}) == regmap.KIND_TILT
    assert main.kind_of({"kind": regmap.KIND_NOISE}) == regmap.KIND_NOISE
    assert main.kind_of({}) == regmap.KIND_DUST
    try:
        main.kind_of({"kind": "crane"})
    except ValueError:
        pass
    else:
        raise AssertionError("unknown kind accepted")
    root = fresh_dir("node")
    try:
        messages = []
        assert main.read_node_config(root + "/node.json", messages.append) == {}
        assert messages == []
        with open(root + "/node.json", "w") as f:
            f.write("{broken")
        assert main.read_node_config(root + "/node.json", messages.append) == {}
        assert messages == [root + "/node.json: not valid JSON, using defaults"]
        with open(root + "/node.json", "w") as f:
            f.write(json.dumps(board_config()))
        assert main.read_node_config(root + "/node.json")["unit_id"] == 7
    finally:
        remove_dir(root)
