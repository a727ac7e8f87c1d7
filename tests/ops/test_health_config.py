"""The [health] section: its defaults, and values it refuses with an error naming the key."""

from __future__ import annotations

import tomllib

import pytest

from gateway.ops.config import ConfigError, parse_config

BUS = """
[[bus]]
name = "bus0"
port = "/dev/null"
[[bus.node]]
kind = "dust"
unit_id = 1
"""


def parse(text: str) -> object:
    return parse_config(tomllib.loads(text + BUS), "site.toml")


def test_health_reports_are_on_every_minute_by_default() -> None:
    config = parse_config(tomllib.loads(BUS), "site.toml")
    assert (config.health.enabled, config.health.interval_s) == (True, 60.0)
    assert parse("[health]\ninterval_s = 15\nenabled = false").health.interval_s == 15.0  # type: ignore[attr-defined]


@pytest.mark.parametrize("table, message", [
    ("interval_s = 0", "site.toml: health.interval_s: 0.0 s is outside 0.5 .. 86400 s"),
    ("interval_s = -5.0", "site.toml: health.interval_s: -5.0 s is outside 0.5 .. 86400 s"),
    ("interval_s = 1e9", "site.toml: health.interval_s: 1000000000.0 s is outside 0.5 .. 86400 s"),
    ("interval_s = nan", "site.toml: health.interval_s: nan s is outside 0.5 .. 86400 s"),
    ('interval_s = "60"', "site.toml: health.interval_s"),
    ("enabled = 1", "site.toml: health.enabled"),
    ("interval = 60", "site.toml: health"),
])
def test_a_bad_health_setting_is_refused_naming_the_key(table: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse("[health]\n" + table)
    assert str(error.value).startswith(message), str(error.value)
