"""Putting the models together: one weather, one model per node, and adapters.

:class:`SitePhysics` holds the site's :class:`Weather` and a model per
(bus, unit_id). Every model has the same call:

    model.step(t, dt, actuators) -> {register name: true physical value}

with t the simulated time in seconds since the scenario start, dt the length
of the sample interval that ends at t, and actuators the node's coils by
register name (the dust model reads "spray_relay"). Keys and units are those
of firmware/regmap.py MEASUREMENTS for the node's kind.

:class:`EpochSource` adapts a model to a "values(t)" source whose t counts
seconds since the Unix epoch (the simulated wall clock).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Protocol

from gateway.profiles.kinds import KindProfile, kind_profiles
from simulator.physics.conditions import ConditionsSource
from simulator.physics.dust import DustModel, DustParams
from simulator.physics.noise import NoiseModel, NoiseParams
from simulator.physics.randomness import stream
from simulator.physics.tilt import TiltModel, TiltParams
from simulator.physics.walk import WalkModel, WalkParams
from simulator.physics.weather import Weather
from simulator.physics.wind import WindModel, WindParams

NodeParams = DustParams | NoiseParams | TiltParams | WindParams | WalkParams

PARAMS_BY_KIND: dict[str, type[DustParams | NoiseParams | TiltParams | WindParams]] = {  # kinds with their own physics
    "dust": DustParams,
    "noise": NoiseParams,
    "tilt": TiltParams,
    "wind": WindParams,
}


class NodeModel(Protocol):
    kind: str

    def step(self, t: float, dt: float, actuators: Mapping[str, bool] | None = None) -> dict[str, float]: ...


def walk_profile(kind: str) -> KindProfile | None:
    """The profile of a kind the generic walk model simulates (gateway/profiles/kinds), or None."""
    profile = kind_profiles().get(kind)
    return profile if profile is not None and profile.simulator == "walk" else None


def param_names(kind: str) -> tuple[str, ...]:
    walk = walk_profile(kind)
    if walk is not None:
        return walk.measurement_names  # each channel's mean
    return tuple(f.name for f in fields(PARAMS_BY_KIND[kind]))


def make_params(kind: str, values: Mapping[str, object]) -> NodeParams:
    """Build a kind's parameters from a mapping; ValueError("name: problem") when wrong."""
    known_kinds = [*PARAMS_BY_KIND, *(k for k in kind_profiles() if walk_profile(k) is not None)]
    if kind not in known_kinds:
        raise ValueError(f"unknown node kind {kind!r} (expected one of {', '.join(known_kinds)})")
    known = param_names(kind)
    numbers: dict[str, float] = {}
    for name, value in values.items():
        if name not in known:
            raise ValueError(f"{name}: not a parameter of a {kind} node (known: {', '.join(known)})")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
        numbers[name] = float(value)
    if walk_profile(kind) is not None:
        return WalkParams(MappingProxyType(numbers))
    return PARAMS_BY_KIND[kind](**numbers)


@dataclass(frozen=True, slots=True)
class NodeSetup:
    bus: str
    unit_id: int
    kind: str
    params: NodeParams | None = None


class SitePhysics:
    """The weather and one physics model per node of a site."""

    def __init__(
        self,
        seed: int,
        conditions: ConditionsSource,
        nodes: Iterable[NodeSetup],
        start_local_seconds: float = 0.0,
    ) -> None:
        self.seed = seed
        self.conditions = conditions
        self.weather = Weather(seed, conditions, start_local_seconds)
        self.models: dict[tuple[str, int], NodeModel] = {}
        for node in nodes:
            key = (node.bus, node.unit_id)
            if key in self.models:
                raise ValueError(f"two nodes with unit id {node.unit_id} on bus {node.bus!r}")
            rng = stream(seed, f"{node.bus}/{node.unit_id}/{node.kind}")
            self.models[key] = build_model(node.kind, node.params, self.weather, conditions, rng, start_local_seconds)

    def model(self, bus: str, unit_id: int) -> NodeModel:
        try:
            return self.models[(bus, unit_id)]
        except KeyError:
            raise KeyError(f"no node {unit_id} on bus {bus!r}") from None

    def step(
        self, bus: str, unit_id: int, t: float, dt: float, actuators: Mapping[str, bool] | None = None
    ) -> dict[str, float]:
        return self.model(bus, unit_id).step(t, dt, actuators)


def build_model(
    kind: str,
    params: NodeParams | None,
    weather: Weather,
    conditions: ConditionsSource,
    rng: random.Random,
    start_local_seconds: float = 0.0,
) -> NodeModel:
    if kind == "dust":
        assert params is None or isinstance(params, DustParams)
        return DustModel(weather, conditions, rng, params)
    if kind == "noise":
        assert params is None or isinstance(params, NoiseParams)
        return NoiseModel(conditions, rng, params, start_local_seconds)
    if kind == "tilt":
        assert params is None or isinstance(params, TiltParams)
        return TiltModel(weather, conditions, rng, params)
    if kind == "wind":
        assert params is None or isinstance(params, WindParams)
        return WindModel(weather, rng, params)
    walk = walk_profile(kind)
    if walk is not None:
        assert params is None or isinstance(params, WalkParams)
        return WalkModel(kind, walk.walk, params, rng, start_local_seconds)
    raise ValueError(f"unknown node kind {kind!r}")


class EpochSource:
    """A model seen as values(t), t in seconds since the epoch; dt is the time since the last call.

    Set `actuators` (coil name -> state) before each call, e.g. from the
    node's register bank, to close the spray loop.
    """

    def __init__(self, model: NodeModel, start_epoch: float, first_dt: float = 1.0) -> None:
        self.model = model
        self.start_epoch = start_epoch
        self.first_dt = first_dt
        self.actuators: dict[str, bool] = {}
        self._last: float | None = None
        self._values: dict[str, float] = {}

    def values(self, t: float) -> dict[str, float]:
        elapsed = t - self.start_epoch
        if self._last is not None and elapsed <= self._last:
            return dict(self._values)
        dt = self.first_dt if self._last is None else elapsed - self._last
        self._values = self.model.step(elapsed, dt, self.actuators)
        self._last = elapsed
        return dict(self._values)
