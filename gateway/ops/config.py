"""Gateway configuration: one TOML file, validated with errors that name the key.

Every key, its default and its meaning: docs/configuration.md
(``sitewatch config defaults`` prints a complete file with every default;
``sitewatch config check FILE`` validates one). In short:

    [site]          name of the site
    [store]         the local SQLite store (the first sink, "sqlite")
    [queue]         the durable queue between the pipeline and the sinks
    [clock]         when the wall clock counts as valid
    [processing]    stage timing, and [[processing.processor]], [[processing.aggregator]],
                    [[processing.alarm]]: the stages by registered type, with their parameters
    [spray]         the spray / fog-cannon linkage
    [limits.*]      every threshold (defaults: gateway/process/limits.py)
    [node_limits."node".*]   the same, for one node
    [[sink]]        further sinks by registered type (gateway/deliver/sinks.py)
    [health]        the gateway's periodic health reports (to every sink through the queue)
    [[bus]]         a serial port (or Modbus TCP endpoint) and its [[bus.node]]s
                    and vendor [[bus.device]]s (profiles: docs/profiles.md)

The sections other than [[bus]], [limits], [node_limits] and the stage and
sink tables are frozen dataclasses below: their fields *are* the keys, with
their defaults, so the parser, ``config defaults`` and the documentation
test all read the same definitions. A field's ``check`` metadata returns
what is wrong with a value, or None.

[[bus]] example::

    [[bus]]
    name = "bus0"
    port = "/dev/ttyUSB0"
    baud = 9600
    parity = "N"

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

import dataclasses
import inspect
import json
import math
import os
import re
import tomllib
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from firmware import regmap
from gateway.acquire.decode import KIND_BY_NAME
from gateway.acquire.poller import BusConfig, NodeConfig
from gateway.acquire.timestamps import DEFAULT_MAX_HELD
from gateway.deliver.sinks import SINKS, SinkConfigError, load_builtin_sinks
from gateway.pipeline import (
    DEFAULT_LATE_S,
    DEFAULT_PROCESSORS,
    DEFAULT_SPRAY_CHANNEL,
    Pipeline,
    SprayPlan,
    StageError,
    StageSpec,
    build_pipeline,
    default_aggregators,
    default_alarms,
)
from gateway.process.limits import LimitsError, LimitsResolver, SiteLimits, override
from gateway.process.spray import SprayMode
from gateway.profiles.kinds import SYSTEM_KIND_DIR, KindProfileError, install_kinds
from gateway.profiles.vendor import ProfileError, VendorProfile, load_profile, load_vendor_profiles

BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
COMMON_BUS_KEYS = {"name", "transport", "port", "timeout", "max_backoff", "node", "device"}
# Keys that only mean something on one transport ("port" is on both: a device or a TCP port).
TRANSPORT_KEYS = {"rtu": {"baud", "parity", "stopbits", "local_echo"}, "tcp": {"host"}}
NODE_KEYS = {"name", "kind", "unit_id", "interval", "timeout", "rh_correction"}
# [[bus.device]]: a vendor Modbus device read through a profile (gateway/profiles, docs/profiles.md).
DEVICE_KEYS = {"name", "profile", "unit_id", "interval", "timeout", "baud", "parity"}
DEFAULT_STORE = "/var/lib/sitewatch/readings.sqlite3"
SPRAY_COIL = "spray_relay"


class ConfigError(ValueError):
    """A configuration problem, naming the file and the key."""


# ---------------------------------------------------------------------------------------
# Checks for the dataclass sections: value -> problem or None.
# ---------------------------------------------------------------------------------------

Check = Callable[[Any], "str | None"]


def _between(low: float, high: float, unit: str = "") -> Check:
    def check(value: Any) -> str | None:
        if not (math.isfinite(value) and low <= value <= high):
            return f"{value}{unit} is outside {low:g} .. {high:g}{unit}"
        return None

    return check


def _one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else f"{value!r} is not one of {', '.join(map(repr, choices))}"

    return check


def _not_empty(value: Any) -> str | None:
    return "must not be empty" if not value else None


def _key(default: Any, check: Check | None = None, doc: str = "") -> Any:
    return field(default=default, metadata={"check": check, "doc": doc})


def _table_key(doc: str = "") -> Any:
    return field(default_factory=lambda: MappingProxyType({}), metadata={"check": None, "doc": doc})


@dataclass(frozen=True)
class SiteConfig:
    name: str = _key("site", _not_empty, "the site's name, in logs and in records written by sinks that carry it")


# About 39 MB a day per node polled at 1 s (docs/operator-guide.md, "Disk budget"): 8 nodes, 9 GB.
DEFAULT_STORE_RETENTION_DAYS = 30.0


@dataclass(frozen=True)
class StoreConfig:
    path: str = _key(DEFAULT_STORE, _not_empty, "SQLite file of the local store")
    enabled: bool = _key(True, None, "false: no local store (the queue still keeps everything for the other sinks)")
    max_bytes: int = _key(0, _between(0, 1 << 50),
                          "disk quota of the store file (0: none): past it the oldest readings go first, then the "
                          "oldest aggregates; alarms, actuations, outages and gaps are never deleted")
    retention_days: float = _key(DEFAULT_STORE_RETENTION_DAYS, _between(0.0, 36500.0, " days"),
                                 "readings and aggregates older than this are deleted from the store (0: kept until "
                                 "max_bytes); alarms, actuations, outages and gaps are kept")
    prune_interval_s: float = _key(600.0, _between(1.0, 86400.0, " s"), "how often the store's retention runs")


@dataclass(frozen=True)
class QueueConfig:
    path: str = _key("", None, "SQLite file of the durable queue; empty: beside the store, <store name>-queue.sqlite3")
    retention_days: float = _key(7.0, _between(0.0, 3650.0, " days"),
                                 "records every sink has confirmed are pruned when older than this")
    prune_interval_s: float = _key(600.0, _between(1.0, 86400.0, " s"), "how often pruning runs")
    batch: int = _key(500, _between(1, 100_000), "records per delivery to a sink")
    deliver_interval_s: float = _key(1.0, _between(0.0, 3600.0, " s"),
                                     "a sink gets new records at most this often (fewer, larger commits)")
    max_backoff_s: float = _key(60.0, _between(1.0, 3600.0, " s"), "longest pause between tries of a failing sink")
    memory_limit: int = _key(100_000, _between(1000, 10_000_000),
                             "records held in memory while the disk refuses writes (alarm events are always kept)")
    flush_timeout_s: float = _key(10.0, _between(0.0, 600.0, " s"),
                                  "at shutdown, time the sinks get to deliver what is pending")
    check_on_open: bool = _key(True, None,
                               "run SQLite's quick_check when the queue opens (a corrupt file is moved aside)")
    commit_interval_ms: int = _key(500, _between(0, 10_000, " ms"),
                                   "a record waits at most this long for its commit, which takes all that came "
                                   "meanwhile (one fsync); a power cut loses at most this much, which the nodes' "
                                   "history rings refill; alarm events commit at once")
    max_bytes: int = _key(0, _between(0, 1 << 50),
                          "disk quota of the queue file (0: none): past it the oldest delivered records go first, "
                          "then the oldest undelivered readings (counted, a fault); alarms, outages, gaps never")


@dataclass(frozen=True)
class ClockConfig:
    require_sync: str = _key("auto", _one_of("auto", "always", "never"),
                             "when the wall clock is valid: auto: the kernel says synchronised (adjtimex) where "
                             "chrony, timesyncd or ntpd runs; always: the kernel must say so; never: a time after "
                             "the build floor is enough")
    max_held: int = _key(DEFAULT_MAX_HELD, _between(0, 10_000_000),
                         "readings held per bus while the clock is not valid (the oldest are dropped past it)")
    simulated: str = _key("", None,
                          "development and tests only: follow the clock file a simulator writes (`sitewatch simulate "
                          "--clock-file`) instead of the wall clock; empty: the machine's clock")


@dataclass(frozen=True)
class ProcessingConfig:
    late_s: float = _key(DEFAULT_LATE_S, _between(0.0, 3600.0, " s"),
                         "aggregation windows of a silent node close this long after their end")
    tick_s: float = _key(1.0, _between(0.05, 60.0, " s"), "how often time-driven work runs (window ends, spray timing)")
    batch_ms: int = _key(250, _between(0, 5000, " ms"),
                         "a bus's polls in quick succession go through the processing together, at most this long "
                         "after the first (one pass for a burst of polls: less CPU); 0: each poll at once")
    revision_horizon_s: float = _key(0.0, _between(0.0, 7 * 86400.0, " s"),
                                     "a closed aggregation window takes late (backfilled) samples and is emitted again "
                                     "as a revision for this long; 0: the nodes' history depth (600 samples) times "
                                     "their sample interval, plus 300 s")
    processor: tuple[StageSpec, ...] = field(default=DEFAULT_PROCESSORS, metadata={"stages": "processor"})
    aggregator: tuple[StageSpec, ...] = field(default_factory=default_aggregators, metadata={"stages": "aggregator"})
    alarm: tuple[StageSpec, ...] = field(default_factory=default_alarms, metadata={"stages": "alarm"})


@dataclass(frozen=True)
class SprayConfig:
    enabled: bool = _key(True, None, "false: no spray linkage (the coils are never written)")
    channel: str = _key(DEFAULT_SPRAY_CHANNEL, _not_empty,
                        "the mean that drives the spray (an aggregate's channel; a configured aggregator must make it)")
    coils: Mapping[str, str] = _table_key("dust node = node whose spray coil it drives (default: its own)")
    mode: Mapping[str, str] = _table_key("coil node = \"auto\", \"on\" or \"off\" at start (manual override)")
    retry_s: float = _key(10.0, _between(1.0, 3600.0, " s"), "a coil write that failed is tried again after this long")
    refresh_s: float = _key(
        300.0, _between(1.0, 1800.0, " s"),
        "a coil is read back and rewritten this often (renews the relay's lease: keep well below its max_on_s, 3600)",
    )


@dataclass(frozen=True)
class SirenConfig:
    node: str = _key("", None, "node whose coil switches the siren / beacon relay; empty: no siren")
    coil: str = _key(SPRAY_COIL, _not_empty, "that node's coil wired to the siren's relay")
    alarms: Mapping[str, str] = _table_key(
        "alarm name = least severity that sounds the siren (\"prewarning\" or \"alarm\"); empty: every alarm from "
        "min_severity up")
    min_severity: str = _key("alarm", _one_of("prewarning", "alarm"),
                             "with an empty alarms table: the least severe alarm that sounds the siren")


@dataclass(frozen=True)
class ServiceConfig:
    log_level: str = _key("INFO", _one_of("DEBUG", "INFO", "WARNING", "ERROR"),
                          "log level of `sitewatch run` (its --log-level overrides it); SIGHUP reloads it")
    heartbeat_s: float = _key(300.0, _between(0.0, 86400.0, " s"),
                              "a one-line summary (nodes online, backlog, records) in the log this often; 0: none")
    stall_grace_s: float = _key(60.0, _between(1.0, 3600.0, " s"),
                                "a poll or delivery loop that shows no progress for this long beyond its own longest "
                                "wait counts as stuck: the systemd watchdog is no longer fed and restarts the gateway")


@dataclass(frozen=True)
class StatusConfig:
    port: int = _key(9721, _between(0, 65535),
                     "TCP port of the local status endpoint (`sitewatch status`, /status JSON, /metrics for "
                     "Prometheus, the status page); 0: none")
    bind: str = _key("127.0.0.1", _not_empty,
                     "address it listens on: 127.0.0.1 keeps it on the gateway; 0.0.0.0 lets Prometheus and the "
                     "site office's phones reach it over the site network (it shows no secrets; switching a spray "
                     "needs the page token)")
    spray_token_file: str = _key("", None,
                                 "credential file holding the token the status page asks for before it switches a "
                                 "spray (at least 16 characters); empty: the page cannot switch sprays")


@dataclass(frozen=True)
class NotifyConfig:
    language: str = _key("zh", _one_of("zh", "en"), "language of the notification messages")
    min_severity: str = _key("prewarning", _one_of("prewarning", "alarm"),
                             "the least severe alarm that is notified")
    cleared: bool = _key(True, None, "also notify when an alarm clears")
    max_age_s: float = _key(3600.0, _between(0.0, 30 * 86400.0, " s"),
                            "alarm events older than this when their turn comes are not sent (counted as skipped): a "
                            "notifier added or down for a day does not replay old alarms")
    timeout_s: float = _key(10.0, _between(0.5, 120.0, " s"), "HTTP timeout of one notification")
    msgtype: str = _key("markdown", _one_of("text", "markdown"), "WeCom and DingTalk message type")
    wecom_url: str = _key("https://qyapi.weixin.qq.com/cgi-bin/webhook/send", _not_empty,
                          "WeCom (企业微信) group robot endpoint; the key goes in wecom_key_file")
    wecom_key_file: str = _key("", None, "credential file holding the WeCom robot's key; empty: no WeCom notifier")
    dingtalk_url: str = _key("https://oapi.dingtalk.com/robot/send", _not_empty,
                             "DingTalk (钉钉) custom robot endpoint; the access token goes in dingtalk_token_file")
    dingtalk_token_file: str = _key("", None,
                                    "credential file holding the DingTalk robot's access_token; empty: no DingTalk "
                                    "notifier")
    dingtalk_secret_file: str = _key("", None,
                                     "credential file holding the robot's signing secret (SEC...); empty: unsigned "
                                     "(the robot must then use a keyword or IP allow-list)")
    webhook_url: str = _key("", None, "generic JSON webhook (POST, one alarm event per request); empty: none")
    webhook_token_file: str = _key("", None,
                                   "credential file whose content is sent as `Authorization: Bearer ...`; empty: none")


@dataclass(frozen=True)
class HealthConfig:
    enabled: bool = _key(True, None, "false: no health reports")
    interval_s: float = _key(60.0, _between(0.5, 86400.0, " s"),
                             "a health report (gateway, sinks, nodes) is measured and queued for every sink this often")


@dataclass(frozen=True)
class KindsConfig:
    dirs: tuple[str, ...] = _key((), None,
                                 "folders of sitewatch node kinds added as profiles (`<kind>.toml`, `kind_<kind>.py` "
                                 "and the kind's firmware adapter; docs/profiles.md), relative to this file; "
                                 "`/etc/sitewatch/profiles/kinds/` is read too when it exists")


# Sections made of these dataclasses: TOML table name -> class.
SECTIONS: dict[str, type] = {
    "site": SiteConfig,
    "store": StoreConfig,
    "queue": QueueConfig,
    "clock": ClockConfig,
    "processing": ProcessingConfig,
    "spray": SprayConfig,
    "service": ServiceConfig,
    "status": StatusConfig,
    "notify": NotifyConfig,
    "health": HealthConfig,
    "siren": SirenConfig,
    "kinds": KindsConfig,
}
TOP_KEYS = {*SECTIONS, "limits", "node_limits", "sink", "bus"}
SINK_KEYS = {"type", "name"}  # plus the sink type's parameters


@dataclass(frozen=True)
class SinkSpec:
    type: str
    name: str
    params: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class GatewayConfig:
    buses: tuple[BusConfig, ...]
    store_path: Path = Path(DEFAULT_STORE)
    store_enabled: bool = True
    site: SiteConfig = field(default_factory=SiteConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    clock: ClockConfig = field(default_factory=ClockConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    spray: SprayConfig = field(default_factory=SprayConfig)
    limits: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    node_limits: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    sinks: tuple[SinkSpec, ...] = ()
    store_max_bytes: int = 0
    store_retention_days: float = DEFAULT_STORE_RETENTION_DAYS
    store_prune_interval_s: float = 600.0
    service: ServiceConfig = field(default_factory=ServiceConfig)
    status: StatusConfig = field(default_factory=StatusConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    siren: SirenConfig = field(default_factory=SirenConfig)

    @property
    def queue_path(self) -> Path:
        if self.queue.path:
            return Path(self.queue.path)
        return self.store_path.with_name(f"{self.store_path.stem}-queue.sqlite3")

    def limits_resolver(self) -> LimitsResolver:
        return LimitsResolver.from_config(self.limits, self.node_limits)

    def all_sinks(self) -> tuple[SinkSpec, ...]:
        """The local store (sink "sqlite") first, when enabled, then the [[sink]] tables."""
        params = {"path": str(self.store_path), "max_bytes": self.store_max_bytes,
                  "retention_days": self.store_retention_days, "prune_interval_s": self.store_prune_interval_s}
        store = (SinkSpec("sqlite", "sqlite", MappingProxyType(params)),)
        return (store if self.store_enabled else ()) + self.sinks

    def spray_plan(self) -> SprayPlan | None:
        if not self.spray.enabled:
            return None
        return SprayPlan(self.spray.channel, self.spray.coils, SPRAY_COIL)

    def nodes(self) -> dict[str, tuple[BusConfig, NodeConfig]]:
        return {node.name: (bus, node) for bus in self.buses for node in bus.nodes}

    def build_pipeline(self) -> Pipeline:
        """The pipeline this configuration describes (fresh state each time)."""
        p = self.processing
        return build_pipeline(self.limits_resolver(), p.processor, p.aggregator, p.alarm, self.spray_plan(), p.late_s,
                              p.revision_horizon_s)


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


# ---------------------------------------------------------------------------------------
# Parsing.
# ---------------------------------------------------------------------------------------


def _toml_types(annotation: Any) -> tuple[type, ...]:
    if annotation is bool:
        return (bool,)
    if annotation is int:
        return (int,)
    if annotation is float:
        return (int, float)
    if annotation is str:
        return (str,)
    if annotation == tuple[str, ...]:
        return (list,)
    return (dict,)  # the Mapping fields


def section_fields(cls: type) -> list[dataclasses.Field[Any]]:
    """The keys of a dataclass section (its fields)."""
    return list(dataclasses.fields(cls))


def _section(c: _Checker, data: dict[str, Any], name: str, cls: type, stages: Callable[..., Any]) -> Any:
    table = c.get(data, name, "", dict, {})
    hints = typing.get_type_hints(cls)
    fields = section_fields(cls)
    c.unknown(table, {f.name for f in fields}, name)
    values: dict[str, Any] = {}
    for f in fields:
        if f.name not in table:
            continue
        path = f"{name}.{f.name}"
        if "stages" in f.metadata:
            values[f.name] = stages(table[f.name], path, f.metadata["stages"])
            continue
        kinds = _toml_types(hints[f.name])
        value = c.get(table, f.name, name, kinds[0] if len(kinds) == 1 else kinds)
        if float in kinds:
            value = float(value)
        if list in kinds:
            for i, v in enumerate(value):
                if not isinstance(v, str):
                    raise c.fail(f"{path}[{i}]", f"expected a string, got {v!r}")
            value = tuple(value)
        if dict in kinds:
            for k, v in value.items():
                if not isinstance(v, str):
                    raise c.fail(f"{path}.{k}", f"expected a string, got {v!r}")
            value = MappingProxyType(dict(value))
        check = f.metadata.get("check")
        problem = check(value) if check is not None else None
        if problem:
            raise c.fail(path, problem)
        values[f.name] = value
    return cls(**values)


def _stage_specs(c: _Checker, raw: Any, path: str, what: str) -> tuple[StageSpec, ...]:
    if not isinstance(raw, list):
        raise c.fail(path, f"expected an array of tables ([[{path}]]), got {raw!r}")
    specs = []
    for i, entry in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(entry, dict):
            raise c.fail(where, f"expected a table ([[{path}]])")
        type_name = c.get(entry, "type", where, str)
        specs.append(StageSpec(type_name, MappingProxyType({k: v for k, v in entry.items() if k != "type"})))
    return tuple(specs)


_UNKNOWN_SETTING = re.compile(r"^unknown setting '([A-Za-z0-9_.]+)' (.*)$")
_SETTING_PROBLEM = re.compile(r"^([a-z0-9_]+(?:\.[a-z0-9_]+)*): (.*)$")


def _limits_error(c: _Checker, prefix: str, error: LimitsError) -> ConfigError:
    """A LimitsError as a ConfigError naming the full key: limits.wind.crane_gus: unknown setting ..."""
    text = str(error)
    match = _UNKNOWN_SETTING.match(text)
    if match:
        return c.fail(f"{prefix}.{match.group(1)}", f"unknown setting {match.group(2)}")
    match = _SETTING_PROBLEM.match(text)
    if match:
        return c.fail(f"{prefix}.{match.group(1)}", match.group(2))
    return c.fail(prefix, text)


def _limits(c: _Checker, data: dict[str, Any], node_names: set[str]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    site = c.get(data, "limits", "", dict, {})
    try:
        override(SiteLimits(), site)
    except LimitsError as error:
        raise _limits_error(c, "limits", error) from error
    nodes = c.get(data, "node_limits", "", dict, {})
    for node, table in nodes.items():
        where = f"node_limits.{node}"
        if node not in node_names:
            raise c.fail(where, f"no node {node!r} is configured (nodes: {', '.join(sorted(node_names))})")
        if not isinstance(table, dict):
            raise c.fail(where, "expected a table of limits")
        try:
            override(SiteLimits(), table)
        except LimitsError as error:
            raise _limits_error(c, where, error) from error
    try:
        LimitsResolver.from_config(site, nodes)
    except LimitsError as error:
        raise c.fail("node_limits", str(error)) from error
    return MappingProxyType(site), MappingProxyType({k: MappingProxyType(v) for k, v in nodes.items()})


def _sinks(c: _Checker, data: dict[str, Any], store_enabled: bool) -> tuple[SinkSpec, ...]:
    load_builtin_sinks()
    raw = c.get(data, "sink", "", list, [])
    names = {"sqlite"} if store_enabled else set()
    specs = []
    for i, entry in enumerate(raw):
        where = f"sink[{i}]"
        if not isinstance(entry, dict):
            raise c.fail(where, "expected a table ([[sink]])")
        type_name = c.get(entry, "type", where, str)
        if type_name not in SINKS:
            raise c.fail(f"{where}.type", f"unknown sink type {type_name!r} (known: {', '.join(SINKS.names())})")
        name = c.get(entry, "name", where, str, type_name)
        if not name:
            raise c.fail(f"{where}.name", "must not be empty")
        if name in names:
            raise c.fail(f"{where}.name", f"sink name {name!r} is used twice (it names the sink's cursor in the queue;"
                                          " the local store's is \"sqlite\")")
        names.add(name)
        parameters = sink_parameters(type_name)
        params = {k: v for k, v in entry.items() if k not in SINK_KEYS}
        c.unknown(params, set(parameters), where)
        for key, parameter in parameters.items():
            if key in params and parameter.annotation in (str, int, float, bool):
                kinds = _toml_types(parameter.annotation)
                c.get(params, key, where, kinds[0] if len(kinds) == 1 else kinds)
        try:
            SINKS.check(type_name, params)
        except SinkConfigError as error:
            raise c.fail(where, str(error)) from error
        specs.append(SinkSpec(type_name, name, MappingProxyType(params)))
    return tuple(specs)


def sink_parameters(type_name: str) -> dict[str, inspect.Parameter]:
    """A sink type's parameters (the keys of its [[sink]] table besides type and name)."""
    signature = inspect.signature(SINKS.get(type_name), eval_str=True)
    return {name: p for name, p in signature.parameters.items() if name != "name"}


def parse_config(data: dict[str, Any], source: str = "<config>") -> GatewayConfig:
    c = _Checker(source)
    c.unknown(data, TOP_KEYS, "")
    _install_kinds(c, data, Path(source).parent if source != "<config>" else Path.cwd())
    buses = _parse_buses(c, data, Path(source).parent if source != "<config>" else Path.cwd())
    nodes = {node.name: node for bus in buses for node in bus.nodes}

    def stages(raw: Any, path: str, what: str) -> tuple[StageSpec, ...]:
        return _stage_specs(c, raw, path, what)

    site = _section(c, data, "site", SiteConfig, stages)
    store = _section(c, data, "store", StoreConfig, stages)
    queue = _section(c, data, "queue", QueueConfig, stages)
    clock = _section(c, data, "clock", ClockConfig, stages)
    processing = _section(c, data, "processing", ProcessingConfig, stages)
    spray = _section(c, data, "spray", SprayConfig, stages)
    service = _section(c, data, "service", ServiceConfig, stages)
    status = _section(c, data, "status", StatusConfig, stages)
    notify = _section(c, data, "notify", NotifyConfig, stages)
    health = _section(c, data, "health", HealthConfig, stages)
    siren = _section(c, data, "siren", SirenConfig, stages)
    limits, node_limits = _limits(c, data, set(nodes))
    _check_spray(c, spray, nodes)
    _check_siren(c, siren, spray, nodes)
    _check_couplings(c, buses, processing, LimitsResolver.from_config(limits, node_limits), node_limits)
    _check_alarm_nodes(c, processing, set(nodes))
    config = GatewayConfig(
        buses, Path(store.path), store.enabled, site, queue, clock, processing, spray, limits, node_limits,
        _sinks(c, data, store.enabled), store_max_bytes=store.max_bytes, service=service, status=status,
        notify=notify, health=health, siren=siren,
        store_retention_days=store.retention_days, store_prune_interval_s=store.prune_interval_s,
    )
    if config.queue_path.resolve() == config.store_path.resolve():
        raise c.fail("queue.path", "is the store's file: the queue needs a file of its own")
    try:
        config.build_pipeline()
    except StageError as error:
        raise c.fail(_stage_path(error.where), error.problem) from error
    return config


def _install_kinds(c: _Checker, data: dict[str, Any], folder: Path) -> None:
    """Kinds added as profiles ([kinds] dirs, /etc/sitewatch/profiles/kinds/): known before the buses name them."""
    kinds = _section(c, data, "kinds", KindsConfig, lambda *args: ())
    dirs = [folder / d for d in kinds.dirs]
    if SYSTEM_KIND_DIR.is_dir():
        dirs.append(SYSTEM_KIND_DIR)
    try:
        install_kinds(dirs)
    except (KindProfileError, ValueError) as error:
        raise c.fail("kinds.dirs", str(error)) from error


_STAGE_WHERE = re.compile(r"^(processor|aggregator|alarm)(\[\d+\])")


def _stage_path(where: str) -> str:
    """'processor[1] (hampel)' -> 'processing.processor[1] (hampel)'; 'spray' stays."""
    match = _STAGE_WHERE.match(where)
    return f"processing.{where}" if match else where


def _check_spray(c: _Checker, spray: SprayConfig, nodes: Mapping[str, NodeConfig]) -> None:
    def has_coil(name: str) -> bool:
        node = nodes.get(name)
        if node is None:
            return False
        if node.profile is not None:  # a vendor device: the gateway writes no coil of it
            return False
        return any(row[0] == SPRAY_COIL for row in regmap.coils(KIND_BY_NAME[node.kind]))

    for sensor, target in spray.coils.items():
        if sensor not in nodes or nodes[sensor].kind != "dust":
            raise c.fail(f"spray.coils.{sensor}", f"{sensor!r} is not a configured dust node")
        if not has_coil(target):
            raise c.fail(f"spray.coils.{sensor}", f"{target!r} is not a configured node with a {SPRAY_COIL} coil")
    if len(set(spray.coils.values())) != len(spray.coils):
        raise c.fail("spray.coils", "two dust nodes drive the same coil")
    for target, mode in spray.mode.items():
        if not has_coil(target):
            raise c.fail(f"spray.mode.{target}", f"{target!r} is not a configured node with a {SPRAY_COIL} coil")
        if mode not in {m.value for m in SprayMode}:
            raise c.fail(f"spray.mode.{target}", f"{mode!r} is not one of \"auto\", \"on\", \"off\"")


def _check_siren(c: _Checker, siren: SirenConfig, spray: SprayConfig, nodes: Mapping[str, NodeConfig]) -> None:
    for alarm, severity in siren.alarms.items():
        if severity not in ("prewarning", "alarm"):
            raise c.fail(f"siren.alarms.{alarm}", f"{severity!r} is not \"prewarning\" or \"alarm\"")
    if not siren.node:
        return
    node = nodes.get(siren.node)
    if node is None:
        raise c.fail("siren.node", f"{siren.node!r} is not a configured node")
    coils = [row[0] for row in regmap.coils(KIND_BY_NAME[node.kind])]
    if siren.coil not in coils:
        raise c.fail("siren.coil", f"node {siren.node!r} ({node.kind}) has no coil {siren.coil!r} "
                                   f"(its coils: {', '.join(coils) or 'none'})")
    sprayed = {spray.coils.get(name, name) for name, n in nodes.items() if n.kind == "dust"}
    if spray.enabled and siren.coil == SPRAY_COIL and siren.node in sprayed:
        raise c.fail("siren.node", f"the {SPRAY_COIL} coil of {siren.node!r} is driven by the spray linkage; give "
                                   "the siren a node of its own, map that node's spray elsewhere ([spray] coils), "
                                   "or set [spray] enabled = false")


def _check_couplings(
    c: _Checker,
    buses: Sequence[BusConfig],
    processing: ProcessingConfig,
    resolver: LimitsResolver,
    node_limits: Mapping[str, Any],
) -> None:
    """Settings that are each fine but contradict each other (docs/data-quality.md)."""
    for i, bus in enumerate(buses):
        for j, node in enumerate(bus.nodes):
            where = f"bus[{i}].node[{j}]"
            # A sample taken just after one poll reaches the gateway at the next one (or by backfill): a window
            # that closes sooner drops it as late, and a window short of samples switches dust alarm and spray off.
            if processing.late_s < node.interval:
                raise c.fail(
                    "processing.late_s",
                    f"{processing.late_s:g} s is shorter than {where}.interval ({node.interval:g} s between polls of "
                    f"{node.name}): its samples would miss their windows; make late_s at least the longest interval",
                )
            # The correction must run in one place, or PM values are divided by the growth factor twice.
            if node.rh_correction and resolver.for_node(node.name).humidity.correction:
                table = node_limits.get(node.name, {}).get("humidity", {})
                key = f"node_limits.{node.name}.humidity.correction" if "correction" in table else (
                    "limits.humidity.correction")
                raise c.fail(
                    f"{where}.rh_correction",
                    f"the node corrects {node.name}'s PM values for humidity and {key} = true corrects them again "
                    "on the gateway: enable one of the two",
                )


def _check_alarm_nodes(c: _Checker, processing: ProcessingConfig, names: set[str]) -> None:
    # A misspelt node would make an alarm that never fires: refuse it.
    for i, spec in enumerate(processing.alarm):
        nodes = spec.params.get("nodes", ())
        if isinstance(nodes, list | tuple):
            for node in nodes:
                if node not in names:
                    raise c.fail(f"processing.alarm[{i}].nodes", f"no node {node!r} is configured")


def _parse_buses(c: _Checker, data: dict[str, Any], folder: Path) -> tuple[BusConfig, ...]:
    buses_raw = c.get(data, "bus", "", list, [])
    if not buses_raw:
        raise c.fail("bus", "no [[bus]] configured: the gateway needs at least one bus to poll")
    buses = []
    seen_nodes: set[str] = set()
    seen_ports: dict[str, str] = {}
    profiles = _ProfileSource(c, folder)
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
            c.unknown(node_raw, NODE_KEYS, nwhere)
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
            rh_correction = c.get(node_raw, "rh_correction", nwhere, bool, False)
            if rh_correction and kind != "dust":
                raise c.fail(f"{nwhere}.rh_correction", f"only dust nodes correct for humidity (this one is {kind})")
            nodes.append(
                NodeConfig(node_name, kind, unit_id, interval, None if node_timeout is None else float(node_timeout),
                           rh_correction)
            )
        for j, device_raw in enumerate(c.get(raw, "device", where, list, [])):
            device = _parse_device(c, device_raw, f"{where}.device[{j}]", profiles, transport, baud, parity, name,
                                   units, seen_nodes)
            units.add(device.unit_id)
            seen_nodes.add(device.name)
            nodes.append(device)
        if not nodes:
            raise c.fail(f"{where}.node", "no [[bus.node]] or [[bus.device]] on this bus")
        buses.append(
            BusConfig(
                name, port, tuple(nodes), baud, parity, stopbits, timeout,
                transport=transport, host=host, tcp_port=tcp_port, max_backoff=max_backoff, local_echo=local_echo,
            )
        )
    return tuple(buses)


class _ProfileSource:
    """The vendor profiles a configuration names: loaded once, when the first [[bus.device]] asks."""

    def __init__(self, c: _Checker, folder: Path) -> None:
        self.c = c
        self.folder = folder  # the configuration file's folder: a profile path is relative to it
        self._known: dict[str, VendorProfile] | None = None

    def get(self, name: str, where: str) -> VendorProfile:
        try:
            if name.endswith(".toml"):
                return load_profile(self.folder / name)
            if self._known is None:
                self._known = load_vendor_profiles()
        except ProfileError as error:
            raise self.c.fail(where, str(error)) from error
        found = self._known.get(name)
        if found is None:
            raise self.c.fail(where, f"no profile {name!r} (known: {', '.join(sorted(self._known))}; "
                                     "or give the path of a .toml file)")
        return found


def _parse_device(
    c: _Checker, raw: Any, where: str, profiles: _ProfileSource, transport: str, bus_baud: int, bus_parity: str,
    bus_name: str, units: set[int], names: set[str],
) -> NodeConfig:
    """One [[bus.device]]: a vendor device, polled through its profile next to the sitewatch nodes."""
    if not isinstance(raw, dict):
        raise c.fail(where, "expected a table ([[bus.device]])")
    c.unknown(raw, DEVICE_KEYS, where)
    profile = profiles.get(c.get(raw, "profile", where, str), f"{where}.profile")
    unit_id = c.get(raw, "unit_id", where, int)
    if not 1 <= unit_id <= 247:
        raise c.fail(f"{where}.unit_id", f"{unit_id} is outside 1 .. 247")
    if unit_id in units:
        raise c.fail(f"{where}.unit_id", f"unit {unit_id} appears twice on bus {bus_name}")
    name = c.get(raw, "name", where, str, f"{profile.kind}-{unit_id}")
    if name in names:
        raise c.fail(f"{where}.name", f"node name {name!r} is used twice")
    interval = float(c.get(raw, "interval", where, (int, float), 1.0))
    if not 0.1 <= interval <= 3600:
        raise c.fail(f"{where}.interval", f"{interval} s is outside 0.1 .. 3600 s")
    timeout = c.get(raw, "timeout", where, (int, float), None)
    if timeout is not None and not 0.01 <= timeout <= 10:
        raise c.fail(f"{where}.timeout", f"{timeout} s is outside 0.01 .. 10 s")
    # One serial line has one speed and parity: a device that runs otherwise cannot share it.
    for key, bus_value, default in (("baud", bus_baud, profile.baud), ("parity", bus_parity, profile.parity)):
        if key in raw and transport != "rtu":
            raise c.fail(f"{where}.{key}", f"applies to transport = \"rtu\" only (this bus is {transport})")
        value = c.get(raw, key, where, int if key == "baud" else str, default)
        if transport == "rtu" and value is not None and value != bus_value:
            said = f"{value}" if key in raw else f"{value} (profile {profile.name}'s default)"
            raise c.fail(f"{where}.{key}", f"the device runs at {said}, bus {bus_name} at {bus_value}: one line "
                                           f"setting per port (set the device to {bus_value} and write "
                                           f"{key} = {json.dumps(bus_value)} here, or give it a bus of its own)")
    return NodeConfig(name, profile.kind, unit_id, interval, None if timeout is None else float(timeout),
                      history=False, profile=profile)


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


# ---------------------------------------------------------------------------------------
# Every default, as TOML (`sitewatch config defaults`).
# ---------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def toml_value(value: Any) -> str:
    """A value as TOML (the subset the configuration uses)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def stage_parameters(what: str, type_name: str) -> dict[str, inspect.Parameter]:
    """A stage type's parameters (the keys of its table besides type), from its factory's signature."""
    from gateway.process import AGGREGATORS, ALARMS, PROCESSORS

    factory: Callable[..., object]
    if what == "processor":
        factory = PROCESSORS.get(type_name)
    elif what == "aggregator":
        factory = AGGREGATORS.get(type_name)
    else:
        factory = ALARMS.get(type_name)
    signature = inspect.signature(factory)
    return {name: p for i, (name, p) in enumerate(signature.parameters.items()) if i > 0}


def _dataclass_lines(obj: Any) -> list[str]:
    lines = []
    for f in dataclasses.fields(obj):
        if "stages" in f.metadata:
            continue
        doc = f.metadata.get("doc")
        if doc:
            lines.append(f"# {doc}")
        lines.append(f"{f.name} = {toml_value(getattr(obj, f.name))}")
    return lines


def _stage_lines(what: str, spec: StageSpec) -> list[str]:
    lines = [f"[[processing.{what}]]", f"type = {toml_value(spec.type)}"]
    for name, parameter in stage_parameters(what, spec.type).items():
        if name in spec.params:
            lines.append(f"{name} = {toml_value(spec.params[name])}")
        elif parameter.default is inspect.Parameter.empty:
            lines.append(f"# {name} = (required)")
        elif parameter.default is None:
            lines.append(f"# {name}: not set (see docs/configuration.md)")
        else:
            lines.append(f"{name} = {toml_value(parameter.default)}")
    return lines


def default_config_text() -> str:
    """A complete configuration with every default (and one example bus, which has none)."""
    out = [
        "# sitewatch gateway configuration with every default (`sitewatch config defaults`).",
        "# Every key is explained in docs/configuration.md. A key left out takes the value shown here;",
        "# the thresholds under [limits] come from gateway/process/limits.py.",
    ]
    for name, cls in SECTIONS.items():
        out += ["", f"[{name}]", *_dataclass_lines(cls())]
        if cls is ProcessingConfig:
            processing = ProcessingConfig()
            for what in ("processor", "aggregator", "alarm"):
                for spec in getattr(processing, what):
                    out += ["", *_stage_lines(what, spec)]
    limits = SiteLimits()
    for f in dataclasses.fields(limits):
        out += ["", f"[limits.{f.name}]"]
        table = getattr(limits, f.name)
        out += [f"{g.name} = {toml_value(getattr(table, g.name))}" for g in dataclasses.fields(table)]
    out += [
        "",
        "# [node_limits.\"dust-1\".dust]   the tables of [limits], for one node",
        "# pm10_1h_limit = 120.0",
        "",
        "# Further sinks, by registered type (the local store above is the sink \"sqlite\"):",
        "# [[sink]]",
        "# type = \"jsonl\"",
        "# name = \"archive\"",
        "# path = \"/var/lib/sitewatch/records.jsonl\"",
        "",
        "# At least one bus is required; this one is an example to edit (a bus has no defaults for these).",
        "[[bus]]",
        *_bus_lines(),
    ]
    return "\n".join(out) + "\n"


def _bus_lines() -> list[str]:
    bus = BusConfig("bus0", "/dev/ttyUSB0", ())
    node = NodeConfig("dust-1", "dust", 1)
    return [
        f"name = {toml_value(bus.name)}",
        f"transport = {toml_value(bus.transport)}",
        f"port = {toml_value(bus.port)}",
        f"baud = {toml_value(bus.baud)}",
        f"parity = {toml_value(bus.parity)}",
        f"stopbits = {toml_value(bus.stopbits)}",
        f"timeout = {toml_value(bus.timeout)}",
        f"max_backoff = {toml_value(bus.max_backoff)}",
        f"local_echo = {toml_value(bus.local_echo)}",
        "",
        "[[bus.node]]",
        f"name = {toml_value(node.name)}",
        f"kind = {toml_value(node.kind)}",
        f"unit_id = {toml_value(node.unit_id)}",
        f"interval = {toml_value(node.interval)}",
        "# timeout: not set (the bus's timeout)",
    ]
