"""docs/operator-guide.md covers what issue 11 asks of it, and names only configuration keys that exist.

The guide is what an operator on site follows; a key renamed in the parser but not in the guide
sends them to an `unknown key` error. Its TOML examples and the `[section] key` it names in the
prose are checked against the keys the parser accepts (the same source as docs/configuration.md's test).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.ops.test_cmd_config import accepted_keys

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operator-guide.md"
TOML_BLOCK = re.compile(r"^```toml\n(.*?)^```", re.MULTILINE | re.DOTALL)
PROSE_KEY = re.compile(r"`\[([a-z_.]+)\] ([a-z_0-9]+)")


def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def headings() -> list[str]:
    return [line.lstrip("#").strip().lower() for line in guide().splitlines() if line.startswith("#")]


@pytest.mark.parametrize(
    "topic",
    ["install", "wiring the rs-485 adapter", "uplinks and credentials", "metrics", "disk budget", "time",
     "upgrading", "troubleshooting"],
)
def test_the_guide_has_a_section_on(topic: str) -> None:
    assert any(topic in heading for heading in headings()), f"no heading about {topic!r} in {GUIDE.name}"


def test_the_clock_section_explains_the_clock_settings() -> None:
    # Issue 11: "the operator's guide never mentions [clock]".
    time_section = guide().split("\n## Time\n", 1)[1].split("\n## ", 1)[0]
    assert "[clock]" in time_section and "require_sync" in time_section and "max_held" in time_section


def keys_used(table: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """(section, key) of every setting in a parsed example, sinks by their type, buses with their nodes."""
    used: list[tuple[str, str]] = []
    for name, value in table.items():
        section = f"{prefix}.{name}" if prefix else name
        if name in ("sink", "bus") and not prefix and isinstance(value, list):
            for entry in value:
                for key, item in entry.items():
                    if name == "bus" and key in ("node", "device"):
                        used += [(f"bus.{key}", k) for child in item for k in child]
                    elif name == "sink" and key != "type" and key not in accepted_keys()["sink"]:
                        used.append((f"sink.{entry.get('type')}", key))
                    else:
                        used.append((name, key))
        elif isinstance(value, dict) and not prefix:
            used += [(section, key) for key in value]
        else:
            used.append((prefix, name))
    return used


def test_every_toml_example_parses_and_uses_only_accepted_keys() -> None:
    accepted = accepted_keys()
    blocks = TOML_BLOCK.findall(guide())
    assert len(blocks) >= 5, "the guide's TOML examples were not found"
    unknown = [(s, k) for block in blocks for s, k in keys_used(tomllib.loads(block)) if k not in accepted.get(s, {})]
    assert unknown == [], f"{GUIDE.name} shows keys the parser does not accept: {unknown}"


def test_every_key_named_in_the_prose_exists() -> None:
    accepted = accepted_keys()
    named = PROSE_KEY.findall(guide())
    assert len(named) >= 10, "the guide's `[section] key` references were not found"
    unknown = sorted({(s, k) for s, k in named if k not in accepted.get(s, {})})
    assert unknown == [], f"{GUIDE.name} names keys the parser does not accept: {unknown}"
