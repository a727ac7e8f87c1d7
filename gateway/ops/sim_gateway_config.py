"""A gateway configuration that polls a simulated site (`sitewatch simulate --print-gateway-config`).

Pure text from the scenario and where its buses are served: a pty link
(its path) or a Modbus TCP port (``tcp://127.0.0.1:PORT``). The store and
queue go in ``state_dir`` so the file passes `sitewatch config check` as the
user who runs the simulator. With ``clock_file`` the gateway follows the
simulator's clock ([clock] simulated), which a --speed other than 1 needs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from simulator.scenario import Scenario


class SimConfigError(ValueError):
    pass


def _toml(value: str | Path) -> str:
    """A TOML basic string (JSON's escapes are a subset of TOML's)."""
    return json.dumps(str(value))


def tcp_endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) of "tcp://host:port"; None for a serial path."""
    if not address.startswith("tcp://"):
        return None
    parts = urlsplit(address)
    if parts.hostname is None or parts.port is None:
        raise SimConfigError(f"{address}: expected tcp://HOST:PORT")
    return parts.hostname, parts.port


def gateway_config_text(
    scenario: Scenario,
    addresses: Mapping[str, str],
    state_dir: Path,
    clock_file: Path | None = None,
    speed: float = 1.0,
) -> str:
    """The gateway TOML for `scenario`'s buses served at `addresses` (bus name -> path or tcp://host:port)."""
    lines = [
        f"# sitewatch gateway configuration for the simulated site {scenario.name!r}",
        "# (written by `sitewatch simulate --print-gateway-config`; keys: docs/configuration.md)",
        "",
        "[site]",
        f"name = {_toml('sim-' + scenario.name)}",
        "",
        "[store]",
        f"path = {_toml(state_dir / 'readings.sqlite3')}",
        "",
        "[queue]",
        f"path = {_toml(state_dir / 'queue.sqlite3')}",
        "",
        "[clock]",
        'require_sync = "never"  # a development machine need not run NTP',
    ]
    if clock_file is not None:
        lines.append(f"simulated = {_toml(clock_file)}  # the scenario's time, at the simulator's speed")
    elif speed != 1.0:
        raise SimConfigError(f"--speed {speed:g}: the gateway must follow the simulator's clock: add --clock-file")
    if scenario.kind_dirs:  # the scenario's kinds added as profiles: the gateway must know them too
        lines += ["", "[kinds]", f"dirs = [{', '.join(_toml(d) for d in scenario.kind_dirs)}]"]
    for bus in scenario.buses:
        if bus.name not in addresses:
            raise SimConfigError(f"bus {bus.name!r} is not served (no address for it)")
        address = addresses[bus.name]
        endpoint = tcp_endpoint(address)
        lines += ["", "[[bus]]", f"name = {_toml(bus.name)}"]
        if endpoint is not None:
            lines += ['transport = "tcp"', f"host = {_toml(endpoint[0])}", f"port = {endpoint[1]}"]
        else:
            lines += [f"port = {_toml(address)}", f"baud = {bus.baud}", f"parity = {_toml(bus.parity)}"]
        for node in bus.nodes:
            if node.profile:
                # A vendor device: polled through its profile. The simulated device runs at the bus's settings,
                # whatever the profile's factory default (the gateway refuses a device at other settings).
                lines += ["", "[[bus.device]]", f"name = {_toml(node.name)}", f"profile = {_toml(node.profile)}",
                          f"unit_id = {node.unit_id}"]
                if endpoint is None:
                    lines += [f"baud = {bus.baud}", f"parity = {_toml(bus.parity)}"]
                continue
            lines += ["", "[[bus.node]]", f"name = {_toml(node.name)}", f"kind = {_toml(node.kind)}",
                      f"unit_id = {node.unit_id}"]
    return "\n".join(lines) + "\n"
