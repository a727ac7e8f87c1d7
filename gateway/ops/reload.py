"""SIGHUP: read the configuration file again and apply what can change safely while running.

What a reload applies at once:

* the alarm limits (``[limits.wind|noise|tilt|dust]`` and their ``[node_limits]``): the
  alarms judge the next reading with them (active alarms keep their state);
* the nodes' poll intervals (``[[bus.node]] interval``), when nothing else of the buses changed;
* ``[service]``: the log level (unless ``--log-level`` was given), the heartbeat, the stall grace.

Everything else (buses, ports, sinks, store and queue paths, stages, the other limit
tables, which processors, aggregators and the spray read when they are built) needs a
restart: the reload says which keys in one log line and keeps running on the old values.
A file that does not parse is refused as a whole, with its error, and the gateway keeps
the configuration it has.

``plan`` is pure (two configurations in, what to do out); ``Reloader`` applies a plan.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.acquire.poller import BusConfig
from gateway.ops.config import ConfigError, GatewayConfig, load_config
from gateway.process.limits import LimitsError, LimitsResolver, SiteLimits

log = logging.getLogger(__name__)

# Limit tables only the alarms read when judging a reading (the others are read by stages when built).
ALARM_TABLES = ("wind", "noise", "tilt", "dust")
# Top-level configuration parts a reload handles itself.
_HANDLED = {"limits", "node_limits", "service", "buses"}


@dataclass
class ReloadPlan:
    limits: LimitsResolver | None = None  # new alarm limits, when they changed
    changed_tables: list[str] = field(default_factory=list)  # alarm limit tables that changed
    intervals: dict[str, float] = field(default_factory=dict)  # node -> new poll interval
    service_changed: bool = False
    needs_restart: list[str] = field(default_factory=list)  # configuration keys that differ and need a restart

    @property
    def empty(self) -> bool:
        return self.limits is None and not self.intervals and not self.service_changed and not self.needs_restart


def _without_intervals(bus: BusConfig) -> BusConfig:
    return dataclasses.replace(bus, nodes=tuple(dataclasses.replace(n, interval=0.0) for n in bus.nodes))


def _tables_changed(old: LimitsResolver, new: LimitsResolver, nodes: list[str]) -> list[str]:
    changed = []
    for table in (f.name for f in dataclasses.fields(SiteLimits)):
        for who in [None, *nodes]:
            a = old.site if who is None else old.for_node(who)
            b = new.site if who is None else new.for_node(who)
            if getattr(a, table) != getattr(b, table):
                changed.append(table)
                break
    return changed


def plan(old: GatewayConfig, new: GatewayConfig) -> ReloadPlan:
    """What reloading `new` over the running `old` does (no side effects)."""
    out = ReloadPlan()
    nodes = sorted(set(old.nodes()) | set(new.nodes()))
    old_limits, new_limits = old.limits_resolver(), new.limits_resolver()
    tables = _tables_changed(old_limits, new_limits, [n for n in nodes if n in new.nodes() and n in old.nodes()])
    out.changed_tables = [t for t in tables if t in ALARM_TABLES]
    out.needs_restart += [f"limits.{t}" for t in tables if t not in ALARM_TABLES]
    if out.changed_tables:
        out.limits = new_limits
    if [_without_intervals(b) for b in old.buses] == [_without_intervals(b) for b in new.buses]:
        before = {name: node.interval for name, (_, node) in old.nodes().items()}
        out.intervals = {name: node.interval for name, (_, node) in new.nodes().items()
                         if node.interval != before[name]}
    else:
        out.needs_restart.append("bus")
    out.service_changed = old.service != new.service
    for f in dataclasses.fields(GatewayConfig):
        if f.name not in _HANDLED and getattr(old, f.name) != getattr(new, f.name):
            out.needs_restart.append(_KEY_NAMES.get(f.name, f.name))
    return out


_KEY_NAMES = {"store_path": "store.path", "store_enabled": "store.enabled", "sinks": "sink"}


def merged(old: GatewayConfig, new: GatewayConfig, applied: ReloadPlan) -> GatewayConfig:
    """The configuration the gateway runs on after applying `applied`: the old one with the reloaded parts."""
    changes: dict[str, Any] = {"service": new.service}
    if applied.limits is not None:
        # Only the alarm tables are live; keep the configuration honest about what runs.
        changes["limits"], changes["node_limits"] = new.limits, new.node_limits
    if applied.intervals or "bus" not in applied.needs_restart:
        changes["buses"] = new.buses
    return dataclasses.replace(old, **changes)


class Reloader:
    """Applies a reload to a running Gateway (its pipeline's alarms and its pollers)."""

    def __init__(
        self,
        path: Path,
        gateway: Any,  # gateway.ops.service.Gateway (not imported: this module stays testable alone)
        on_service: Callable[[GatewayConfig], None],
    ) -> None:
        self.path = path
        self.gateway = gateway
        self.on_service = on_service
        self.reloads = 0
        self.refused = 0

    def reload(self) -> ReloadPlan | None:
        """Read the file and apply what can be applied; None when the file was refused."""
        old: GatewayConfig = self.gateway.config
        try:
            new = load_config(self.path)
        except ConfigError as error:
            self.refused += 1
            log.error("reload refused, still running on the previous configuration: %s", error)
            return None
        try:
            change = plan(old, new)
        except LimitsError as error:
            self.refused += 1
            log.error("reload refused, still running on the previous configuration: %s: %s", self.path, error)
            return None
        self.reloads += 1
        alarms = self.gateway.pipeline.alarms
        if change.limits is not None and alarms is not None:
            alarms.limits = change.limits
            log.warning("reload: alarm limits %s applied (threshold changes made by commands since the start "
                        "are replaced by the file's)", ", ".join(f"[limits.{t}]" for t in change.changed_tables))
        for node, seconds in change.intervals.items():
            for poller in self.gateway.pollers:
                poller.set_interval(seconds, node)
            log.warning("reload: poll interval of %s set to %g s", node, seconds)
        if change.service_changed:
            self.on_service(new)
        self.gateway.config = merged(old, new, change)
        if change.needs_restart:
            log.warning("reload: %s changed: these need a restart (systemctl restart sitewatch-gateway); "
                        "running on the previous values until then", ", ".join(sorted(set(change.needs_restart))))
        if change.empty:
            log.info("reload: %s: nothing changed", self.path)
        else:
            log.info("reload: %s applied", self.path)
        return change
