"""Gateway configuration: one TOML file, validated with errors that name the key.

Example (see docs/configuration.md for every key):

    [store]
    path = "/var/lib/sitewatch/readings.sqlite3"

    [[bus]]
    name = "bus0"
    port = "/dev/ttyUSB0"
    baud = 9600
    parity = "E"

    [[bus.node]]
    name = "dust-1"
    kind = "dust"
    unit_id = 1
    interval = 1.0

    [[bus]]                   # a Modbus TCP node or TCP-to-RTU gateway
    name = "tcp0"
    transport = "tcp"
    host = "192.168.1.50"
    port = 502

Per bus also: timeout (upper bound of the adaptive reply timeout, s),
max_backoff (longest pause between tries of a failing node, s), and on
serial buses local_echo (the adapter hands back what it sends). Per node
also: timeout (its own upper bound).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.acquire.decode import KIND_BY_NAME
from gateway.acquire.poller import BusConfig, NodeConfig

BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
COMMON_BUS_KEYS = {"name", "transport", "port", "timeout", "max_backoff", "node"}
# Keys that only mean something on one transport ("port" is on both: a device or a TCP port).
TRANSPORT_KEYS = {"rtu": {"baud", "parity", "stopbits", "local_echo"}, "tcp": {"host"}}
DEFAULT_STORE = "/var/lib/sitewatch/readings.sqlite3"


class ConfigError(ValueError):
    """A configuration problem, naming the file and the key."""


@dataclass(frozen=True)
class GatewayConfig:
    buses: tuple[BusConfig, ...]
    store_path: Path


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: {problem}")

    def get(
        self, table: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...], default: Any = ...
    ) -> Any:
        path = f"{where}.{key}" if where else key
        if key not in table:
            if default is ...:
                raise self.fail(path, "missing (required)")
            return default
        value = table[key]
        # bool is an int in Python; a `true` where a number belongs is a mistake.
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(path, f"expected {_names(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.fail(path, f"expected {_names(kind)}, got {type(value).__name__} {value!r}")
        return value

    def unknown(self, table: dict[str, Any], allowed: set[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                path = f"{where}.{key}" if where else key
                raise self.fail(path, f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({"str": "a string", "int": "an integer", "float": "a number", "list": "a list",
                        "dict": "a table", "bool": "true or false"}.get(k.__name__, k.__name__) for k in kinds)


def parse_config(data: dict[str, Any], source: str = "<config>") -> GatewayConfig:
    c = _Checker(source)
    c.unknown(data, {"store", "bus"}, "")
    store = c.get(data, "store", "", dict, {})
    c.unknown(store, {"path"}, "store")
    store_path = Path(c.get(store, "path", "store", str, DEFAULT_STORE))
    buses_raw = c.get(data, "bus", "", list, [])
    if not buses_raw:
        raise c.fail("bus", "no [[bus]] configured: the gateway needs at least one bus to poll")
    buses = []
    seen_nodes: set[str] = set()
    seen_ports: dict[str, str] = {}
    for i, raw in enumerate(buses_raw):
        where = f"bus[{i}]"
        if not isinstance(raw, dict):
            raise c.fail(where, "expected a table ([[bus]])")
        transport = c.get(raw, "transport", where, str, "rtu")
        if transport not in TRANSPORT_KEYS:
            raise c.fail(f"{where}.transport", f"{transport!r} is not \"rtu\" (serial line) or \"tcp\" (Modbus TCP)")
        for key in raw:
            other = next((t for t, keys in TRANSPORT_KEYS.items() if t != transport and key in keys), None)
            if other is not None and key not in TRANSPORT_KEYS[transport]:
                raise c.fail(f"{where}.{key}", f"applies to transport = \"{other}\" only (this bus is {transport})")
        c.unknown(raw, COMMON_BUS_KEYS | TRANSPORT_KEYS[transport], where)
        name = c.get(raw, "name", where, str, f"bus{i}")
        timeout = float(c.get(raw, "timeout", where, (int, float), 0.5))
        if not 0.01 <= timeout <= 10:
            raise c.fail(f"{where}.timeout", f"{timeout} s is outside 0.01 .. 10 s")
        max_backoff = float(c.get(raw, "max_backoff", where, (int, float), 60.0))
        if not 1 <= max_backoff <= 3600:
            raise c.fail(f"{where}.max_backoff", f"{max_backoff} s is outside 1 .. 3600 s")
        if transport == "tcp":
            host = c.get(raw, "host", where, str)
            if not host:
                raise c.fail(f"{where}.host", "must not be empty")
            tcp_port = c.get(raw, "port", where, int, 502)
            if not 1 <= tcp_port <= 65535:
                raise c.fail(f"{where}.port", f"{tcp_port} is outside 1 .. 65535")
            owner_key, shown = f"tcp:{host.lower()}:{tcp_port}", f"{host}:{tcp_port}"
            port, baud, parity, stopbits, local_echo = "", 9600, "N", 1, False
        else:
            port = c.get(raw, "port", where, str)
            # /dev/serial/by-id/... and /dev/ttyUSB0 may be the same adapter.
            owner_key, shown, host, tcp_port = os.path.realpath(port), port, "", 502
            baud = c.get(raw, "baud", where, int, 9600)
            if baud not in BAUD_RATES:
                raise c.fail(f"{where}.baud", f"{baud} is not a standard rate ({', '.join(map(str, BAUD_RATES))})")
            parity = c.get(raw, "parity", where, str, "N").upper()
            if parity not in ("N", "E", "O"):
                raise c.fail(f"{where}.parity", f"{parity!r} is not N, E or O")
            stopbits = c.get(raw, "stopbits", where, int, 1)
            if stopbits not in (1, 2):
                raise c.fail(f"{where}.stopbits", "must be 1 or 2")
            local_echo = c.get(raw, "local_echo", where, bool, False)
        if owner_key in seen_ports:
            raise c.fail(
                f"{where}.{'host' if transport == 'tcp' else 'port'}",
                f"{shown} is already used by bus {seen_ports[owner_key]} (one owner per port)",
            )
        seen_ports[owner_key] = name
        nodes = []
        units: set[int] = set()
        for j, node_raw in enumerate(c.get(raw, "node", where, list, [])):
            nwhere = f"{where}.node[{j}]"
            if not isinstance(node_raw, dict):
                raise c.fail(nwhere, "expected a table ([[bus.node]])")
            c.unknown(node_raw, {"name", "kind", "unit_id", "interval", "timeout"}, nwhere)
            kind = c.get(node_raw, "kind", nwhere, str)
            if kind not in KIND_BY_NAME:
                raise c.fail(f"{nwhere}.kind", f"{kind!r} is not one of {', '.join(sorted(KIND_BY_NAME))}")
            unit_id = c.get(node_raw, "unit_id", nwhere, int)
            if not 1 <= unit_id <= 247:
                raise c.fail(f"{nwhere}.unit_id", f"{unit_id} is outside 1 .. 247")
            if unit_id in units:
                raise c.fail(f"{nwhere}.unit_id", f"unit {unit_id} appears twice on bus {name}")
            units.add(unit_id)
            node_name = c.get(node_raw, "name", nwhere, str, f"{kind}-{unit_id}")
            if node_name in seen_nodes:
                raise c.fail(f"{nwhere}.name", f"node name {node_name!r} is used twice")
            seen_nodes.add(node_name)
            interval = float(c.get(node_raw, "interval", nwhere, (int, float), 1.0))
            if not 0.1 <= interval <= 3600:
                raise c.fail(f"{nwhere}.interval", f"{interval} s is outside 0.1 .. 3600 s")
            node_timeout = c.get(node_raw, "timeout", nwhere, (int, float), None)
            if node_timeout is not None and not 0.01 <= node_timeout <= 10:
                raise c.fail(f"{nwhere}.timeout", f"{node_timeout} s is outside 0.01 .. 10 s")
            nodes.append(
                NodeConfig(node_name, kind, unit_id, interval, None if node_timeout is None else float(node_timeout))
            )
        if not nodes:
            raise c.fail(f"{where}.node", "no [[bus.node]] on this bus")
        buses.append(
            BusConfig(
                name, port, tuple(nodes), baud, parity, stopbits, timeout,
                transport=transport, host=host, tcp_port=tcp_port, max_backoff=max_backoff, local_echo=local_echo,
            )
        )
    return GatewayConfig(tuple(buses), store_path)


def load_config(path: Path) -> GatewayConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from error
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    return parse_config(data, str(path))
