"""Vendor devices served by an independent Modbus server (pymodbus's, over Modbus TCP), polled by the gateway.

The registers are laid out by hand from the manuals the shipped profiles
cite (struct, not the profile's own encoder), so the test checks the
profiles and the gateway's decoding against what was served: the stored
values equal it, and a device's "invalid" sentinel is stored as no value
with flag D, never as a number.
"""

from __future__ import annotations

import asyncio
import math
import struct
from pathlib import Path

import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gateway.acquire.poller import BusConfig, BusPoller, NodeConfig
from gateway.deliver.sqlite_store import SqliteStore
from gateway.model import Quality, Reading
from gateway.profiles.vendor import load_vendor_profiles
from tests.support.mosquitto import free_port

PROFILES = load_vendor_profiles(system_dir=None)


def s16(value: int) -> int:
    return value & 0xFFFF


def f32_swapped(value: float) -> list[int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [low, high]  # GEOKON 6150F: least significant word first


# unit -> (profile, {function: {address: word}}, {quantity: served value})
SERVED = {
    1: ("lambrecht-14524-wind-speed", {4: {0: 87}}, {"wind_speed": 8.7}),
    2: ("lambrecht-14523-wind-direction", {4: {200: 2735}}, {"wind_dir": 273.5}),
    3: ("deltaohm-pmsense", {4: {3: 123, 4: 456, 5: 789}}, {"pm1": 12.3, "pm25": 45.6, "pm10": 78.9}),
    4: ("geokon-6150f-inclinometer",
        {3: dict(zip(range(0x100, 0x104), f32_swapped(0.75) + f32_swapped(-1.5), strict=True))},
        {"slope_x": 1000 * math.tan(math.radians(0.75)), "slope_y": 1000 * math.tan(math.radians(-1.5))}),
    5: ("generic-485-noise", {3: {0: 654}}, {"laeq_1s": 65.4}),
    6: ("calypso-ulp-ultrasonic", {3: {200: 0, 201: 52, 202: 3599}}, {"wind_speed": 5.2, "wind_dir": 359.9}),
    # A wind speed transmitter that reports its error value (0xD8F1 = -9999): no value, flag D.
    7: ("lambrecht-14524-wind-speed", {4: {0: s16(-9999)}}, {"wind_speed": math.nan}),
}


def device(unit: int) -> SimDevice:
    _, words, _ = SERVED[unit]
    blocks: dict[int, list[SimData]] = {3: [], 4: []}
    for function, table in words.items():
        for address, word in table.items():
            blocks[function].append(SimData(address, values=[word], datatype=DataType.REGISTERS))
    coils = [SimData(0, values=[False], datatype=DataType.BITS)]
    return SimDevice(unit, simdata=(coils, coils, blocks[3] or [SimData(0)], blocks[4] or [SimData(0)]))


async def listening(port: int, deadline: float = 30.0) -> None:
    """Wait until the server accepts connections (its task starts listening when the loop gets to it)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            assert loop.time() < end, f"pymodbus server not listening on {port}"
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


async def test_gateway_reads_what_pymodbus_serves(tmp_path: Path) -> None:
    port = free_port()
    server = ModbusTcpServer([device(unit) for unit in SERVED], address=("127.0.0.1", port))
    serving = asyncio.create_task(server.serve_forever())
    await listening(port)
    store = SqliteStore(tmp_path / "store.sqlite3")
    nodes = tuple(
        NodeConfig(f"{PROFILES[name].kind}-{unit}", PROFILES[name].kind, unit, 0.2, history=False,
                   profile=PROFILES[name])
        for unit, (name, _, _) in SERVED.items()
    )
    # The server shares this event loop with the poller and the store's synchronous writes: on a loaded host a
    # reply can be late (stress run s5a: one 2-s timeout). A timeout is the host's; a decode error would be ours.
    bus = BusConfig("tcp0", "", nodes, transport="tcp", host="127.0.0.1", tcp_port=port, timeout=10.0)
    seen: list[Reading] = []

    def deliver(readings: list[Reading]) -> None:
        seen.extend(readings)
        store.write(readings)

    poller = BusPoller(bus, deliver)
    stop = asyncio.Event()
    polling = asyncio.create_task(poller.run(stop))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60.0
        while not all(poller.health[n.name].new_samples >= 3 for n in nodes):
            assert loop.time() < deadline, {n.name: poller.health[n.name] for n in nodes}
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(polling, 10)
        await server.shutdown()
        serving.cancel()
    for unit, (name, _, served) in SERVED.items():
        node = f"{PROFILES[name].kind}-{unit}"
        health = poller.health[node]
        assert health.failures == health.timeouts and health.crc_errors == health.framing_errors == 0, health
        readings = store.readings(node=node)
        assert {r.channel for r in readings} - {"wind_gust_3s"} == set(served)
        for reading in readings:
            if reading.channel == "wind_gust_3s":
                continue
            want = served[reading.channel]
            if math.isnan(want):
                assert reading.value is None and reading.quality is Quality.DEVICE_FAULT, reading
            else:
                assert reading.quality is Quality.NORMAL, reading
                assert reading.value == pytest.approx(want, rel=1e-6, abs=1e-9), reading
