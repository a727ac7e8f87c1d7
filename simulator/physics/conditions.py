"""Site conditions: the slowly changing parameters that drive every physics model.

A :class:`Conditions` is one snapshot of everything a scenario can set: the
day's weather (daily mean temperature and its range, humidity, pressure, mean
wind, rain), the background the site sits in (urban PM and noise) and what the
site is doing (earthworks, trucks, machines, formwork load).

A :class:`Timeline` turns an initial snapshot plus a list of timed
:class:`Change` entries into a function of simulated time. A change sets some
fields at a time `at`, either at once or as a linear ramp lasting `ramp`
seconds that starts from whatever value was in effect at `at`. ``wind_dir``
ramps along the shorter arc of the circle (350 -> 10 turns through north);
a veer of more than 180 degrees needs two changes.

Defaults describe an ordinary spring day in Zhongshan (Pearl River Delta),
approximately: daily mean about 24 degC with a 7 degC range, humid (75 % RH),
light south-easterly wind. They are meant to look right, not to be a
climatology; every one is a setting.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True, slots=True)
class Conditions:
    """Everything the scenario controls, in physical units."""

    # -- weather --------------------------------------------------------------
    temperature_mean: float = 24.0  # degC, daily mean air temperature
    temperature_range: float = 7.0  # degC, daily maximum minus minimum (dry day)
    humidity_mean: float = 75.0  # %, relative humidity at the daily mean temperature
    pressure: float = 101.0  # kPa, station pressure without the atmospheric tide
    wind_mean: float = 2.5  # m/s, daily mean of the 10 min mean wind at 10 m
    wind_dir: float = 150.0  # degrees from north the wind comes from (mean)
    wind_diurnal: float = 0.3  # relative day/night swing of the mean wind (0: none)
    turbulence: float = 0.2  # longitudinal turbulence intensity sigma_u / U at 10 m
    rain: float = 0.0  # mm/h
    # -- background the site sits in -------------------------------------------
    background_pm10: float = 45.0  # ug/m3, urban background (daily mean)
    background_pm25: float = 25.0  # ug/m3
    background_noise_day: float = 52.0  # dB(A), LAeq of traffic and the city, 06:00-22:00
    background_noise_night: float = 42.0  # dB(A), 22:00-06:00
    # -- the works ---------------------------------------------------------------
    activity: float = 1.0  # multiplies every activity below (0: site stopped, e.g. lunch)
    earthworks: float = 0.0  # 0..1, intensity of digging, loading and dumping soil
    exposed_soil: float = 0.1  # 0..1, share of the site with bare, uncovered soil
    trucks: float = 0.0  # truck movements per hour on the site's haul roads
    excavators: float = 0.0  # excavators working (may be fractional: mean number)
    piling: float = 0.0  # piling rigs working
    concrete_pumps: float = 0.0  # concrete pumps working
    load: float = 0.0  # formwork load as a fraction of the full pour (0..1, more when overloaded)


CONDITION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Conditions))

# Accepted ranges: wide enough for any real site, narrow enough to catch typos
# (a humidity of 750 instead of 75.0).
CONDITION_RANGES: dict[str, tuple[float, float]] = {
    "temperature_mean": (-40.0, 50.0),
    "temperature_range": (0.0, 30.0),
    "humidity_mean": (1.0, 100.0),
    "pressure": (85.0, 108.0),
    "wind_mean": (0.0, 80.0),
    "wind_dir": (-720.0, 720.0),
    "wind_diurnal": (0.0, 0.9),
    "turbulence": (0.02, 0.6),
    "rain": (0.0, 200.0),
    "background_pm10": (0.0, 2000.0),
    "background_pm25": (0.0, 2000.0),
    "background_noise_day": (20.0, 90.0),
    "background_noise_night": (20.0, 90.0),
    "activity": (0.0, 5.0),
    "earthworks": (0.0, 3.0),
    "exposed_soil": (0.0, 1.0),
    "trucks": (0.0, 300.0),
    "excavators": (0.0, 50.0),
    "piling": (0.0, 20.0),
    "concrete_pumps": (0.0, 20.0),
    "load": (0.0, 3.0),
}

ConditionsSource = Callable[[float], Conditions]


def check_condition(name: str, value: object) -> float:
    """The value as a float, or ValueError saying what is wrong with it."""
    if name not in CONDITION_RANGES:
        raise ValueError(f"unknown condition {name!r} (known: {', '.join(CONDITION_NAMES)})")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {type(value).__name__} {value!r}")
    number = float(value)
    low, high = CONDITION_RANGES[name]
    if not (low <= number <= high):
        raise ValueError(f"{number:g} is outside the accepted range {low:g} .. {high:g}")
    return number


def constant(conditions: Conditions | None = None) -> ConditionsSource:
    """A conditions source that never changes (handy for tests and benches)."""
    fixed = conditions if conditions is not None else Conditions()

    def source(t: float) -> Conditions:
        return fixed

    return source


@dataclass(frozen=True, slots=True)
class Change:
    """Set `values` at time `at` (seconds from the start), reached after `ramp` seconds."""

    at: float
    values: Mapping[str, float]
    ramp: float = 0.0
    label: str = ""

    def __post_init__(self) -> None:
        if not math.isfinite(self.at) or self.at < 0:
            raise ValueError(f"at: {self.at!r} is not a time >= 0")
        if not math.isfinite(self.ramp) or self.ramp < 0:
            raise ValueError(f"ramp: {self.ramp!r} is not a duration >= 0")
        for name, value in self.values.items():
            try:
                check_condition(name, value)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None


@dataclass(frozen=True, slots=True)
class _Piece:
    """value(t) = v0 + (v1 - v0) * clamp((t - t0) / (t1 - t0)) for t >= t0."""

    t0: float
    v0: float
    t1: float
    v1: float

    def value(self, t: float) -> float:
        if t >= self.t1 or self.t1 <= self.t0:
            return self.v1
        return self.v0 + (self.v1 - self.v0) * (t - self.t0) / (self.t1 - self.t0)


class Timeline:
    """Conditions as a function of simulated time, from an initial state and changes.

    Each field is a list of linear pieces; a change starting while an earlier
    ramp of the same field is under way takes over from the value reached at
    that moment. Changes at the same time apply in the order given.
    """

    def __init__(self, initial: Conditions, changes: Iterable[Change] = ()) -> None:
        self.initial = initial
        ordered = sorted(enumerate(changes), key=lambda pair: (pair[1].at, pair[0]))
        self.changes: tuple[Change, ...] = tuple(change for _, change in ordered)
        self._pieces: dict[str, list[_Piece]] = {}
        self._starts: dict[str, list[float]] = {}
        for change in self.changes:
            for name, target in change.values.items():
                self._add(name, change.at, change.ramp, float(target))
        self._cache_t = math.nan
        self._cache = initial

    def _current(self, name: str, t: float) -> float:
        pieces = self._pieces.get(name)
        if not pieces:
            return float(getattr(self.initial, name))
        index = bisect.bisect_right(self._starts[name], t) - 1
        if index < 0:
            return float(getattr(self.initial, name))
        return pieces[index].value(t)

    def _add(self, name: str, at: float, ramp: float, target: float) -> None:
        start_value = self._current(name, at)
        if name == "wind_dir":
            # Turn the shorter way round; the result may leave 0..360, which
            # is harmless because every user wraps it.
            target = start_value + ((target - start_value + 180.0) % 360.0 - 180.0)
        self._pieces.setdefault(name, []).append(_Piece(at, start_value, at + ramp, target))
        self._starts.setdefault(name, []).append(at)

    def __call__(self, t: float) -> Conditions:
        if t == self._cache_t:
            return self._cache
        changed = {name: self._current(name, t) for name in self._pieces}
        result = replace(self.initial, **changed) if changed else self.initial
        self._cache_t = t
        self._cache = result
        return result
