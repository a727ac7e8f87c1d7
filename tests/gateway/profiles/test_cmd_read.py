"""`sitewatch read` against a simulated bus: a vendor device through its profile, a sitewatch node by its kind."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.ops.cli import main
from gateway.profiles.vendor import load_vendor_profiles
from simulator.site import BusSpec, NodeSpec, Site
from simulator.vendor_device import VendorDevice

BAUD = 19200


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[tuple[Site, str]]:
    specs = (NodeSpec("dust", 1), NodeSpec("tilt", 12, profile="geokon-6150f-inclinometer"),
             NodeSpec("noise", 13, profile="generic-485-noise"))
    with Site((BusSpec("bus0", specs, baud=BAUD),), tmp_path / "buses", seed=4, burst=True) as site:
        yield site, str(tmp_path / "buses" / "bus0")


def read(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["read", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_read_a_vendor_device(bus: tuple[Site, str], capsys: pytest.CaptureFixture[str]) -> None:
    site, port = bus
    status, out, err = read(capsys, "--port", port, "--baud", str(BAUD), "--unit", "12",
                            "--profile", "geokon-6150f-inclinometer", "--json")
    assert status == 0, err
    reading = json.loads(out)
    assert reading["kind"] == "tilt" and reading["source"] == "profile geokon-6150f-inclinometer"
    device = site.node("bus0", 12).sim.node
    assert isinstance(device, VendorDevice)
    held = [values for _, values in device.samples]
    for name in ("slope_x", "slope_y"):
        value = reading["values"][name]
        assert value["unit"] == "permille" and value["quality"] == "N"
        assert any(math.isclose(value["value"], truth[name], rel_tol=1e-5, abs_tol=1e-6) for truth in held)
    status, out, err = read(capsys, "--port", port, "--baud", str(BAUD), "--unit", "13", "--profile",
                            "generic-485-noise")
    assert status == 0, err
    assert out.startswith(f"unit 13 on {port} {BAUD} 8N1: noise (profile generic-485-noise)")
    assert "laeq_1s" in out and "dB(A)" in out


def test_read_a_sitewatch_node_asks_its_kind(bus: tuple[Site, str], capsys: pytest.CaptureFixture[str]) -> None:
    _, port = bus
    status, out, err = read(capsys, "--port", port, "--baud", str(BAUD), "--unit", "1")
    assert status == 0, err
    assert ": dust (sitewatch node)" in out
    assert {"pm25", "pm10", "temperature", "sample_seq"} <= {line.split()[0] for line in out.splitlines()[1:]}


def test_read_failures_say_why(bus: tuple[Site, str], capsys: pytest.CaptureFixture[str]) -> None:
    _, port = bus
    # Nobody at unit 99: no reply, exit 1.
    status, _, err = read(capsys, "--port", port, "--baud", str(BAUD), "--unit", "99", "--profile",
                          "generic-485-noise", "--timeout", "0.2")
    assert status == 1 and "unit 99" in err and "no reply" in err
    # The noise transmitter read as if it were the PM monitor: it refuses those registers (exception 2).
    # (--parity N: the profile's factory default is 8E1, and the simulated bus now garbles a wrong parity.)
    status, _, err = read(capsys, "--port", port, "--baud", str(BAUD), "--parity", "N", "--unit", "13", "--profile",
                          "deltaohm-pmsense")
    assert status == 1 and "exception 2" in err
    # A vendor device read as a sitewatch node: its node_kind register is refused too.
    status, _, err = read(capsys, "--port", port, "--baud", str(BAUD), "--unit", "13")
    assert status == 1 and "node_kind: exception 2" in err
    status, _, err = read(capsys, "--port", port, "--unit", "13", "--profile", "no-such")
    assert status == 2 and "no profile 'no-such'" in err
    status, _, err = read(capsys, "--unit", "13")
    assert status == 2 and "either --port or --tcp" in err


def test_list_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = read(capsys, "--list-profiles")
    assert status == 0
    assert [line.split()[0] for line in out.splitlines()] == sorted(load_vendor_profiles())
