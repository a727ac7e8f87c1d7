"""Tilt of a formwork support (or any structure) under load, as an inclinometer sees it.

Output in the register map's units: pitch and roll in millidegrees from the
zeroed (unloaded, as built) attitude, slope_x / slope_y in per-mille
(1000 tan(angle)), and the sensor's temperature.

Model, approximate:

- Elastic lean proportional to the load: `sensitivity` millidegrees at full
  load (load = 1), in the direction `azimuth` (0: along x / pitch, 90: along y
  / roll). A concrete pour is a load ramp in the scenario (concrete is placed
  layer by layer at a roughly steady rate, so the load grows roughly linearly
  over the hours of the pour).
- Creep: under sustained load the lean keeps growing towards
  (1 + creep) times the elastic part with a time constant `creep_time`
  (settlement of props and joints, timber creep); it relaxes back the same
  way when the load comes off. This is the slow drift that lets a support pass
  a pre-warning and then an alarm long after the load stopped rising. For
  reference, the alarm defaults of this project are 4 per-mille with a
  pre-warning at 3.2 per-mille (Guangdong DBJ/T 15-197-2020 as quoted,
  unconfirmed); 4 per-mille is 229 mdeg.
- Thermal: a sunlit steel member bends; `thermal` millidegrees per degC of
  sensor temperature above the day's mean. The sensor sits in the sun: its
  temperature follows the air plus up to 8 degC of solar heating, with a
  15 min lag.
- Sensor noise: white, `noise` mdeg RMS per axis. MEMS inclinometers read at a
  few Hz show about 1-5 mdeg (e.g. ADXL355 noise density about 25 ug/sqrt(Hz):
  some 1.5 mdeg in a 1 Hz bandwidth).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from simulator.physics.conditions import ConditionsSource
from simulator.physics.randomness import relax
from simulator.physics.weather import Weather

MAX_SUBSTEP = 30.0  # s
SOLAR_HEATING = 8.0  # degC above air in full sun
SENSOR_LAG = 900.0  # s


def slope_permille(millidegrees: float) -> float:
    """Per-mille slope of an angle given in millidegrees: 1000 tan(angle)."""
    return 1000.0 * math.tan(math.radians(millidegrees / 1000.0))


def millidegrees(permille: float) -> float:
    """Angle in millidegrees of a per-mille slope (inverse of slope_permille)."""
    return 1000.0 * math.degrees(math.atan(permille / 1000.0))


@dataclass(frozen=True, slots=True)
class TiltParams:
    sensitivity: float = 60.0  # mdeg of lean at full load
    azimuth: float = 0.0  # degrees: direction of the lean, 0 = +x (pitch), 90 = +y (roll)
    creep: float = 0.2  # long-term extra lean, fraction of the elastic lean
    creep_time: float = 7200.0  # s
    thermal: float = 1.5  # mdeg per degC of sensor temperature above the daily mean
    noise: float = 2.0  # mdeg RMS sensor noise per axis

    def __post_init__(self) -> None:
        checks = (
            ("sensitivity", self.sensitivity, -5000.0, 5000.0),
            ("azimuth", self.azimuth, -360.0, 360.0),
            ("creep", self.creep, 0.0, 5.0),
            ("creep_time", self.creep_time, 1.0, 30 * 86400.0),
            ("thermal", self.thermal, -100.0, 100.0),
            ("noise", self.noise, 0.0, 1000.0),
        )
        for name, value, low, high in checks:
            if not low <= value <= high:
                raise ValueError(f"{name}: {value:g} is outside {low:g} .. {high:g}")


class TiltModel:
    kind = "tilt"

    def __init__(
        self,
        weather: Weather,
        conditions: ConditionsSource,
        rng: random.Random,
        params: TiltParams | None = None,
    ) -> None:
        self.weather = weather
        self.conditions = conditions
        self.rng = rng
        self.params = params if params is not None else TiltParams()
        self.creep_lean = 0.0  # mdeg
        self.sensor_temperature: float | None = None
        self.time: float | None = None

    def _sensor_target(self, t: float) -> tuple[float, float]:
        w = self.weather.at(t)
        return w.temperature + SOLAR_HEATING * w.sun, w.temperature_mean

    def _advance(self, t: float) -> None:
        p = self.params
        if self.time is None:
            self.sensor_temperature = self._sensor_target(t)[0]
            self.creep_lean = p.creep * p.sensitivity * self.conditions(t).load
            self.time = t
            return
        while self.time < t:
            h = min(MAX_SUBSTEP, t - self.time)
            end = self.time + h
            target, _ = self._sensor_target(end)
            assert self.sensor_temperature is not None
            self.sensor_temperature = relax(self.sensor_temperature, target, h, SENSOR_LAG)
            load = self.conditions(end).load
            self.creep_lean = relax(self.creep_lean, p.creep * p.sensitivity * load, h, p.creep_time)
            self.time = end

    def step(self, t: float, dt: float, actuators: Mapping[str, bool] | None = None) -> dict[str, float]:
        self._advance(t)
        p = self.params
        assert self.sensor_temperature is not None
        temperature_mean = self._sensor_target(t)[1]
        lean = p.sensitivity * self.conditions(t).load + self.creep_lean
        lean += p.thermal * (self.sensor_temperature - temperature_mean)
        azimuth = math.radians(p.azimuth)
        pitch = lean * math.cos(azimuth) + self.rng.gauss(0.0, p.noise)
        roll = lean * math.sin(azimuth) + self.rng.gauss(0.0, p.noise)
        return {
            "pitch": pitch,
            "roll": roll,
            "slope_x": slope_permille(pitch),
            "slope_y": slope_permille(roll),
            "temperature": self.sensor_temperature,
        }
