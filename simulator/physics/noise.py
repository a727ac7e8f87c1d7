"""A-weighted sound level at one boundary noise monitor.

The monitor's output per sample, as the node computes it: LAeq over the last
second from eight 125 ms blocks, and the highest and lowest block level
(regmap: laeq_1s, lamax_1s, lamin_1s). Levels are always combined as energy,
10 log10(sum 10^(L/10)), never averaged in dB.

Sources, with their A-weighted level at 10 m while working. BS 5228-1:2009
+A1:2014 Annex C tabulates measured LAeq at 10 m for hundreds of items of site
plant; the numbers here are round values of the same order (excavators in the
mid-to-high 70s, pumps around 80, impact piling around 90), not copied from
it. Real machines differ by +-5 dB and more with age and make:

==================  ==========  ==========================================
source              dB(A) 10 m  time pattern
==================  ==========  ==========================================
excavator           78          work cycles ~4 min, idling ~1.5 min (-12 dB)
concrete pump       80          pumping ~10 min, waiting for a mixer ~2 min
piling rig          90          driving ~15 min, moving ~10 min; impact
                                hammer blows at 0.8/s: a blow block is about
                                9 dB above the LAeq, the rest about 7 dB below
truck movement      80 (max)    pass-bys at 5 m/s past the monitor's distance
==================  ==========  ==========================================

Propagation: point source, -20 log10(d / 10 m) (spherical spreading), minus
the screening of the site hoarding (`barrier`, 5 dB by default: a 2.5 m solid
hoarding typically gives 5-10 dB). Air absorption is negligible at these
distances. Counts from the conditions multiply the energy of a source type
(two excavators: +3 dB) and their working and idle spells are shared.

Background: the city, 52 dB(A) by day and 42 dB(A) at night by default (a
residential area near roads; GB 3096-2008 class 2 limits are 60 / 50), with
traffic fading after 21:00 and returning from 05:00; +-2 dB wander. Night is
22:00-06:00 as in GB 12523-2011, whose boundary limits are 70 dB(A) by day
and 55 dB(A) at night.

Time handling: blocks lie on a fixed 125 ms grid; a step produces only the
blocks of the last second (older blocks of a long step are skipped and the
source states are moved across the gap with exact transition probabilities),
so a coarse time step costs no more than a fine one.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from simulator.physics.conditions import Conditions, ConditionsSource

BLOCK = 0.125  # s, "Fast"
BLOCKS_PER_SECOND = 8
TRUCK_SPEED = 5.0  # m/s, site speed limit ~18 km/h
TRUCK_LEVEL = 80.0  # dB(A) at 10 m
TRUCK_REACH = 60.0  # s either side of the closest approach that still matters
FLUCTUATION_TIME = 10.0  # s, memory of a machine's load changes
BLOCK_JITTER = 0.8  # dB, block-to-block scatter


def energy(level: float) -> float:
    return math.pow(10.0, level / 10.0)


def level(energy_value: float) -> float:
    return 10.0 * math.log10(max(energy_value, 1e-12))


def energy_sum(levels: Iterable[float]) -> float:
    """Combined level of sources: 10 log10(sum 10^(L/10)); 60 + 60 dB -> 63.0 dB."""
    return level(sum(energy(value) for value in levels))


def leq(levels: Iterable[float]) -> float:
    """Equivalent level of equal-length blocks: 10 log10(mean 10^(L/10))."""
    values = list(levels)
    if not values:
        raise ValueError("no levels")
    return level(sum(energy(value) for value in values) / len(values))


@dataclass(frozen=True, slots=True)
class NoiseParams:
    distance: float = 30.0  # m from the centre of the works to the monitor
    barrier: float = 5.0  # dB(A) of screening by the site hoarding

    def __post_init__(self) -> None:
        if not 1.0 <= self.distance <= 2000.0:
            raise ValueError(f"distance: {self.distance:g} m is outside 1 .. 2000 m")
        if not 0.0 <= self.barrier <= 30.0:
            raise ValueError(f"barrier: {self.barrier:g} dB is outside 0 .. 30 dB")


@dataclass(frozen=True, slots=True)
class SourceType:
    name: str  # the Conditions field giving how many work
    level_10m: float  # dB(A) at 10 m while working
    working: float  # s, mean length of a working spell
    resting: float  # s, mean length of an idle spell
    idle_drop: float  # dB below the working level while idle
    fluctuation: float  # dB, standard deviation of the working level
    blows_per_second: float = 0.0  # impact piling


SOURCES = (
    SourceType("excavators", 78.0, 240.0, 90.0, 12.0, 2.5),
    SourceType("concrete_pumps", 80.0, 600.0, 120.0, 10.0, 1.5),
    SourceType("piling", 90.0, 900.0, 600.0, 15.0, 1.5, blows_per_second=0.8),
)


class _SourceState:
    """Working / idle two-state Markov chain plus an OU level fluctuation."""

    __slots__ = ("fluct", "kind", "phase", "working")

    def __init__(self, kind: SourceType, rng: random.Random) -> None:
        self.kind = kind
        share = kind.working / (kind.working + kind.resting)
        self.working = rng.random() < share
        self.fluct = rng.gauss(0.0, 1.0)
        self.phase = rng.random() / kind.blows_per_second if kind.blows_per_second else 0.0

    def advance(self, gap: float, rng: random.Random) -> None:
        if gap <= 0:
            return
        kind = self.kind
        share = kind.working / (kind.working + kind.resting)
        rate = 1.0 / kind.working + 1.0 / kind.resting
        # Exact transition of a two-state continuous-time Markov chain over `gap`.
        p_working = share + ((1.0 if self.working else 0.0) - share) * math.exp(-rate * gap)
        self.working = rng.random() < p_working
        a = math.exp(-gap / FLUCTUATION_TIME)
        self.fluct = a * self.fluct + math.sqrt(1.0 - a * a) * rng.gauss(0.0, 1.0)


def background_level(c: Conditions, hour: float) -> float:
    """Background LAeq for the local hour: traffic fades 21-23 h and returns 05-07 h."""
    hour %= 24.0
    if 7.0 <= hour < 21.0:
        day_share = 1.0
    elif hour >= 23.0 or hour < 5.0:
        day_share = 0.0
    elif hour < 7.0:
        day_share = 0.5 - 0.5 * math.cos(math.pi * (hour - 5.0) / 2.0)
    else:
        day_share = 0.5 + 0.5 * math.cos(math.pi * (hour - 21.0) / 2.0)
    return c.background_noise_night + (c.background_noise_day - c.background_noise_night) * day_share


class NoiseModel:
    kind = "noise"

    def __init__(
        self,
        conditions: ConditionsSource,
        rng: random.Random,
        params: NoiseParams | None = None,
        start_local_seconds: float = 0.0,
    ) -> None:
        self.conditions = conditions
        self.rng = rng
        self.params = params if params is not None else NoiseParams()
        self.start_local_seconds = start_local_seconds
        self.attenuation = 20.0 * math.log10(self.params.distance / 10.0) + self.params.barrier
        self.sources = [_SourceState(kind, rng) for kind in SOURCES]
        self.background_fluct = rng.gauss(0.0, 1.0)
        self.state_time: float | None = None
        self.next_block: int | None = None
        self.blocks: deque[float] = deque(maxlen=BLOCKS_PER_SECOND)  # energies
        self.trucks: deque[float] = deque()  # times of closest approach
        self.next_truck: float | None = None
        self.last: dict[str, float] = {}

    def _advance_states(self, t: float) -> None:
        if self.state_time is None:
            self.state_time = t
            return
        gap = t - self.state_time
        if gap <= 0:
            return
        for source in self.sources:
            source.advance(gap, self.rng)
        a = math.exp(-gap / 30.0)
        self.background_fluct = a * self.background_fluct + math.sqrt(1.0 - a * a) * self.rng.gauss(0.0, 1.0)
        self.state_time = t

    def _schedule_trucks(self, t: float, c: Conditions) -> None:
        """Keep the closest-approach times of trucks that can be heard at t (Poisson arrivals)."""
        rate = max(0.0, c.trucks * c.activity) / 3600.0
        if rate <= 0:
            self.next_truck = None  # restarts when trucks run again
        else:
            if self.next_truck is None:
                self.next_truck = t - TRUCK_REACH + self.rng.expovariate(rate)
            while self.next_truck <= t + TRUCK_REACH:
                self.trucks.append(self.next_truck)
                self.next_truck += self.rng.expovariate(rate)
        while self.trucks and self.trucks[0] < t - TRUCK_REACH:
            self.trucks.popleft()

    def _block_energy(self, index: int) -> float:
        start = index * BLOCK
        middle = start + BLOCK / 2.0
        self._advance_states(middle)
        c = self.conditions(middle)
        self._schedule_trucks(middle, c)
        hour = ((self.start_local_seconds + middle) / 3600.0) % 24.0
        total = energy(background_level(c, hour) + 2.0 * self.background_fluct)
        for source in self.sources:
            kind = source.kind
            count = getattr(c, kind.name) * c.activity
            if count <= 0:
                continue
            at_monitor = kind.level_10m - self.attenuation + kind.fluctuation * source.fluct
            if not source.working:
                total += count * energy(at_monitor - kind.idle_drop)
            elif kind.blows_per_second:
                period = 1.0 / kind.blows_per_second
                blow = source.phase + math.ceil((start - source.phase) / period) * period
                if blow < start + BLOCK:
                    total += count * 0.8 * energy(at_monitor) * period / BLOCK
                else:
                    total += count * 0.2 * energy(at_monitor)
            else:
                total += count * energy(at_monitor)
        distance = self.params.distance
        for closest in self.trucks:
            along = TRUCK_SPEED * (middle - closest)
            spread = 10.0 * math.log10((distance * distance + along * along) / 100.0)
            total += energy(TRUCK_LEVEL - spread - self.params.barrier)
        return total * energy(self.rng.gauss(0.0, BLOCK_JITTER))

    def step(self, t: float, dt: float, actuators: Mapping[str, bool] | None = None) -> dict[str, float]:
        """Levels of the last second before t (eight whole 125 ms blocks)."""
        last_block = math.floor(t / BLOCK + 1e-9) - 1
        first = last_block - BLOCKS_PER_SECOND + 1
        if self.next_block is None or self.next_block < first:
            self.next_block = first
        while self.next_block <= last_block:
            self.blocks.append(self._block_energy(self.next_block))
            self.next_block += 1
        if self.blocks:
            blocks = list(self.blocks)
            self.last = {
                "laeq_1s": level(sum(blocks) / len(blocks)),
                "lamax_1s": level(max(blocks)),
                "lamin_1s": level(min(blocks)),
            }
        return dict(self.last)
