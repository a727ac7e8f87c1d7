"""The [[bus]] / [[bus.node]] part of the gateway configuration: values, and errors that name the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gateway.acquire.poller import BusConfig, NodeConfig
from gateway.ops.config import ConfigError, parse_config


def buses(text: str) -> tuple[BusConfig, ...]:
    return parse_config(tomllib.loads(text), "site.toml").buses


def error(text: str) -> str:
    with pytest.raises(ConfigError) as raised:
        buses(text)
    return str(raised.value)


RTU = """
[[bus]]
name = "bus0"
port = "/dev/ttyUSB0"
baud = 19200
parity = "E"
timeout = 0.2
max_backoff = 30
local_echo = true
[[bus.node]]
kind = "dust"
unit_id = 1
interval = 0.5
timeout = 0.1
[[bus.node]]
kind = "wind"
unit_id = 2
"""


def test_serial_bus_with_every_key() -> None:
    (bus,) = buses(RTU)
    assert bus == BusConfig(
        "bus0", "/dev/ttyUSB0",
        (NodeConfig("dust-1", "dust", 1, 0.5, 0.1), NodeConfig("wind-2", "wind", 2, 1.0, None)),
        baud=19200, parity="E", stopbits=1, timeout=0.2, transport="rtu", max_backoff=30.0, local_echo=True,
    )
    assert bus.address == "/dev/ttyUSB0"


def test_tcp_bus() -> None:
    (bus,) = buses('[[bus]]\ntransport = "tcp"\nhost = "10.0.0.9"\n[[bus.node]]\nkind = "tilt"\nunit_id = 5\n')
    assert (bus.transport, bus.host, bus.tcp_port, bus.address) == ("tcp", "10.0.0.9", 502, "10.0.0.9:502")
    (bus,) = buses('[[bus]]\ntransport = "tcp"\nhost = "gw"\nport = 1502\n[[bus.node]]\nkind = "tilt"\nunit_id = 5\n')
    assert bus.tcp_port == 1502


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('[[bus]]\ntransport = "udp"\nport = "/dev/x"', "bus[0].transport", "udp"),
        ('[[bus]]\ntransport = "tcp"\nhost = "gw"\nbaud = 9600', "bus[0].baud", 'transport = "rtu" only'),
        ('[[bus]]\nport = "/dev/x"\nhost = "gw"', "bus[0].host", 'transport = "tcp" only'),
        ('[[bus]]\ntransport = "tcp"\nport = 502', "bus[0].host", "missing"),
        ('[[bus]]\ntransport = "tcp"\nhost = "gw"\nport = "502"', "bus[0].port", "integer"),
        ('[[bus]]\ntransport = "tcp"\nhost = "gw"\nport = 70000', "bus[0].port", "70000"),
        ('[[bus]]\nport = "/dev/x"\nmax_backoff = 0.5', "bus[0].max_backoff", "1 .. 3600"),
        ('[[bus]]\nport = "/dev/x"\nlocal_echo = 1', "bus[0].local_echo", "expected true or false"),
        ('[[bus]]\nport = "/dev/x"\n[[bus.node]]\nkind = "dust"\nunit_id = 1\ntimeout = 20', "bus[0].node[0].timeout",
         "0.01 .. 10"),
        ('[[bus]]\nport = "/dev/x"\n[[bus.node]]\nkind = "dust"\nunit_id = 1\nretries = 3', "bus[0].node[0].retries",
         "unknown key"),
    ],
)
def test_errors_name_the_key(text: str, key: str, words: str) -> None:
    message = error(text + '\n[[bus.node]]\nkind = "wind"\nunit_id = 9\n')
    assert message.startswith(f"site.toml: {key}: "), message
    assert words in message, message


def test_one_owner_per_port_even_through_a_symlink(tmp_path: Path) -> None:
    device = tmp_path / "ttyUSB0"
    device.touch()
    alias = tmp_path / "by-id-adapter"
    alias.symlink_to(device)
    node = '[[bus.node]]\nkind = "dust"\nunit_id = 1\n'
    message = error(f'[[bus]]\nport = "{device}"\n{node}[[bus]]\nname = "b"\nport = "{alias}"\n{node}')
    assert "bus[1].port" in message and "bus0" in message and "one owner per port" in message
    tcp = '[[bus]]\ntransport = "tcp"\nhost = "GW"\n' + node
    message = error(tcp + tcp.replace("GW", "gw"))
    assert "bus[1].host" in message and "one owner per port" in message
