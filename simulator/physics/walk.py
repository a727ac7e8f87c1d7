"""The generic model of a kind added as a profile: per channel a diurnal curve plus a bounded random walk.

A kind whose profile says ``[simulator] model = "walk"`` (gateway/profiles/kinds.py)
needs no simulator code: each measurement follows

    value(t) = mean + diurnal * sin(2 pi (hour - peak_hour + 6) / 24) + wander(t), clipped to [low, high]

where hour is the site's local time of day (the curve peaks at peak_hour) and
wander is an Ornstein-Uhlenbeck process (simulator/physics/randomness.py)
whose standard deviation is step * sqrt(WANDER_TIMESCALE_S / 2): over short
times it moves about `step` per square-root second, like a random walk, and
over hours it stays bounded around the curve. A scenario node may move a
channel's mean (``params = { level = 2.6 }``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.profiles.kinds import WalkChannel
from simulator.physics.randomness import OrnsteinUhlenbeck

WANDER_TIMESCALE_S = 600.0  # memory of the wander: ten minutes (project choice)
SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class WalkParams:
    """A scenario's changes to the profile: channel -> mean."""

    means: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))


class WalkModel:
    def __init__(
        self,
        kind: str,
        channels: Mapping[str, WalkChannel],
        params: WalkParams | None,
        rng: random.Random,
        start_local_seconds: float = 0.0,
    ) -> None:
        self.kind = kind
        self.channels = dict(channels)
        self.means = {name: spec.mean for name, spec in channels.items()}
        self.means.update(params.means if params is not None else {})
        self.start_local_seconds = start_local_seconds
        self.wander = {name: OrnsteinUhlenbeck(rng, WANDER_TIMESCALE_S) for name in sorted(channels)}

    def step(self, t: float, dt: float, actuators: Mapping[str, bool] | None = None) -> dict[str, float]:
        hour = ((self.start_local_seconds + t) % SECONDS_PER_DAY) / 3600.0
        out: dict[str, float] = {}
        for name, spec in self.channels.items():
            curve = spec.diurnal * math.sin(2.0 * math.pi * (hour - spec.peak_hour + 6.0) / 24.0)
            sd = spec.step * math.sqrt(WANDER_TIMESCALE_S / 2.0)
            value = self.means[name] + curve + sd * self.wander[name].advance(dt)
            out[name] = min(spec.high, max(spec.low, value))
        return out
