# The board's entry point: wires flash config, sensor, RS-485 port, relay and
# watchdog around a Node, then runs the main loop for ever.
#
# Deployed as /main.py (source) next to node.json and the compiled modules in
# /firmware/. node.json is written by `sitewatch firmware build/flash`:
#
#   {"kind": "dust", "unit_id": 7,
#    "rs485": {"uart": 2, "tx": 17, "rx": 16, "de": 4},
#    "relay": {"pin": 26, "active_low": false, "max_on_s": 3600},
#    "sensor": {"module": "firmware.pms5003", ...driver settings...},
#    "watchdog_ms": 8000}
#
# Baud rate and parity come from the holding registers (persisted by the
# config store), so they can be changed over Modbus; like the unit ID they
# apply after a restart.
#
# Sensor drivers are found by module name and imported lazily: a kind whose
# driver is missing or fails to start still boots, answers Modbus and reports
# STATUS_ABSENT. A driver module provides make_sensor(settings, io), where io
# is firmware.hal on the board (fakes in tests), and returns an object with
# read(bank, now_ms) -> status bits.

import json
import sys

from firmware import hal, regmap
from firmware.config_store import ConfigStore
from firmware.node import Node
from firmware.relay import Relay
from firmware.rs485 import BAUD_RATES, Rs485Port

NODE_FILE = "node.json"
WATCHDOG_MS = 8000

# Each kind's adapter (sensor plus the kind's rules) is named by its kind
# module (firmware/kind_<name>.py ADAPTER, in regmap.KIND_ADAPTERS). node.json's
# "module" may name another module instead; firmware.pms5003 / sds011 /
# aweight / tilt / wind (the names `sitewatch firmware build` writes) hand over
# to the adapters.


class MissingSensor:
    """Stands in for a driver that could not be loaded: the sensor reads as absent."""

    def __init__(self, module, reason):
        self.module = module
        self.reason = reason

    def read(self, bank, now_ms):
        return regmap.STATUS_ABSENT


def read_node_config(path=NODE_FILE, log=hal.log):
    """The board's node.json as a dict ({} when missing or unreadable: defaults apply)."""
    try:
        f = open(path)
    except OSError:
        return {}
    try:
        doc = json.loads(f.read())
    except ValueError:
        log(path + ": not valid JSON, using defaults")
        return {}
    finally:
        f.close()
    return doc if isinstance(doc, dict) else {}


def kind_of(config):
    """Node kind number from node.json's "kind" (a name such as "dust", or the number)."""
    kind = config.get("kind", "dust")
    if kind in regmap.KIND_NAMES:
        return kind
    if isinstance(kind, str):
        try:
            return regmap.load_kind(kind)  # a frozen image lists no kind modules: load the node's own
        except ValueError:
            pass
    raise ValueError("node.json: unknown kind " + str(kind))


def load_sensor(kind, config, io):
    settings = config.get("sensor") or {}
    name = settings.get("module") or regmap.KIND_ADAPTERS.get(kind)
    if not name:
        return MissingSensor("", "no driver module for this kind")
    try:
        __import__(name)
        return sys.modules[name].make_sensor(settings, io)
    except Exception as e:  # missing module, no make_sensor, or a driver that fails to start
        io.log("sensor driver " + name + " unavailable: " + repr(e))
        return MissingSensor(name, e)


def make_relay(config, io, clock):
    settings = config.get("relay")
    if not settings:
        return None
    active_low = bool(settings.get("active_low", False))
    pin = io.output_pin(settings["pin"], 1 if active_low else 0)
    max_on_ms = int(settings.get("max_on_s", 3600)) * 1000
    return Relay(pin, max_on_ms, active_low, clock.ticks_diff)


class Board:
    """The main loop's state: one node on one RS-485 bus."""

    def __init__(self, node, port, wdt, clock, io):
        self.node = node
        self.port = port
        self.wdt = wdt
        self.clock = clock
        self.io = io
        self.turns = 0
        self.errors = 0

    def step(self):
        """One turn of the loop. Feeds the watchdog only when the turn went well and the node is healthy."""
        clock = self.clock
        node = self.node
        self.turns += 1
        now = clock.ticks_ms()
        if node.sample_due(now):
            node.sample(now)
        self.port.serve(node, clock.ticks_ms())
        now = clock.ticks_ms()
        node.tick(now)
        # After the reply went out: a flash write never delays an answer.
        node.store.save_if_dirty(node.bank)
        if node.healthy(now):
            self.wdt.feed()
            return True
        return False

    def forever(self):
        while True:
            try:
                self.step()
            except Exception as e:  # counted and shown; the watchdog was not fed this turn
                self.errors += 1
                sys.print_exception(e)
            if not self.port.assembler.pending():
                # Nothing half-received: rest until the next interrupt (UART bytes wake us).
                self.io.idle()


def assemble(config, root, clock, io):
    """Build the Board from node.json's content; io is the hal module (or fakes with its functions)."""
    kind = kind_of(config)
    # The relay first: it must be in its safe state before anything slow happens.
    relay = make_relay(config, io, clock)
    store = ConfigStore(root)
    boot_count = store.count_boot()
    sensor = load_sensor(kind, config, io)
    node = Node(
        kind,
        sensor,
        clock.ticks_ms(),
        unit_id=int(config.get("unit_id", 0)),
        boot_count=boot_count,
        store=store,
        relay=relay,
    )
    problems = node.self_test(clock.ticks_ms(), io.reset_cause())
    for problem in problems:
        io.log("register map: " + problem)
    store.save_if_dirty(node.bank)
    bus = config.get("rs485") or {}
    bank = node.bank
    baud = BAUD_RATES[bank.get_holding_raw("baud_code")]
    de = io.output_pin(bus.get("de", 4), 0)
    uart = io.uart(bus.get("uart", 2), baud, bank.get_holding_raw("parity"), bus.get("tx", 17), bus.get("rx", 16))
    port = Rs485Port(uart, de, baud, clock)
    wdt = io.watchdog(int(config.get("watchdog_ms", WATCHDOG_MS)))
    io.log(
        "sitewatch node: kind "
        + regmap.KIND_NAMES[kind]
        + ", unit "
        + str(node.unit_id)
        + ", "
        + str(baud)
        + " baud, boot "
        + str(boot_count)
        + ", flags "
        + hex(node.boot_flags)
    )
    return Board(node, port, wdt, clock, io)


def run():
    config = read_node_config(NODE_FILE)
    board = assemble(config, "", hal.Clock(), hal)
    board.forever()


if __name__ == "__main__":
    run()
