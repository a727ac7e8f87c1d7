"""Modbus TCP nodes (Wi-Fi): MBAP framing around the firmware's own slave, read by pymodbus and mbpoll."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from firmware import regmap
from simulator.scenario import ScenarioError, loads_scenario
from simulator.site import Site
from simulator.tcp import MbapDecoder, MbapError, MbapRequest, encode_mbap, rtu_frame, rtu_pdu
from simulator.truth import read_truth
from tests.support.waiting import wait_until, wait_until_async

SCENARIO = """
name = "wifi"
seed = 11
duration = "1h"
start = 2025-04-15T10:00:00+08:00

[[buses]]
name = "crane"
transport = "tcp"

[[buses.nodes]]
kind = "wind"
unit_id = 1

[[buses.nodes]]
kind = "dust"
unit_id = 2
turnaround_ms = 40

[[buses]]
name = "bus0"

[[buses.nodes]]
kind = "noise"
unit_id = 1
"""

WIND_COUNT = regmap.input_count(regmap.KIND_WIND)
SEQ = regmap.find(regmap.DIAGNOSTICS, "sample_seq")[1]


# ---------------------------------------------------------------------------
# Framing: pure functions
# ---------------------------------------------------------------------------


def test_mbap_and_rtu_framing_vectors() -> None:
    pdu = bytes.fromhex("04 0000 000a")  # read 10 input registers from 0
    assert encode_mbap(0x1234, 1, pdu) == bytes.fromhex("1234 0000 0006 01 04 0000 000a")
    # The well-known RTU frame of the same request (CRC low byte first).
    assert rtu_frame(1, pdu) == bytes.fromhex("01 04 0000 000a 700d")
    assert rtu_pdu(bytes.fromhex("01 04 0000 000a 700d")) == pdu
    assert rtu_pdu(bytes.fromhex("01 04 0000 000a 700e")) is None  # bad CRC
    assert rtu_pdu(b"\x01\x04") is None  # too short
    with pytest.raises(ValueError):
        encode_mbap(1, 1, b"")


def test_the_decoder_cuts_a_stream_into_requests() -> None:
    decoder = MbapDecoder()
    one = encode_mbap(7, 1, bytes.fromhex("03 0003 0001"))
    two = encode_mbap(8, 2, bytes.fromhex("05 0000 ff00"))
    assert decoder.feed(one[:5]) == []
    assert decoder.feed(one[5:] + two[:9]) == [MbapRequest(7, 1, bytes.fromhex("03 0003 0001"))]
    assert decoder.feed(two[9:]) == [MbapRequest(8, 2, bytes.fromhex("05 0000 ff00"))]
    assert decoder.buffer == bytearray()


@pytest.mark.parametrize(
    ("header", "problem"),
    [(bytes.fromhex("0001 0001 0006 01"), "protocol id 1"), (bytes.fromhex("0001 0000 0001 01"), "length 1")],
)
def test_the_decoder_refuses_what_is_not_modbus(header: bytes, problem: str) -> None:
    with pytest.raises(MbapError, match=problem):
        MbapDecoder().feed(header + b"\x03\x00\x00\x00\x01")


@given(
    st.lists(
        st.tuples(st.integers(0, 0xFFFF), st.integers(0, 255), st.binary(min_size=1, max_size=253)),
        min_size=1,
        max_size=6,
    ),
    st.lists(st.integers(1, 40), min_size=1, max_size=20),
)
def test_requests_survive_any_cutting_of_the_stream(requests: list[tuple[int, int, bytes]], cuts: list[int]) -> None:
    stream = b"".join(encode_mbap(t, u, pdu) for t, u, pdu in requests)
    decoder = MbapDecoder()
    out: list[MbapRequest] = []
    position = 0
    for cut in cuts * (len(stream) // max(1, sum(cuts)) + 1):
        out += decoder.feed(stream[position : position + cut])
        position += cut
        if position >= len(stream):
            break
    out += decoder.feed(stream[position:])
    assert out == [MbapRequest(t, u, pdu) for t, u, pdu in requests]


# ---------------------------------------------------------------------------
# A tcp bus of a scenario, with pymodbus and mbpoll
# ---------------------------------------------------------------------------


def tcp_port(url: str) -> int:
    match = re.fullmatch(r"tcp://127\.0\.0\.1:(\d+)", url)
    assert match, url
    return int(match[1])


async def test_pymodbus_reads_and_writes_nodes_on_a_tcp_bus(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    scenario = loads_scenario(SCENARIO)
    with Site(scenario, tmp_path / "buses", speed=10, truth=truth) as site:
        assert site.paths["bus0"] == str(tmp_path / "buses" / "bus0")  # the RTU bus next to it
        port = tcp_port(site.paths["crane"])
        assert site.describe()[0] == f"crane: tcp://127.0.0.1:{port} (Modbus TCP; wind 1, dust 2)"
        # A generous timeout: the simulator's threads share a busy CPU. The wind node must have sampled.
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=3.0, retries=0)
        assert await client.connect()
        try:
            await wait_until_async(lambda: site.node("crane", 1).node.seq >= 1 and site.node("crane", 2).sim.booted)
            wind = await client.read_input_registers(0, count=WIND_COUNT, device_id=1)
            assert not wind.isError(), wind
            started = time.monotonic()
            dust = await client.read_input_registers(0, count=8, device_id=2)
            slow = time.monotonic() - started
            assert not dust.isError() and dust.registers[1] == regmap.KIND_DUST
            coil = await client.write_coil(0, True, device_id=2)
            assert not coil.isError()
            assert site.node("crane", 2).node.bank.coils[0] == 1
            with pytest.raises(ModbusIOException, match="No response"):  # unit 9: nobody there, silence
                await client.read_input_registers(0, count=1, device_id=9)
        finally:
            client.close()
    assert slow >= 0.040  # the dust node's 40 ms turnaround
    words = wind.registers
    sequence = (words[SEQ] << 16) | words[SEQ + 1]
    record = next(r for r in read_truth(truth) if r.bus == "crane" and r.unit_id == 1 and r.sequence == sequence)
    for name, address, _, scale, *_ in regmap.MEASUREMENTS[regmap.KIND_WIND]:
        assert abs(words[address] / scale - record.values[name]) <= 0.5 / scale + 1e-9, name


def test_mbpoll_reads_a_tcp_node(tmp_path: Path) -> None:
    exe = shutil.which("mbpoll")
    assert exe is not None, "mbpoll is not installed (Debian package mbpoll)"
    truth = tmp_path / "truth.jsonl"
    with Site(loads_scenario(SCENARIO), tmp_path / "buses", speed=10, truth=truth) as site:
        port = tcp_port(site.paths["crane"])
        wait_until(lambda: site.node("crane", 1).node.seq >= 1)  # a sample to read
        proc = subprocess.run(
            [exe, "-m", "tcp", "-p", str(port), "-a", "1", "-t", "3", "-0", "-r", "0", "-c", str(WIND_COUNT),
             "-1", "-o", "1", "127.0.0.1"],
            capture_output=True, text=True, timeout=30,
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    words = {int(a): int(v) for a, v in re.findall(r"^\[(\d+)\]:\s+(-?\d+)", proc.stdout, re.MULTILINE)}
    assert words[1] == regmap.KIND_WIND
    sequence = (words[SEQ] << 16) | words[SEQ + 1]
    record = next(r for r in read_truth(truth) if r.bus == "crane" and r.unit_id == 1 and r.sequence == sequence)
    speed = regmap.find(regmap.MEASUREMENTS[regmap.KIND_WIND], "wind_speed")
    assert abs(words[speed[1]] / speed[3] - record.values["wind_speed"]) <= 0.005 + 1e-9


# ---------------------------------------------------------------------------
# The scenario keys for it
# ---------------------------------------------------------------------------


def test_the_scenario_loader_reads_transport_port_and_turnaround() -> None:
    scenario = loads_scenario(SCENARIO.replace('transport = "tcp"', 'transport = "tcp"\nport = 5020'))
    crane, bus0 = scenario.buses
    assert (crane.transport, crane.port, bus0.transport, bus0.port) == ("tcp", 5020, "rtu", 0)
    assert [n.turnaround_ms for n in crane.nodes] == [2.0, 40.0]


@pytest.mark.parametrize(
    ("edit", "key", "problem"),
    [
        (('transport = "tcp"', 'transport = "wifi"'), "buses[0].transport", "'wifi' is not one of rtu, tcp"),
        (('name = "bus0"', 'name = "bus0"\nport = 502'), "buses[1].port", "only a tcp bus"),
        (('transport = "tcp"', 'transport = "tcp"\nport = 70000'), "buses[0].port", "70000 is outside"),
        (("turnaround_ms = 40", "turnaround_ms = 4000"), "buses[0].nodes[1].turnaround_ms", "outside 0 .. 1000"),
    ],
)
def test_bad_transport_keys_are_named(edit: tuple[str, str], key: str, problem: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        loads_scenario(SCENARIO.replace(*edit))
    assert caught.value.key == key and problem in caught.value.problem


def test_two_tcp_buses_cannot_share_a_port() -> None:
    second = '\n[[buses]]\nname = "mast"\ntransport = "tcp"\nport = 5020\n'
    second += '\n[[buses.nodes]]\nkind = "wind"\nunit_id = 1\n'
    with pytest.raises(ScenarioError, match="already used"):
        loads_scenario(SCENARIO.replace('transport = "tcp"', 'transport = "tcp"\nport = 5020') + second)
