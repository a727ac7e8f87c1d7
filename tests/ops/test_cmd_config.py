"""`sitewatch config check` / `config defaults`, the configuration's errors, and docs/configuration.md."""

from __future__ import annotations

import dataclasses
import inspect
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gateway.acquire.poller import BusConfig, NodeConfig
from gateway.deliver.sinks import SINKS, load_builtin_sinks
from gateway.ops.config import (
    COMMON_BUS_KEYS,
    DEVICE_KEYS,
    NODE_KEYS,
    SECTIONS,
    TRANSPORT_KEYS,
    ConfigError,
    GatewayConfig,
    default_config_text,
    parse_config,
    sink_parameters,
    stage_parameters,
    toml_value,
)
from gateway.pipeline import StageSpec
from gateway.process import AGGREGATORS, ALARMS, PROCESSORS
from gateway.process.limits import SiteLimits

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
SITEWATCH = str(Path(sys.executable).with_name("sitewatch"))

load_builtin_sinks()

BUS = (
    '[[bus]]\nport = "/dev/ttyUSB0"\n'
    '[[bus.node]]\nkind = "dust"\nunit_id = 1\n[[bus.node]]\nkind = "wind"\nunit_id = 2\n'
)


def config(text: str) -> GatewayConfig:
    return parse_config(tomllib.loads(text + "\n" + BUS), "site.toml")


def error(text: str) -> str:
    with pytest.raises(ConfigError) as raised:
        config(text)
    return str(raised.value)


# -- the keys the parser accepts, with their defaults ------------------------------------------------


def accepted_keys() -> dict[str, dict[str, str | None]]:
    """section -> key -> default as the documentation must show it (None: not compared)."""
    out: dict[str, dict[str, str | None]] = {}
    for name, cls in SECTIONS.items():
        out[name] = {
            f.name: None if "stages" in f.metadata else f"`{toml_value(getattr(cls(), f.name))}`"
            for f in dataclasses.fields(cls)
        }
    limits = SiteLimits()
    for table in dataclasses.fields(limits):
        sub = getattr(limits, table.name)
        out[f"limits.{table.name}"] = {
            f.name: "see below" if hasattr(getattr(sub, f.name), "items") else f"`{toml_value(getattr(sub, f.name))}`"
            for f in dataclasses.fields(sub)
        }
    for what, registry in (("processor", PROCESSORS), ("aggregator", AGGREGATORS), ("alarm", ALARMS)):
        for type_name in registry.names():
            out[f"processing.{what}.{type_name}"] = {
                name: _param_default(p) for name, p in stage_parameters(what, type_name).items()
            }
    out["sink"] = {"type": "required", "name": None}
    for type_name in SINKS.names():
        out[f"sink.{type_name}"] = {name: _param_default(p) for name, p in sink_parameters(type_name).items()}
    out["bus"] = dict.fromkeys(COMMON_BUS_KEYS | set().union(*TRANSPORT_KEYS.values()))
    out["bus.node"] = dict.fromkeys(NODE_KEYS)
    out["bus.device"] = dict.fromkeys(DEVICE_KEYS)
    return out


def _param_default(parameter: inspect.Parameter) -> str:
    if parameter.default is inspect.Parameter.empty:
        return "required"
    if parameter.default is None:
        return "not set"
    return f"`{toml_value(parameter.default)}`"


HEADING = re.compile(r"^#{2,4} (.*)$")
SECTION = re.compile(r"^`\[\[?([A-Za-z_.]+)\]\]?`$")
NAMED = re.compile(r"^(processor|aggregator|alarm|sink) `([a-z_0-9]+)`$")
ROW = re.compile(r"^\| `([a-z_0-9]+)` \| ([^|]*) \|")


def documented_keys() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    section = ""
    text = DOC.read_text(encoding="utf-8").split("## Every default at once")[0]
    for line in text.splitlines():
        heading = HEADING.match(line)
        if heading:
            title = heading.group(1).strip()
            plain, named = SECTION.match(title), NAMED.match(title)
            if plain:
                section = plain.group(1)
            elif named:
                what, name = named.groups()
                section = f"sink.{name}" if what == "sink" else f"processing.{what}.{name}"
            else:
                section = ""
            continue
        row = ROW.match(line)
        if row and section:
            out.setdefault(section, {})[row.group(1)] = row.group(2).strip()
    return out


def test_every_accepted_key_is_documented_with_its_default_and_nothing_else_is() -> None:
    accepted, documented = accepted_keys(), documented_keys()
    missing = sorted(f"{s}.{k}" for s, keys in accepted.items() for k in keys if k not in documented.get(s, {}))
    extra = sorted(f"{s}.{k}" for s, keys in documented.items() for k in keys if k not in accepted.get(s, {}))
    assert missing == [], f"keys the parser accepts but docs/configuration.md does not list: {missing}"
    assert extra == [], f"keys docs/configuration.md lists but the parser does not accept: {extra}"
    wrong = [
        (f"{s}.{k}", documented[s][k], default)
        for s, keys in accepted.items()
        for k, default in keys.items()
        if default is not None and documented[s][k] != default
    ]
    assert wrong == [], f"documented defaults that differ from the code (key, doc, code): {wrong}"


def test_the_documented_defaults_are_what_config_defaults_prints() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("## Every default at once", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    assert block == default_config_text()


def _resolved(what: str, specs: tuple[StageSpec, ...]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for spec in specs:
        params = {n: p.default for n, p in stage_parameters(what, spec.type).items()}
        params.update({k: tuple(v) if isinstance(v, list) else v for k, v in spec.params.items()})
        out.append((spec.type, params))
    return out


def test_config_defaults_is_a_valid_file_that_means_the_same_as_an_empty_one() -> None:
    printed = parse_config(tomllib.loads(default_config_text()), "defaults.toml")
    minimal = parse_config(tomllib.loads('[[bus]]\nport = "/dev/ttyUSB0"\n[[bus.node]]\nkind = "dust"\nunit_id = 1\n'))
    for name in ("site", "queue", "clock", "spray"):
        assert getattr(printed, name) == getattr(minimal, name), name
    assert (printed.store_path, printed.store_enabled, printed.queue_path) == (
        minimal.store_path, minimal.store_enabled, minimal.queue_path
    )
    for what in ("processor", "aggregator", "alarm"):
        assert _resolved(what, getattr(printed.processing, what)) == _resolved(what, getattr(minimal.processing, what))
    assert (printed.processing.late_s, printed.processing.tick_s) == (minimal.processing.late_s,
                                                                      minimal.processing.tick_s)
    assert printed.limits_resolver().site == SiteLimits() == minimal.limits_resolver().site
    # The example bus shows the acquire stage's own defaults.
    assert printed.buses == (BusConfig("bus0", "/dev/ttyUSB0", (NodeConfig("dust-1", "dust", 1),)),)
    assert printed.buses == minimal.buses


# -- errors name the key --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[limits.wind]\ncrane_gus = 8.0", "limits.wind.crane_gus", "unknown setting"),
        ("[limits.dust]\npm10_1h_limit = \"high\"", "limits.dust.pm10_1h_limit", "expected float"),
        ('[node_limits."dust-9".dust]\npm10_1h_limit = 100.0', "node_limits.dust-9", "no node 'dust-9'"),
        ('[node_limits."dust-1".dust]\npm10_1h_limitt = 100.0', "node_limits.dust-1.dust.pm10_1h_limitt",
         "unknown setting"),
        ("[queue]\nretention_days = -1", "queue.retention_days", "outside 0 .. 3650 days"),
        ("[queue]\nbatch = 2.5", "queue.batch", "expected an integer"),
        ("[queue]\nsize = 3", "queue.size", "unknown key"),
        ('[queue]\npath = "/var/lib/sitewatch/readings.sqlite3"', "queue.path", "the store's file"),
        ('[clock]\nrequire_sync = "sometimes"', "clock.require_sync", "'auto', 'always', 'never'"),
        ("[store]\nenabled = 1", "store.enabled", "true or false"),
        ("[processing]\ntick_s = 0", "processing.tick_s", "outside"),
        ('[[processing.processor]]\ntype = "range"\n[[processing.processor]]\ntype = "hampel"\nflag = "Q"',
         "processing.processor[1] (hampel)", "not an HJ 212 flag"),
        ('[[processing.processor]]\ntype = "ranger"', "processing.processor[0] (ranger)", "unknown processor"),
        ('[[processing.aggregator]]\ntype = "pm"\nwindow = ["1h"]', "processing.aggregator[0] (pm)",
         "unexpected keyword argument 'window'"),
        ('[[processing.aggregator]]\ntype = "pm"\nwindows = ["7min"]', "processing.aggregator[0] (pm)",
         "must divide a day"),
        ('[[processing.alarm]]\ntype = "crane_wind"\nnodes = ["wind-7"]', "processing.alarm[0].nodes",
         "no node 'wind-7'"),
        ("[[processing.processor]]\nflag = \"D\"", "processing.processor[0].type", "missing"),
        ('[spray]\ncoils = { "wind-2" = "dust-1" }', "spray.coils.wind-2", "not a configured dust node"),
        ('[spray]\ncoils = { "dust-1" = "wind-2" }', "spray.coils.dust-1", "with a spray_relay coil"),
        ('[spray]\nmode = { "dust-1" = "sometimes" }', "spray.mode.dust-1", '"auto", "on", "off"'),
        ("[spray]\nmode = { \"dust-1\" = 1 }", "spray.mode.dust-1", "expected a string"),
        ('[[sink]]\ntype = "influx"', "sink[0].type", "unknown sink type 'influx'"),
        ('[[sink]]\ntype = "jsonl"', "sink[0]", "missing a required argument: 'path'"),
        ('[[sink]]\ntype = "jsonl"\npath = "/x"\npth = "/y"', "sink[0].pth", "unknown key"),
        ('[[sink]]\ntype = "jsonl"\npath = 5', "sink[0].path", "expected a string"),
        ('[[sink]]\ntype = "sqlite"\npath = "/x.sqlite3"', "sink[0].name", "used twice"),
        ("[sites]\nname = \"x\"", "sites", "unknown key"),
    ],
)
def test_errors_name_the_key(text: str, key: str, words: str) -> None:
    message = error(text)
    assert message.startswith(f"site.toml: {key}: "), message
    assert words in message, message


def test_a_full_configuration_is_understood() -> None:
    c = config(
        '[site]\nname = "Tower 3"\n[store]\npath = "/data/s.sqlite3"\n[queue]\nretention_days = 2\n'
        '[processing]\nalarm = []\n[[processing.aggregator]]\ntype = "pm"\nwindows = ["1min"]\n'
        '[spray]\nchannel = "pm10_1min_mean"\nmode = { "dust-1" = "off" }\n'
        '[limits.dust]\npm10_1h_limit = 120\n[node_limits."wind-2".wind]\ncrane_gust = 7.5\n'
        '[[sink]]\ntype = "jsonl"\nname = "usb"\npath = "/media/usb/records.jsonl"\n'
    )
    assert c.site.name == "Tower 3" and c.queue.retention_days == 2.0
    assert c.queue_path == Path("/data/s-queue.sqlite3")
    assert [s.name for s in c.all_sinks()] == ["sqlite", "usb"]
    assert c.processing.alarm == () and [s.type for s in c.processing.aggregator] == ["pm"]
    assert [s.type for s in c.processing.processor] == ["range", "hampel", "stuck", "humidity"]
    resolver = c.limits_resolver()
    assert resolver.for_node("dust-1").dust.pm10_1h_limit == 120.0
    assert resolver.for_node("wind-2").wind.crane_gust == 7.5 and resolver.site.wind.crane_gust == 9.0
    pipeline = c.build_pipeline()
    assert pipeline.spray is not None and pipeline.spray.channel == "pm10_1min_mean"
    assert pipeline.alarms is not None and pipeline.alarms.definitions == []


# -- the command line -------------------------------------------------------------------------------------


def test_config_check_and_defaults_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    proc = subprocess.run([SITEWATCH, "config", "defaults"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == default_config_text()
    path.write_text(proc.stdout)
    proc = subprocess.run([SITEWATCH, "config", "check", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "ok (1 bus(es), 1 node(s)" in proc.stdout and "sinks: sqlite" in proc.stdout
    path.write_text(default_config_text().replace("pm10_1h_limit = 150.0", "pm10_1h_limit = -3.0"))
    proc = subprocess.run([SITEWATCH, "config", "check", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: {path}: limits.dust: ") and "must be positive" in proc.stderr
