"""The simulator's vendor slave: a profile's layout behind Modbus RTU, with the refusals of a real device. Pure."""

from __future__ import annotations

import tomllib

import pytest

from gateway.profiles.vendor import load_vendor_profiles, parse_profile
from gateway.protocols import modbus_rtu_master as rtu
from simulator.faults import Fault, FaultKind
from simulator.scenario import ScenarioError, loads_scenario
from simulator.site import bus_specs
from simulator.vendor_device import VendorDevice, VendorSlave

PROFILE = parse_profile(tomllib.loads("""
[device]
kind = "wind"
description = "test"
source = "test"
max_gap = 3
[[register]]
quantity = "wind_speed"
function = 4
address = 10
type = "f32"
word_order = "little"
unit = "m/s"
[[register]]
quantity = "wind_dir"
function = 4
address = 16
scale = 0.1
unit = "deg"
invalid = 65535
[[rejected]]
function = 4
first = 13
last = 13
"""), "t")

def reply(slave: VendorSlave, frame: bytes) -> bytes:
    return bytes(slave.tx[: slave.handle(frame)])

def test_reads_what_the_profile_lays_out() -> None:
    slave = VendorSlave(7, PROFILE)
    slave.load({"wind_speed": 12.5, "wind_dir": 270.4})
    # 12.5 = 0x41480000, words swapped: 0x0000 then 0x4148.
    request = rtu.read_registers(7, 4, 10, 2)
    assert reply(slave, request.frame) == rtu.with_crc(bytes([7, 4, 4, 0x00, 0x00, 0x41, 0x48]))
    request = rtu.read_registers(7, 4, 16, 1)
    assert reply(slave, request.frame) == rtu.with_crc(bytes([7, 4, 2, 0x0A, 0x90]))  # 2704
    slave.load({"wind_speed": 1.0, "wind_dir": None})
    assert reply(slave, request.frame)[3:5] == b"\xff\xff"  # the sentinel

@pytest.mark.parametrize(("function", "address", "count", "code"), [
    (4, 10, 5, 2),  # runs over the rejected register 13
    (4, 9, 2, 2),  # below the device's registers
    (4, 16, 2, 2),  # past them
    (3, 10, 2, 2),  # no holding registers at all
    (4, 10, 126, 3),  # more than a request may ask
])
def test_refuses_what_a_device_refuses(function: int, address: int, count: int, code: int) -> None:
    slave = VendorSlave(7, PROFILE)
    slave.load({"wind_speed": 1.0, "wind_dir": 1.0})
    frame = rtu.with_crc(bytes([7, function, address >> 8, address & 0xFF, count >> 8, count & 0xFF]))
    assert reply(slave, frame) == rtu.with_crc(bytes([7, function | 0x80, code]))

def test_other_functions_other_units_broadcasts_and_bad_crc() -> None:
    slave = VendorSlave(7, PROFILE)
    slave.load({"wind_speed": 1.0, "wind_dir": 1.0})
    assert reply(slave, rtu.write_register(7, 16, 5).frame) == rtu.with_crc(bytes([7, 0x86, 1]))
    assert reply(slave, rtu.read_registers(8, 4, 10, 2).frame) == b""
    assert reply(slave, rtu.with_crc(bytes([0, 4, 0, 10, 0, 2]))) == b""
    bad = bytearray(rtu.read_registers(7, 4, 10, 2).frame)
    bad[-1] ^= 0xFF
    assert reply(slave, bytes(bad)) == b"" and slave.crc_errors == 1

def test_gap_registers_inside_the_span_read_as_zero() -> None:
    slave = VendorSlave(7, PROFILE)
    slave.load({"wind_speed": 1.0, "wind_dir": 1.0})
    assert reply(slave, rtu.read_registers(7, 4, 14, 3).frame)[3:7] == b"\x00\x00\x00\x00"


SCENARIO = """
name = "vendor"
description = "a bus with a sitewatch node and vendor devices"
seed = 1
duration = "1h"
start = 2025-04-15T09:00:00+08:00

[[buses]]
name = "bus0"
baud = 19200

[[buses.nodes]]
kind = "dust"
unit_id = 1

[[buses.nodes]]
profile = "calypso-ulp-ultrasonic"
unit_id = 5

[[buses.nodes]]
kind = "dust"
profile = "deltaohm-pmsense"
unit_id = 6
"""


def test_scenario_nodes_may_be_vendor_devices() -> None:
    scenario = loads_scenario(SCENARIO, "vendor.toml")
    nodes = {node.unit_id: node for _, node in scenario.nodes()}
    assert nodes[5].kind == "wind" and nodes[5].profile == "calypso-ulp-ultrasonic" and nodes[5].name == "wind-5"
    assert nodes[6].kind == "dust" and nodes[1].profile == ""
    assert [spec.profile for spec in bus_specs(scenario)[0].nodes] == ["", "calypso-ulp-ultrasonic",
                                                                        "deltaohm-pmsense"]


@pytest.mark.parametrize(("node", "message"), [
    ('profile = "no-such"\nunit_id = 7', r"vendor\.toml: buses\[0\]\.nodes\[3\]\.profile: no vendor profile 'no-such'"),
    ('kind = "noise"\nprofile = "deltaohm-pmsense"\nunit_id = 7',
     r"buses\[0\]\.nodes\[3\]\.kind: 'noise', but profile deltaohm-pmsense is a dust device"),
])
def test_bad_vendor_nodes_in_a_scenario_are_named(node: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        loads_scenario(SCENARIO + "\n[[buses.nodes]]\n" + node + "\n", "vendor.toml")


class Ramp:
    """Wind speed rising 1 m/s per second: every sample differs from the last."""

    def values(self, t: float) -> dict[str, float]:
        return {"wind_speed": 1.0 + t % 40, "wind_dir": 90.0, "wind_gust_3s": 0.0}


def test_sensor_faults_act_on_a_vendor_device() -> None:
    profile = load_vendor_profiles(system_dir=None)["calypso-ulp-ultrasonic"]
    active: list[Fault] = []
    device = VendorDevice(profile, 9, Ramp(), lambda ms: ms / 1000, faults=lambda ms: tuple(active))
    read = rtu.read_registers(9, 3, 201, 2)
    device.sample(0)
    assert reply(device.slave, read.frame)[3:5] == (10).to_bytes(2, "big")  # 1.0 m/s
    active.append(Fault(FaultKind.STUCK_VALUE, "bus0", 0.0, unit_id=9, channel="wind_speed"))
    device.sample(1000)
    device.sample(2000)
    assert device.last["wind_speed"] == 3.0  # the truth moves on...
    assert [held["wind_speed"] for _, held in device.samples] == [1.0, 2.0, 2.0]  # ...the stuck sensor does not
    active[:] = [Fault(FaultKind.SENSOR_MISSING, "bus0", 0.0, unit_id=9)]
    device.sample(3000)
    assert reply(device.slave, read.frame) == rtu.with_crc(bytes([9, 0x83, 4]))  # slave device failure
    active.clear()
    device.sample(4000)
    assert reply(device.slave, read.frame)[3:5] == (50).to_bytes(2, "big")  # back: 5.0 m/s
