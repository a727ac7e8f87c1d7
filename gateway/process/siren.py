"""The siren / beacon relay: on while chosen alarms are active, off when none is. Sans-IO.

A rule names the node and coil that drive the siren's relay and which alarms sound it: per alarm name the
least severity that does (``{"crane_wind": "prewarning", "dust": "alarm"}``), or, with no names, every alarm
from ``min_severity`` up. ``Siren.update`` turns the active alarms into a coil command when the wanted state
changes (the first call always gives one, so a siren left on by a gateway that stopped is switched off). The
command is a ``SprayCommand`` for that coil: the service writes it with the spray coil's machinery
(CoilActuator: readback, retries, lease refresh) and queues its ``Actuation`` with the reason, so every
switching of the siren is on record, with the alarms that caused it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.process.alarms import ActiveAlarm, Severity
from gateway.process.spray import SprayCommand, SprayMode

_RANK = {Severity.PREWARNING: 0, Severity.ALARM: 1}


@dataclass(frozen=True)
class SirenRule:
    node: str
    coil: str
    alarms: Mapping[str, Severity] = field(default_factory=lambda: MappingProxyType({}))
    min_severity: Severity = Severity.ALARM

    def sounds(self, alarm: str, severity: Severity) -> bool:
        least = self.alarms.get(alarm) if self.alarms else self.min_severity
        return least is not None and _RANK[severity] >= _RANK[least]


class Siren:
    def __init__(self, rule: SirenRule) -> None:
        self.rule = rule
        self.on: bool | None = None  # None: never commanded (this run)
        self.causes: list[str] = []

    def update(self, active: Iterable[ActiveAlarm], now: float) -> SprayCommand | None:
        """The command for the coil when the wanted state changed, else None."""
        causes = sorted({f"{a.alarm} {a.severity} on {a.node}/{a.channel}" for a in active
                         if self.rule.sounds(a.alarm, a.severity)})
        wanted = bool(causes)
        self.causes = causes
        if wanted == self.on:
            return None
        self.on = wanted
        reason = "siren: " + ("; ".join(causes) if causes else "no alarm that sounds it is active")
        return SprayCommand(self.rule.node, self.rule.coil, wanted, now, SprayMode.AUTO, reason, None, 0.0)
