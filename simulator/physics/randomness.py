"""Seeded random streams and the Ornstein-Uhlenbeck process the models are built from.

Every model draws from its own :class:`random.Random`, derived from the
scenario seed and a label (``"weather"``, ``"bus0/1/dust"``), so adding a node
to a scenario does not change the numbers any other node sees. String seeds
are hashed with SHA-512 by :mod:`random` (seed version 2), so streams do not
depend on ``PYTHONHASHSEED`` or the platform.

The Ornstein-Uhlenbeck (OU) process dx = -x/T dt + sqrt(2/T) dW is the
simplest stationary random process with a memory time T: its autocorrelation
is exp(-|tau|/T), a first-order (Lorentzian) spectrum. We use it in unit
variance form and scale it by the wanted standard deviation, so the scale can
change with the conditions without a jump in the state. It is advanced with
the exact transition x' = a x + sqrt(1 - a^2) n, a = exp(-dt/T), n ~ N(0, 1),
which is correct for any step length: a coarse step gives the same statistics
as many fine ones.
"""

from __future__ import annotations

import math
import random


def stream(seed: int, label: str) -> random.Random:
    """An independent, reproducible random stream for one model."""
    return random.Random(f"sitewatch/{seed}/{label}")


class OrnsteinUhlenbeck:
    """A unit-variance OU process, started from its stationary distribution."""

    __slots__ = ("rng", "timescale", "value")

    def __init__(self, rng: random.Random, timescale: float) -> None:
        if timescale <= 0:
            raise ValueError("timescale must be > 0")
        self.rng = rng
        self.timescale = timescale
        self.value = rng.gauss(0.0, 1.0)

    def advance(self, dt: float) -> float:
        """Move the process dt seconds on and return the new value."""
        if dt > 0:
            a = math.exp(-dt / self.timescale)
            self.value = a * self.value + math.sqrt(1.0 - a * a) * self.rng.gauss(0.0, 1.0)
        return self.value


def relax(value: float, target: float, dt: float, timescale: float) -> float:
    """Exact step of dv/dt = (target - v) / timescale over dt with a constant target."""
    if timescale <= 0:
        return target
    return target + (value - target) * math.exp(-dt / timescale)
