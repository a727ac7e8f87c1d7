"""What the README tells a newcomer must be true: its configuration parses and talks to a node as shipped."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from firmware import regmap
from gateway.ops.config import parse_config

README = Path(__file__).resolve().parents[1] / "README.md"
PARITY_OF_CODE = {0: "N", 1: "E", 2: "O"}
BAUD_OF_CODE = {0: 9600, 1: 19200, 2: 38400, 3: 57600, 4: 115200}


def toml_blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_minimal_configuration_parses_and_matches_the_line_settings_nodes_ship_with() -> None:
    blocks = toml_blocks()
    assert blocks, "README shows no configuration"
    config = parse_config(tomllib.loads(blocks[0]), "README.md")
    default = {row[0]: row[7] for row in regmap.COMMON_HOLDING}
    for bus in config.buses:
        assert bus.parity == PARITY_OF_CODE[default["parity"]], "a gateway at this parity never hears a new node"
        assert bus.baud == BAUD_OF_CODE[default["baud_code"]]
