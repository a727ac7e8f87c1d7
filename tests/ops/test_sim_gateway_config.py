"""`sitewatch simulate --tcp-port` and `--print-gateway-config`: a gateway configuration polling the simulated site."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from gateway.deliver.sqlite_store import SqliteStore
from gateway.ops.cmd_simulate import with_tcp_ports
from gateway.ops.config import load_config, parse_config
from gateway.ops.service import Gateway
from gateway.ops.sim_gateway_config import SimConfigError, gateway_config_text
from simulator.scenario import load_builtin, load_scenario, loads_scenario

SITEWATCH = str(Path(sys.executable).with_name("sitewatch"))

SCENARIO = """
name = "two_buses"
seed = 3
duration = "1h"
start = 2026-05-04T09:00:00+08:00

[[buses]]
name = "boundary"
[[buses.nodes]]
kind = "dust"
unit_id = 1
name = "dust-gate"

[[buses]]
name = "crane"
transport = "tcp"
[[buses.nodes]]
kind = "wind"
unit_id = 4
name = "wind-top"
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_text_is_a_configuration_of_every_bus_and_node(tmp_path: Path) -> None:
    scenario = load_builtin("normal_day")
    addresses = {bus.name: (f"tcp://127.0.0.1:{5020 + i}" if bus.transport == "tcp" else f"/tmp/sim/{bus.name}")
                 for i, bus in enumerate(scenario.buses)}
    config = parse_config(tomllib.loads(gateway_config_text(scenario, addresses, tmp_path)), "sim.toml")
    assert [b.name for b in config.buses] == [b.name for b in scenario.buses]
    for bus, want in zip(config.buses, scenario.buses, strict=True):
        assert [(n.name, n.kind, n.unit_id) for n in bus.nodes] == [(n.name, n.kind, n.unit_id) for n in want.nodes]
        if want.transport == "tcp":
            assert (bus.transport, bus.host, bus.tcp_port) == ("tcp", "127.0.0.1", int(addresses[bus.name][-4:]))
        else:
            assert (bus.transport, bus.port, bus.baud) == ("rtu", addresses[bus.name], want.baud)
    assert config.store_path == tmp_path / "readings.sqlite3" and config.queue_path == tmp_path / "queue.sqlite3"
    assert config.clock.require_sync == "never" and config.clock.simulated == ""


def test_a_faster_simulation_needs_the_clock_file_and_every_bus_an_address(tmp_path: Path) -> None:
    scenario = load_builtin("demo")
    addresses = {bus.name: f"/tmp/sim/{bus.name}" for bus in scenario.buses}
    with pytest.raises(SimConfigError, match=r"--speed 60: .* add --clock-file"):
        gateway_config_text(scenario, addresses, tmp_path, speed=60.0)
    text = gateway_config_text(scenario, addresses, tmp_path, clock_file=tmp_path / "clock.json", speed=60.0)
    assert parse_config(tomllib.loads(text), "sim.toml").clock.simulated == str(tmp_path / "clock.json")
    first = scenario.buses[0].name
    with pytest.raises(SimConfigError, match=f"bus '{first}' is not served"):
        gateway_config_text(scenario, {k: v for k, v in addresses.items() if k != first}, tmp_path)


def test_tcp_port_fixes_the_tcp_buses_in_order(tmp_path: Path) -> None:
    scenario = load_builtin("normal_day")
    fixed = with_tcp_ports(scenario, 6000)
    tcp = [b for b in fixed.buses if b.transport == "tcp"]
    assert [b.port for b in tcp] == list(range(6000, 6000 + len(tcp)))
    assert [b for b in fixed.buses if b.transport != "tcp"] == [b for b in scenario.buses if b.transport != "tcp"]
    assert [b.port for b in with_tcp_ports(scenario, 65535).buses if b.transport == "tcp"] == [65535]
    with pytest.raises(SystemExit, match=r"need ports 65536 \.\.\. 65536, within 1 \.\.\. 65535"):
        with_tcp_ports(scenario, 65536)
    with pytest.raises(SystemExit, match="has no Modbus TCP bus"):
        with_tcp_ports(load_builtin("demo"), 6000)


def test_printing_needs_fixed_tcp_ports(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SCENARIO)
    done = subprocess.run([SITEWATCH, "simulate", "--scenario", str(tmp_path / "s.toml"), "--print-gateway-config"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "bus 'crane' gets a free TCP port at each start: fix it with --tcp-port N" in done.stderr


async def test_the_printed_configuration_passes_config_check_and_polls_the_simulated_site(tmp_path: Path) -> None:
    scenario_file = tmp_path / "s.toml"
    scenario_file.write_text(SCENARIO)
    port = free_port()
    common = [SITEWATCH, "simulate", "--scenario", str(scenario_file), "--bus-dir", str(tmp_path / "buses"),
              "--tcp-port", str(port)]
    printed = subprocess.run([*common, "--print-gateway-config"], capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0, printed.stderr
    written = tmp_path / "gateway.toml"
    simulator = subprocess.Popen([*common, "--print-gateway-config", str(written), "--duration", "120"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not written.exists():
            assert simulator.poll() is None, simulator.communicate()
            assert time.monotonic() < deadline, "the simulator wrote no gateway configuration"
            await asyncio.sleep(0.05)
        # The same file whether printed before the start or written by the running simulator: ports are fixed.
        assert written.read_text() == printed.stdout
        assert f"port = {port}" in printed.stdout
        check = subprocess.run([SITEWATCH, "config", "check", str(written)], capture_output=True, text=True,
                               timeout=120)
        assert check.returncode == 0, check.stderr
        assert "warning" not in check.stderr, check.stderr
        config = load_config(written)
        gateway = Gateway(config)
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.run(stop))
        try:
            deadline = time.monotonic() + 60
            while True:
                counts = gateway.store_counts()
                if counts.get("dust-gate", 0) > 0 and counts.get("wind-top", 0) > 0:
                    break
                assert not task.done(), task
                assert time.monotonic() < deadline, f"readings stored per node: {counts}"
                await asyncio.sleep(0.2)
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)
    finally:
        simulator.terminate()
        simulator.communicate(timeout=60)
    store = SqliteStore(config.store_path)
    try:
        good = store.query("SELECT DISTINCT node FROM readings WHERE quality = 'N' ORDER BY node")
    finally:
        store.close()
    assert good == [("dust-gate",), ("wind-top",)]


def test_a_scenario_file_port_is_kept_without_tcp_port(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SCENARIO.replace('transport = "tcp"', 'transport = "tcp"\nport = 5999'))
    assert with_tcp_ports(load_scenario(tmp_path / "s.toml"), 0).buses[1].port == 5999


MIXED = """
name = "mixed"
seed = 5
duration = "1h"
start = 2026-05-04T09:00:00+08:00

[[buses]]
name = "bus0"
baud = 19200
parity = "E"
[[buses.nodes]]
kind = "dust"
unit_id = 1
[[buses.nodes]]
profile = "calypso-ulp-ultrasonic"
unit_id = 5
[[buses.nodes]]
profile = "generic-485-noise"
unit_id = 6
"""


def test_vendor_devices_and_the_line_settings_are_in_the_configuration(tmp_path: Path) -> None:
    scenario = loads_scenario(MIXED, "mixed.toml")
    text = gateway_config_text(scenario, {"bus0": "/tmp/sim/bus0"}, tmp_path)
    (bus,) = parse_config(tomllib.loads(text), "sim.toml").buses
    assert (bus.baud, bus.parity) == (19200, "E")
    assert [(n.unit_id, n.kind, n.profile.name if n.profile else "") for n in bus.nodes] == [
        (1, "dust", ""), (5, "wind", "calypso-ulp-ultrasonic"), (6, "noise", "generic-485-noise")]
