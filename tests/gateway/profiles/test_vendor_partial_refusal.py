"""Issue 10 review: a vendor device that answers one of a poll's merged requests and refuses the next
(served by pymodbus over Modbus TCP, an independent server). docs/profiles.md: the first failing request
ends the poll; every quantity gets no value with flag D, never the values of the answered request alone,
never a repeat; counted as an exception. And a TCP device that goes away: B gaps, then values again."""

from __future__ import annotations

import asyncio
import tomllib

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gateway.acquire.poller import BusConfig, BusPoller, NodeConfig
from gateway.model import Quality, Reading
from gateway.profiles.vendor import ReadRequest, parse_profile
from tests.gateway.profiles.test_vendor_pymodbus import listening
from tests.support.mosquitto import free_port

UNIT = 9
SPLIT = parse_profile(tomllib.loads("""
[device]
kind = "wind"
description = "speed at input register 0, direction at 10: two requests"
source = "test"
[[register]]
quantity = "wind_speed"
function = 4
address = 0
scale = 0.1
unit = "m/s"
[[register]]
quantity = "wind_dir"
function = 4
address = 10
scale = 0.1
unit = "deg"
"""), "split", "split.toml")


def served(with_direction: bool) -> SimDevice:
    inputs = [SimData(0, values=[87], datatype=DataType.REGISTERS)]
    if with_direction:
        inputs.append(SimData(10, values=[2735], datatype=DataType.REGISTERS))
    coils = [SimData(0, values=[False], datatype=DataType.BITS)]
    return SimDevice(UNIT, simdata=(coils, coils, [SimData(0)], inputs))


async def poll(device: SimDevice, samples: int) -> tuple[list[Reading], BusPoller]:
    port = free_port()
    server = ModbusTcpServer([device], address=("127.0.0.1", port))
    serving = asyncio.create_task(server.serve_forever())
    await listening(port)
    node = NodeConfig("wind-9", "wind", UNIT, 0.1, history=False, profile=SPLIT)
    readings: list[Reading] = []
    poller = BusPoller(BusConfig("tcp0", "", (node,), transport="tcp", host="127.0.0.1", tcp_port=port,
                                 timeout=2.0), readings.extend)
    stop = asyncio.Event()
    polling = asyncio.create_task(poller.run(stop))
    health = poller.health["wind-9"]
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60.0
        while health.polls < samples:
            assert loop.time() < deadline, health
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(polling, 10)
        await server.shutdown()
        serving.cancel()
    return readings, poller


async def test_a_refused_second_request_voids_the_whole_poll() -> None:
    assert SPLIT.reads() == [ReadRequest(4, 0, 1), ReadRequest(4, 10, 1)]
    # Control: with both blocks served, both values arrive (so the refusal below is what voids them).
    readings, _ = await poll(served(True), 3)
    good = {(r.channel, r.value) for r in readings if r.quality is Quality.NORMAL}
    assert good == {("wind_speed", 8.7), ("wind_dir", 273.5)}, readings

    readings, poller = await poll(served(False), 3)
    health = poller.health["wind-9"]
    assert health.exceptions >= 3 and health.new_samples == 0, health
    assert readings and all(r.value is None and r.quality is Quality.DEVICE_FAULT for r in readings), readings
    assert {r.channel for r in readings} == {"wind_speed", "wind_dir"}


async def test_a_tcp_device_that_goes_away_gives_gaps_then_values_again() -> None:
    """The Modbus TCP server stops (a gateway device unplugged): failed polls with flag B and no value, the
    poller keeps running, and once a server listens on the port again its values come back."""
    port = free_port()
    server = ModbusTcpServer([served(True)], address=("127.0.0.1", port))
    serving = asyncio.create_task(server.serve_forever())
    await listening(port)
    node = NodeConfig("wind-9", "wind", UNIT, 0.1, history=False, profile=SPLIT)
    readings: list[Reading] = []
    poller = BusPoller(BusConfig("tcp0", "", (node,), transport="tcp", host="127.0.0.1", tcp_port=port,
                                 timeout=1.0), readings.extend)
    stop = asyncio.Event()
    polling = asyncio.create_task(poller.run(stop))
    health = poller.health["wind-9"]
    loop = asyncio.get_running_loop()

    async def until(condition: object) -> None:
        assert callable(condition)
        deadline = loop.time() + 60.0
        while not condition():
            assert loop.time() < deadline, health
            await asyncio.sleep(0.02)

    try:
        await until(lambda: health.new_samples >= 2)
        await server.shutdown()
        serving.cancel()
        failures = health.failures
        await until(lambda: health.failures >= failures + 3)
        before_return = len(readings)
        server = ModbusTcpServer([served(True)], address=("127.0.0.1", port))
        serving = asyncio.create_task(server.serve_forever())
        back = health.new_samples
        await until(lambda: health.new_samples >= back + 2)
    finally:
        stop.set()
        await asyncio.wait_for(polling, 10)
        await server.shutdown()
        serving.cancel()
    missed = [r for r in readings if r.value is None]
    assert len(missed) >= 6 and all(r.quality is Quality.COMMUNICATION_FAILURE for r in missed), missed
    good = [r for r in readings if r.value is not None]
    assert {(r.channel, r.value) for r in good} == {("wind_speed", 8.7), ("wind_dir", 273.5)}
    assert any(r.value is not None for r in readings[before_return:])
