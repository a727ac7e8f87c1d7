"""[[bus.device]]: vendor devices in the gateway's configuration, with errors that name the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gateway.ops.config import ConfigError, load_config, parse_config

BUS = '[[bus]]\nport = "/dev/ttyUSB0"\nbaud = 9600\nparity = "N"\n[[bus.node]]\nkind = "dust"\nunit_id = 1\n'


def parse(text: str) -> list[tuple[str, str, int, str | None]]:
    config = parse_config(tomllib.loads(text), "site.toml")
    return [(n.name, n.kind, n.unit_id, n.profile.name if n.profile else None) for n in config.buses[0].nodes]


def test_devices_sit_beside_nodes() -> None:
    text = BUS + (
        '[[bus.device]]\nprofile = "lambrecht-14524-wind-speed"\nunit_id = 2\n'
        '[[bus.device]]\nprofile = "generic-485-noise"\nunit_id = 3\nname = "noise-gate"\nbaud = 9600\n'
    )
    assert parse(text) == [("dust-1", "dust", 1, None), ("wind-2", "wind", 2, "lambrecht-14524-wind-speed"),
                           ("noise-gate", "noise", 3, "generic-485-noise")]
    config = parse_config(tomllib.loads(text), "site.toml")
    device = config.buses[0].nodes[1]
    assert not device.history and device.interval == 1.0


def test_a_bus_of_devices_only() -> None:
    text = '[[bus]]\nport = "/dev/ttyUSB1"\n[[bus.device]]\nprofile = "lambrecht-14523-wind-direction"\nunit_id = 4\n'
    assert parse(text) == [("wind-4", "wind", 4, "lambrecht-14523-wind-direction")]


@pytest.mark.parametrize(("device", "message"), [
    ('profile = "no-such"\nunit_id = 2', r"bus\[0\]\.device\[0\]\.profile: no profile 'no-such' \(known: "),
    ('profile = "generic-485-noise"\nunit_id = 1', r"bus\[0\]\.device\[0\]\.unit_id: unit 1 appears twice"),
    ('profile = "generic-485-noise"\nunit_id = 2\nname = "dust-1"', r"device\[0\]\.name: node name 'dust-1'"),
    ('profile = "generic-485-noise"\nunit_id = 2\ncolour = 1', r"device\[0\]\.colour: unknown key"),
    # The profile says 4800 baud, the bus runs at 9600: refused until the installer says the device was set.
    ('profile = "generic-485-noise"\nunit_id = 2', r"device\[0\]\.baud: the device runs at 4800 \(profile "
                                                   r"generic-485-noise's default\), bus bus0 at 9600"),
    ('profile = "deltaohm-pmsense"\nunit_id = 2\nbaud = 9600',
     r"device\[0\]\.parity: the device runs at E \(profile deltaohm-pmsense's default\), bus bus0 at N"),
    ('profile = "lambrecht-14524-wind-speed"\nunit_id = 2\nparity = "E"', r"device\[0\]\.parity: the device runs "
                                                                           r"at E, bus bus0 at N"),
])
def test_bad_devices_are_named(device: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(BUS + "[[bus.device]]\n" + device + "\n")


def test_profile_by_path_relative_to_the_config_and_its_errors(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "mine.toml").write_text(
        '[device]\nkind = "tilt"\ndescription = "d"\nsource = "s"\n'
        '[[register]]\nquantity = "slope_x"\naddress = 0\nunit = "deg"\n'
    )
    site = tmp_path / "site.toml"
    site.write_text(BUS + '[[bus.device]]\nprofile = "profiles/mine.toml"\nunit_id = 5\n')
    with pytest.raises(ConfigError, match=r"site\.toml: bus\[0\]\.device\[0\]\.profile: .*mine\.toml: "
                                          r"register\[0\]\.unit: slope_x is in 'permille', not 'deg'"):
        load_config(site)
    (tmp_path / "profiles" / "mine.toml").write_text(
        '[device]\nkind = "tilt"\ndescription = "d"\nsource = "s"\n'
        '[[register]]\nquantity = "slope_x"\naddress = 0\ntype = "s16"\nscale = 0.01\nunit = "permille"\n'
    )
    node = load_config(site).buses[0].nodes[1]
    assert node.profile is not None and node.profile.name == "mine" and node.kind == "tilt"


def test_tcp_bus_takes_no_line_settings() -> None:
    text = ('[[bus]]\ntransport = "tcp"\nhost = "127.0.0.1"\n[[bus.device]]\nprofile = "generic-485-noise"\n'
            'unit_id = 2\nbaud = 4800\n')
    with pytest.raises(ConfigError, match=r"device\[0\]\.baud: applies to transport = \"rtu\" only"):
        parse(text)
    assert parse(text.replace("baud = 4800\n", "")) == [("noise-2", "noise", 2, "generic-485-noise")]


def test_spray_cannot_drive_a_vendor_device() -> None:
    # A vendor dust monitor is a dust node for the pipeline, but it has no spray coil the gateway may write.
    text = ('[[bus]]\nport = "/dev/ttyUSB0"\nbaud = 19200\nparity = "E"\n'
            '[[bus.device]]\nprofile = "deltaohm-pmsense"\nunit_id = 2\n[spray.mode]\n"dust-2" = "on"\n')
    with pytest.raises(ConfigError, match=r"spray\.mode\.dust-2: 'dust-2' is not a configured node with a"):
        parse(text)
