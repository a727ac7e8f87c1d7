"""Spray / fog-cannon linkage: a pure controller for the dust node's spray coil.

Rule (domain.md section 4, local practice, *unconfirmed*): switch on when
the PM10 15-min mean exceeds the dust setting (limits.dust.pm10_1h_limit),
run at least limits.spray.min_on_s (30 min), switch off with hysteresis:
only once the mean is below the dust setting minus limits.spray.margin.

* Only valid (flag N) means count. If no valid mean arrived for
  limits.spray.stale_s, auto mode stops spraying once the minimum on-time is
  over: a dead dust sensor must not run the pump forever. It never switches
  on without data.
* Manual override: mode ``on`` or ``off`` holds the coil there whatever the
  dust does; ``auto`` hands it back to the rule (the minimum on-time still
  counts from when the coil went on, whoever switched it).
* The controller does no I/O and reads no clock: readings come with the
  ``now`` at which they were received (an aggregate's timestamp is the start
  of its window, 15 min in the past), and ``tick(now)`` lets the minimum
  on-time run out when no reading arrives.

Every returned command carries its reason and is meant to be logged as it
is; the actuator writes ``on`` to the coil. The controller returns a command
only when the coil should change, except on a manual mode change, which
always returns one (the operator asked; writing the same state is harmless).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from gateway.model import Reading
from gateway.process.aggregate import is_valid
from gateway.process.limits import LimitsError, LimitsResolver, limit_slack


class SprayMode(StrEnum):
    AUTO = "auto"
    ON = "on"  # manual on
    OFF = "off"  # manual off


@dataclass(frozen=True, slots=True)
class SprayCommand:
    node: str  # node that owns the coil
    coil: str  # coil name from the register map
    on: bool
    time: float
    mode: SprayMode
    reason: str
    value: float | None  # the PM10 15-min mean behind the decision, if one was
    level: float  # the switch-on level in force (the dust setting)


class SprayController:
    """The spray coil of one node."""

    def __init__(
        self,
        node: str,
        limits: LimitsResolver,
        coil: str = "spray_relay",
        sensor: str | None = None,
        label: str = "PM10 15-min mean",
    ) -> None:
        self.node = node
        self.label = label  # how reasons name the mean (the linkage's channel may be another one)
        self.coil = coil
        self.sensor = sensor or node  # the dust node whose means drive it
        self._limits = limits
        self.on = False
        self.mode = SprayMode.AUTO
        self.on_since: float | None = None
        self.last_value: float | None = None
        self.last_time: float | None = None

    def update(self, value: float, now: float) -> list[SprayCommand]:
        """A valid PM10 15-min mean, received at `now`."""
        self.last_value, self.last_time = value, now
        return self._evaluate(now)

    def tick(self, now: float) -> list[SprayCommand]:
        return self._evaluate(now)

    def set_mode(self, mode: SprayMode, now: float, who: str = "operator") -> list[SprayCommand]:
        self.mode = SprayMode(mode)
        if self.mode is SprayMode.ON:
            return [self._switch(True, now, f"manual on by {who}")]
        if self.mode is SprayMode.OFF:
            return [self._switch(False, now, f"manual off by {who}")]
        commands = self._evaluate(now)
        if commands:
            return [self._command(c.on, now, f"auto mode set by {who}: {c.reason}") for c in commands]
        state = "on" if self.on else "off"
        return [self._command(self.on, now, f"auto mode set by {who}: coil stays {state}")]

    def _evaluate(self, now: float) -> list[SprayCommand]:
        if self.mode is not SprayMode.AUTO:
            return []
        limits = self._limits.for_node(self.sensor)
        level = limits.dust.pm10_1h_limit
        fresh = self.last_time is not None and now - self.last_time <= limits.spray.stale_s
        value = self.last_value
        if not self.on:
            if fresh and value is not None and value > level + limit_slack(level):
                return [self._switch(True, now, f"{self.label} {value:g} ug/m3 > {level:g} ug/m3")]
            return []
        ran = now - (self.on_since if self.on_since is not None else now)
        if ran < limits.spray.min_on_s:
            return []
        if not fresh:
            age = "ever" if self.last_time is None else f"{now - self.last_time:g} s"
            return [self._switch(False, now, f"no valid {self.label} for {age}; ran {ran:g} s")]
        off_below = level - limits.spray.margin
        if value is not None and value < off_below - limit_slack(off_below):
            reason = f"{self.label} {value:g} ug/m3 < {off_below:g} ug/m3; ran {ran:g} s"
            return [self._switch(False, now, reason)]
        return []

    def _switch(self, on: bool, now: float, reason: str) -> SprayCommand:
        if on and not self.on:
            self.on_since = now
        if not on:
            self.on_since = None
        self.on = on
        return self._command(on, now, reason)

    def _command(self, on: bool, now: float, reason: str) -> SprayCommand:
        level = self._limits.for_node(self.sensor).dust.pm10_1h_limit
        return SprayCommand(self.node, self.coil, on, now, self.mode, reason, self.last_value, level)


class SprayLinkage:
    """Routes PM10 15-min means to the spray controller of each dust node.

    `coils` maps a dust node to the node whose coil it drives (default: its
    own coil). Two dust nodes driving one coil would fight, so that is refused.
    """

    def __init__(
        self,
        limits: LimitsResolver,
        channel: str = "pm10_15min_mean",
        coils: Mapping[str, str] | None = None,
        coil: str = "spray_relay",
    ) -> None:
        self._limits = limits
        self._channel = channel
        self._label = "PM10 15-min mean" if channel == "pm10_15min_mean" else channel
        self._coil = coil
        self._coils = dict(coils or {})
        driven = list(self._coils.values())
        if len(set(driven)) != len(driven):
            raise LimitsError("spray: two dust nodes drive the same coil")
        self.controllers: dict[str, SprayController] = {}

    def controller(self, sensor: str) -> SprayController:
        target = self._coils.get(sensor, sensor)
        controller = self.controllers.get(target)
        if controller is None:
            controller = SprayController(target, self._limits, self._coil, sensor, self._label)
            self.controllers[target] = controller
        return controller

    def feed(self, reading: Reading, now: float) -> list[SprayCommand]:
        if reading.channel != self._channel or not is_valid(reading):
            return []
        assert reading.value is not None
        controller = self.controller(reading.node)
        if controller.sensor != reading.node:
            return []  # this coil is driven by another dust node
        return controller.update(reading.value, now)

    def tick(self, now: float) -> list[SprayCommand]:
        return [command for c in self.controllers.values() for command in c.tick(now)]

    def set_mode(self, coil_node: str, mode: SprayMode, now: float, who: str = "operator") -> list[SprayCommand]:
        sensors = [s for s, n in self._coils.items() if n == coil_node]
        controller = self.controllers.get(coil_node) or self.controller(sensors[0] if sensors else coil_node)
        return controller.set_mode(mode, now, who)
