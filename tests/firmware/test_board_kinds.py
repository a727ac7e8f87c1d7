"""The board as flashed: main.assemble() with the node.json `sitewatch firmware build` writes, per kind.

Each kind's default settings must load its adapter (not the MissingSensor
stand-in), run the main loop on fake peripherals, and answer Modbus.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware import main, regmap
from firmware.fakes import FakeIO
from firmware.modbus_rtu import crc16
from gateway import firmware_build

ADAPTERS = {
    "dust": "DustSensor",
    "noise": "NoiseSensor",
    "tilt": "TiltSensor",
    "wind": "WindSensor",
}


def request(unit: int, *body: int) -> bytes:
    frame = bytearray([unit, *body])
    crc = crc16(frame, len(frame))
    return bytes([*frame, crc & 0xFF, crc >> 8])


@pytest.mark.parametrize("kind", firmware_build.KINDS)
def test_default_node_json_boots_the_kind_adapter(kind: str, tmp_path: Path) -> None:
    io = FakeIO()
    clock = io.clock()
    config = firmware_build.node_config(kind, 9)
    board = main.assemble(config, str(tmp_path), clock, io)
    assert type(board.node.sensor).__name__ == ADAPTERS[kind], io.logs
    uart = io.uarts[config["rs485"]["uart"]]
    for _ in range(50):
        clock.advance_ms(20)
        board.step()
    code = next(k for k, name in regmap.KIND_NAMES.items() if name == kind)
    count = regmap.input_count(code)
    uart.deliver(request(9, 4, 0, 0, 0, count))
    for _ in range(3):  # bytes in; the t3.5 silence ends the frame; the reply goes out
        clock.advance_ms(10)
        board.step()
    reply = uart.take_sent()
    assert reply[:3] == bytes([9, 4, 2 * count])
    assert (reply[5] << 8 | reply[6]) == code  # node_kind
    assert board.errors == 0
    assert board.node.poll_errors == 0
