"""Site weather: air temperature, humidity, pressure, mean wind and its direction.

One :class:`Weather` serves the whole site; the node models (dust, wind,
tilt) read it. Its random parts live on a fixed 10 s grid starting an hour
before the scenario and are linearly interpolated between grid points, so the
weather at a given time does not depend on which node asked first or how
often: every node of a seeded run sees the same sky.

Shapes and numbers (approximate, chosen to look like a Pearl River Delta day):

- Temperature: minimum near sunrise (06:00), maximum in mid-afternoon
  (14:30), joined by two half-cosines. This is the usual shape of the diurnal
  cycle of near-surface air temperature (Parton & Logan 1981, Agric. Meteorol.
  23:205, use a sine by day and an exponential decay at night; two half-cosines
  are a simpler stand-in). Rain shrinks the range (overcast).
- Humidity: the dew point stays at the value given by (temperature_mean,
  humidity_mean) through the day, so relative humidity is highest at dawn and
  lowest in the afternoon, as observed. Magnus formula with the WMO
  coefficients 6.112 hPa, 17.62, 243.12 degC (WMO-No. 8, Annex 4.B). Rain
  pushes RH towards 97 %.
- Pressure: the semidiurnal atmospheric tide, strongest in the tropics, about
  1.2 hPa amplitude with maxima near 10:00 and 22:00 local time; plus slow
  synoptic wander of a few tenths of a hPa.
- Mean wind: surface wind is lighter at night and stronger in the afternoon
  when daytime convection mixes momentum down from aloft (Stull 1988, An
  Introduction to Boundary Layer Meteorology, ch. 1); wind_diurnal sets the
  relative swing (0 for a typhoon, whose wind does not care about the sun).
  A slow random modulation (+-12 %, 20 min memory) stands for mesoscale
  changes of the 10 min mean.
- Direction: the mean direction meanders slowly (15 min memory), much more in
  light wind than in strong wind (light-wind meandering; roughly 25 degrees at
  calm, under 10 degrees at gale force). Veering (a clockwise turn, as when a
  typhoon passes) is written in the scenario as a ramp of wind_dir.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

from simulator.physics.conditions import ConditionsSource
from simulator.physics.randomness import OrnsteinUhlenbeck, stream

# Magnus coefficients over water (WMO-No. 8, Annex 4.B).
MAGNUS_B = 17.62
MAGNUS_C = 243.12  # degC

HOUR_MIN_TEMPERATURE = 6.0  # local solar time of the daily minimum (sunrise)
HOUR_MAX_TEMPERATURE = 14.5  # daily maximum
PRESSURE_TIDE_KPA = 0.12  # semidiurnal amplitude (1.2 hPa), tropics
HOUR_MAX_WIND = 14.0


@dataclass(frozen=True, slots=True)
class WeatherState:
    t: float  # simulated seconds since the scenario start
    local_hour: float  # 0..24, Asia/Shanghai
    temperature: float  # degC
    humidity: float  # %
    pressure: float  # kPa
    wind_mean: float  # m/s, 10 min mean wind at 10 m above ground
    wind_dir: float  # degrees from north, 0..360, where the wind comes from
    turbulence: float  # sigma_u / U at 10 m
    rain: float  # mm/h
    sun: float  # 0..1, solar heating (0 at night, reduced under rain clouds)
    temperature_mean: float  # degC, the day's mean (for thermal effects relative to it)


def diurnal_shape(hour: float) -> float:
    """-1 at the daily minimum (06:00), +1 at the maximum (14:30), smooth in between."""
    hour %= 24.0
    rise = HOUR_MAX_TEMPERATURE - HOUR_MIN_TEMPERATURE
    if HOUR_MIN_TEMPERATURE <= hour < HOUR_MAX_TEMPERATURE:
        return -math.cos(math.pi * (hour - HOUR_MIN_TEMPERATURE) / rise)
    since_max = (hour - HOUR_MAX_TEMPERATURE) % 24.0
    return math.cos(math.pi * since_max / (24.0 - rise))


def saturation_vapour_pressure(temperature: float) -> float:
    """hPa over water, Magnus formula."""
    return 6.112 * math.exp(MAGNUS_B * temperature / (MAGNUS_C + temperature))


def dew_point(temperature: float, humidity: float) -> float:
    """degC, from air temperature (degC) and relative humidity (%)."""
    gamma = math.log(max(humidity, 0.1) / 100.0) + MAGNUS_B * temperature / (MAGNUS_C + temperature)
    return MAGNUS_C * gamma / (MAGNUS_B - gamma)


def relative_humidity(temperature: float, dew: float) -> float:
    """%, from air temperature and dew point (degC); may exceed 100 when dew > temperature."""
    return 100.0 * saturation_vapour_pressure(dew) / saturation_vapour_pressure(temperature)


def sunshine(hour: float) -> float:
    """Clear-sky solar forcing, 0..1: a half-sine between 06:00 and 18:00 (Zhongshan is at 22.5 N)."""
    hour %= 24.0
    if 6.0 < hour < 18.0:
        return math.sin(math.pi * (hour - 6.0) / 12.0)
    return 0.0


class Weather:
    """The site's weather as a deterministic function of (seed, conditions, time)."""

    STEP = 10.0  # s, grid of the random parts
    ORIGIN = -3600.0  # s, first grid point: lets models spin up before the start

    def __init__(self, seed: int, conditions: ConditionsSource, start_local_seconds: float = 0.0) -> None:
        self.conditions = conditions
        self.start_local_seconds = start_local_seconds
        rng = stream(seed, "weather")
        # Order matters for reproducibility: each grid step advances these in turn.
        self._processes = (
            OrnsteinUhlenbeck(rng, 1200.0),  # mean wind modulation
            OrnsteinUhlenbeck(rng, 900.0),  # direction meander
            OrnsteinUhlenbeck(rng, 3600.0),  # temperature wander
            OrnsteinUhlenbeck(rng, 3600.0),  # humidity wander
            OrnsteinUhlenbeck(rng, 3 * 3600.0),  # synoptic pressure wander
        )
        # The whole grid is kept (40 bytes per 10 s, about 350 kB a simulated
        # day) so that a model created late, or stepped behind the others,
        # still sees exactly the same weather.
        self._first = round(self.ORIGIN / self.STEP)  # grid index of the first point
        self._grid = [array("d", [p.value]) for p in self._processes]

    def local_hour(self, t: float) -> float:
        return ((self.start_local_seconds + t) / 3600.0) % 24.0

    def _extend(self, index: int) -> None:
        missing = index - (self._first + len(self._grid[0]) - 1)
        for _ in range(missing):
            for process, values in zip(self._processes, self._grid, strict=True):
                values.append(process.advance(self.STEP))

    def _anomalies(self, t: float) -> tuple[float, ...]:
        position = t / self.STEP
        index = math.floor(position)
        if index < self._first:
            raise ValueError(f"weather at t={t:.1f} s: before the first grid point ({self.ORIGIN:g} s)")
        self._extend(index + 1)
        offset = index - self._first
        w = position - index
        return tuple(values[offset] + (values[offset + 1] - values[offset]) * w for values in self._grid)

    def at(self, t: float) -> WeatherState:
        z_speed, z_dir, z_temp, z_rh, z_press = self._anomalies(t)
        c = self.conditions(t)
        hour = self.local_hour(t)
        overcast = min(1.0, c.rain / 2.0)

        half_range = 0.5 * c.temperature_range * (1.0 - 0.7 * min(1.0, c.rain / 5.0))
        temperature = c.temperature_mean + half_range * diurnal_shape(hour) + 0.5 * z_temp

        dew = dew_point(c.temperature_mean, c.humidity_mean)
        humidity = relative_humidity(temperature, dew) + 3.0 * z_rh
        humidity += (97.0 - humidity) * overcast
        humidity = min(100.0, max(3.0, humidity))

        pressure = c.pressure + PRESSURE_TIDE_KPA * math.cos(4.0 * math.pi * (hour - 10.0) / 24.0) + 0.04 * z_press

        diurnal = 1.0 + c.wind_diurnal * math.cos(2.0 * math.pi * (hour - HOUR_MAX_WIND) / 24.0)
        wind = c.wind_mean * diurnal * max(0.0, 1.0 + 0.12 * z_speed)
        meander = 8.0 + 20.0 / (1.0 + wind)  # degrees, one standard deviation
        direction = (c.wind_dir + meander * z_dir) % 360.0

        return WeatherState(
            t=t,
            local_hour=hour,
            temperature=temperature,
            humidity=humidity,
            pressure=pressure,
            wind_mean=wind,
            wind_dir=direction,
            turbulence=c.turbulence,
            rain=c.rain,
            sun=sunshine(hour) * (1.0 - 0.75 * overcast),
            temperature_mean=c.temperature_mean,
        )
