# Spray relay: safe state and maximum on-time. MicroPython-compatible (no pytest).

from firmware import regmap
from firmware.fakes import FakePin
from firmware.node import Node
from firmware.relay import DEFAULT_MAX_ON_MS, Relay
from tests.firmware.mp_support import with_crc

MINUTE = 60 * 1000




def reply(node, request, now_ms):
    n = node.handle(request, len(request), now_ms)
    return bytes(node.slave.tx[:n])


class GoodSensor:
    def read(self, bank, now_ms):
        return regmap.STATUS_OK


def test_relay_starts_off_even_if_the_pin_was_left_on():
    pin = FakePin("relay", 1)
    relay = Relay(pin)
    assert pin.value() == 0
    assert not relay.on


def test_active_low_relay_starts_at_the_high_level():
    pin = FakePin("relay", 0)
    relay = Relay(pin, active_low=True)
    assert pin.value() == 1
    relay.set(True, 0)
    assert pin.value() == 0
    relay.set(False, 1)
    assert pin.value() == 1


def test_default_maximum_is_sixty_minutes():
    assert DEFAULT_MAX_ON_MS == 60 * MINUTE


def test_relay_switches_itself_off_at_the_maximum_on_time():
    pin = FakePin("relay")
    relay = Relay(pin, max_on_ms=60 * MINUTE)
    relay.set(True, 1000)
    assert pin.value() == 1
    assert not relay.poll(1000 + 60 * MINUTE - 1)
    assert pin.value() == 1
    assert relay.on_for_ms(1000 + 30 * MINUTE) == 30 * MINUTE
    assert relay.poll(1000 + 60 * MINUTE)
    assert pin.value() == 0
    assert not relay.on
    assert relay.auto_offs == 1
    # Already off: nothing more happens.
    assert not relay.poll(1000 + 120 * MINUTE)
    assert relay.auto_offs == 1


def test_writing_on_again_renews_the_lease():
    pin = FakePin("relay")
    relay = Relay(pin, max_on_ms=10 * MINUTE)
    relay.set(True, 0)
    relay.set(True, 9 * MINUTE)  # the gateway's refresh
    assert not relay.poll(10 * MINUTE)
    assert pin.value() == 1 and relay.switches == 1
    # Not renewed any more (the gateway is gone): off one lease after the last "on".
    assert not relay.poll(19 * MINUTE - 1)
    assert relay.poll(19 * MINUTE)
    assert pin.value() == 0
    # A new "on" after it switched itself off is a new period.
    relay.set(True, 21 * MINUTE)
    assert not relay.poll(30 * MINUTE)
    assert relay.poll(31 * MINUTE)
    assert relay.switches == 2


def test_maximum_on_time_across_a_tick_wrap():
    # MicroPython's ticks_ms wraps at 2**30 on the ESP32; ticks_diff handles it.
    period = 1 << 30

    def wrapping_diff(a, b):
        d = (a - b) & (period - 1)
        return d - period if d >= period // 2 else d

    pin = FakePin("relay")
    relay = Relay(pin, max_on_ms=5 * MINUTE, ticks_diff=wrapping_diff)
    start = period - 2 * MINUTE
    relay.set(True, start)
    assert not relay.poll((start + 4 * MINUTE) % period)
    assert relay.poll((start + 5 * MINUTE) % period)
    assert pin.value() == 0


def test_non_positive_maximum_is_refused():
    for bad in (0, -1):
        try:
            Relay(FakePin("relay"), max_on_ms=bad)
        except ValueError:
            continue
        raise AssertionError("max_on_ms " + str(bad) + " accepted")


def test_coil_drives_relay_and_reads_back_off_after_the_maximum():
    pin = FakePin("relay")
    relay = Relay(pin, max_on_ms=5 * MINUTE)
    node = Node(regmap.KIND_DUST, GoodSensor(), 0, unit_id=4, relay=relay)
    on = with_crc(4, 5, 0, 0, 0xFF, 0x00)
    assert reply(node, on, 1000) == on
    assert pin.value() == 1
    assert reply(node, with_crc(4, 1, 0, 0, 0, 1), 2000) == with_crc(4, 1, 1, 1)
    node.tick(1000 + 5 * MINUTE - 1)
    assert pin.value() == 1
    node.tick(1000 + 5 * MINUTE)
    assert pin.value() == 0
    # The gateway sees the coil off: the relay is not left "on" in the registers.
    assert reply(node, with_crc(4, 1, 0, 0, 0, 1), 1000 + 5 * MINUTE + 1) == with_crc(4, 1, 1, 0)


def test_coil_off_switches_relay_off():
    pin = FakePin("relay")
    relay = Relay(pin)
    node = Node(regmap.KIND_DUST, GoodSensor(), 0, unit_id=4, relay=relay)
    reply(node, with_crc(4, 5, 0, 0, 0xFF, 0x00), 10)
    off = with_crc(4, 5, 0, 0, 0x00, 0x00)
    assert reply(node, off, 20) == off
    assert pin.value() == 0
    assert not relay.on


def test_a_restarted_node_has_relay_and_coil_off():
    # A watchdog reset re-runs the firmware from the start: a new Relay on the
    # same pin, a new Node. Both must come up off, whatever the pin was.
    pin = FakePin("relay")
    node = Node(regmap.KIND_DUST, GoodSensor(), 0, unit_id=4, relay=Relay(pin))
    reply(node, with_crc(4, 5, 0, 0, 0xFF, 0x00), 10)
    assert pin.value() == 1
    node = Node(regmap.KIND_DUST, GoodSensor(), 0, unit_id=4, relay=Relay(pin))
    assert pin.value() == 0
    assert reply(node, with_crc(4, 1, 0, 0, 0, 1), 20) == with_crc(4, 1, 1, 0)


def test_kind_without_relay_coil_ignores_a_relay():
    pin = FakePin("relay")
    node = Node(regmap.KIND_NOISE, GoodSensor(), 0, unit_id=4, relay=Relay(pin))
    assert node.relay is None
    node.tick(10 * 60 * MINUTE)
    assert pin.value() == 0
